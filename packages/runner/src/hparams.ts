/**
 * The llama architecture's hyperparameters, read from GGUF metadata (spec §6.5 keys), with errors that name the
 * missing or unsupported key.
 */
import { llamaHyperparams, type Meta } from '@nibble/gguf';
import { type DTypeName, dtypes, NibbleError, UnsupportedError } from '@nibble/tensor';

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

/** What {@link checkHparamsAgainstFile} reads of a file: its metadata and tensor table. */
export interface FileTable {
  readonly metadata: Metadata;
  readonly tensors: readonly {
    readonly name: string;
    readonly shape: readonly number[];
    readonly byteLength: number;
    readonly typeName: string;
  }[];
}

/** Tensors every llama block has (attention and feed-forward weights and their norms). */
const TENSORS_PER_BLOCK = 9;
const NO_TOKEN = 0xffffffff;

/**
 * Checks the counts the hyperparameters read from a file against what the file holds, before anything is sized or
 * iterated by them: the block count against the tensors present, each tensor's byte length against its shape and
 * type, and the tokenizer's special-token ids against the vocabulary. Throws `E_FORMAT` naming the key or tensor.
 *
 * @example
 * ```ts
 * const hp = llamaHparams(file.metadata);
 * checkHparamsAgainstFile(hp, file); // throws for block_count 4294967295 in a 5-block file
 * ```
 */
export function checkHparamsAgainstFile(hp: LlamaHparams, file: FileTable): void {
  const key = (k: string) => `${hp.architecture}.${k}`;
  const need = TENSORS_PER_BLOCK * hp.nLayers + 2; // + token_embd and output_norm
  if (file.tensors.length < need) {
    throw new NibbleError(
      'E_FORMAT',
      `${key('block_count')} is ${hp.nLayers}, which needs at least ${need} tensors; the file has ${file.tensors.length}`,
    );
  }
  let blocks = 0;
  for (const t of file.tensors) {
    const m = /^blk\.(\d+)\./.exec(t.name);
    if (m) blocks = Math.max(blocks, Number(m[1]) + 1);
    const d = dtypes[t.typeName as DTypeName];
    if (d === undefined) continue; // an unknown type is named when the tensor is used
    let elements = 1;
    for (const n of t.shape) elements *= n;
    const bytes = (elements / d.blockSize) * d.bytesPerBlock;
    if (bytes !== t.byteLength) {
      throw new NibbleError(
        'E_FORMAT',
        `tensor '${t.name}' [${t.shape.join(', ')}] of ${t.typeName} needs ${bytes} bytes, the file gives it ${t.byteLength}`,
      );
    }
  }
  if (blocks !== hp.nLayers) {
    throw new NibbleError(
      'E_FORMAT',
      `${key('block_count')} is ${hp.nLayers} but the file has tensors of ${blocks} blocks (blk.0 .. blk.${blocks - 1})`,
    );
  }
  for (const name of ['bos', 'eos', 'eot']) {
    const k = `tokenizer.ggml.${name}_token_id`;
    const v = file.metadata.get(k);
    if (v === undefined || v === NO_TOKEN || v === -1) continue; // absent, or "no such token"
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= hp.vocabSize) {
      throw new NibbleError(
        'E_FORMAT',
        `metadata key '${k}' is ${String(v)}, outside the vocabulary 0..${hp.vocabSize - 1}`,
      );
    }
  }
}
