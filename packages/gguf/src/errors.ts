import { NibbleError } from '@nibble/tensor';

/**
 * Stable codes of {@link GgufError}. New codes may be added; existing ones never change meaning.
 *
 * - `E_GGUF_MAGIC`: the file does not start with "GGUF".
 * - `E_GGUF_VERSION`: a version other than 2 or 3 (v1 is obsolete).
 * - `E_GGUF_ENDIAN`: a big-endian file (only little-endian files are read).
 * - `E_GGUF_TRUNCATED`: a field runs past the end of the file.
 * - `E_GGUF_COUNT`: a tensor or key count that cannot fit in the remaining bytes.
 * - `E_GGUF_STRING_LENGTH`, `E_GGUF_ARRAY_LENGTH`: a length over the limit or past the end of the file.
 * - `E_GGUF_KEY`: an empty metadata key; `E_GGUF_DUPLICATE_KEY`: a key seen twice.
 * - `E_GGUF_VALUE_TYPE`: an unknown metadata value type; `E_GGUF_NESTING`: arrays nested too deeply.
 * - `E_GGUF_ALIGNMENT`: `general.alignment` not a UINT32 power of two.
 * - `E_GGUF_TENSOR_NAME`: an empty or over-long (> 63 bytes) tensor name; `E_GGUF_DUPLICATE_TENSOR`: a name seen twice.
 * - `E_GGUF_DIMS`: bad dimension count or extent; `E_GGUF_TENSOR_TYPE`: unknown or removed ggml type, or a row length
 *   that is not a multiple of the block size.
 * - `E_GGUF_OFFSET`: a tensor offset that is not the sequential, aligned one.
 * - `E_GGUF_DATA_SIZE`: the data section is shorter than the tensors (and their padding) need.
 * - `E_GGUF_MISSING_KEY`, `E_GGUF_KEY_TYPE`: an accessor found no key, or a value of the wrong type;
 *   `E_GGUF_KEY_VALUE`: a value of the right type outside its valid range (e.g. a block count of 0xFFFFFFFF).
 * - `E_GGUF_TENSOR_NOT_FOUND`: no tensor of that name; `E_GGUF_UNSUPPORTED_TYPE`: a valid ggml type with no nibble dtype
 *   (e.g. `iq2_xxs`), asked for as a HostTensor.
 * - `E_GGUF_SOURCE`: the byte source failed (HTTP status, no range support, closed file).
 * - `E_GGUF_WRITE`: the writer was used out of order or given inconsistent data.
 * - `E_GGUF_LLAMA2C`: a malformed llama2.c checkpoint or tokenizer.
 */
export type GgufErrorCode =
  | 'E_GGUF_MAGIC'
  | 'E_GGUF_VERSION'
  | 'E_GGUF_ENDIAN'
  | 'E_GGUF_TRUNCATED'
  | 'E_GGUF_COUNT'
  | 'E_GGUF_STRING_LENGTH'
  | 'E_GGUF_ARRAY_LENGTH'
  | 'E_GGUF_KEY'
  | 'E_GGUF_DUPLICATE_KEY'
  | 'E_GGUF_VALUE_TYPE'
  | 'E_GGUF_NESTING'
  | 'E_GGUF_ALIGNMENT'
  | 'E_GGUF_TENSOR_NAME'
  | 'E_GGUF_DUPLICATE_TENSOR'
  | 'E_GGUF_DIMS'
  | 'E_GGUF_TENSOR_TYPE'
  | 'E_GGUF_OFFSET'
  | 'E_GGUF_DATA_SIZE'
  | 'E_GGUF_MISSING_KEY'
  | 'E_GGUF_KEY_TYPE'
  | 'E_GGUF_KEY_VALUE'
  | 'E_GGUF_TENSOR_NOT_FOUND'
  | 'E_GGUF_UNSUPPORTED_TYPE'
  | 'E_GGUF_SOURCE'
  | 'E_GGUF_WRITE'
  | 'E_GGUF_LLAMA2C';

/** Where a {@link GgufError} happened: byte offset in the file, and the metadata key or tensor concerned. */
export interface GgufErrorContext {
  offset?: number;
  key?: string;
  tensor?: string;
}

/**
 * Every failure of the GGUF reader, writer and importer. `code` is stable; `offset` is the byte offset in the file
 * where the bad field starts (when known); `key` or `tensor` name the metadata key or tensor concerned.
 *
 * @example
 * ```ts
 * try {
 *   parseGguf(new Uint8Array(8));
 * } catch (e) {
 *   if (e instanceof GgufError) console.log(e.code, e.offset); // 'E_GGUF_MAGIC' 0
 * }
 * ```
 */
export class GgufError extends NibbleError {
  override readonly code: GgufErrorCode;
  /** Byte offset in the file of the field that failed, when known. */
  readonly offset: number | undefined;
  /** The metadata key concerned, when any. */
  readonly key: string | undefined;
  /** The tensor concerned, when any. */
  readonly tensor: string | undefined;
  constructor(code: GgufErrorCode, message: string, context: GgufErrorContext = {}, options?: { cause?: unknown }) {
    const where: string[] = [];
    if (context.key !== undefined) where.push(`key '${context.key}'`);
    if (context.tensor !== undefined) where.push(`tensor '${context.tensor}'`);
    if (context.offset !== undefined) where.push(`at byte ${context.offset}`);
    super(code, where.length > 0 ? `${message} (${where.join(', ')})` : message, options);
    this.code = code;
    this.offset = context.offset;
    this.key = context.key;
    this.tensor = context.tensor;
  }
}
