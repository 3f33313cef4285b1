import { DTypeError, type DTypeInfo, type DTypeName, dtypes, ShapeError, SizeError, ValueError } from '@nibble/tensor';

/** Options of {@link Codec.quantize} and {@link Codec.quantizeInto}. */
export interface QuantizeOptions {
  /**
   * Length of one row. The input is `src.length / rowLength` rows, each quantized independently (the row is what
   * error messages and importance weights refer to). Default: the whole input is one row.
   */
  rowLength?: number;
  /**
   * Per-column importance weights, `rowLength` long: the imatrix path of ggml's `ggml_quantize_chunk`. Formats whose
   * ggml quantizer ignores the imatrix ignore it too.
   */
  importance?: Float32Array;
}

/**
 * One number format: quantize from f32 and dequantize to f32, bit-exact with ggml.
 *
 * @example
 * ```ts
 * import { q4_0 } from '@nibble/formats/q4_0';
 * const bytes = q4_0.quantize(new Float32Array(64).fill(0.5)); // 2 blocks of 18 bytes
 * const back = q4_0.dequantize(bytes);                         // Float32Array(64)
 * ```
 */
export interface Codec {
  /** The dtype's name, e.g. `'q4_0'`. */
  readonly name: DTypeName;
  /** Layout facts from the dtype table of `@nibble/tensor`. */
  readonly info: DTypeInfo;
  /** The documented per-element error bound of `dequantize(quantize(x))`, in words. */
  readonly errorBound: string;
  /** Quantizes `src` into a new byte array. */
  quantize(src: Float32Array, options?: QuantizeOptions): Uint8Array;
  /** Quantizes `src` into `dst`, which must be exactly the right size. Allocates nothing. */
  quantizeInto(src: Float32Array, dst: Uint8Array, options?: QuantizeOptions): void;
  /** Dequantizes `count` elements (default: all the blocks in `src`) into a new Float32Array. */
  dequantize(src: Uint8Array, count?: number): Float32Array;
  /** Dequantizes `dst.length` elements from the start of `src`. Allocates nothing. */
  dequantizeInto(src: Uint8Array, dst: Float32Array): void;
}

/**
 * What a format file implements: one row in, blocks out; blocks in, floats out. Offsets are in elements (floats)
 * and bytes. Row validation, sizes and the allocating wrappers live here, once.
 */
export interface BlockKernels {
  /**
   * Quantizes `n` values of `src` starting at `srcOff` (one row, `n` a multiple of the block size) into
   * `dst` at `dstOff`. `row` is only for error messages. `importance` is undefined or `n` long.
   */
  quantizeRow(
    src: Float32Array,
    srcOff: number,
    n: number,
    dst: Uint8Array,
    dstOff: number,
    row: number,
    importance: Float32Array | undefined,
  ): void;
  /** Dequantizes `nBlocks` blocks from `src` at byte `srcOff` into `dst` at element `dstOff`. */
  dequantizeBlocks(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, nBlocks: number): void;
}

/**
 * Throws the {@link ValueError} for the first non-finite value in `src[off, off+n)`. Format kernels call it after
 * a cheap per-block check fails (a double-precision sum of a block is finite iff every element is).
 */
export function throwNonFinite(
  name: string,
  src: Float32Array,
  off: number,
  n: number,
  rowStart: number,
  row: number,
): never {
  for (let i = off; i < off + n; i++) {
    if (!Number.isFinite(src[i])) {
      const column = i - rowStart;
      throw new ValueError(`${name}: cannot quantize ${src[i]} at row ${row}, column ${column}`, row, column);
    }
  }
  throw new ValueError(`${name}: non-finite value in row ${row}`, row, off - rowStart);
}

/** Builds the public {@link Codec} around a format's kernels. */
export function defineCodec(name: DTypeName, errorBound: string, kernels: BlockKernels): Codec {
  const info = dtypes[name];
  const { blockSize, bytesPerBlock } = info;

  function rowsOf(src: Float32Array, options: QuantizeOptions | undefined): { rows: number; rowLength: number } {
    const rowLength = options?.rowLength ?? src.length;
    if (!Number.isSafeInteger(rowLength) || rowLength < 0) {
      throw new ShapeError(`${name}: rowLength ${rowLength} is not a non-negative integer`);
    }
    if (rowLength % blockSize !== 0) {
      throw new ShapeError(`${name}: row length ${rowLength} is not a multiple of the block size ${blockSize}`);
    }
    if (rowLength === 0) {
      if (src.length !== 0) throw new ShapeError(`${name}: rowLength 0 with ${src.length} values`);
      return { rows: 0, rowLength };
    }
    if (src.length % rowLength !== 0) {
      throw new ShapeError(`${name}: ${src.length} values are not a whole number of rows of ${rowLength}`);
    }
    const imp = options?.importance;
    if (imp !== undefined && imp.length !== rowLength) {
      throw new ShapeError(`${name}: importance has ${imp.length} weights, expected one per column (${rowLength})`);
    }
    return { rows: src.length / rowLength, rowLength };
  }

  function quantizeInto(src: Float32Array, dst: Uint8Array, options?: QuantizeOptions): void {
    const { rows, rowLength } = rowsOf(src, options);
    const rowBytes = (rowLength / blockSize) * bytesPerBlock;
    if (dst.length !== rows * rowBytes) {
      throw new SizeError(`${name}: destination has ${dst.length} bytes, expected ${rows * rowBytes}`);
    }
    const imp = options?.importance;
    for (let r = 0; r < rows; r++) kernels.quantizeRow(src, r * rowLength, rowLength, dst, r * rowBytes, r, imp);
  }

  function quantize(src: Float32Array, options?: QuantizeOptions): Uint8Array {
    const { rows, rowLength } = rowsOf(src, options);
    const dst = new Uint8Array(rows * (rowLength / blockSize) * bytesPerBlock);
    quantizeInto(src, dst, options);
    return dst;
  }

  function dequantizeInto(src: Uint8Array, dst: Float32Array): void {
    if (dst.length % blockSize !== 0) {
      throw new ShapeError(`${name}: ${dst.length} values are not a multiple of the block size ${blockSize}`);
    }
    const nBlocks = dst.length / blockSize;
    if (src.length < nBlocks * bytesPerBlock) {
      throw new SizeError(
        `${name}: ${dst.length} values need ${nBlocks * bytesPerBlock} bytes, source has ${src.length}`,
      );
    }
    kernels.dequantizeBlocks(src, 0, dst, 0, nBlocks);
  }

  function dequantize(src: Uint8Array, count?: number): Float32Array {
    if (count === undefined) {
      if (src.length % bytesPerBlock !== 0) {
        throw new SizeError(`${name}: ${src.length} bytes are not a whole number of ${bytesPerBlock}-byte blocks`);
      }
      count = (src.length / bytesPerBlock) * blockSize;
    } else if (!Number.isSafeInteger(count) || count < 0) {
      throw new ShapeError(`${name}: count ${count} is not a non-negative integer`);
    }
    const dst = new Float32Array(count);
    dequantizeInto(src, dst);
    return dst;
  }

  return Object.freeze({ name, info, errorBound, quantize, quantizeInto, dequantize, dequantizeInto });
}

/** Throws a {@link DTypeError} naming the known formats. */
export function unknownFormat(name: string, known: readonly string[]): never {
  throw new DTypeError(`unknown format '${name}'; known formats: ${known.join(', ')}`);
}
