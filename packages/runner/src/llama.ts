/**
 * The llama architecture as a graph: weights uploaded once in their stored formats, and per session the graphs of a
 * forward pass over a KV cache. Reads top to bottom like llama2.c's `forward()`:
 *
 *   x = token_embd[tokens]                                            [n, dim]
 *   per layer: h = rmsnorm(x) * attn_norm                              (one fused rms_norm node)
 *              q, k = rope(wq h), rope(wk h); v = wv h; cache[pos..] = k, v
 *              x = wo attention(q, cache) + x                          (residual fused into the matmul)
 *              h = rmsnorm(x) * ffn_norm
 *              x = w_down glu(w_gate h, w_up h) + x                    (silu(gate) * up in one glu node)
 *   logits = output (rmsnorm(x) * output_norm)                        [n, vocab]
 */
import {
  type Backend,
  type BackendTensor,
  type DTypeName,
  dtypes,
  type Graph,
  GraphBuilder,
  type HostTensor,
  NibbleError,
  supports,
  type TensorRef,
  UnsupportedError,
} from '@nibble/tensor';
import type { LlamaHparams } from './hparams.js';

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

/** The uploaded weights of one transformer block. */
export interface LayerWeights {
  readonly attnNorm: BackendTensor; // [dim] f32
  readonly wq: BackendTensor; // [nHeads * headDim, dim]
  readonly wk: BackendTensor; // [nKvHeads * headDim, dim]
  readonly wv: BackendTensor; // [nKvHeads * headDim, dim]
  readonly wo: BackendTensor; // [dim, nHeads * headDim]
  readonly ffnNorm: BackendTensor; // [dim] f32
  readonly wGate: BackendTensor; // [hidden, dim]
  readonly wUp: BackendTensor; // [hidden, dim]
  readonly wDown: BackendTensor; // [dim, hidden]
}

/** Every uploaded weight of a llama model. */
export interface LlamaWeights {
  readonly tokenEmbd: BackendTensor; // [vocab, dim]
  readonly layers: readonly LayerWeights[];
  readonly outputNorm: BackendTensor; // [dim] f32
  /** `output.weight`, or the token embedding when the file ties them. */
  readonly output: BackendTensor; // [vocab, dim]
  /** Whether the output projection is the token embedding. */
  readonly tied: boolean;
}

/** Progress of a model load, in bytes of tensor data. */
export interface LoadProgress {
  readonly loadedBytes: number;
  readonly totalBytes: number;
  /** The tensor just uploaded. */
  readonly tensor: string;
}

/**
 * Checks that a file has every tensor the llama graph needs, with the shapes the hyperparameters imply, and uploads
 * them to the backend in their stored formats. Throws naming the missing tensor, the wrong shape, or the dtype the
 * backend cannot multiply.
 *
 * @example
 * ```ts
 * const weights = await uploadLlamaWeights(file, llamaHparams(file.metadata), backend);
 * ```
 */
