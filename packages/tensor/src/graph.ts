import type { BackendTensor, MatmulActivations, OpName } from './backend.js';
import { type DTypeName, dtypes } from './dtype.js';
import { NibbleError } from './errors.js';

/**
 * The graph IR: a static list of nodes built once per model and reused every step.
 *
 * Sizes that change per step (number of tokens) are symbolic dimensions ({@link GraphParam}) with a maximum, so a
 * backend can plan memory once; scalars that change per step (the position of the first token) are params too. Both
 * get their values in {@link Backend.run}. Shapes are checked when each node is appended, and errors name the node.
 */

/**
 * A named integer that {@link Backend.run} supplies each step: a symbolic dimension (number of tokens) or a scalar
 * (start position). `max` bounds it so memory can be planned once.
 */
export interface GraphParam {
  readonly kind: 'param';
  readonly name: string;
  /** Smallest legal value (default 0). */
  readonly min: number;
  /** Largest legal value. */
  readonly max: number;
}

/** One dimension of a graph tensor: a fixed size, or a {@link GraphParam} resolved at run time. */
export type Dim = number | GraphParam;

/**
 * Where a graph tensor comes from:
 * - `input`: host data given to each run (token ids, positions, activations);
 * - `weight`: an uploaded, read-only {@link BackendTensor};
 * - `state`: a backend tensor that keeps its contents between runs (KV cache), written only by `copy`;
 * - `value`: a node's result, owned by the backend for the duration of a run.
 */
export type TensorKind = 'input' | 'weight' | 'state' | 'value';

/** A tensor of a graph. Produced by {@link GraphBuilder}; `id` indexes {@link Graph.tensors}. */
export interface TensorRef {
  readonly id: number;
  readonly name: string;
  readonly kind: TensorKind;
  readonly dtype: DTypeName;
  /** Outermost first; the last dimension is the row. */
  readonly shape: readonly Dim[];
  /** The backend tensor behind a `weight` or `state`. */
  readonly handle?: BackendTensor;
}

/**
 * Positions of the rows of a rope/attention/copy node: an i32 input of shape `[nTokens]`, or a param `p` meaning
 * row `i` is at position `p + i`.
 */
export type Positions = TensorRef | GraphParam;

/** RoPE layouts: `'normal'` rotates pairs (2i, 2i+1) (llama); `'neox'` rotates (i, i + nRot/2) (GPT-NeoX, Qwen). */
export type RopeMode = 'normal' | 'neox';

interface NodeBase {
  /** Unique node name, also the name of its output tensor. */
  readonly name: string;
  /** Every tensor the node reads, in a fixed order per op. */
  readonly inputs: readonly TensorRef[];
  /** The tensor the node writes; `copy` writes a state tensor given in `inputs` instead. */
  readonly out: TensorRef | undefined;
}

/** `out[r, o] = Σ_i weight[o, i] · x[r, i]`. weight `[out, in]` (any dtype), x `[..., in]` f32 -> `[..., out]`. */
export interface MatmulNode extends NodeBase {
  readonly op: 'matmul';
  readonly weight: TensorRef;
  readonly x: TensorRef;
  readonly out: TensorRef;
  /** Activation mode; undefined means the backend's default. */
  readonly activations: MatmulActivations | undefined;
}
/** `out[r, :] = decode(table[ids[r], :])`. table `[rows, cols]` (any dtype), ids `[n]` i32 -> `[n, cols]` f32. */
export interface GetRowsNode extends NodeBase {
  readonly op: 'get_rows';
  readonly table: TensorRef;
  readonly ids: TensorRef;
  readonly out: TensorRef;
}
/** Per row: `x / sqrt(mean(x²) + eps)`. */
export interface RmsNormNode extends NodeBase {
  readonly op: 'rms_norm';
  readonly x: TensorRef;
  readonly out: TensorRef;
  readonly eps: number;
}
/** Per row: `(x - mean) / sqrt(var + eps)` (no affine part: follow with `mul`/`add`). */
export interface LayerNormNode extends NodeBase {
  readonly op: 'layer_norm';
  readonly x: TensorRef;
  readonly out: TensorRef;
  readonly eps: number;
}
/**
 * Rotary position embedding of x `[n, nHeads * headDim]`. Dimension pair j (of nRot/2) of a row at position p turns
 * by `p · freqScale · freqBase^(-2j/nRot)`; dims from nRot to headDim pass through.
 */
