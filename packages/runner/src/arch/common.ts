/**
 * What every architecture shares: the tensor plan and its upload (checked before a byte moves), the KV cache, and
 * {@link Forward}, the graph-building context an architecture file writes its forward pass with (embedding, norms,
 * q/k/v with optional biases or one fused `attn_qkv`, RoPE with the file's scaling, the KV store, attention, logits).
 */
import {
  type Backend,
  type BackendTensor,
  type DTypeName,
  dtypes,
  type Graph,
  GraphBuilder,
  type GraphParam,
  type HostTensor,
  hostTensor,
  NibbleError,
  type RopeMode,
  rowBytes,
  supports,
  type TensorRef,
  UnsupportedError,
} from '@nibble/tensor';
import { type BaseHparamsOptions, isSlidingLayer, type Metadata, type ModelHparams } from '../hparams.js';

/** What the runner needs from an opened GGUF file (`GgufFile` of `@nibble/gguf` has it). */
export interface ModelFile {
  readonly metadata: ReadonlyMap<string, unknown>;
  readonly tensors: readonly {
    readonly name: string;
    readonly shape: readonly number[];
    readonly byteLength: number;
    readonly typeName: string;
  }[];
  readTensor(name: string): Promise<HostTensor>;
}

/** Progress of a model load, in bytes of tensor data. */
export interface LoadProgress {
  readonly loadedBytes: number;
  readonly totalBytes: number;
  /** The tensor just uploaded. */
  readonly tensor: string;
}

/**
 * One tensor an architecture reads. `use` says how: as a matmul weight (any dtype the backend multiplies), an
 * embedding table (`get_rows`), or an f32 vector (norm weight, bias, RoPE factors). With `split`, the file's rows are
 * cut into consecutive logical tensors (fused `attn_qkv` into q, k, v): views of the same bytes, no copy.
 */
export interface TensorSpec {
  /** The tensor's name in the file. */
  readonly name: string;
  /** Expected shape, outermost first (`[out, in]` for a weight). */
  readonly shape: readonly number[];
  readonly use: 'matmul' | 'get_rows' | 'f32';
  /** Also multiplied (a token embedding tied to the output). */
  readonly alsoMatmul?: boolean;
  /** Skipped when the file lacks it. */
  readonly optional?: boolean;
  /** Logical tensors made of consecutive row ranges, in order; their rows add up to `shape[0]`. */
  readonly split?: readonly { readonly name: string; readonly rows: number }[];
}

/**
 * Every uploaded weight, by logical name (the file's names; the parts of a split tensor by their own names).
 *
 * @example
 * ```ts
 * const wq = weights.get('blk.0.attn_q.weight'); // a view into blk.0.attn_qkv.weight when the file fuses them
 * weights.source(wq); // 'blk.0.attn_qkv.weight'
 * ```
 */
export interface ModelWeights {
  /** The architecture these weights were planned for. */
  readonly architecture: string;
  /** A weight that must exist; throws `E_MISSING_TENSOR` naming it. */
  get(name: string): BackendTensor;
  /** A weight, or undefined. */
  find(name: string): BackendTensor | undefined;
  /** The file tensor a weight comes from (itself, or the fused tensor it is a part of). */
  source(t: BackendTensor): string;
  /** Whether the output projection is the token embedding. */
  readonly tied: boolean;
  /** Every uploaded tensor. */
  readonly all: readonly BackendTensor[];
}

/** Options of a forward-pass graph. */
export interface GraphOptions {
  /** Largest number of tokens per run. */
  maxTokens: number;
  /** End in logits for every row; without, stop once the last layer's keys and values are cached. */
  logits: boolean;
  matmulActivations?: 'f32' | 'ggml';
  /**
   * Also output the f32 activations entering every weight, as `in:<file tensor name>` (`[nTokens, in]`): what an
   * importance matrix (llama-imatrix) accumulates. Needs `logits`.
   */
  observe?: boolean;
}

/** @deprecated The options of every architecture's graph; use {@link GraphOptions}. */
export type LlamaGraphOptions = GraphOptions;

/**
 * Output-name prefix of observed matmul inputs (see {@link GraphOptions.observe}).
 *
 * @example
 * ```ts
 * outputs[`${observePrefix}blk.0.attn_q.weight`]; // [nTokens, dim]
 * ```
 */
export const observePrefix = 'in:';

