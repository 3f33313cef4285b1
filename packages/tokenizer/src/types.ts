/** The plain data a tokenizer is built from, and the errors it throws. */

/**
 * Tokenizer description as stored in GGUF metadata (`tokenizer.ggml.*`). `@nibble/gguf`'s `tokenizerMetadata(file)`
 * produces exactly this shape; any other source can fill it in by hand.
 *
 * @example
 * ```ts
 * const meta: TokenizerMetadata = { model: 'gpt2', pre: 'gpt-2', tokens: ['a', 'b', 'ab'], merges: ['a b'] };
 * ```
 */
export interface TokenizerMetadata {
  /** `llama` (SentencePiece BPE), `gpt2` (byte-level BPE) or `bert` (WordPiece). */
  model: string;
  /** Pre-tokenizer name (`tokenizer.ggml.pre`), byte-level BPE only: `gpt-2`, `llama-bpe`, `qwen2`, ... */
  pre?: string;
  tokens: string[];
  scores?: Float32Array;
  /** Per-token type, see {@link TokenType}. */
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

/**
 * Token types of `tokenizer.ggml.token_type`.
 *
 * @example
 * ```ts
 * if (meta.tokenTypes?.[id] === TokenType.Control) console.log('control token');
 * ```
 */
export const TokenType = {
  Undefined: 0,
  Normal: 1,
  Unknown: 2,
  Control: 3,
  UserDefined: 4,
  Unused: 5,
  Byte: 6,
} as const;

/**
 * Stable error codes of this package.
 *
 * @example
 * ```ts
 * const code: TokenizerErrorCode = 'E_TOKENIZER_FORMAT';
 * ```
 */
export type TokenizerErrorCode = 'E_TOKENIZER_FORMAT' | 'E_TOKENIZER_VALUE' | 'E_TOKENIZER_UNSUPPORTED';

/**
 * Every error this package throws on purpose. `code` is stable; the message names what is wrong (offset, token,
 * expected vs found). (This package depends on no other nibble package, so it does not extend `NibbleError`; the
 * shape is the same.)
 *
 * @example
 * ```ts
 * try { fromLlama2cTokenizer(new Uint8Array(3), 32000); } catch (e) { if (e instanceof TokenizerError) console.log(e.code); }
 * ```
 */
export class TokenizerError extends Error {
  readonly code: TokenizerErrorCode;
  constructor(code: TokenizerErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = 'TokenizerError';
  }
}