export interface RopeNode extends NodeBase {
  readonly op: 'rope';
  readonly x: TensorRef;
  readonly out: TensorRef;
  readonly positions: Positions;
  readonly nHeads: number;
  readonly headDim: number;
  readonly nRot: number;
  readonly mode: RopeMode;
  readonly freqBase: number;
  readonly freqScale: number;
}
/**
 * Causal grouped-query attention over a KV cache. q `[n, nHeads * headDim]`; k, v: state `[ctx, nKvHeads * headDim]`
 * (f32, f16 or q8_0). Query row i at position p attends to cache rows 0..p: `softmax(scale · q·kᵀ) · v`. Query head h
 * reads KV head `floor(h / (nHeads / nKvHeads))`. Out `[n, nHeads * headDim]`.
 */
export interface AttentionNode extends NodeBase {
  readonly op: 'attention';
  readonly q: TensorRef;
  readonly k: TensorRef;
  readonly v: TensorRef;
  readonly out: TensorRef;
  readonly positions: Positions;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly scale: number;
}
/** Softmax along the last dimension. */
export interface SoftmaxNode extends NodeBase {
  readonly op: 'softmax';
  readonly x: TensorRef;
  readonly out: TensorRef;
}
/** `x · sigmoid(x)`. */
export interface SiluNode extends NodeBase {
  readonly op: 'silu';
  readonly x: TensorRef;
  readonly out: TensorRef;
}
/** GELU, tanh approximation: `0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))` (ggml's `gelu`). */
export interface GeluNode extends NodeBase {
  readonly op: 'gelu';
  readonly x: TensorRef;
  readonly out: TensorRef;
}
/** `a + b`; b has a's shape or is one row (`[cols]`) added to every row. */
export interface AddNode extends NodeBase {
  readonly op: 'add';
  readonly a: TensorRef;
  readonly b: TensorRef;
  readonly out: TensorRef;
}
/** `a · b`; b has a's shape or is one row (`[cols]`), e.g. a norm weight. */
export interface MulNode extends NodeBase {
  readonly op: 'mul';
  readonly a: TensorRef;
  readonly b: TensorRef;
  readonly out: TensorRef;
}
/** `x · factor`. */
export interface ScaleNode extends NodeBase {
  readonly op: 'scale';
  readonly x: TensorRef;
  readonly out: TensorRef;
  readonly factor: number;
}
/**
 * Writes row i of src `[n, cols]` (f32) into row `positions[i]` of the state dst `[ctx, cols]`, converting to dst's
 * dtype (f32, f16, q8_0, ...). The KV cache write of a decode step.
 */
export interface CopyNode extends NodeBase {
  readonly op: 'copy';
  readonly src: TensorRef;
  readonly dst: TensorRef;
  readonly positions: Positions;
  readonly out: undefined;
}

/** A node of the graph IR, discriminated by `op`. */
export type GraphNode =
  | MatmulNode
  | GetRowsNode
  | RmsNormNode
  | LayerNormNode
  | RopeNode
  | AttentionNode
  | SoftmaxNode
  | SiluNode
  | GeluNode
  | AddNode
  | MulNode
  | ScaleNode
  | CopyNode;

/** A named graph output. */
export interface GraphOutput {
  readonly name: string;
  readonly tensor: TensorRef;
}

/** An immutable, validated graph. Build it with {@link GraphBuilder}; run it with {@link Backend.run}. */
export interface Graph {
  /** Per-step integers: symbolic dims and scalars. */
  readonly params: readonly GraphParam[];
  /** Every tensor, indexed by `TensorRef.id`. */
  readonly tensors: readonly TensorRef[];
  /** Host inputs, in declaration order. */
  readonly inputs: readonly TensorRef[];
  /** Nodes in execution order. */
  readonly nodes: readonly GraphNode[];
  /** Outputs returned by each run. */
  readonly outputs: readonly GraphOutput[];
}

/**
 * A graph construction or graph execution error. `node` names the node (or input/param) at fault.
 *
 * @example
 * ```ts
 * try { b.matmul(w, x, { name: 'blk.0.q' }); } catch (e) { if (e instanceof GraphError) console.log(e.node); } // 'blk.0.q'
 * ```
 */
export class GraphError extends NibbleError {
  /** Name of the node, input or param at fault. */
  readonly node: string;
  constructor(node: string, message: string) {
    super('E_GRAPH', `${node}: ${message}`);
    this.node = node;
  }
}

/**
 * Formats a shape with symbolic dims.
 *
 * @example
 * ```ts
 * formatShape([n, 4096]); // '[nTokens, 4096]'
 * ```
 */
