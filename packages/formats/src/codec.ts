import { DTypeError, type DTypeInfo, type DTypeName, dtypes, ShapeError, SizeError, ValueError } from '@nibble/tensor';

// ---- what a format is -------------------------------------------------------------------------------------------
// One object per format, like ggml's `type_traits` / candle's `GgmlType`: its layout (the dtype row of
// `@nibble/tensor`), its quantizer and dequantizer on rows at offsets, how it treats an importance matrix, the type
// ggml quantizes activations to for its dot product, and optional CPU kernels that work on the stored bytes.

/**
 * How a format's quantizer treats `importance` (llama.cpp's imatrix): `'ignored'` as ggml ignores it,
 * `'optional'` used when given, `'required'` when ggml refuses to quantize without one
 * (`ggml_quantize_requires_imatrix`).
 */
export type ImportanceMode = 'ignored' | 'optional' | 'required';

/** One block whose fp16 scale (or min, or block sum) is ±Inf or NaN: see {@link OverflowPolicy}. */
export interface ScaleOverflow {
  /** The format, e.g. `'q4_0'`. */
  readonly format: DTypeName;
  /** Row of the block in the call (0 for the flat `quantize`/`dequantize` calls). */
  readonly row: number;
  /** Index of the block within its row. */
  readonly block: number;
  /** First column of the block within its row. */
  readonly column: number;
  /** Byte offset of the non-finite field in the byte array. */
  readonly byteOffset: number;
  /** The stored value of that field: `Infinity`, `-Infinity` or `NaN`. */
  readonly scale: number;
}

/**
 * What to do with a block whose fp16 scale is not finite. ggml stores a scale that overflows fp16 (a block whose
 * largest magnitude is above about 8.3e6 for Q8_0 or 5.2e5 for Q4_0, say) as ±Inf, and its dequantizer then turns
 * the whole block into ±Inf and NaN (0·Inf), without a word.
 *
 * - `'error'` (the default): throw a {@link ScaleOverflowError} naming the row, block and columns.
 * - `'keep'`: ggml's behaviour, byte for byte (quantize) and value for value (dequantize).
 * - a function: ggml's behaviour, and the function is called once per such block (a warning channel).
 */
export type OverflowPolicy = 'error' | 'keep' | ((overflow: ScaleOverflow) => void);

/**
 * Thrown when a block's fp16 scale overflows (see {@link OverflowPolicy}). A {@link ValueError} (code `E_VALUE`);
 * `row` and `column` locate the block's first element.
 *
 * @example
 * ```ts
 * try {
 *   q8_0.quantize(new Float32Array(32).fill(1e7));
 * } catch (e) {
 *   if (e instanceof ScaleOverflowError) console.log(e.overflow.block); // 0
 * }
 * ```
 */
export class ScaleOverflowError extends ValueError {
  /** Where and what. */
  readonly overflow: ScaleOverflow;
  constructor(message: string, overflow: ScaleOverflow) {
    super(message, overflow.row, overflow.column);
    this.overflow = overflow;
  }
}

/** Options of {@link Codec.quantize} and {@link Codec.quantizeInto}. */
export interface QuantizeOptions {
  /**
   * Length of one row. The input is `src.length / rowLength` rows, each quantized independently (the row is what
   * error messages and importance weights refer to). Default: the whole input is one row.
   */
  rowLength?: number;
  /**
   * Per-column importance weights, `rowLength` long: the imatrix path of ggml's `ggml_quantize_chunk`. Formats whose
   * ggml quantizer ignores the imatrix ignore it too (see {@link Codec.importance}).
   */
  importance?: Float32Array;
  /** A block whose scale overflows fp16: throw (default), keep ggml's bytes, or keep them and report. */
  onOverflow?: OverflowPolicy;
}

/** Options of {@link Codec.quantizeRows}: the row length is an argument there. */
export type QuantizeRowsOptions = Omit<QuantizeOptions, 'rowLength'>;

/** Options of the dequantizers. */
export interface DequantizeOptions {
  /** A stored block whose scale is ±Inf or NaN: throw (default), return ggml's values, or return them and report. */
  onOverflow?: OverflowPolicy;
}