/**
 * Input, param and output names of the forward graphs.
 *
 * @example
 * ```ts
 * await backend.run(graph, { [graphNames.tokens]: ids, [graphNames.nTokens]: ids.length, [graphNames.pos]: 0 });
 * ```
 */
export const graphNames = Object.freeze({ tokens: 'tokens', nTokens: 'nTokens', pos: 'pos', logits: 'logits' });

/** One session's KV cache: per layer a key and a value state `[contextSize, nKvHeads * headDim]`. */
export interface KvCache {
  readonly k: readonly BackendTensor[];
  readonly v: readonly BackendTensor[];
  readonly dtype: DTypeName;
  readonly contextSize: number;
}

/**
 * One architecture: how to read its hyperparameters, which tensors it needs, and its forward pass.
 * `src/arch/<name>.ts` holds one; the registry maps `general.architecture` to it.
 */
export interface Architecture {
  /** `general.architecture` value. */
  readonly name: string;
  /** RoPE layout: `'normal'` (llama's pairs 2i, 2i+1) or `'neox'` (pairs i, i + nRot/2). */
  readonly ropeMode: RopeMode;
  /** Reads the hyperparameters (common keys plus this architecture's own). */
  hparams(meta: Metadata, options?: BaseHparamsOptions): ModelHparams;
  /** Every tensor the forward pass reads, given which names the file has. */
  tensors(hp: ModelHparams, has: (name: string) => boolean): TensorSpec[];
  /** Appends the forward pass to `f`'s graph. */
  forward(f: Forward): void;
}

/**
 * The q, k, v projections of layer l: three weights (plus optional biases), or one fused `attn_qkv` (plus optional
 * bias) cut into the same three at load, as llama.cpp's `create_tensor_qkv` accepts for every architecture.
 *
 * @example
 * ```ts
 * specs.push(...qkvSpecs(l, hp, has)); // then f.qkv(l, h) gives q, k, v either way
 * ```
 */
export function qkvSpecs(l: number, hp: ModelHparams, has: (name: string) => boolean): TensorSpec[] {
  const p = `blk.${l}.`;
  const qDim = hp.nHeads * hp.headDim;
  const kvDim = hp.nKvHeads * hp.headDim;
  const parts = (kind: string) => [
    { name: `${p}attn_q.${kind}`, rows: qDim },
    { name: `${p}attn_k.${kind}`, rows: kvDim },
    { name: `${p}attn_v.${kind}`, rows: kvDim },
  ];
  if (has(`${p}attn_qkv.weight`)) {
    return [
      { name: `${p}attn_qkv.weight`, shape: [qDim + 2 * kvDim, hp.dim], use: 'matmul', split: parts('weight') },
      { name: `${p}attn_qkv.bias`, shape: [qDim + 2 * kvDim], use: 'f32', optional: true, split: parts('bias') },
    ];
  }
  return [
    { name: `${p}attn_q.weight`, shape: [qDim, hp.dim], use: 'matmul' },
    { name: `${p}attn_k.weight`, shape: [kvDim, hp.dim], use: 'matmul' },
    { name: `${p}attn_v.weight`, shape: [kvDim, hp.dim], use: 'matmul' },
    { name: `${p}attn_q.bias`, shape: [qDim], use: 'f32', optional: true },
    { name: `${p}attn_k.bias`, shape: [kvDim], use: 'f32', optional: true },
    { name: `${p}attn_v.bias`, shape: [kvDim], use: 'f32', optional: true },
  ];
}

/**
 * Checks every tensor of a plan against the file (present, shape, dtype the backend can use) before anything is
 * uploaded, then uploads them in their stored formats. Throws naming the missing tensor, the wrong shape, or the
 * dtype the backend cannot multiply.
 *
 * @example
 * ```ts
 * const weights = await uploadWeights(file, 'llama', llama.tensors(hp, has), backend);
 * ```
 */
