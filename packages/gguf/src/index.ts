/**
 * @nibble/gguf: a lazy GGUF reader (memory, Blob/File, URL via HTTP range requests) and a streaming GGUF v3 writer,
 * plus typed accessors for the standard llama and tokenizer keys and a llama2.c importer.
 *
 * Node-only helpers (open a path through a file handle, write a path atomically) live in `@nibble/gguf/node`.
 *
 * @example
 * ```ts
 * import { openGguf, tokenizerMetadata, llamaHyperparams } from '@nibble/gguf';
 * const file = await openGguf(new URL('https://example.com/stories260K.gguf'));
 * const hp = llamaHyperparams(file); // { embeddingLength: 64, blockCount: 5, ... }
 * const tok = tokenizerMetadata(file); // { model: 'llama', tokens: [...], scores: Float32Array, ... }
 * const emb = await file.readTensor('token_embd.weight'); // HostTensor, shape [512, 64]
 * ```
 *
 * @packageDocumentation
 */
export type { GgufErrorCode, GgufErrorContext } from './errors.js';
export { GgufError } from './errors.js';
export type { GgufSource, OpenGgufOptions } from './file.js';
export { GgufFile, openGguf, openGgufSource, parseGguf } from './file.js';
export type { ImportLlama2cOptions, Llama2cConfig, Llama2cVocab } from './llama2c.js';
export { importLlama2c, readLlama2cConfig, readLlama2cTokenizer } from './llama2c.js';
export type { GeneralMetadata, LlamaHyperparams, Meta, TokenizerMetadata } from './metadata.js';
export {
  generalMetadata,
  getBool,
  getNumber,
  getString,
  getStringArray,
  LLAMA_MAX_LAYERS,
  llamaHyperparams,
  requireNumber,
  requireString,
  tokenizerMetadata,
} from './metadata.js';
export type { ParsedHeader } from './parse.js';
export { alignUp, DEFAULT_ALIGNMENT } from './parse.js';
export type { ByteSource, UrlSourceOptions } from './source.js';
export { blobSource, bytesSource, urlSource } from './source.js';
export type {
  GgmlTypeTraits,
  GgufScalarType,
  GgufTensorInfo,
  GgufType,
  GgufValue,
  GgufValueTypeId,
} from './types.js';
export { GgufValueType, ggmlTypes } from './types.js';
export type { BlobSink, GgufSink, GgufTensorSpec, GgufWriterOptions } from './writer.js';
export {
  blobSink,
  GgufMetadataBuilder,
  GgufWriter,
  inferGgufType,
  rewriteGguf,
  writableStreamSink,
} from './writer.js';