/** Decodes `n` elements (whole blocks) of one row at byte `off` into `dst[dstOff ..]`. Unchecked. */
export type DecodeRow = (w: Uint8Array, off: number, dst: Float32Array, dstOff: number, n: number) => void;
/** Dot product of one weight row at byte `off` with `x[xOff .. xOff + n)`, accumulated in double. Unchecked. */
export type DotF32 = (w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number) => number;
/**
 * ggml-mode dot product of one weight row at byte `off` with one activation row quantized to the vec_dot type
 * (`a`, and `ai` = the same bytes as an Int8Array of the same buffer and offset, starting at byte `aOff`).
 */
export type DotQ = (w: Uint8Array, off: number, a: Uint8Array, ai: Int8Array, aOff: number, n: number) => number;
/**
 * Dot product of one weight row with the activation row that a nibble table was built from (see
 * `buildNibbleLut`); `xsum` holds the row's per-32-block sums.
 */
export type DotLut = (w: Uint8Array, off: number, lut: Float32Array, xsum: Float64Array, n: number) => number;

/**
 * Kernels of a CPU backend on a format's stored bytes: offsets are in bytes for weights and in elements for floats,
 * `n` is the row length (whole blocks), and nothing is checked (the checked entry points are the codec's methods).
 */
export interface CpuKernels {
  /** Row decoder; the same floats as the codec's dequantizer (it is the dequantizer unless the format has a faster one). */
  readonly decode: DecodeRow;
  /** Fused dot with f32 activations, no decoded copy of the row. */
  readonly dot?: DotF32;
  /**
   * The same dot as `dot`, bit for bit, on the row read as little-endian 16-bit words (`w` a Uint16Array of the
   * tensor at an even address, `wOff` in words): for the 16-bit float formats, where reading the words through a
   * view the caller made once is measurably faster than deriving it per row.
   */
  readonly dotU16?: (w: Uint16Array, wOff: number, x: Float32Array, xOff: number, n: number) => number;
  /**
   * The same dot as `dot`, bit for bit, reading the int8 quants through `wi`, an Int8Array of the same bytes as `w`
   * (same buffer and offset) that the caller made once.
   */
  readonly dotI8?: (w: Uint8Array, wi: Int8Array, off: number, x: Float32Array, xOff: number, n: number) => number;
  /** ggml-mode dot with the activations quantized to {@link Codec.vecDotType}. */
  readonly dotQ?: DotQ;
  /** Table-lookup dot for one activation row (4-bit formats whose byte j of a 32-block holds elements j, j + 16). */
  readonly dotLut?: DotLut;
  /** The 16 nibble values the table is built with (with `dotLut`). */
  readonly lutValues?: Float64Array;
  /** Whether `dotLut` also reads the high-bit table (`buildHighBitLut`). */
  readonly lutHigh?: boolean;
}

/**
 * One number format (its traits): layout, quantize from f32 and dequantize to f32 bit-exact with ggml, on whole
 * arrays or on rows at offsets, plus its importance mode, its vec_dot type and optional CPU kernels.
 *
 * @example
 * ```ts
 * import { q4_0 } from '@nibble/formats/q4_0';
 * const bytes = q4_0.quantize(new Float32Array(64).fill(0.5)); // 2 blocks of 18 bytes
 * const back = q4_0.dequantize(bytes);                         // Float32Array(64)
 * q4_0.layout.ggmlType; // 2
 * q4_0.vecDotType;      // 'q8_0'
 * ```
 */
