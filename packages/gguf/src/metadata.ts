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

/** Tokenizer description from the `tokenizer.ggml.*` keys, as plain data. */
export interface TokenizerMetadata {
  /** `tokenizer.ggml.model`: "llama" (SentencePiece), "gpt2" (byte-level BPE), "bert" (WordPiece), ... */
  model: string;
  /** `tokenizer.ggml.pre`: BPE pre-tokenizer name. */
  pre?: string;
  tokens: string[];
  scores?: Float32Array;
  /** 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
  tokenTypes?: Int32Array;
  /** "a b" pairs, highest priority first. */
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

/** Llama-architecture hyperparameters (spec §6.6), with llama.cpp's defaults applied. */
export interface LlamaHyperparams {
  contextLength: number;
  embeddingLength: number;
  blockCount: number;
  feedForwardLength: number;
  headCount: number;
  /** Defaults to `headCount`. */
  headCountKv: number;
  /** Defaults to 10000. */
  ropeFreqBase: number;
  /** Defaults to `embeddingLength / headCount`. */
  ropeDimensionCount: number;
  rmsEps: number;
  /** `<arch>.vocab_size`, else the length of `tokenizer.ggml.tokens`, else the rows of `token_embd.weight`. */
  vocabSize: number;
  ropeScaling?: { type: string; factor: number; originalContextLength: number };
}

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

/**
 * The hyperparameters of a llama-style model, read from `<general.architecture>.*` (default prefix `llama`).
 * Throws `E_GGUF_MISSING_KEY` naming the first required key that is absent.
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
  const need = (name: string) => {
    const v = uniformNumber(file, k(name));
    if (v === undefined) throw missing(k(name));
    return v;
  };
  const embeddingLength = need('embedding_length');
  const headCount = need('attention.head_count');
  let vocabSize = getNumber(file, k('vocab_size')) ?? getStringArray(file, 'tokenizer.ggml.tokens')?.length;
  if (vocabSize === undefined) vocabSize = file.getTensor?.('token_embd.weight')?.shape[0];
  if (vocabSize === undefined) throw missing(k('vocab_size'));
  const hp: LlamaHyperparams = {
    contextLength: need('context_length'),
    embeddingLength,
    blockCount: need('block_count'),
    feedForwardLength: need('feed_forward_length'),
    headCount,
    headCountKv: uniformNumber(file, k('attention.head_count_kv')) ?? headCount,
    ropeFreqBase: getNumber(file, k('rope.freq_base')) ?? 10000,
    ropeDimensionCount: getNumber(file, k('rope.dimension_count')) ?? embeddingLength / headCount,
    rmsEps: need('attention.layer_norm_rms_epsilon'),
    vocabSize,
  };
  const type = getString(file, k('rope.scaling.type'));
  if (type !== undefined && type !== 'none') {
    hp.ropeScaling = {
      type,
      factor: getNumber(file, k('rope.scaling.factor')) ?? 1,
      originalContextLength: getNumber(file, k('rope.scaling.original_context_length')) ?? hp.contextLength,
    };
  }
  return hp;
}