export async function uploadWeights(
  file: ModelFile,
  architecture: string,
  specs: readonly TensorSpec[],
  backend: Backend,
  onProgress?: (p: LoadProgress) => void,
  signal?: AbortSignal,
): Promise<ModelWeights> {
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const plan: TensorSpec[] = [];
  let totalBytes = 0;
  for (const want of specs) {
    const info = byName.get(want.name);
    if (info === undefined) {
      if (want.optional) continue;
      throw new NibbleError('E_MISSING_TENSOR', `tensor '${want.name}' is missing from the ${architecture} model file`);
    }
    if (info.shape.length !== want.shape.length || info.shape.some((d, i) => d !== want.shape[i])) {
      throw new NibbleError(
        'E_SHAPE',
        `tensor '${want.name}' has shape [${info.shape.join(', ')}], expected [${want.shape.join(', ')}] from the hyperparameters`,
      );
    }
    const dtype = dtypes[info.typeName as DTypeName];
    if (want.use === 'f32' && info.typeName !== 'f32') {
      throw new UnsupportedError(
        `tensor '${want.name}' is ${info.typeName}; only f32 norm weights, biases and factors are supported`,
      );
    }
    for (const op of [want.use, want.alsoMatmul ? 'matmul' : undefined] as const) {
      if (op !== 'matmul' && op !== 'get_rows') continue;
      if (dtype === undefined || !supports(backend.capabilities, op, dtype.name)) {
        throw new UnsupportedError(
          `backend '${backend.name}' has no ${op} for ${info.typeName} (tensor '${want.name}')`,
        );
      }
    }
    if (want.split !== undefined && want.split.reduce((s, p) => s + p.rows, 0) !== want.shape[0]) {
      throw new NibbleError('E_SHAPE', `tensor '${want.name}': its parts do not add up to ${want.shape[0]} rows`);
    }
    plan.push(want);
    totalBytes += info.byteLength;
  }

  const limit = backend.capabilities.limits.maxTotalBytes;
  if (limit !== undefined && totalBytes > limit) {
    throw new UnsupportedError(
      `the model's weights are ${totalBytes} bytes (${(totalBytes / 2 ** 30).toFixed(2)} GiB), above backend '${backend.name}''s limit of ${limit} bytes (${(limit / 2 ** 30).toFixed(2)} GiB)`,
    );
  }
  const up = new Map<string, BackendTensor>();
  const sources = new Map<BackendTensor, string>();
  let loadedBytes = 0;
  for (const want of plan) {
    signal?.throwIfAborted();
    const host = await file.readTensor(want.name);
    if (want.split === undefined) {
      const t = await backend.upload(host, { name: want.name });
      up.set(want.name, t);
      sources.set(t, want.name);
    } else {
      // Rows are stored one after another, so each part is a byte range of the same buffer.
      const cols = host.shape.length === 1 ? 1 : host.shape[host.shape.length - 1];
      const stride = host.shape.length === 1 ? dtypes[host.dtype].bytesPerBlock : rowBytes(host.dtype, cols);
      let offset = 0;
      for (const part of want.split) {
        const bytes = host.data.subarray(offset * stride, (offset + part.rows) * stride);
        const shape = host.shape.length === 1 ? [part.rows] : [part.rows, cols];
        const t = await backend.upload(hostTensor(host.dtype, shape, bytes), { name: part.name });
        up.set(part.name, t);
        sources.set(t, want.name);
        offset += part.rows;
      }
    }
    loadedBytes += host.data.byteLength;
    onProgress?.({ loadedBytes, totalBytes, tensor: want.name });
  }
  const get = (name: string): BackendTensor => {
    const t = up.get(name);
    if (t === undefined) {
      throw new NibbleError('E_MISSING_TENSOR', `tensor '${name}' is missing from the ${architecture} model file`);
    }
    return t;
  };
  return {
    architecture,
    get,
    find: (name) => up.get(name),
    source: (t) => sources.get(t) ?? t.name,
    tied: !up.has('output.weight'),
    all: [...up.values()],
  };
}

/**
 * Allocates a zeroed KV cache for `contextSize` positions.
 *
 * @example
 * ```ts
 * const cache = await allocKvCache(backend, hp, 512, 'f16');
 * ```
 */
export async function allocKvCache(
  backend: Backend,
  hp: ModelHparams,
  contextSize: number,
  dtype: DTypeName,
): Promise<KvCache> {
  const kvDim = hp.nKvHeads * hp.headDim;
  if (!supports(backend.capabilities, 'attention', dtype) || !supports(backend.capabilities, 'copy', dtype)) {
    throw new UnsupportedError(`backend '${backend.name}' cannot keep a KV cache in ${dtype}`);
  }
  if (kvDim % dtypes[dtype].blockSize !== 0) {
    throw new UnsupportedError(
      `KV cache type ${dtype} needs rows of a multiple of ${dtypes[dtype].blockSize}, the model's are ${kvDim}`,
    );
  }
  const k: BackendTensor[] = [];
  const v: BackendTensor[] = [];
  for (let l = 0; l < hp.nLayers; l++) {
    k.push(await backend.alloc(dtype, [contextSize, kvDim], { name: `cache_k.${l}` }));
    v.push(await backend.alloc(dtype, [contextSize, kvDim], { name: `cache_v.${l}` }));
  }
  return { k, v, dtype, contextSize };
}

