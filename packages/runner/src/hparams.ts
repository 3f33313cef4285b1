/**
 * The llama architecture's hyperparameters, read from GGUF metadata (spec §6.5 keys), with errors that name the
 * missing or unsupported key.
 */
import { NibbleError, UnsupportedError } from '@nibble/tensor';

/** Everything the llama graph needs to know about a model's shape. */
export interface LlamaHparams {
  /** `general.architecture`, e.g. `'llama'`. */
  readonly architecture: string;
  /** Width of the residual stream. */
  readonly dim: number;
  /** Transformer blocks. */
  readonly nLayers: number;
  /** Query heads. */
  readonly nHeads: number;
  /** Key/value heads (grouped-query attention when fewer than nHeads). */
  readonly nKvHeads: number;
  /** dim / nHeads. */
  readonly headDim: number;
  /** Inner width of the feed-forward block. */
  readonly hiddenDim: number;
  /** Tokens in the vocabulary (rows of the embedding). */
  readonly vocabSize: number;
  /** The context the file declares (may exceed what the model was trained with). */
  readonly contextLength: number;
  /** RMSNorm epsilon. */
  readonly rmsEps: number;
  /** RoPE base frequency. */
  readonly ropeBase: number;
  /** Leading dimensions of each head that RoPE rotates (all of them for llama). */
  readonly ropeDims: number;
  /** Position multiplier from linear RoPE scaling (1 / factor); 1 without scaling. */
  readonly ropeFreqScale: number;
}

/** Metadata as `@nibble/gguf` exposes it: key -> plain value. */
export type Metadata = ReadonlyMap<string, unknown>;

/**
 * Architectures whose GGUF tensors and hyperparameters follow llama's layout.
 *
 * @example
 * ```ts
 * supportedArchitectures.includes('llama'); // true
 * ```
 */
export const supportedArchitectures: readonly string[] = Object.freeze(['llama']);

/**
 * Reads a llama-family model's hyperparameters. Throws `E_UNSUPPORTED` for another architecture or RoPE scaling
 * this runner does not implement, and `E_FORMAT` naming the key that is missing or wrong.
 *
 * @example
 * ```ts
 * const hp = llamaHparams(file.metadata);
 * hp.nKvHeads; // 4 for stories260K
 * ```
 */
export function llamaHparams(meta: Metadata, vocabFallback?: number): LlamaHparams {
  const arch = meta.get('general.architecture');
  if (typeof arch !== 'string') throw new NibbleError('E_FORMAT', "metadata has no 'general.architecture' string");
  if (!supportedArchitectures.includes(arch)) {
    throw new UnsupportedError(
      `architecture '${arch}' is not supported; supported: ${supportedArchitectures.join(', ')}`,
    );
  }
  const num = (key: string, dflt?: number): number => {
    const full = `${arch}.${key}`;
    const v = meta.get(full);
    if (v === undefined) {
      if (dflt !== undefined) return dflt;
      throw new NibbleError('E_FORMAT', `metadata key '${full}' is missing`);
    }
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n)) {
      throw new NibbleError('E_FORMAT', `metadata key '${full}' should be a number, got ${String(v)}`);
    }
    return n;
  };
  const posInt = (key: string, dflt?: number): number => {
    const n = num(key, dflt);
    if (!Number.isSafeInteger(n) || n <= 0) {
      throw new NibbleError('E_FORMAT', `metadata key '${arch}.${key}' should be a positive integer, got ${n}`);
    }
    return n;
  };

  const dim = posInt('embedding_length');
  const nLayers = posInt('block_count');
  const nHeads = posInt('attention.head_count');
  const nKvHeads = posInt('attention.head_count_kv', nHeads);
  if (dim % nHeads !== 0) {
    throw new NibbleError('E_FORMAT', `embedding_length ${dim} is not a multiple of head_count ${nHeads}`);
  }
  if (nHeads % nKvHeads !== 0) {
    throw new NibbleError('E_FORMAT', `head_count ${nHeads} is not a multiple of head_count_kv ${nKvHeads}`);
  }
  const headDim = dim / nHeads;
  const tokens = meta.get('tokenizer.ggml.tokens');
  const vocabSize = posInt('vocab_size', Array.isArray(tokens) ? tokens.length : vocabFallback);

  const scaling = meta.get(`${arch}.rope.scaling.type`);
  let ropeFreqScale = 1;
  if (scaling !== undefined && scaling !== 'none') {
    if (scaling !== 'linear') {
      throw new UnsupportedError(`RoPE scaling '${String(scaling)}' (${arch}.rope.scaling.type) is not supported`);
    }
    const factor = num('rope.scaling.factor', 1);
    ropeFreqScale = factor > 0 ? 1 / factor : 1;
  }
  const ropeDims = posInt('rope.dimension_count', headDim);
  if (ropeDims > headDim || ropeDims % 2 !== 0) {
    throw new NibbleError('E_FORMAT', `rope.dimension_count ${ropeDims} does not fit head size ${headDim}`);
  }

  return Object.freeze({
    architecture: arch,
    dim,
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    hiddenDim: posInt('feed_forward_length'),
    vocabSize,
    contextLength: posInt('context_length', 2048),
    rmsEps: num('attention.layer_norm_rms_epsilon', 1e-5),
    ropeBase: num('rope.freq_base', 10000),
    ropeDims,
    ropeFreqScale,
  });
}
