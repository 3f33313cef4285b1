/**
 * Typed accessors for the standard metadata keys (spec §6.6): `general.*`, the llama architecture keys and
 * `tokenizer.ggml.*`. Each names the key it could not find or whose type is wrong.
 */
import { GgufError } from './errors.js';
import type { GgufFile } from './file.js';
import type { GgufValue } from './types.js';

/** Anything with GGUF metadata: a {@link GgufFile}, or a plain `{ metadata }` object. */
export type Meta = Pick<GgufFile, 'metadata'>;

function wrongType(key: string, expected: string, value: GgufValue): GgufError {
  const found = Array.isArray(value) ? 'array' : ArrayBuffer.isView(value) ? value.constructor.name : typeof value;
  return new GgufError('E_GGUF_KEY_TYPE', `expected ${expected}, found ${found}`, { key });
}

function missing(key: string): GgufError {
  return new GgufError('E_GGUF_MISSING_KEY', 'missing metadata key', { key });
}

/**
 * A string entry; undefined when absent, `E_GGUF_KEY_TYPE` when not a string.
 *
 * @example
 * ```ts
 * getString(file, 'general.architecture'); // 'llama'
 * ```
 */
export function getString(file: Meta, key: string): string | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw wrongType(key, 'a string', v);
  return v;
}

/**
 * A numeric scalar entry (any integer or float type; 64-bit integers converted when exact); undefined when absent.
 *
 * @example
 * ```ts
 * getNumber(file, 'llama.block_count'); // 5
 * ```
 */
export function getNumber(file: Meta, key: string): number | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER)) {
    return Number(v);
  }
  throw wrongType(key, 'a number', v);
}

/**
 * A boolean entry; undefined when absent.
 *
 * @example
 * ```ts
 * getBool(file, 'tokenizer.ggml.add_bos_token'); // true
 * ```
 */
export function getBool(file: Meta, key: string): boolean | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw wrongType(key, 'a bool', v);
  return v;
}

/**
 * A string array entry; undefined when absent.
 *
 * @example
 * ```ts
 * getStringArray(file, 'tokenizer.ggml.tokens')?.length; // 512
 * ```
 */
export function getStringArray(file: Meta, key: string): string[] | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || (v.length > 0 && typeof v[0] !== 'string')) throw wrongType(key, 'an array of strings', v);
  return v as string[];
}

/**
 * A numeric entry that must be present.
 *
 * @example
 * ```ts
 * requireNumber(file, 'llama.embedding_length'); // 64
 * ```
 */
export function requireNumber(file: Meta, key: string): number {
  const v = getNumber(file, key);
  if (v === undefined) throw missing(key);
  return v;
}

/**
 * A string entry that must be present.
 *
 * @example
 * ```ts
 * requireString(file, 'tokenizer.ggml.model'); // 'llama'
 * ```
 */
export function requireString(file: Meta, key: string): string {
  const v = getString(file, key);
  if (v === undefined) throw missing(key);
  return v;
}

/** The standard `general.*` keys. */
export interface GeneralMetadata {
  architecture: string;
  name?: string;
  fileType?: number;
  quantizationVersion?: number;
  alignment?: number;
}

/**
 * The `general.*` keys; `general.architecture` is required.
 *
 * @example
 * ```ts
 * generalMetadata(file).architecture; // 'llama'
 * ```
 */
export function generalMetadata(file: Meta): GeneralMetadata {
  return {
    architecture: requireString(file, 'general.architecture'),
    name: getString(file, 'general.name'),
    fileType: getNumber(file, 'general.file_type'),
    quantizationVersion: getNumber(file, 'general.quantization_version'),
    alignment: getNumber(file, 'general.alignment'),
  };
}

/**
 * Tokenizer description as stored in GGUF metadata (`tokenizer.ggml.*`), as plain data: what
 * {@link tokenizerMetadata} returns and `@nibble/tokenizer`'s `fromGgufMetadata` takes. Any other source can fill it in
 * by hand.
 *
 * @example
 * ```ts
 * const meta: TokenizerMetadata = { model: 'gpt2', pre: 'gpt-2', tokens: ['a', 'b', 'ab'], merges: ['a b'] };
 * ```
 */
export interface TokenizerMetadata {
  /** `tokenizer.ggml.model`: `llama` (SentencePiece BPE), `gpt2` (byte-level BPE), `bert` (WordPiece), ... */
  model: string;
  /** `tokenizer.ggml.pre`, byte-level BPE only: `gpt-2`, `llama-bpe`, `qwen2`, ... */
  pre?: string;
  tokens: string[];
  scores?: Float32Array;
  /** 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte (`TokenType` of `@nibble/tokenizer`). */
  tokenTypes?: Int32Array;
  /** Byte-level BPE merges, `"left right"`, highest priority first. */
  merges?: string[];
  bosId?: number;
  eosId?: number;
  unkId?: number;
  padId?: number;
  sepId?: number;
  eotId?: number;
  addBos?: boolean;
  addEos?: boolean;
  addSpacePrefix?: boolean;
}