export async function uploadLlamaWeights(
  file: ModelFile,
  hp: LlamaHparams,
  backend: Backend,
  onProgress?: (p: LoadProgress) => void,
  signal?: AbortSignal,
): Promise<LlamaWeights> {
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  if (byName.has('rope_freqs.weight')) {
    throw new UnsupportedError(
      "tensor 'rope_freqs.weight' (per-dimension RoPE factors, Llama 3.1 style) is not supported",
    );
  }
  const { dim, nHeads, nKvHeads, headDim, hiddenDim, vocabSize, nLayers } = hp;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const tied = !byName.has('output.weight');

  // Every (name, shape, op) the graph will use, so that a missing or malformed tensor fails before any upload.
  const plan: { name: string; shape: number[]; op: 'matmul' | 'get_rows' | 'mul' }[] = [
    { name: 'token_embd.weight', shape: [vocabSize, dim], op: 'get_rows' },
  ];
  for (let l = 0; l < nLayers; l++) {
    const p = `blk.${l}.`;
    plan.push(
      { name: `${p}attn_norm.weight`, shape: [dim], op: 'mul' },
      { name: `${p}attn_q.weight`, shape: [qDim, dim], op: 'matmul' },
      { name: `${p}attn_k.weight`, shape: [kvDim, dim], op: 'matmul' },
      { name: `${p}attn_v.weight`, shape: [kvDim, dim], op: 'matmul' },
      { name: `${p}attn_output.weight`, shape: [dim, qDim], op: 'matmul' },
      { name: `${p}ffn_norm.weight`, shape: [dim], op: 'mul' },
      { name: `${p}ffn_gate.weight`, shape: [hiddenDim, dim], op: 'matmul' },
      { name: `${p}ffn_up.weight`, shape: [hiddenDim, dim], op: 'matmul' },
      { name: `${p}ffn_down.weight`, shape: [dim, hiddenDim], op: 'matmul' },
    );
  }
  plan.push({ name: 'output_norm.weight', shape: [dim], op: 'mul' });
  if (!tied) plan.push({ name: 'output.weight', shape: [vocabSize, dim], op: 'matmul' });

  let totalBytes = 0;
  for (const want of plan) {
    const info = byName.get(want.name);
    if (info === undefined) {
      throw new NibbleError(
        'E_MISSING_TENSOR',
        `tensor '${want.name}' is missing from the ${hp.architecture} model file`,
      );
    }
    if (info.shape.length !== want.shape.length || info.shape.some((d, i) => d !== want.shape[i])) {
      throw new NibbleError(
        'E_SHAPE',
        `tensor '${want.name}' has shape [${info.shape.join(', ')}], expected [${want.shape.join(', ')}] from the hyperparameters`,
      );
    }
    const dtype = dtypes[info.typeName as DTypeName];
    const op = want.op === 'mul' ? undefined : want.op;
    if (want.op === 'mul' && info.typeName !== 'f32') {
      throw new UnsupportedError(`norm weight '${want.name}' is ${info.typeName}; only f32 norm weights are supported`);
    }
    if (op !== undefined && (dtype === undefined || !supports(backend.capabilities, op, dtype.name))) {
      throw new UnsupportedError(`backend '${backend.name}' has no ${op} for ${info.typeName} (tensor '${want.name}')`);
    }
    if (tied && want.name === 'token_embd.weight' && !supports(backend.capabilities, 'matmul', dtype.name)) {
      throw new UnsupportedError(
        `backend '${backend.name}' has no matmul for ${info.typeName} (tied output 'token_embd.weight')`,
      );
    }
    totalBytes += info.byteLength;
  }

  const limit = backend.capabilities.limits.maxTotalBytes;
  if (limit !== undefined && totalBytes > limit) {
    throw new UnsupportedError(
      `the model's weights are ${totalBytes} bytes (${(totalBytes / 2 ** 30).toFixed(2)} GiB), above backend '${backend.name}''s limit of ${limit} bytes (${(limit / 2 ** 30).toFixed(2)} GiB)`,
    );
  }
  const up = new Map<string, BackendTensor>();
  let loadedBytes = 0;
  for (const want of plan) {
    signal?.throwIfAborted();
    const host = await file.readTensor(want.name);
    up.set(want.name, await backend.upload(host, { name: want.name }));
    loadedBytes += host.data.byteLength;
    onProgress?.({ loadedBytes, totalBytes, tensor: want.name });
  }
  const get = (name: string): BackendTensor => up.get(name) as BackendTensor;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < nLayers; l++) {
    const p = `blk.${l}.`;
    layers.push({
      attnNorm: get(`${p}attn_norm.weight`),
      wq: get(`${p}attn_q.weight`),
      wk: get(`${p}attn_k.weight`),
      wv: get(`${p}attn_v.weight`),
      wo: get(`${p}attn_output.weight`),
      ffnNorm: get(`${p}ffn_norm.weight`),
      wGate: get(`${p}ffn_gate.weight`),
      wUp: get(`${p}ffn_up.weight`),
      wDown: get(`${p}ffn_down.weight`),
    });
  }
  const tokenEmbd = get('token_embd.weight');
  return {
    tokenEmbd,
    layers,
    outputNorm: get('output_norm.weight'),
    output: tied ? tokenEmbd : get('output.weight'),
    tied,
  };
}