/** ggml's float32 `logf`-based YaRN magnitude correction, as llama.cpp's context computes `yarn_attn_factor`. */
function ropeAttnFactor(hp: ModelHparams): number {
  let attn = 1;
  if (hp.ropeScaling === 'yarn') {
    const f = Math.fround;
    const factor = f(1 / hp.ropeFreqScale);
    const log = f(Math.log(factor));
    attn = factor <= 1 ? 1 : f(f(0.1 * log) + 1);
    // ggml's rope multiplies by 1 + 0.1 ln(factor) itself, so llama.cpp divides it out here.
    attn = f(attn * f(1 / f(1 + f(0.1 * log))));
  }
  return Math.fround(attn * hp.ropeAttnFactor);
}

/**
 * The graph-building context of one forward pass: the builder, the `nTokens`/`pos` params, the token input, and the
 * steps every architecture composes. Each step names its node after the layer (`l3.q`, ...).
 *
 * @example
 * ```ts
 * const f = new Forward(hp, weights, cache, { maxTokens: 64, logits: true }, 'neox');
 * let x = f.embed(); // [n, dim]
 * // ... layers ...
 * f.logits(x);
 * const graph = f.build();
 * ```
 */
export class Forward {
  readonly b = new GraphBuilder();
  readonly hp: ModelHparams;
  readonly w: ModelWeights;
  readonly cache: KvCache;
  readonly options: GraphOptions;
  readonly ropeMode: RopeMode;
  /** Rows of this run. */
  readonly n: GraphParam;
  /** Position of the first row. */
  readonly pos: GraphParam;
  /** `[n]` i32 token ids. */
  readonly tokens: TensorRef;
  readonly #observed = new Set<string>();
  readonly #ropeFactors: TensorRef | undefined;
  readonly #attnFactor: number;

  constructor(hp: ModelHparams, w: ModelWeights, cache: KvCache, options: GraphOptions, ropeMode: RopeMode) {
    this.hp = hp;
    this.w = w;
    this.cache = cache;
    this.options = options;
    this.ropeMode = ropeMode;
    this.n = this.b.param(graphNames.nTokens, { min: 1, max: options.maxTokens });
    this.pos = this.b.param(graphNames.pos, { max: cache.contextSize - 1 });
    this.tokens = this.b.input(graphNames.tokens, 'i32', [this.n]);
    // llama.cpp's get_rope_factors: Llama 3's rope_freqs, else LongRoPE's long factors when the context exceeds the
    // trained one, else the short ones (per context, not per position).
    const factors =
      w.find('rope_freqs.weight') ??
      (cache.contextSize > hp.ropeOrigCtx ? w.find('rope_factors_long.weight') : w.find('rope_factors_short.weight'));
    this.#ropeFactors = factors === undefined ? undefined : this.b.weight(factors);
    this.#attnFactor = ropeAttnFactor(hp);
  }

  /** A weight that must exist, as a graph tensor. */
  weight(name: string): TensorRef {
    return this.b.weight(this.w.get(name));
  }

  /** An optional weight (a bias), or undefined. */
  maybe(name: string): TensorRef | undefined {
    const t = this.w.find(name);
    return t === undefined ? undefined : this.b.weight(t);
  }

  /** Whether layer l is the last and this graph only fills the cache (prompt rows nobody samples from). */
  stopsAfterCache(l: number): boolean {
    return l === this.hp.nLayers - 1 && !this.options.logits;
  }

  /**
   * `weight · x (+ bias) (+ residual)` for the weight named `weightName`; while observing, the activations entering
   * each file tensor become the output `in:<name>` once.
   */
  mm(weightName: string, x: TensorRef, name: string, extra: { bias?: string; residual?: TensorRef } = {}): TensorRef {
    const weight = this.w.get(weightName);
    const source = this.w.source(weight);
    if (this.options.observe && !this.#observed.has(source)) {
      this.#observed.add(source);
      this.b.output(`${observePrefix}${source}`, x);
    }
    const bias = extra.bias === undefined ? undefined : this.maybe(extra.bias);
    return this.b.matmul(this.b.weight(weight), x, {
      name,
      activations: this.options.matmulActivations,
      bias,
      residual: extra.residual,
    });
  }