export interface Codec {
  /** The dtype's name, e.g. `'q4_0'`. */
  readonly name: DTypeName;
  /** Layout facts: the dtype row of `@nibble/tensor` (ggml id, block size, bytes per block, ...). */
  readonly layout: DTypeInfo;
  /** The same object as {@link Codec.layout} (the older name). */
  readonly info: DTypeInfo;
  /** The documented per-element error bound of `dequantize(quantize(x))`, in words. */
  readonly errorBound: string;
  /** How the quantizer treats `importance`. */
  readonly importance: ImportanceMode;
  /** The format ggml's CPU dot product quantizes activations to for this weight type. */
  readonly vecDotType: DTypeName;
  /** Byte offsets, within a block, of the fp16 fields (scales, mins, sums) that {@link OverflowPolicy} checks. */
  readonly scaleOffsets: readonly number[];
  /** CPU kernels on the stored bytes, for formats that have them. */
  readonly kernels?: CpuKernels;
  /** Quantizes `src` into a new byte array. */
  quantize(src: Float32Array, options?: QuantizeOptions): Uint8Array;
  /** Quantizes `src` into `dst`, which must be exactly the right size. Allocates nothing. */
  quantizeInto(src: Float32Array, dst: Uint8Array, options?: QuantizeOptions): void;
  /**
   * Quantizes `rows` rows of `rowLength` values from `src[srcOffset ..]` into `dst` at byte `dstOffset`. Row `r`
   * lands at `dstOffset + r·rowBytes`. Allocates nothing.
   */
  quantizeRows(
    src: Float32Array,
    srcOffset: number,
    dst: Uint8Array,
    dstOffset: number,
    rows: number,
    rowLength: number,
    options?: QuantizeRowsOptions,
  ): void;
  /** Dequantizes `count` elements (default: all the blocks in `src`) into a new Float32Array. */
  dequantize(src: Uint8Array, count?: number, options?: DequantizeOptions): Float32Array;
  /** Dequantizes `dst.length` elements from the start of `src`. Allocates nothing. */
  dequantizeInto(src: Uint8Array, dst: Float32Array, options?: DequantizeOptions): void;
  /**
   * Dequantizes `rows` rows of `rowLength` elements stored at byte `srcOffset` of `src` into `dst[dstOffset ..]`.
   * Allocates nothing.
   */
  dequantizeRows(
    src: Uint8Array,
    srcOffset: number,
    dst: Float32Array,
    dstOffset: number,
    rows: number,
    rowLength: number,
    options?: DequantizeOptions,
  ): void;
  /**
   * Index of the first of `nBlocks` blocks at byte `srcOffset` whose fp16 scale (or min, or sum) is ±Inf or NaN, or
   * -1: a cheap check of stored bytes (one read per scale) before trusting them. Default: every whole block of `src`.
   */
  firstOverflow(src: Uint8Array, srcOffset?: number, nBlocks?: number): number;
}

/**
 * What a format file implements: one row in, blocks out; blocks in, floats out. Offsets are in elements (floats)
 * and bytes. Validation, sizes, overflow checks and the allocating wrappers live in {@link defineCodec}, once.
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

/** A format file's definition: {@link defineCodec} makes the {@link Codec} from it. */
export interface FormatSpec extends BlockKernels {
  /** The dtype's name; its layout row must exist in `@nibble/tensor`'s `dtypes`. */
  readonly name: DTypeName;
  /** The documented per-element error bound, in words. */
  readonly errorBound: string;
  /** Whether the quantizer uses importance weights (`'required'` follows from the layout's `needsImatrix`). */
  readonly importance: 'used' | 'ignored';
  /** Byte offsets of the block's fp16 scale fields (default: none). */
  readonly scaleOffsets?: readonly number[];
  /** CPU kernels; `decode` defaults to the dequantizer. */
  readonly kernels?: Partial<CpuKernels>;
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

// `%TypedArray%.prototype[Symbol.toStringTag]`: the array's kind ('Float32Array', ...), undefined for anything that
// is not a typed array. Unlike `instanceof`, it also holds for arrays made in another realm (iframe, vm context).
const typedArrayTag = /* @__PURE__ */ (() =>
  Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag)?.get as (
    this: unknown,
  ) => string | undefined)();

function kindOf(x: unknown): string {
  if (x === null) return 'null';
  if (typeof x !== 'object') return typeof x;
  return typedArrayTag.call(x) ?? (x as object).constructor?.name ?? 'object';
}

/** Throws a {@link DTypeError} unless `x` is a typed array of the kind `kind` (a Node Buffer is a Uint8Array). */
export function expectKind(name: string, what: string, x: unknown, kind: 'Float32Array' | 'Uint8Array'): void {
  if (typeof x === 'object' && x !== null && typedArrayTag.call(x) === kind) return;
  const found = kindOf(x);
  const hint = kind === 'Float32Array' ? `; convert first, e.g. Float32Array.from(values)` : '';
  throw new DTypeError(`${name}: ${what} must be a ${kind}, got ${found === 'undefined' ? 'nothing' : found}${hint}`);
}