function numericArray(file: Meta, key: string, kind: 'f32' | 'i32'): Float32Array | Int32Array | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (kind === 'f32') {
    if (v instanceof Float32Array) return v;
    if (v instanceof Float64Array) return Float32Array.from(v);
    throw wrongType(key, 'an array of FLOAT32', v);
  }
  if (v instanceof Int32Array) return v;
  if (v instanceof Uint32Array || v instanceof Int16Array || v instanceof Uint16Array || v instanceof Int8Array) {
    return Int32Array.from(v);
  }
  if (v instanceof Uint8Array) return Int32Array.from(v);
  throw wrongType(key, 'an array of INT32', v);
}

/**
 * The tokenizer stored in a GGUF file (`tokenizer.ggml.*`). `model` and `tokens` are required.
 *
 * @example
 * ```ts
 * const tok = tokenizerMetadata(file);
 * tok.model; // 'llama'
 * tok.tokens[tok.bosId!]; // '<s>'
 * ```
 */
export function tokenizerMetadata(file: Meta): TokenizerMetadata {
  const tokens = getStringArray(file, 'tokenizer.ggml.tokens');
  if (tokens === undefined) throw missing('tokenizer.ggml.tokens');
  const out: TokenizerMetadata = { model: requireString(file, 'tokenizer.ggml.model'), tokens };
  const pre = getString(file, 'tokenizer.ggml.pre');
  if (pre !== undefined) out.pre = pre;
  const scores = numericArray(file, 'tokenizer.ggml.scores', 'f32') as Float32Array | undefined;
  if (scores !== undefined) out.scores = scores;
  const types = numericArray(file, 'tokenizer.ggml.token_type', 'i32') as Int32Array | undefined;
  if (types !== undefined) out.tokenTypes = types;
  const merges = getStringArray(file, 'tokenizer.ggml.merges');
  if (merges !== undefined) out.merges = merges;
  const ids: [keyof TokenizerMetadata, string][] = [
    ['bosId', 'bos_token_id'],
    ['eosId', 'eos_token_id'],
    ['unkId', 'unknown_token_id'],
    ['padId', 'padding_token_id'],
    ['sepId', 'seperator_token_id'],
    ['eotId', 'eot_token_id'],
  ];
  for (const [field, key] of ids) {
    const v = getNumber(file, `tokenizer.ggml.${key}`);
    if (v !== undefined) (out as unknown as Record<string, number>)[field] = v;
  }
  const flags: [keyof TokenizerMetadata, string][] = [
    ['addBos', 'add_bos_token'],
    ['addEos', 'add_eos_token'],
    ['addSpacePrefix', 'add_space_prefix'],
  ];
  for (const [field, key] of flags) {
    const v = getBool(file, `tokenizer.ggml.${key}`);
    if (v !== undefined) (out as unknown as Record<string, boolean>)[field] = v;
  }
  return out;
}

/**
 * Llama-architecture hyperparameters (spec §6.6), read as llama.cpp's `llama_model::load_hparams` reads them: the
 * same required keys, the same defaults, the same checks.
 */
export interface LlamaHyperparams {
  /** `general.architecture` (`llama` when absent). */
  architecture: string;
  /** `<arch>.context_length`, the context the model was trained with. Required. */
  contextLength: number;
  embeddingLength: number;
  /** 1..512 (llama.cpp's `LLAMA_MAX_LAYERS`). */
  blockCount: number;
  feedForwardLength: number;
  headCount: number;
  /** Defaults to `headCount`. */
  headCountKv: number;
  /** Defaults to 10000. */
  ropeFreqBase: number;
  /** Defaults to `embeddingLength / headCount`; for `llama` it must equal that (llama.cpp: "invalid n_rot"). */
  ropeDimensionCount: number;
  /** `<arch>.attention.layer_norm_rms_epsilon`. Required, as in llama.cpp. */
  rmsEps: number;
  /** `<arch>.vocab_size`, else the length of `tokenizer.ggml.tokens`, else the rows of `token_embd.weight`. */
  vocabSize: number;
  /** `<arch>.rope.scaling.type`; llama.cpp's default is `linear`. */
  ropeScalingType: string;
  /**
   * Position multiplier: 1 / `rope.scaling.factor` (or the older `rope.scale_linear`), 1 when the factor is absent or
   * 0, and always 1 for scaling type `none`.
   */
  ropeFreqScale: number;
  /** `rope.scaling.original_context_length`, default `contextLength`. */
  ropeOriginalContextLength: number;
}

/** llama.cpp's `LLAMA_MAX_LAYERS`: a larger block count is refused before anything is sized by it. */
export const LLAMA_MAX_LAYERS = 512;

