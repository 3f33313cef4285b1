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

/**
 * `out[r, o] = Σ_i weight[o, i] · x[r, i] (+ bias[o]) (+ residual[r, o])`. weight `[out, in]` (any dtype), x
 * `[..., in]` -> `[..., out]`. The dot is rounded to f32 before the bias is added, and that sum to f32 before the
 * residual, so a fused node gives the same floats as separate `add` nodes.
 */
export interface MatmulNode extends NodeBase {
  readonly op: 'matmul';
  readonly weight: TensorRef;
  readonly x: TensorRef;
  readonly out: TensorRef;
  /** Activation mode; undefined means the backend's default. */
  readonly activations: MatmulActivations | undefined;
  /** `[out]` added to every row (attention biases of Qwen 2, Phi). */
  readonly bias: TensorRef | undefined;
  /** `[..., out]` added last (the residual connection). */
  readonly residual: TensorRef | undefined;
}
/** `out[r, :] = decode(table[ids[r], :])`. table `[rows, cols]` (any dtype), ids `[n]` i32 -> `[n, cols]` f32. */
export interface GetRowsNode extends NodeBase {
  readonly op: 'get_rows';
  readonly table: TensorRef;
  readonly ids: TensorRef;
  readonly out: TensorRef;
}
/**
 * Per row of the last dimension: `f32(x / sqrt(mean(x²) + eps)) · weight`. Rows are every leading index, so a
 * `[n, nHeads, headDim]` value normalises each head (Qwen 3's q/k norms).
 */
export interface RmsNormNode extends NodeBase {
  readonly op: 'rms_norm';
  readonly x: TensorRef;
  readonly out: TensorRef;
  readonly eps: number;
  /** `[cols]` f32 multiplied in after normalising; undefined: none. */
  readonly weight: TensorRef | undefined;
}
/** Per row: `f32((x - mean) / sqrt(var + eps)) · weight + bias` (both optional). */
export interface LayerNormNode extends NodeBase {
  readonly op: 'layer_norm';
  readonly x: TensorRef;
  readonly out: TensorRef;
  readonly eps: number;
  readonly weight: TensorRef | undefined;
  readonly bias: TensorRef | undefined;
}
/**
 * Rotary position embedding of x `[n, nHeads * headDim]`, ggml's `rope_ext` including YaRN. For pair j (of nRot/2)
 * of a row at position p:
 *
 *   extrap = p · freqBase^(-2j/nRot) / freqFactors[j]        interp = freqScale · extrap
 *   theta  = interp                                            when extFactor = 0
 *          = interp · (1 - r) + extrap · r, r = ramp(j) · extFactor   otherwise (YaRN)
 *   mscale = attnFactor · (extFactor = 0 ? 1 : 1 + 0.1 · ln(1 / freqScale))
 *   (x0, x1) -> (x0 cos θ - x1 sin θ, x0 sin θ + x1 cos θ) · mscale
 *
 * with ramp(j) = 1 - clamp((j - lo) / max(0.001, hi - lo), 0, 1) and [lo, hi] from ggml's `rope_yarn_corr_dims`
 * (origCtx, betaFast, betaSlow). Dims from nRot to headDim pass through.
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
  /** `[nRot / 2]` f32 divisors of each pair's frequency (Llama 3's `rope_freqs`, Phi 3's LongRoPE factors). */
  readonly freqFactors: TensorRef | undefined;
  /** YaRN mix of extrapolated and interpolated angles; 0 = plain linear scaling. */
  readonly extFactor: number;
  /** Scales both cos and sin (YaRN's magnitude, LongRoPE's attention factor). */
  readonly attnFactor: number;
  readonly betaFast: number;
  readonly betaSlow: number;
  /** Context length the model was trained with (YaRN's ramp). */
  readonly origCtx: number;
}
/**
 * Causal grouped-query attention over a KV cache. q `[n, nHeads * headDim]`; k, v: state `[ctx, nKvHeads * headDim]`
 * (f32, f16 or q8_0). Query row i at position p attends to cache rows t with `p - window < t <= p`:
 * `softmax(s) · v` with `s = scale · q·kᵀ`, soft-capped to `softcap · tanh(s / softcap)` when `softcap > 0`. Query
 * head h reads KV head `floor(h / (nHeads / nKvHeads))`. Out `[n, nHeads * headDim]`.
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
  /** Score soft-capping (Gemma 2); 0 = none. */
  readonly softcap: number;
  /** Sliding window in positions (Gemma, Mistral); 0 = the whole cache. */
  readonly window: number;
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
/**
 * Gated linear unit: `act(gate) · up`, elementwise. Without `up`, each row of `gate` is `[g | u]` (twice the output
 * width, Phi 3's fused `ffn_up`) and the halves are used.
 */