export function formatShape(shape: readonly Dim[]): string {
  return `[${shape.map((d) => (typeof d === 'number' ? String(d) : d.name)).join(', ')}]`;
}

/**
 * Whether two dims are the same: equal numbers, or the same param.
 *
 * @example
 * ```ts
 * sameDim(n, n); // true; sameDim(4, 4) too
 * ```
 */
export function sameDim(a: Dim, b: Dim): boolean {
  return a === b;
}

/**
 * A dim's value for given param values.
 *
 * @example
 * ```ts
 * dimValue(n, { n: 3 }); // 3
 * ```
 */
export function dimValue(d: Dim, values: Readonly<Record<string, unknown>>): number {
  return typeof d === 'number' ? d : (values[d.name] as number);
}

/**
 * A dim's largest value: the number itself or the param's max.
 *
 * @example
 * ```ts
 * dimMax(b.param('n', { max: 512 })); // 512
 * ```
 */
export function dimMax(d: Dim): number {
  return typeof d === 'number' ? d : d.max;
}

/**
 * Resolves a shape to numbers: `at` gives param values (`dimMax` when omitted).
 *
 * @example
 * ```ts
 * resolveShape([n, 64], { n: 2 }); // [2, 64]
 * ```
 */
export function resolveShape(shape: readonly Dim[], at?: Readonly<Record<string, unknown>>): number[] {
  return shape.map((d) => (at === undefined ? dimMax(d) : dimValue(d, at)));
}

/** Options shared by every op: a node name (default `op_N`). */
export interface NodeOptions {
  name?: string;
}
/** Options of {@link GraphBuilder.matmul}. */
export interface MatmulOptions extends NodeOptions {
  /** Activation mode of this node; default: the backend's `matmulActivations` option. */
  activations?: MatmulActivations;
}
/** Options of {@link GraphBuilder.rope}. */
export interface RopeOptions extends NodeOptions {
  nHeads: number;
  /** Default: row length / nHeads. */
  headDim?: number;
  /** Rotated dims per head (even, <= headDim). Default headDim. */
  nRot?: number;
  /** Default `'normal'`. */
  mode?: RopeMode;
  /** Default 10000. */
  freqBase?: number;
  /** Linear position scaling; default 1. */
  freqScale?: number;
}
/** Options of {@link GraphBuilder.attention}. */
export interface AttentionOptions extends NodeOptions {
  nHeads: number;
  nKvHeads: number;
  /** Default: q's row length / nHeads. */
  headDim?: number;
  /** Default `1 / sqrt(headDim)`. */
  scale?: number;
}

const floatDTypes: ReadonlySet<string> = new Set(['f32']);

/**
 * Builds a {@link Graph}: declare params, inputs, weights and state, then append nodes; each append checks shapes and
 * dtypes and throws a {@link GraphError} naming the node.
 *
 * @example
 * ```ts
 * // One llama-style decode block, reused every step.
 * const b = new GraphBuilder();
 * const n = b.param('nTokens', { min: 1, max: 512 });
 * const pos = b.param('pos', { max: 2047 });
 * const tokens = b.input('tokens', 'i32', [n]);
 * let x = b.getRows(b.weight(tokEmbd), tokens);                    // [n, dim]
 * const h = b.mul(b.rmsNorm(x, 1e-5), b.weight(attnNorm));         // [n, dim]
 * const q = b.rope(b.matmul(b.weight(wq), h), pos, { nHeads: 8 });
 * const k = b.rope(b.matmul(b.weight(wk), h), pos, { nHeads: 4 });
 * b.copy(k, b.state(kCache), pos);
 * b.copy(b.matmul(b.weight(wv), h), b.state(vCache), pos);
 * const att = b.attention(q, b.state(kCache), b.state(vCache), pos, { nHeads: 8, nKvHeads: 4 });
 * x = b.add(x, b.matmul(b.weight(wo), att));
 * b.output('hidden', x);
 * const graph = b.build();
 * ```
 */
export class GraphBuilder {
  readonly #params: GraphParam[] = [];
  readonly #tensors: TensorRef[] = [];
  readonly #inputs: TensorRef[] = [];
  readonly #nodes: GraphNode[] = [];
  readonly #outputs: GraphOutput[] = [];
  readonly #names = new Set<string>();
  readonly #handles = new Map<BackendTensor, TensorRef>();
  #backend: string | undefined;
  #built = false;