/** A per-layer UINT32 array collapses to its first value when all layers agree. */
function uniformNumber(file: Meta, key: string): number | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (
    ArrayBuffer.isView(v) &&
    !(v instanceof DataView) &&
    !(v instanceof BigInt64Array || v instanceof BigUint64Array)
  ) {
    const arr = v as Uint32Array;
    if (arr.length === 0) throw wrongType(key, 'a non-empty array', v);
    for (let i = 1; i < arr.length; i++) {
      if (arr[i] !== arr[0]) throw new GgufError('E_GGUF_KEY_TYPE', 'per-layer values differ; not supported', { key });
    }
    return arr[0];
  }
  return getNumber(file, key);
}

function badValue(key: string, expected: string, found: number): GgufError {
  return new GgufError('E_GGUF_KEY_VALUE', `expected ${expected}, found ${found}`, { key });
}

/**
 * The hyperparameters of a llama-style model, read from `<general.architecture>.*` (default prefix `llama`) with
 * llama.cpp's rules: `context_length`, `embedding_length`, `block_count`, `feed_forward_length`,
 * `attention.head_count` and `attention.layer_norm_rms_epsilon` are required; counts must be positive integers, the
 * block count at most {@link LLAMA_MAX_LAYERS}, heads must divide the embedding and KV heads the heads. Throws
 * `E_GGUF_MISSING_KEY`, `E_GGUF_KEY_TYPE` or `E_GGUF_KEY_VALUE` naming the key.
 *
 * @example
 * ```ts
 * const hp = llamaHyperparams(file);
 * hp.embeddingLength; // 64
 * hp.headCountKv; // 4
 * ```
 */
export function llamaHyperparams(file: Meta & Partial<Pick<GgufFile, 'getTensor'>>): LlamaHyperparams {
  const arch = getString(file, 'general.architecture') ?? 'llama';
  const k = (name: string) => `${arch}.${name}`;
  const count = (name: string, dflt?: number, max = Number.MAX_SAFE_INTEGER): number => {
    const v = uniformNumber(file, k(name));
    if (v === undefined) {
      if (dflt === undefined) throw missing(k(name));
      return dflt;
    }
    if (!Number.isSafeInteger(v) || v <= 0 || v > max) {
      throw badValue(k(name), max < Number.MAX_SAFE_INTEGER ? `an integer in 1..${max}` : 'a positive integer', v);
    }
    return v;
  };
  const positive = (name: string, dflt?: number): number => {
    const v = getNumber(file, k(name));
    if (v === undefined) {
      if (dflt === undefined) throw missing(k(name));
      return dflt;
    }
    if (!Number.isFinite(v) || v <= 0) throw badValue(k(name), 'a finite number > 0', v);
    return v;
  };

  const contextLength = count('context_length');
  const embeddingLength = count('embedding_length');
  const blockCount = count('block_count', undefined, LLAMA_MAX_LAYERS);
  const feedForwardLength = count('feed_forward_length');
  const headCount = count('attention.head_count');
  if (embeddingLength % headCount !== 0) {
    throw badValue(k('attention.head_count'), `a divisor of embedding_length ${embeddingLength}`, headCount);
  }
  const headDim = embeddingLength / headCount;
  const headCountKv = count('attention.head_count_kv', headCount);
  if (headCount % headCountKv !== 0) {
    throw badValue(k('attention.head_count_kv'), `a divisor of head_count ${headCount}`, headCountKv);
  }
  const ropeDimensionCount = count('rope.dimension_count', headDim);
  if (arch === 'llama' ? ropeDimensionCount !== headDim : ropeDimensionCount > headDim || ropeDimensionCount % 2) {
    throw badValue(k('rope.dimension_count'), `the head size ${headDim}`, ropeDimensionCount);
  }

  let vocabSize = uniformNumber(file, k('vocab_size')) ?? getStringArray(file, 'tokenizer.ggml.tokens')?.length;
  if (vocabSize === undefined) vocabSize = file.getTensor?.('token_embd.weight')?.shape[0];
  if (vocabSize === undefined) throw missing(k('vocab_size'));
  if (!Number.isSafeInteger(vocabSize) || vocabSize <= 0)
    throw badValue(k('vocab_size'), 'a positive integer', vocabSize);

  const ropeScalingType = getString(file, k('rope.scaling.type')) ?? 'linear';
  const factor = getNumber(file, k('rope.scaling.factor')) ?? getNumber(file, k('rope.scale_linear')) ?? 0;
  if (!Number.isFinite(factor) || factor < 0) throw badValue(k('rope.scaling.factor'), 'a finite number >= 0', factor);
  return {
    architecture: arch,
    contextLength,
    embeddingLength,
    blockCount,
    feedForwardLength,
    headCount,
    headCountKv,
    ropeFreqBase: positive('rope.freq_base', 10000),
    ropeDimensionCount,
    rmsEps: positive('attention.layer_norm_rms_epsilon'),
    vocabSize,
    ropeScalingType,
    ropeFreqScale: ropeScalingType === 'none' || factor === 0 ? 1 : 1 / factor,
    ropeOriginalContextLength: count('rope.scaling.original_context_length', contextLength),
  };
}
