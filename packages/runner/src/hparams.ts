/**
 * The llama architecture's hyperparameters, read from GGUF metadata (spec §6.5 keys), with errors that name the
 * missing or unsupported key.
 */
import { llamaHyperparams, type Meta } from '@nibble/gguf';
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
  /** `context_length`: the context the model was trained with. */
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
 * Reads a llama-family model's hyperparameters with `@nibble/gguf`'s {@link llamaHyperparams} (the one reader, with
 * llama.cpp's required keys and defaults) and checks that this runner implements them. Throws `E_UNSUPPORTED` for
 * another architecture or a RoPE scaling this runner does not implement, and a `GgufError` naming the key that is
 * missing or wrong. `vocabFallback` is the vocabulary size when the metadata has neither `vocab_size` nor tokens.
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
  const hp = llamaHyperparams({
    metadata: meta as Meta['metadata'],
    // Only asked for when the metadata gives no vocabulary size.
    getTensor: (name: string) =>
      name === 'token_embd.weight' && vocabFallback !== undefined ? { shape: [vocabFallback] } : undefined,
  } as Parameters<typeof llamaHyperparams>[0]);
  if (hp.ropeScalingType !== 'none' && hp.ropeScalingType !== 'linear') {
    throw new UnsupportedError(
      `RoPE scaling '${hp.ropeScalingType}' (${arch}.rope.scaling.type) is not supported; supported: none, linear`,
    );
  }
  return Object.freeze({
    architecture: arch,
    dim: hp.embeddingLength,
    nLayers: hp.blockCount,
    nHeads: hp.headCount,
    nKvHeads: hp.headCountKv,
    headDim: hp.embeddingLength / hp.headCount,
    hiddenDim: hp.feedForwardLength,
    vocabSize: hp.vocabSize,
    contextLength: hp.contextLength,
    rmsEps: hp.rmsEps,
    ropeBase: hp.ropeFreqBase,
    ropeDims: hp.ropeDimensionCount,
    ropeFreqScale: hp.ropeFreqScale,
  });
}