  /** `token_embd[tokens]` `[n, dim]`. */
  embed(): TensorRef {
    return this.b.getRows(this.weight('token_embd.weight'), this.tokens, { name: 'embd' });
  }

  /** RMS norm of each row times the f32 weight `weightName`. */
  norm(x: TensorRef, weightName: string, name: string): TensorRef {
    return this.b.rmsNorm(x, this.hp.rmsEps, { weight: this.weight(weightName), name });
  }

  /** RMS norm of each head of x `[n, heads * headDim]` with the `[headDim]` weight (Qwen 3's and Gemma 3's q/k norms). */
  headNorm(x: TensorRef, heads: number, weightName: string, name: string): TensorRef {
    const { headDim } = this.hp;
    const perHead = this.b.reshape(x, [this.n, heads, headDim], { name: `${name}.heads` }); // [n, heads, headDim]
    const normed = this.b.rmsNorm(perHead, this.hp.rmsEps, { weight: this.weight(weightName), name });
    return this.b.reshape(normed, [this.n, heads * headDim], { name: `${name}.rows` }); // [n, heads * headDim]
  }

  /** q `[n, nHeads * headDim]`, k and v `[n, nKvHeads * headDim]` of layer l, biases added when the file has them. */
  qkv(l: number, h: TensorRef): { q: TensorRef; k: TensorRef; v: TensorRef } {
    const p = `blk.${l}.`;
    return {
      q: this.mm(`${p}attn_q.weight`, h, `l${l}.q`, { bias: `${p}attn_q.bias` }),
      k: this.mm(`${p}attn_k.weight`, h, `l${l}.k`, { bias: `${p}attn_k.bias` }),
      v: this.mm(`${p}attn_v.weight`, h, `l${l}.v`, { bias: `${p}attn_v.bias` }),
    };
  }

  /** RoPE of x `[n, heads * headDim]` at this run's positions, with layer l's base and scale (local or global). */
  rope(x: TensorRef, l: number, heads: number, name: string): TensorRef {
    const { hp } = this;
    const swa = isSlidingLayer(hp, l);
    return this.b.rope(x, this.pos, {
      name,
      nHeads: heads,
      headDim: hp.headDim,
      nRot: hp.ropeDims,
      mode: this.ropeMode,
      freqBase: swa ? hp.ropeBaseSwa : hp.ropeBase,
      freqScale: swa ? hp.ropeFreqScaleSwa : hp.ropeFreqScale,
      freqFactors: this.#ropeFactors,
      extFactor: hp.ropeScaling === 'yarn' ? 1 : 0,
      attnFactor: this.#attnFactor,
      origCtx: hp.ropeOrigCtx,
    });
  }

  /** Writes this run's k and v rows into layer l's cache at their positions. */
  store(l: number, k: TensorRef, v: TensorRef): void {
    this.b.copy(k, this.b.state(this.cache.k[l]), this.pos, { name: `l${l}.k_store` });
    this.b.copy(v, this.b.state(this.cache.v[l]), this.pos, { name: `l${l}.v_store` });
  }

  /** Causal attention of q over layer l's cache: the model's scale and soft-cap, the layer's window. */
  attend(l: number, q: TensorRef): TensorRef {
    const { hp } = this;
    return this.b.attention(q, this.b.state(this.cache.k[l]), this.b.state(this.cache.v[l]), this.pos, {
      name: `l${l}.att`,
      nHeads: hp.nHeads,
      nKvHeads: hp.nKvHeads,
      headDim: hp.headDim,
      scale: hp.attnScale,
      softcap: hp.attnSoftcap,
      window: isSlidingLayer(hp, l) ? hp.slidingWindow : 0,
    });
  }

  /**
   * `output(rmsnorm(x) · output_norm) (+ output.bias)`, soft-capped when the model caps logits: the output
   * `logits` `[n, vocab]`. The output weight is `output.weight`, or the token embedding when tied.
   */
  logits(x: TensorRef): void {
    const xn = this.norm(x, 'output_norm.weight', 'out_in'); // [n, dim]
    const out = this.w.find('output.weight') === undefined ? 'token_embd.weight' : 'output.weight';
    let logits = this.mm(out, xn, 'logits_mm', { bias: 'output.bias' }); // [n, vocab]
    if (this.hp.finalSoftcap > 0) logits = this.b.softcap(logits, this.hp.finalSoftcap, { name: 'logits_cap' });
    this.b.output(graphNames.logits, logits);
  }

  /** The finished graph. */
  build(): Graph {
    return this.b.build();
  }
}