  /**
   * Declares a per-step integer: use it as a dim (number of tokens) or as positions (start position).
   *
   * @example
   * ```ts
   * const n = b.param('nTokens', { min: 1, max: 512 });
   * ```
   */
  param(name: string, options: { min?: number; max: number }): GraphParam {
    this.#claim(name, 'param');
    const min = options.min ?? 0;
    const { max } = options;
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min < 0 || max < min) {
      throw new GraphError(name, `param range [${min}, ${max}] is not a range of non-negative integers`);
    }
    const p: GraphParam = Object.freeze({ kind: 'param', name, min, max });
    this.#params.push(p);
    return p;
  }

  /**
   * Declares a host input given to each run: `'i32'` for token ids and positions, `'f32'` for activations.
   *
   * @example
   * ```ts
   * const tokens = b.input('tokens', 'i32', [n]);
   * ```
   */
  input(name: string, dtype: 'f32' | 'i32', shape: readonly Dim[]): TensorRef {
    this.#claim(name, 'input');
    this.#checkShape(name, shape);
    const t = this.#tensor(name, 'input', dtype, shape, undefined);
    this.#inputs.push(t);
    return t;
  }

  /**
   * Refers to an uploaded weight. The same handle always gives the same tensor.
   *
   * @example
   * ```ts
   * const wq = b.weight(await backend.upload(hostWq, { name: 'blk.0.attn_q.weight' }));
   * ```
   */
  weight(handle: BackendTensor): TensorRef {
    return this.#resident(handle, 'weight');
  }

  /**
   * Refers to backend state (a KV cache made with `backend.alloc`): written by `copy`, read by `attention`.
   *
   * @example
   * ```ts
   * const kCache = b.state(await backend.alloc('f16', [2048, 256], { name: 'cache_k.0' }));
   * ```
   */
  state(handle: BackendTensor): TensorRef {
    return this.#resident(handle, 'state');
  }

  /**
   * Matrix times activations: weight `[out, in]` (any dtype the backend claims) x f32 `[..., in]` -> `[..., out]`.
   *
   * @example
   * ```ts
   * const q = b.matmul(b.weight(wq), h); // [n, nHeads * headDim]
   * ```
   */
  matmul(weight: TensorRef, x: TensorRef, options: MatmulOptions = {}): TensorRef {
    const name = this.#nodeName('matmul', options.name);
    this.#own(name, weight, x);
    if (weight.shape.length !== 2)
      throw new GraphError(name, `weight ${weight.name} must be 2-D [out, in], got ${formatShape(weight.shape)}`);
    this.#f32(name, x);
    const inF = weight.shape[1];
    const xIn = x.shape[x.shape.length - 1];
    if (x.shape.length < 1 || !sameDim(inF, xIn)) {
      throw new GraphError(
        name,
        `weight ${weight.name} ${formatShape(weight.shape)} needs activations [..., ${dimStr(inF)}], got ${x.name} ${formatShape(x.shape)}`,
      );
    }
    this.#blockMultiple(name, weight);
    const out = this.#value(name, [...x.shape.slice(0, -1), weight.shape[0]]);
    return this.#push({ op: 'matmul', name, inputs: [weight, x], out, weight, x, activations: options.activations });
  }

  /**
   * Embedding lookup: rows `ids` (i32 `[n]`) of table `[rows, cols]` (any dtype), decoded to f32 `[n, cols]`.
   *
   * @example
   * ```ts
   * const x = b.getRows(b.weight(tokEmbd), tokens); // [n, dim]
   * ```
   */
  getRows(table: TensorRef, ids: TensorRef, options: NodeOptions = {}): TensorRef {
    const name = this.#nodeName('get_rows', options.name);
    this.#own(name, table, ids);
    if (table.shape.length !== 2)
      throw new GraphError(name, `table ${table.name} must be 2-D, got ${formatShape(table.shape)}`);
    if (ids.dtype !== 'i32' || ids.shape.length !== 1) {
      throw new GraphError(name, `ids ${ids.name} must be i32 [n], got ${ids.dtype} ${formatShape(ids.shape)}`);
    }
    this.#blockMultiple(name, table);
    const out = this.#value(name, [ids.shape[0], table.shape[1]]);
    return this.#push({ op: 'get_rows', name, inputs: [table, ids], out, table, ids });
  }

  /**
   * RMS norm of each row: `x / sqrt(mean(x²) + eps)`.
   *
   * @example
   * ```ts
   * const h = b.mul(b.rmsNorm(x, 1e-5), b.weight(attnNorm));
   * ```
   */
  rmsNorm(x: TensorRef, eps: number, options: NodeOptions = {}): TensorRef {
    const name = this.#nodeName('rms_norm', options.name);
    this.#unary(name, x);
    this.#eps(name, eps);
    const out = this.#value(name, x.shape);
    return this.#push({ op: 'rms_norm', name, inputs: [x], out, x, eps });
  }

  /**
   * Layer norm of each row without affine part: `(x - mean) / sqrt(var + eps)`.
   *
   * @example
   * ```ts
   * const h = b.add(b.mul(b.layerNorm(x, 1e-5), b.weight(gamma)), b.weight(beta));
   * ```
   */
  layerNorm(x: TensorRef, eps: number, options: NodeOptions = {}): TensorRef {
    const name = this.#nodeName('layer_norm', options.name);
    this.#unary(name, x);
    this.#eps(name, eps);
    const out = this.#value(name, x.shape);
    return this.#push({ op: 'layer_norm', name, inputs: [x], out, x, eps });
  }

  /**
   * Rotary position embedding of x `[n, nHeads * headDim]` at `positions`.
   *
   * @example
   * ```ts
   * const q = b.rope(qRaw, pos, { nHeads: 32, freqBase: 10000, mode: 'normal' });
   * ```
   */
  rope(x: TensorRef, positions: Positions, options: RopeOptions): TensorRef {
    const name = this.#nodeName('rope', options.name);
    this.#unary(name, x);
    if (x.shape.length !== 2)
      throw new GraphError(name, `x ${x.name} must be 2-D [n, nHeads * headDim], got ${formatShape(x.shape)}`);
    const { nHeads, headDim } = this.#heads(name, x, options.nHeads, options.headDim);
    const nRot = options.nRot ?? headDim;
    if (!Number.isSafeInteger(nRot) || nRot <= 0 || nRot % 2 !== 0 || nRot > headDim) {
      throw new GraphError(name, `nRot ${nRot} must be even and in (0, headDim ${headDim}]`);
    }
    const mode = options.mode ?? 'normal';
    if (mode !== 'normal' && mode !== 'neox') throw new GraphError(name, `unknown rope mode '${String(mode)}'`);
    const freqBase = options.freqBase ?? 10000;
    const freqScale = options.freqScale ?? 1;
    this.#finite(name, 'freqBase', freqBase, true);
    this.#finite(name, 'freqScale', freqScale, true);
    this.#positions(name, positions, x.shape[0]);
    const out = this.#value(name, x.shape);
    const inputs = isTensor(positions) ? [x, positions] : [x];
    return this.#push({
      op: 'rope',
      name,
      inputs,
      out,
      x,
      positions,
      nHeads,
      headDim,
      nRot,
      mode,
      freqBase,
      freqScale,
    });
  }

  /**
   * Causal grouped-query attention of q `[n, nHeads * headDim]` over the KV cache states k, v `[ctx, nKvHeads *
   * headDim]`, for query rows at `positions`.
   *
   * @example
   * ```ts
   * const att = b.attention(q, b.state(kCache), b.state(vCache), pos, { nHeads: 32, nKvHeads: 8 });
   * ```
   */
  attention(q: TensorRef, k: TensorRef, v: TensorRef, positions: Positions, options: AttentionOptions): TensorRef {
    const name = this.#nodeName('attention', options.name);
    this.#own(name, q, k, v);
    this.#f32(name, q);
    if (q.shape.length !== 2)
      throw new GraphError(name, `q ${q.name} must be 2-D [n, nHeads * headDim], got ${formatShape(q.shape)}`);
    const { nHeads, headDim } = this.#heads(name, q, options.nHeads, options.headDim);
    const { nKvHeads } = options;
    if (!Number.isSafeInteger(nKvHeads) || nKvHeads <= 0 || nHeads % nKvHeads !== 0) {
      throw new GraphError(name, `nKvHeads ${nKvHeads} must divide nHeads ${nHeads}`);
    }
    for (const [role, c] of [
      ['k', k],
      ['v', v],
    ] as const) {
      if (c.kind !== 'state')
        throw new GraphError(name, `${role} ${c.name} must be a state tensor (a KV cache), got ${c.kind}`);
      if (c.shape.length !== 2 || c.shape[1] !== nKvHeads * headDim) {
        throw new GraphError(
          name,
          `${role} cache ${c.name} must be [ctx, ${nKvHeads * headDim}], got ${formatShape(c.shape)}`,
        );
      }
      this.#blockMultiple(name, c);
    }
    if (k.shape[0] !== v.shape[0])
      throw new GraphError(name, `k ${formatShape(k.shape)} and v ${formatShape(v.shape)} caches differ in length`);
    const scale = options.scale ?? 1 / Math.sqrt(headDim);
    this.#finite(name, 'scale', scale, false);
    this.#positions(name, positions, q.shape[0]);
    const out = this.#value(name, q.shape);
    const inputs = isTensor(positions) ? [q, k, v, positions] : [q, k, v];
    return this.#push({ op: 'attention', name, inputs, out, q, k, v, positions, nHeads, nKvHeads, headDim, scale });
  }

  /**
   * Softmax along the last dimension.
   *
   * @example
   * ```ts
   * const p = b.softmax(logits);
   * ```
   */
  softmax(x: TensorRef, options: NodeOptions = {}): TensorRef {
    const name = this.#nodeName('softmax', options.name);
    this.#unary(name, x);
    const out = this.#value(name, x.shape);
    return this.#push({ op: 'softmax', name, inputs: [x], out, x });
  }

  /**
   * SiLU: `x · sigmoid(x)`.
   *
   * @example
   * ```ts
   * const g = b.mul(b.silu(b.matmul(wGate, h)), b.matmul(wUp, h));
   * ```
   */
  silu(x: TensorRef, options: NodeOptions = {}): TensorRef {
    const name = this.#nodeName('silu', options.name);
    this.#unary(name, x);
    const out = this.#value(name, x.shape);
    return this.#push({ op: 'silu', name, inputs: [x], out, x });
  }

  /**
   * GELU (tanh approximation).
   *
   * @example
   * ```ts
   * const g = b.gelu(b.matmul(wUp, h));
   * ```
   */
  gelu(x: TensorRef, options: NodeOptions = {}): TensorRef {
    const name = this.#nodeName('gelu', options.name);
    this.#unary(name, x);
    const out = this.#value(name, x.shape);
    return this.#push({ op: 'gelu', name, inputs: [x], out, x });
  }

  /**
   * `a + b`; b has a's shape or is one row `[cols]` (broadcast over rows).
   *
   * @example
   * ```ts
   * x = b.add(x, attnOut); // residual
   * ```
   */
  add(a: TensorRef, bb: TensorRef, options: NodeOptions = {}): TensorRef {
    const name = this.#nodeName('add', options.name);
    this.#binary(name, a, bb);
    const out = this.#value(name, a.shape);
    return this.#push({ op: 'add', name, inputs: [a, bb], out, a, b: bb });
  }

  /**
   * `a · b`; b has a's shape or is one row `[cols]` (broadcast over rows), e.g. a norm weight.
   *
   * @example
   * ```ts
   * const h = b.mul(b.rmsNorm(x, 1e-5), b.weight(attnNorm));
   * ```
   */
  mul(a: TensorRef, bb: TensorRef, options: NodeOptions = {}): TensorRef {
    const name = this.#nodeName('mul', options.name);
    this.#binary(name, a, bb);
    const out = this.#value(name, a.shape);
    return this.#push({ op: 'mul', name, inputs: [a, bb], out, a, b: bb });
  }

  /**
   * `x · factor`.
   *
   * @example
   * ```ts
   * const y = b.scale(x, 0.5);
   * ```
   */
  scale(x: TensorRef, factor: number, options: NodeOptions = {}): TensorRef {
    const name = this.#nodeName('scale', options.name);
    this.#unary(name, x);
    this.#finite(name, 'factor', factor, false);
    const out = this.#value(name, x.shape);
    return this.#push({ op: 'scale', name, inputs: [x], out, x, factor });
  }

  /**
   * Writes rows of src `[n, cols]` into the state dst `[ctx, cols]` at `positions`, converting to dst's dtype.
   *
   * @example
   * ```ts
   * b.copy(k, b.state(kCache), pos); // KV cache write
   * ```
   */
  copy(src: TensorRef, dst: TensorRef, positions: Positions, options: NodeOptions = {}): void {
    const name = this.#nodeName('copy', options.name);
    this.#own(name, src, dst);
    this.#f32(name, src);
    if (dst.kind !== 'state')
      throw new GraphError(name, `destination ${dst.name} must be a state tensor, got ${dst.kind}`);
    if (src.shape.length !== 2 || dst.shape.length !== 2 || !sameDim(src.shape[1], dst.shape[1])) {
      throw new GraphError(
        name,
        `src ${src.name} ${formatShape(src.shape)} and dst ${dst.name} ${formatShape(dst.shape)} must be 2-D with equal rows`,
      );
    }
    this.#blockMultiple(name, dst);
    this.#positions(name, positions, src.shape[0]);
    const inputs = isTensor(positions) ? [src, dst, positions] : [src, dst];
    this.#push({ op: 'copy', name, inputs, out: undefined, src, dst, positions });
  }

  /**
   * Marks a node result as an output returned by each run.
   *
   * @example
   * ```ts
   * b.output('logits', b.matmul(b.weight(output), h));
   * ```
   */
  output(name: string, tensor: TensorRef): void {
    this.#open();
    if (this.#tensors[tensor.id] !== tensor)
      throw new GraphError(name, `output tensor ${tensor.name} belongs to another graph`);
    if (tensor.kind !== 'value')
      throw new GraphError(name, `output must be a node result, got ${tensor.kind} ${tensor.name}`);
    if (this.#outputs.some((o) => o.name === name)) throw new GraphError(name, 'duplicate output name');
    this.#outputs.push(Object.freeze({ name, tensor }));
  }

  /**
   * Finishes the graph: freezes and returns it. The builder cannot be used afterwards.
   *
   * @example
   * ```ts
   * const graph = b.build();
   * ```
   */
  build(): Graph {
    this.#open();
    if (this.#outputs.length === 0 && !this.#nodes.some((n) => n.op === 'copy')) {
      throw new GraphError('graph', 'has no outputs and writes no state');
    }
    this.#built = true;
    return Object.freeze({
      params: Object.freeze([...this.#params]),
      tensors: Object.freeze([...this.#tensors]),
      inputs: Object.freeze([...this.#inputs]),
      nodes: Object.freeze([...this.#nodes]),
      outputs: Object.freeze([...this.#outputs]),
    });
  }

  #open(): void {
    if (this.#built) throw new GraphError('graph', 'builder already built; start a new GraphBuilder');
  }

  #claim(name: string, what: string): void {
    this.#open();
    if (typeof name !== 'string' || name === '') throw new GraphError(String(name), `${what} needs a non-empty name`);
    if (this.#names.has(name)) throw new GraphError(name, `duplicate name (${what})`);
    this.#names.add(name);
  }

  #nodeName(op: OpName, name: string | undefined): string {
    this.#open();
    if (name === undefined) {
      let i = this.#nodes.length;
      while (this.#names.has(`${op}_${i}`)) i++;
      return `${op}_${i}`;
    }
    if (typeof name !== 'string' || name === '') throw new GraphError(String(name), `${op} needs a non-empty name`);
    if (this.#names.has(name)) throw new GraphError(name, `duplicate name (${op})`);
    return name;
  }

  #tensor(
    name: string,
    kind: TensorKind,
    dtype: DTypeName,
    shape: readonly Dim[],
    handle: BackendTensor | undefined,
  ): TensorRef {
    const t: TensorRef = Object.freeze({
      id: this.#tensors.length,
      name,
      kind,
      dtype,
      shape: Object.freeze([...shape]),
      handle,
    });
    this.#tensors.push(t);
    return t;
  }

  #value(name: string, shape: readonly Dim[]): TensorRef {
    return this.#tensor(name, 'value', 'f32', shape, undefined);
  }

  #resident(handle: BackendTensor, kind: 'weight' | 'state'): TensorRef {
    this.#open();
    const seen = this.#handles.get(handle);
    if (seen !== undefined) {
      if (seen.kind !== kind) throw new GraphError(handle.name, `already declared as ${seen.kind}, not ${kind}`);
      return seen;
    }
    if (this.#backend !== undefined && handle.backend !== this.#backend) {
      throw new GraphError(
        handle.name,
        `belongs to backend '${handle.backend}', but this graph uses '${this.#backend}'`,
      );
    }
    this.#backend = handle.backend;
    let name = handle.name;
    if (this.#names.has(name)) name = `${name}#${this.#tensors.length}`;
    this.#names.add(name);
    this.#checkShape(name, handle.shape);
    const t = this.#tensor(name, kind, handle.dtype, handle.shape, handle);
    this.#handles.set(handle, t);
    return t;
  }

  #checkShape(name: string, shape: readonly Dim[]): void {
    for (const d of shape) {
      if (typeof d === 'number') {
        if (!Number.isSafeInteger(d) || d < 0)
          throw new GraphError(name, `invalid dimension ${d} in ${formatShape(shape)}`);
      } else if (!this.#params.includes(d)) {
        throw new GraphError(name, `dimension ${d.name} is not a param of this graph`);
      }
    }
  }

  #own(name: string, ...ts: TensorRef[]): void {
    for (const t of ts) {
      if (this.#tensors[t.id] !== t) throw new GraphError(name, `tensor ${t.name} belongs to another graph`);
    }
  }

  #f32(name: string, t: TensorRef): void {
    if (!floatDTypes.has(t.dtype)) throw new GraphError(name, `${t.name} must be f32, got ${t.dtype}`);
  }

  #unary(name: string, x: TensorRef): void {
    this.#own(name, x);
    this.#f32(name, x);
    if (x.shape.length < 1) throw new GraphError(name, `${x.name} must have at least one dimension`);
  }

  #binary(name: string, a: TensorRef, b: TensorRef): void {
    this.#own(name, a, b);
    this.#f32(name, a);
    this.#f32(name, b);
    const same = a.shape.length === b.shape.length && a.shape.every((d, i) => sameDim(d, b.shape[i]));
    const row = b.shape.length === 1 && a.shape.length >= 1 && sameDim(b.shape[0], a.shape[a.shape.length - 1]);
    if (!same && !row) {
      throw new GraphError(
        name,
        `${b.name} ${formatShape(b.shape)} must equal ${a.name} ${formatShape(a.shape)} or be one row [${dimStr(a.shape[a.shape.length - 1])}]`,
      );
    }
  }

  #heads(name: string, x: TensorRef, nHeads: number, headDim: number | undefined): { nHeads: number; headDim: number } {
    const cols = x.shape[x.shape.length - 1];
    if (typeof cols !== 'number') throw new GraphError(name, `row length of ${x.name} must be fixed, got ${cols.name}`);
    if (!Number.isSafeInteger(nHeads) || nHeads <= 0)
      throw new GraphError(name, `nHeads ${nHeads} must be a positive integer`);
    const hd = headDim ?? cols / nHeads;
    if (!Number.isSafeInteger(hd) || hd <= 0 || hd * nHeads !== cols) {
      throw new GraphError(name, `row length ${cols} of ${x.name} is not nHeads ${nHeads} x headDim ${hd}`);
    }
    return { nHeads, headDim: hd };
  }

  #positions(name: string, p: Positions, rows: Dim): void {
    if (isTensor(p)) {
      this.#own(name, p);
      if (p.dtype !== 'i32' || p.shape.length !== 1 || !sameDim(p.shape[0], rows)) {
        throw new GraphError(
          name,
          `positions ${p.name} must be i32 [${dimStr(rows)}], got ${p.dtype} ${formatShape(p.shape)}`,
        );
      }
    } else if (!this.#params.includes(p)) {
      throw new GraphError(name, `positions param ${p.name} is not a param of this graph`);
    }
  }

  #blockMultiple(name: string, t: TensorRef): void {
    const info = dtypes[t.dtype];
    const cols = t.shape[t.shape.length - 1];
    if (typeof cols !== 'number' || cols % info.blockSize !== 0) {
      throw new GraphError(
        name,
        `row length ${dimStr(cols)} of ${t.name} is not a multiple of ${t.dtype}'s block size ${info.blockSize}`,
      );
    }
  }

  #eps(name: string, eps: number): void {
    if (!Number.isFinite(eps) || eps < 0) throw new GraphError(name, `eps ${eps} must be a finite non-negative number`);
  }

  #finite(name: string, what: string, v: number, positive: boolean): void {
    if (!Number.isFinite(v) || (positive && v <= 0))
      throw new GraphError(name, `${what} ${v} must be a finite${positive ? ' positive' : ''} number`);
  }

  #push<N extends GraphNode>(node: N): N['out'] & TensorRef {
    this.#names.add(node.name);
    this.#nodes.push(Object.freeze({ ...(node as GraphNode), inputs: Object.freeze([...node.inputs]) }) as GraphNode);
    return node.out as N['out'] & TensorRef;
  }
}

function dimStr(d: Dim): string {
  return typeof d === 'number' ? String(d) : d.name;
}

/**
 * Whether positions are a tensor (not a param).
 *
 * @example
 * ```ts
 * isTensor(node.positions) ? 'per-row positions' : 'start + row';
 * ```
 */
export function isTensor(p: Positions): p is TensorRef {
  return (p as { kind: string }).kind !== 'param';
}
