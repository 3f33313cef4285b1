/**
 * @nibble/tokenizer: SentencePiece BPE, byte-level BPE and WordPiece tokenizers that give llama.cpp's exact ids.
 * Loaders take plain objects, strings or bytes; nothing here reads files or depends on another nibble package.
 *
 * @example
 * ```ts
 * import { fromGgufMetadata } from '@nibble/tokenizer';
 * import { parseGguf, tokenizerMetadata } from '@nibble/gguf';
 * const tok = fromGgufMetadata(tokenizerMetadata(parseGguf(bytes)));
 * const ids = tok.encode('Hello world', { addSpecial: true });
 * tok.decode(ids);
 * ```
 *
 * @packageDocumentation
 */

export {
  fromGgufMetadata,
  fromHfTokenizerJson,
  fromLlama2cTokenizer,
  fromTiktoken,
  fromVocabMerges,
  type HfTokenizerOptions,
  type TiktokenOptions,
  type VocabMergesOptions,
} from './loaders.js';
export {
  PreTokenizer,
  type PreTokenizerInfo,
  preTokenizerInfo,
  preTokenizerNames,
  type Scanner,
  scanGpt2,
  scanLlama3,
} from './pretokenize.js';
export {
  type DecodeOptions,
  type EncodeOptions,
  type ModelKind,
  StreamDecoder,
  type StreamDecoderOptions,
  Tokenizer,
  type TokenizerSpec,
} from './tokenizer.js';
export { TokenizerError, type TokenizerErrorCode, type TokenizerMetadata, TokenType } from './types.js';