/** One session's KV cache: per layer a key and a value state `[contextSize, nKvHeads * headDim]`. */
export interface KvCache {
  readonly k: readonly BackendTensor[];
  readonly v: readonly BackendTensor[];
  readonly dtype: DTypeName;
  readonly contextSize: number;
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
  hp: LlamaHparams,
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

/**
 * Input, param and output names of the llama graphs.
 *
 * @example
 * ```ts
 * await backend.run(graph, { [graphNames.tokens]: ids, [graphNames.nTokens]: ids.length, [graphNames.pos]: 0 });
 * ```
 */
export const graphNames = Object.freeze({ tokens: 'tokens', nTokens: 'nTokens', pos: 'pos', logits: 'logits' });

/**
 * Builds a forward pass over `cache`. With `logits` it ends in logits for every row (`[nTokens, vocab]`); without,
 * it stops once the last layer's keys and values are in the cache: what a prompt needs, minus the vocabulary-sized
 * matmul for rows whose predictions nobody reads.
 *
 * Run it with `{ tokens: Int32Array(n), nTokens: n, pos: p }`: rows are at positions p .. p + n - 1.
 *
 * @example
 * ```ts
 * const graph = buildLlamaGraph(hp, weights, cache, { maxTokens: 64, logits: true });
 * const { logits } = await backend.run(graph, { tokens: Int32Array.of(1), nTokens: 1, pos: 0 }); // [1, vocab]
 * ```
 */
export function buildLlamaGraph(hp: LlamaHparams, w: LlamaWeights, cache: KvCache, options: LlamaGraphOptions): Graph {
  const b = new GraphBuilder();
  const n = b.param(graphNames.nTokens, { min: 1, max: options.maxTokens });
  const pos = b.param(graphNames.pos, { max: cache.contextSize - 1 });
  const tokens = b.input(graphNames.tokens, 'i32', [n]);
  const observed = new Set<string>();
  const mm = (weight: BackendTensor, x: TensorRef, name: string, residual?: TensorRef): TensorRef => {
    // Observing: the activations entering each weight become an output `in:<weight name>` (for imatrix).
    if (options.observe && !observed.has(weight.name)) {
      observed.add(weight.name);
      b.output(`${observePrefix}${weight.name}`, x);
    }
    return b.matmul(b.weight(weight), x, { name, activations: options.matmulActivations, residual });
  };
  const rope = { freqBase: hp.ropeBase, freqScale: hp.ropeFreqScale, nRot: hp.ropeDims, mode: 'normal' as const };

  let x = b.getRows(b.weight(w.tokenEmbd), tokens, { name: 'embd' }); // [n, dim]
  for (let l = 0; l < hp.nLayers; l++) {
    const L = w.layers[l];
    const last = l === hp.nLayers - 1;
    const h = b.rmsNorm(x, hp.rmsEps, { weight: b.weight(L.attnNorm), name: `l${l}.attn_in` }); // [n, dim]
    const kCache = b.state(cache.k[l]);
    const vCache = b.state(cache.v[l]);
    const k = b.rope(mm(L.wk, h, `l${l}.k`), pos, { ...rope, nHeads: hp.nKvHeads, name: `l${l}.k_rope` }); // [n, kvDim]
    b.copy(k, kCache, pos, { name: `l${l}.k_store` });
    b.copy(mm(L.wv, h, `l${l}.v`), vCache, pos, { name: `l${l}.v_store` });
    if (last && !options.logits) break;
    const q = b.rope(mm(L.wq, h, `l${l}.q`), pos, { ...rope, nHeads: hp.nHeads, name: `l${l}.q_rope` }); // [n, qDim]
    const att = b.attention(q, kCache, vCache, pos, { nHeads: hp.nHeads, nKvHeads: hp.nKvHeads, name: `l${l}.att` });
    x = mm(L.wo, att, `l${l}.o`, x); // [n, dim], + residual
    const f = b.rmsNorm(x, hp.rmsEps, { weight: b.weight(L.ffnNorm), name: `l${l}.ffn_in` });
    const g = b.glu(mm(L.wGate, f, `l${l}.gate`), mm(L.wUp, f, `l${l}.up`), { name: `l${l}.glu` }); // [n, hidden]
    x = mm(L.wDown, g, `l${l}.down`, x); // [n, dim], + residual
  }
  if (options.logits) {
    const xn = b.rmsNorm(x, hp.rmsEps, { weight: b.weight(w.outputNorm), name: 'out_in' });
    b.output(graphNames.logits, mm(w.output, xn, 'logits')); // [n, vocab]
  }
  return b.build();
}

/** Options of {@link buildLlamaGraph}. */
export interface LlamaGraphOptions {
  /** Largest number of tokens per run. */
  maxTokens: number;
  /** End in logits for every row; without, stop once the last layer's keys and values are cached. */
  logits: boolean;
  matmulActivations?: 'f32' | 'ggml';
  /**
   * Also output the f32 activations entering every weight, as `in:<weight name>` (`[nTokens, in]`): what an
   * importance matrix (llama-imatrix) accumulates. Needs `logits`.
   */
  observe?: boolean;
}

/**
 * Output-name prefix of observed matmul inputs (see {@link LlamaGraphOptions.observe}).
 *
 * @example
 * ```ts
 * outputs[`${observePrefix}blk.0.attn_q.weight`]; // [nTokens, dim]
 * ```
 */
export const observePrefix = 'in:';
