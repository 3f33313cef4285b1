/** The plain data a tokenizer is built from, and the errors it throws. */

/**
 * Tokenizer description as stored in GGUF metadata (`tokenizer.ggml.*`): the one declaration is `@nibble/gguf`'s, which
 * `tokenizerMetadata(file)` returns. Only its type is used here, so nothing of `@nibble/gguf` is bundled.
 */
export type { TokenizerMetadata } from '@nibble/gguf';

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
 * expected vs found). (This package imports nothing from other nibble packages at run time, so it does not extend `NibbleError`; the
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