function expectCount(name: string, what: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new ShapeError(`${name}: ${what} ${v} is not a non-negative integer`);
}

/** The value of fp16 bits with an all-ones exponent (±Inf, NaN). */
function nonFiniteHalf(bits: number): number {
  if ((bits & 0x3ff) !== 0) return Number.NaN;
  return bits & 0x8000 ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
}

/** Builds the public {@link Codec} (the format's traits object) around a format's kernels. */
export function defineCodec(spec: FormatSpec): Codec {
  const { name, errorBound } = spec;
  const layout = dtypes[name];
  const { blockSize, bytesPerBlock } = layout;
  const importance: ImportanceMode =
    spec.importance === 'ignored' ? 'ignored' : layout.needsImatrix ? 'required' : 'optional';
  const scaleOffsets = Object.freeze([...(spec.scaleOffsets ?? [])]);
  const quantizeRow = spec.quantizeRow;
  const dequantizeBlocks = spec.dequantizeBlocks;

  // First of `nBlocks` blocks at byte `at` with a non-finite fp16 field (all-ones exponent: the high byte's bits
  // 2-6), or -1; `found.field` gets the field's offset. Every format has at most two such fields: both are read
  // (the same one twice for one field), one pass, no inner loop.
  const found = { field: 0 };
  const hi0 = (scaleOffsets[0] ?? 0) + 1;
  const hi1 = (scaleOffsets[1] ?? scaleOffsets[0] ?? 0) + 1;
  if (scaleOffsets.length > 2) throw new Error(`${name}: at most two scale fields per block`);
  function scan(bytes: Uint8Array, at: number, nBlocks: number): number {
    const end = at + nBlocks * bytesPerBlock;
    for (let p = at; p < end; p += bytesPerBlock) {
      if ((bytes[p + hi0] & 0x7c) === 0x7c || (bytes[p + hi1] & 0x7c) === 0x7c) {
        found.field = (bytes[p + hi0] & 0x7c) === 0x7c ? hi0 - 1 : hi1 - 1;
        return (p - at) / bytesPerBlock;
      }
    }
    return -1;
  }

  /**
   * Applies the overflow policy to the `nBlocks` blocks of one row at byte `at` (`row`, the row's first block at
   * index 0). `src`: the quantizer's input, for the message; absent when dequantizing.
   */
  function overflowRow(
    bytes: Uint8Array,
    at: number,
    nBlocks: number,
    row: number,
    policy: OverflowPolicy,
    src: Float32Array | undefined,
    srcAt: number,
  ): void {
    let from = 0;
    while (from < nBlocks) {
      const b = scan(bytes, at + from * bytesPerBlock, nBlocks - from);
      if (b < 0) return;
      const block = from + b;
      const p = at + block * bytesPerBlock + found.field;
      const overflow: ScaleOverflow = Object.freeze({
        format: name,
        row,
        block,
        column: block * blockSize,
        byteOffset: p,
        scale: nonFiniteHalf(bytes[p] | (bytes[p + 1] << 8)),
      });
      if (typeof policy === 'function') policy(overflow);
      else throw overflowError(overflow, src, srcAt);
      from = block + 1;
    }
  }

  function overflowError(o: ScaleOverflow, src: Float32Array | undefined, srcAt: number): ScaleOverflowError {
    const cols = `columns ${o.column}-${o.column + blockSize - 1}`;
    const keep = "pass { onOverflow: 'keep' } for ggml's";
    if (src !== undefined) {
      let amax = 0;
      for (let i = 0; i < blockSize; i++) amax = Math.max(amax, Math.abs(src[srcAt + o.column + i]));
      return new ScaleOverflowError(
        `${name}: row ${o.row}, block ${o.block} (${cols}): largest magnitude ${amax} needs a scale beyond fp16's ` +
          `±65504, stored as ${o.scale}, so the block would dequantize to ±Inf/NaN; scale the values down, use a ` +
          `wider format, or ${keep} bytes`,
        o,
      );
    }
    return new ScaleOverflowError(
      `${name}: row ${o.row}, block ${o.block} (${cols}, byte ${o.byteOffset}) stores the fp16 scale ${o.scale}: it ` +
        `dequantizes to ±Inf/NaN; ${keep} values`,
      o,
    );
  }

  function quantizeRows(
    src: Float32Array,
    srcOffset: number,
    dst: Uint8Array,
    dstOffset: number,
    rows: number,
    rowLength: number,
    options?: QuantizeRowsOptions,
  ): void {
    expectKind(name, 'the input', src, 'Float32Array');
    expectKind(name, 'the destination', dst, 'Uint8Array');
    expectCount(name, 'rows', rows);
    expectCount(name, 'rowLength', rowLength);
    expectCount(name, 'srcOffset', srcOffset);
    expectCount(name, 'dstOffset', dstOffset);
    if (rowLength % blockSize !== 0) {
      throw new ShapeError(`${name}: row length ${rowLength} is not a multiple of the block size ${blockSize}`);
    }
    const rowBytes = (rowLength / blockSize) * bytesPerBlock;
    if (srcOffset + rows * rowLength > src.length) {
      throw new SizeError(
        `${name}: ${rows} rows of ${rowLength} from element ${srcOffset} need ${srcOffset + rows * rowLength} values, input has ${src.length}`,
      );
    }
    if (dstOffset + rows * rowBytes > dst.length) {
      throw new SizeError(
        `${name}: ${rows} rows of ${rowBytes} bytes from byte ${dstOffset} need ${dstOffset + rows * rowBytes} bytes, destination has ${dst.length}`,
      );
    }
    const imp = options?.importance;
    if (imp !== undefined) {
      expectKind(name, 'importance', imp, 'Float32Array');
      if (imp.length !== rowLength) {
        throw new ShapeError(`${name}: importance has ${imp.length} weights, expected one per column (${rowLength})`);
      }
    } else if (importance === 'required' && rows > 0) {
      throw new ShapeError(`${name}: ggml requires an importance matrix for this format (options.importance)`);
    }
    const policy = options?.onOverflow ?? 'error';
    const nBlocks = rowLength / blockSize;
    const check = policy !== 'keep' && scaleOffsets.length > 0;
    for (let r = 0; r < rows; r++) {
      const s = srcOffset + r * rowLength;
      const d = dstOffset + r * rowBytes;
      quantizeRow(src, s, rowLength, dst, d, r, imp);
      if (check) overflowRow(dst, d, nBlocks, r, policy, src, s);
    }
  }

  function rowsOf(src: Float32Array, options: QuantizeOptions | undefined): { rows: number; rowLength: number } {
    expectKind(name, 'the input', src, 'Float32Array');
    const rowLength = options?.rowLength ?? src.length;
    expectCount(name, 'rowLength', rowLength);
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
    expectKind(name, 'the destination', dst, 'Uint8Array');
    const rowBytes = (rowLength / blockSize) * bytesPerBlock;
    if (dst.length !== rows * rowBytes) {
      throw new SizeError(`${name}: destination has ${dst.length} bytes, expected ${rows * rowBytes}`);
    }
    quantizeRows(src, 0, dst, 0, rows, rowLength, options);
  }

  function quantize(src: Float32Array, options?: QuantizeOptions): Uint8Array {
    const { rows, rowLength } = rowsOf(src, options);
    const dst = new Uint8Array(rows * (rowLength / blockSize) * bytesPerBlock);
    quantizeRows(src, 0, dst, 0, rows, rowLength, options);
    return dst;
  }

  function dequantizeRows(
    src: Uint8Array,
    srcOffset: number,
    dst: Float32Array,
    dstOffset: number,
    rows: number,
    rowLength: number,
    options?: DequantizeOptions,
  ): void {
    expectKind(name, 'the source', src, 'Uint8Array');
    expectKind(name, 'the destination', dst, 'Float32Array');
    expectCount(name, 'rows', rows);
    expectCount(name, 'rowLength', rowLength);
    expectCount(name, 'srcOffset', srcOffset);
    expectCount(name, 'dstOffset', dstOffset);
    if (rowLength % blockSize !== 0) {
      throw new ShapeError(`${name}: row length ${rowLength} is not a multiple of the block size ${blockSize}`);
    }
    const nBlocks = rowLength / blockSize;
    const rowBytes = nBlocks * bytesPerBlock;
    if (srcOffset + rows * rowBytes > src.length) {
      throw new SizeError(
        `${name}: ${rows} rows of ${rowLength} values need ${rows * rowBytes} bytes from byte ${srcOffset}, source has ${src.length}`,
      );
    }
    if (dstOffset + rows * rowLength > dst.length) {
      throw new SizeError(
        `${name}: ${rows} rows of ${rowLength} from element ${dstOffset} need ${dstOffset + rows * rowLength} values, destination has ${dst.length}`,
      );
    }
    const policy = options?.onOverflow ?? 'error';
    if (policy !== 'keep' && scaleOffsets.length > 0) {
      // Checked before anything is written: an error leaves `dst` as it was.
      for (let r = 0; r < rows; r++) overflowRow(src, srcOffset + r * rowBytes, nBlocks, r, policy, undefined, 0);
    }
    if (rows > 0) dequantizeBlocks(src, srcOffset, dst, dstOffset, rows * nBlocks);
  }

  function dequantizeInto(src: Uint8Array, dst: Float32Array, options?: DequantizeOptions): void {
    expectKind(name, 'the destination', dst, 'Float32Array');
    if (dst.length % blockSize !== 0) {
      throw new ShapeError(`${name}: ${dst.length} values are not a multiple of the block size ${blockSize}`);
    }
    expectKind(name, 'the source', src, 'Uint8Array');
    const nBlocks = dst.length / blockSize;
    if (src.length < nBlocks * bytesPerBlock) {
      throw new SizeError(
        `${name}: ${dst.length} values need ${nBlocks * bytesPerBlock} bytes, source has ${src.length}`,
      );
    }
    // One row of every block: a flat call's overflow reports name block indices of the whole array.
    dequantizeRows(src, 0, dst, 0, nBlocks > 0 ? 1 : 0, dst.length, options);
  }

  function dequantize(src: Uint8Array, count?: number, options?: DequantizeOptions): Float32Array {
    expectKind(name, 'the source', src, 'Uint8Array');
    if (count === undefined) {
      if (src.length % bytesPerBlock !== 0) {
        throw new SizeError(`${name}: ${src.length} bytes are not a whole number of ${bytesPerBlock}-byte blocks`);
      }
      count = (src.length / bytesPerBlock) * blockSize;
    } else expectCount(name, 'count', count);
    const dst = new Float32Array(count);
    dequantizeInto(src, dst, options);
    return dst;
  }

  function firstOverflow(src: Uint8Array, srcOffset = 0, nBlocks?: number): number {
    expectKind(name, 'the source', src, 'Uint8Array');
    expectCount(name, 'srcOffset', srcOffset);
    const whole = Math.floor(Math.max(0, src.length - srcOffset) / bytesPerBlock);
    const n = nBlocks ?? whole;
    expectCount(name, 'nBlocks', n);
    if (n > whole) throw new SizeError(`${name}: ${n} blocks from byte ${srcOffset} do not fit in ${src.length} bytes`);
    return scaleOffsets.length > 0 ? scan(src, srcOffset, n) : -1;
  }

  let kernels: CpuKernels | undefined;
  if (spec.kernels !== undefined) {
    const k = spec.kernels;
    const decode: DecodeRow =
      k.decode ?? ((w, off, dst, dstOff, n) => dequantizeBlocks(w, off, dst, dstOff, n / blockSize));
    kernels = Object.freeze({ ...k, decode });
  }

  return Object.freeze({
    name,
    layout,
    info: layout,
    errorBound,
    importance,
    vecDotType: layout.vecDotType,
    scaleOffsets,
    kernels,
    quantize,
    quantizeInto,
    quantizeRows,
    dequantize,
    dequantizeInto,
    dequantizeRows,
    firstOverflow,
  });
}

/** Throws a {@link DTypeError} naming the known formats. */
export function unknownFormat(name: string, known: readonly string[]): never {
  throw new DTypeError(`unknown format '${name}'; known formats: ${known.join(', ')}`);
}