export interface GluNode extends NodeBase {
  readonly op: 'glu';
  readonly gate: TensorRef;
  readonly up: TensorRef | undefined;
  readonly out: TensorRef;
  readonly activation: 'silu' | 'gelu';
}
/** `cap · tanh(x / cap)` (Gemma 2's final logit soft-capping). */
export interface SoftcapNode extends NodeBase {
  readonly op: 'softcap';
  readonly x: TensorRef;
  readonly out: TensorRef;
  readonly cap: number;
}
/**
 * The same elements in another shape: a view, no copy. The planner gives `out` the storage of `x`, so a backend's
 * kernel does nothing (or a metadata change); the element count matches at every param value.
 */
export interface ReshapeNode extends NodeBase {
  readonly op: 'reshape';
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
  | GluNode
  | SoftcapNode
  | ReshapeNode
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

/** The element types of node results: f32, or f16 on backends that list it in `capabilities.valueDTypes`. */
export type ValueDType = 'f32' | 'f16';

/** Options shared by every op: a node name (default `op_N`) and the result's element type (default f32). */
export interface NodeOptions {
  name?: string;
  /** Element type of the result; `'f16'` only runs on backends that claim it. Default `'f32'`. */
  dtype?: ValueDType;
}
/** Options of {@link GraphBuilder.matmul}. */
export interface MatmulOptions extends NodeOptions {
  /** Activation mode of this node; default: the backend's `matmulActivations` option. */
  activations?: MatmulActivations;
  /** `[out]` added to every row. */
  bias?: TensorRef;
  /** Added last, with the result's shape: the residual connection. */
  residual?: TensorRef;
}
/** Options of {@link GraphBuilder.rmsNorm}. */
export interface RmsNormOptions extends NodeOptions {
  /** `[cols]` f32 scale applied after normalising. */
  weight?: TensorRef;
}
/** Options of {@link GraphBuilder.layerNorm}. */
export interface LayerNormOptions extends NodeOptions {
  /** `[cols]` f32 scale applied after normalising. */
  weight?: TensorRef;
  /** `[cols]` f32 added after the scale. */
  bias?: TensorRef;
}
/** Options of {@link GraphBuilder.glu}. */
export interface GluOptions extends NodeOptions {
  /** Default `'silu'` (SwiGLU). */
  activation?: 'silu' | 'gelu';
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
  /** `[nRot / 2]` f32 frequency divisors (a weight). */
  freqFactors?: TensorRef;
  /** YaRN extrapolation mix; default 0 (none). */
  extFactor?: number;
  /** cos/sin magnitude; default 1. */
  attnFactor?: number;
  /** YaRN ramp bounds; defaults 32 and 1 as in ggml. */
  betaFast?: number;
  betaSlow?: number;
  /** Training context length for YaRN; default 0 (unused unless extFactor is set). */
  origCtx?: number;
}
/** Options of {@link GraphBuilder.attention}. */
export interface AttentionOptions extends NodeOptions {
  nHeads: number;
  nKvHeads: number;
  /** Default: q's row length / nHeads. */
  headDim?: number;
  /** Default `1 / sqrt(headDim)`. */
  scale?: number;
  /** Score soft-cap; default 0 (none). */
  softcap?: number;
  /** Sliding window in positions; default 0 (whole cache). */
  window?: number;
}

const floatDTypes: ReadonlySet<string> = new Set(['f32', 'f16']);

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
    const outShape = [...x.shape.slice(0, -1), weight.shape[0]];
    const { bias, residual } = options;
    if (bias !== undefined) this.#rowOperand(name, 'bias', bias, weight.shape[0]);
    if (residual !== undefined) {
      this.#own(name, residual);
      this.#f32(name, residual);
      if (!sameShape(residual.shape, outShape)) {
        throw new GraphError(
          name,
          `residual ${residual.name} ${formatShape(residual.shape)} must have the result's shape ${formatShape(outShape)}`,
        );
      }
    }
    const out = this.#value(name, outShape, options.dtype);
    const inputs = [weight, x, ...(bias ? [bias] : []), ...(residual ? [residual] : [])];
    return this.#push({ op: 'matmul', name, inputs, out, weight, x, activations: options.activations, bias, residual });
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
    const out = this.#value(name, [ids.shape[0], table.shape[1]], options.dtype);
    return this.#push({ op: 'get_rows', name, inputs: [table, ids], out, table, ids });
  }

  /**
   * RMS norm of each row (the last dimension): `x / sqrt(mean(x²) + eps)`, times `weight` when given.
   *
   * @example
   * ```ts
   * const h = b.rmsNorm(x, 1e-5, { weight: b.weight(attnNorm) }); // [n, dim]
   * ```
   */
  rmsNorm(x: TensorRef, eps: number, options: RmsNormOptions = {}): TensorRef {
    const name = this.#nodeName('rms_norm', options.name);
    this.#unary(name, x);
    this.#eps(name, eps);
    const { weight } = options;
    if (weight !== undefined) this.#rowOperand(name, 'weight', weight, x.shape[x.shape.length - 1]);
    const out = this.#value(name, x.shape, options.dtype);
    return this.#push({ op: 'rms_norm', name, inputs: weight ? [x, weight] : [x], out, x, eps, weight });
  }

  /**
   * Layer norm of each row: `(x - mean) / sqrt(var + eps)`, then `· weight` and `+ bias` when given.
   *
   * @example
   * ```ts
   * const h = b.layerNorm(x, 1e-5, { weight: b.weight(gamma), bias: b.weight(beta) });
   * ```
   */
  layerNorm(x: TensorRef, eps: number, options: LayerNormOptions = {}): TensorRef {
    const name = this.#nodeName('layer_norm', options.name);
    this.#unary(name, x);
    this.#eps(name, eps);
    const { weight, bias } = options;
    const cols = x.shape[x.shape.length - 1];
    if (weight !== undefined) this.#rowOperand(name, 'weight', weight, cols);
    if (bias !== undefined) this.#rowOperand(name, 'bias', bias, cols);
    const out = this.#value(name, x.shape, options.dtype);
    const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
    return this.#push({ op: 'layer_norm', name, inputs, out, x, eps, weight, bias });
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
    const extFactor = options.extFactor ?? 0;
    const attnFactor = options.attnFactor ?? 1;
    const betaFast = options.betaFast ?? 32;
    const betaSlow = options.betaSlow ?? 1;
    const origCtx = options.origCtx ?? 0;
    this.#finite(name, 'freqBase', freqBase, true);
    this.#finite(name, 'freqScale', freqScale, true);
    this.#finite(name, 'extFactor', extFactor, false);
    this.#finite(name, 'attnFactor', attnFactor, false);
    this.#finite(name, 'betaFast', betaFast, false);
    this.#finite(name, 'betaSlow', betaSlow, false);
    if (!Number.isSafeInteger(origCtx) || origCtx < 0)
      throw new GraphError(name, `origCtx ${origCtx} must be a non-negative integer`);
    if (extFactor !== 0 && origCtx === 0) throw new GraphError(name, 'YaRN (extFactor != 0) needs origCtx');
    const { freqFactors } = options;
    if (freqFactors !== undefined) {
      this.#own(name, freqFactors);
      if (freqFactors.kind !== 'weight' || freqFactors.dtype !== 'f32' || freqFactors.shape.length !== 1) {
        throw new GraphError(name, `freqFactors ${freqFactors.name} must be an f32 weight [${nRot / 2}]`);
      }
      if (freqFactors.shape[0] !== nRot / 2) {
        throw new GraphError(
          name,
          `freqFactors ${freqFactors.name} has ${String(freqFactors.shape[0])} factors, nRot ${nRot} needs ${nRot / 2}`,
        );
      }
    }
    this.#positions(name, positions, x.shape[0]);
    const out = this.#value(name, x.shape, options.dtype);
    const inputs = [x, ...(isTensor(positions) ? [positions] : []), ...(freqFactors ? [freqFactors] : [])];
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
      freqFactors,
      extFactor,
      attnFactor,
      betaFast,
      betaSlow,
      origCtx,
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
    const softcap = options.softcap ?? 0;
    const window = options.window ?? 0;
    this.#finite(name, 'scale', scale, false);
    if (!Number.isFinite(softcap) || softcap < 0)
      throw new GraphError(name, `softcap ${softcap} must be a finite non-negative number`);
    if (!Number.isSafeInteger(window) || window < 0)
      throw new GraphError(name, `window ${window} must be a non-negative integer`);
    this.#positions(name, positions, q.shape[0]);
    const out = this.#value(name, q.shape, options.dtype);
    const inputs = isTensor(positions) ? [q, k, v, positions] : [q, k, v];
    return this.#push({
      op: 'attention',
      name,
      inputs,
      out,
      q,
      k,
      v,
      positions,
      nHeads,
      nKvHeads,
      headDim,
      scale,
      softcap,
      window,
    });
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
    const out = this.#value(name, x.shape, options.dtype);
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
    const out = this.#value(name, x.shape, options.dtype);
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
    const out = this.#value(name, x.shape, options.dtype);
    return this.#push({ op: 'gelu', name, inputs: [x], out, x });
  }

  /**
   * Gated linear unit `act(gate) · up` (SwiGLU with `'silu'`, GeGLU with `'gelu'`). With `up` undefined, each row of
   * `gate` holds `[g | u]` and the result has half its width.
   *
   * @example
   * ```ts
   * const g = b.glu(b.matmul(wGate, h), b.matmul(wUp, h)); // silu(gate) · up, [n, hidden]
   * ```
   */
  glu(gate: TensorRef, up: TensorRef | undefined, options: GluOptions = {}): TensorRef {
    const name = this.#nodeName('glu', options.name);
    this.#unary(name, gate);
    const activation = options.activation ?? 'silu';
    if (activation !== 'silu' && activation !== 'gelu')
      throw new GraphError(name, `unknown glu activation '${String(activation)}'`);
    let shape: readonly Dim[] = gate.shape;
    if (up !== undefined) {
      this.#own(name, up);
      this.#f32(name, up);
      if (!sameShape(gate.shape, up.shape)) {
        throw new GraphError(
          name,
          `up ${up.name} ${formatShape(up.shape)} must have gate ${gate.name}'s shape ${formatShape(gate.shape)}`,
        );
      }
    } else {
      const cols = gate.shape[gate.shape.length - 1];
      if (typeof cols !== 'number' || cols % 2 !== 0)
        throw new GraphError(name, `fused gate/up ${gate.name} needs an even fixed row length, got ${dimStr(cols)}`);
      shape = [...gate.shape.slice(0, -1), cols / 2];
    }
    const out = this.#value(name, shape, options.dtype);
    return this.#push({ op: 'glu', name, inputs: up ? [gate, up] : [gate], out, gate, up, activation });
  }

  /**
   * Soft-capping `cap · tanh(x / cap)`.
   *
   * @example
   * ```ts
   * const logits = b.softcap(b.matmul(wOut, h), 30); // Gemma 2's final_logit_softcapping
   * ```
   */
  softcap(x: TensorRef, cap: number, options: NodeOptions = {}): TensorRef {
    const name = this.#nodeName('softcap', options.name);
    this.#unary(name, x);
    this.#finite(name, 'cap', cap, true);
    const out = this.#value(name, x.shape, options.dtype);
    return this.#push({ op: 'softcap', name, inputs: [x], out, x, cap });
  }

  /**
   * The same elements in a new shape (a view; no copy). The element count must match at every param value: the
   * fixed dims multiply to the same number and each param appears as often.
   *
   * @example
   * ```ts
   * const heads = b.reshape(q, [n, nHeads, headDim]); // per-head norms, then back to [n, nHeads * headDim]
   * ```
   */
  reshape(x: TensorRef, shape: readonly Dim[], options: Omit<NodeOptions, 'dtype'> = {}): TensorRef {
    const name = this.#nodeName('reshape', options.name);
    this.#unary(name, x);
    if (x.kind !== 'value') throw new GraphError(name, `reshape views a node result, got ${x.kind} ${x.name}`);
    this.#checkShape(name, shape);
    if (shape.length === 0) throw new GraphError(name, 'reshape needs at least one dimension');
    if (!sameCount(x.shape, shape)) {
      throw new GraphError(
        name,
        `cannot view ${x.name} ${formatShape(x.shape)} as ${formatShape(shape)}: element counts differ`,
      );
    }
    const out = this.#value(name, shape, x.dtype as ValueDType);
    return this.#push({ op: 'reshape', name, inputs: [x], out, x });
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
    const out = this.#value(name, a.shape, options.dtype);
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
    const out = this.#value(name, a.shape, options.dtype);
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
    const out = this.#value(name, x.shape, options.dtype);
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

  #value(name: string, shape: readonly Dim[], dtype: ValueDType | undefined): TensorRef {
    const d = dtype ?? 'f32';
    if (d !== 'f32' && d !== 'f16')
      throw new GraphError(name, `result dtype must be 'f32' or 'f16', got '${String(d)}'`);
    return this.#tensor(name, 'value', d, shape, undefined);
  }

  /** A `[cols]` f32 operand broadcast over rows: a norm weight or a bias. */
  #rowOperand(name: string, role: string, t: TensorRef, cols: Dim): void {
    this.#own(name, t);
    if (t.dtype !== 'f32' || t.shape.length !== 1 || !sameDim(t.shape[0], cols)) {
      throw new GraphError(
        name,
        `${role} ${t.name} must be f32 [${dimStr(cols)}], got ${t.dtype} ${formatShape(t.shape)}`,
      );
    }
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
    if (!floatDTypes.has(t.dtype)) throw new GraphError(name, `${t.name} must be f32 (or f16) values, got ${t.dtype}`);
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

function sameShape(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => sameDim(d, b[i]));
}

/** Same element count at every param value: equal products of fixed dims and the same params as often. */
function sameCount(a: readonly Dim[], b: readonly Dim[]): boolean {
  const fixed = (s: readonly Dim[]) => s.reduce<number>((p, d) => (typeof d === 'number' ? p * d : p), 1);
  const params = (s: readonly Dim[]) =>
    s
      .filter((d): d is GraphParam => typeof d !== 'number')
      .map((d) => d.name)
      .sort()
      .join(',');
  return fixed(a) === fixed(b) && params(a) === params(b);
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
