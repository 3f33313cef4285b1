import { ShapeError } from './errors.js';

/**
 * The dtype table: one row per number format, like ggml's `type_traits`.
 *
 * Every other package reads layout facts from here. Adding a format is one row in this table plus one codec file in
 * `@nibble/formats`.
 */

/** Names of every dtype nibble knows. Lower-case, as ggml's `type_name` prints them. */
export type DTypeName =
  | 'f32'
  | 'f16'
  | 'bf16'
  | 'q4_0'
  | 'q4_1'
  | 'q5_0'
  | 'q5_1'
  | 'q8_0'
  | 'q8_1'
  | 'q2_K'
  | 'q3_K'
  | 'q4_K'
  | 'q5_K'
  | 'q6_K'
  | 'q8_K'
  | 'iq4_nl'
  | 'iq4_xs'
  | 'tq1_0'
  | 'tq2_0'
  | 'mxfp4'
  | 'iq2_xxs'
  | 'iq2_xs'
  | 'iq3_xxs'
  | 'iq1_s'
  | 'iq3_s'
  | 'iq2_s'
  | 'iq1_m'
  | 'nvfp4'
  | 'q1_0'
  | 'q2_0'
  | 'i8'
  | 'i16'
  | 'i32'
  | 'i64'
  | 'f64'
  | 'int8';

/** Layout facts of one dtype. */
export interface DTypeInfo {
  /** Canonical lower-case name. */
  readonly name: DTypeName;
  /** ggml type id (`enum ggml_type`), or -1 for nibble's own formats that GGUF does not know. */
  readonly ggmlType: number;
  /** Elements per block (1 for plain scalar types). */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly bytesPerBlock: number;
  /** Bits per weight: 8 * bytesPerBlock / blockSize. */
  readonly bitsPerWeight: number;
  /** Whether values are stored in blocks with shared scales (and so quantized). */
  readonly quantized: boolean;
  /** The format activations are quantized to for ggml's CPU dot product with this weight type. */
  readonly vecDotType: DTypeName;
  /** Whether this type only exists for activations inside ggml and never appears in model files. */
  readonly internal: boolean;
  /** One-line description for tables and docs. */
  readonly description: string;
  /**
   * Whether ggml refuses to quantize to this type without an importance matrix (`ggml_quantize_requires_imatrix`:
   * IQ2_XXS, IQ2_XS, IQ1_S).
   */
  readonly needsImatrix: boolean;
}

function row(
  name: DTypeName,
  ggmlType: number,
  blockSize: number,
  bytesPerBlock: number,
  vecDotType: DTypeName,
  description: string,
  internal = false,
  needsImatrix = false,
): DTypeInfo {
  return Object.freeze({
    name,
    ggmlType,
    blockSize,
    bytesPerBlock,
    bitsPerWeight: (8 * bytesPerBlock) / blockSize,
    quantized: blockSize > 1,
    vecDotType,
    internal,
    description,
    needsImatrix,
  });
}

/**
 * Every dtype, keyed by name. Ids, block sizes and sizes follow ggml's `ggml-common.h` (spec §2).
 *
 * `int8` is nibble's own self-describing INT8 container (see `@nibble/formats/int8`); its block size is 1 because
 * its layout carries its own header and grouping.
 */
export const dtypes: Readonly<Record<DTypeName, DTypeInfo>> = Object.freeze({
  f32: row('f32', 0, 1, 4, 'f32', 'IEEE binary32'),
  f16: row('f16', 1, 1, 2, 'f16', 'IEEE binary16, round-to-nearest-even'),
  bf16: row('bf16', 30, 1, 2, 'bf16', 'bfloat16, round-to-nearest-even'),
  q4_0: row('q4_0', 2, 32, 18, 'q8_0', '4-bit, fp16 scale per 32, symmetric'),
  q4_1: row('q4_1', 3, 32, 20, 'q8_1', '4-bit, fp16 scale and min per 32'),
  q5_0: row('q5_0', 6, 32, 22, 'q8_0', '5-bit, fp16 scale per 32, symmetric'),
  q5_1: row('q5_1', 7, 32, 24, 'q8_1', '5-bit, fp16 scale and min per 32'),
  q8_0: row('q8_0', 8, 32, 34, 'q8_0', '8-bit, fp16 scale per 32'),
  q8_1: row('q8_1', 9, 32, 36, 'q8_1', '8-bit with block sum, activations only', true),
  q2_K: row('q2_K', 10, 256, 84, 'q8_K', '2-bit K-quant, 4-bit scales and mins per 16'),
  q3_K: row('q3_K', 11, 256, 110, 'q8_K', '3-bit K-quant, 6-bit scales per 16'),
  q4_K: row('q4_K', 12, 256, 144, 'q8_K', '4-bit K-quant, 6-bit scales and mins per 32'),
  q5_K: row('q5_K', 13, 256, 176, 'q8_K', '5-bit K-quant, 6-bit scales and mins per 32'),
  q6_K: row('q6_K', 14, 256, 210, 'q8_K', '6-bit K-quant, 8-bit scales per 16'),
  q8_K: row('q8_K', 15, 256, 292, 'q8_K', '8-bit with f32 scale and sums, K-quant activations only', true),
  iq4_nl: row('iq4_nl', 20, 32, 18, 'q8_0', '4-bit non-linear grid, fp16 scale per 32'),
  iq4_xs: row('iq4_xs', 23, 256, 136, 'q8_K', '4-bit non-linear grid, 6-bit scales per 32'),
  tq1_0: row('tq1_0', 34, 256, 54, 'q8_K', 'ternary, base-3 packed, 1.69 bpw'),
  tq2_0: row('tq2_0', 35, 256, 66, 'q8_K', 'ternary, 2 bits per value'),
  mxfp4: row('mxfp4', 39, 32, 17, 'q8_0', 'OCP MX FP4 (E2M1) with E8M0 scale per 32'),
  // Layout rows only: nibble has no codec for these yet (GGUF files that hold them can still be read and sized).
  iq2_xxs: row('iq2_xxs', 16, 256, 66, 'q8_K', '2-bit E8 lattice grid (no nibble codec)', false, true),
  iq2_xs: row('iq2_xs', 17, 256, 74, 'q8_K', '2-bit E8 lattice grid, 4-bit scales (no nibble codec)', false, true),
  iq3_xxs: row('iq3_xxs', 18, 256, 98, 'q8_K', '3-bit grid (no nibble codec)'),
  iq1_s: row('iq1_s', 19, 256, 50, 'q8_K', '1-bit grid with shift (no nibble codec)', false, true),
  iq3_s: row('iq3_s', 21, 256, 110, 'q8_K', '3-bit grid with sign bits (no nibble codec)'),
  iq2_s: row('iq2_s', 22, 256, 82, 'q8_K', '2-bit grid with sign bits (no nibble codec)'),
  iq1_m: row('iq1_m', 29, 256, 56, 'q8_K', '1-bit grid, 3-bit scales (no nibble codec)'),
  nvfp4: row('nvfp4', 40, 64, 36, 'q8_0', 'NVIDIA FP4 (E2M1) with UE4M3 scale per 16 (no nibble codec)'),
  q1_0: row('q1_0', 41, 128, 18, 'q8_0', 'sign bit per value, fp16 mean |x| per 128'),
  q2_0: row('q2_0', 42, 64, 18, 'q8_0', '2-bit levels {-1,0,1,2}·d per 64 (no nibble codec)'),
  i8: row('i8', 24, 1, 1, 'i8', 'int8 scalar'),
  i16: row('i16', 25, 1, 2, 'i16', 'int16 scalar'),
  i32: row('i32', 26, 1, 4, 'i32', 'int32 scalar'),
  i64: row('i64', 27, 1, 8, 'i64', 'int64 scalar'),
  f64: row('f64', 28, 1, 8, 'f64', 'IEEE binary64'),
  int8: row('int8', -1, 1, 1, 'f32', 'nibble INT8: per tensor/channel/group, symmetric or with zero point'),
});

const byGgmlType = new Map<number, DTypeInfo>();
for (const info of Object.values(dtypes)) if (info.ggmlType >= 0) byGgmlType.set(info.ggmlType, info);

/** Looks up a dtype by name. Returns undefined for unknown names. */
export function findDType(name: string): DTypeInfo | undefined {
  return Object.hasOwn(dtypes, name) ? dtypes[name as DTypeName] : undefined;
}

/**
 * Looks up a dtype by ggml type id.
 *
 * @example
 * ```ts
 * dtypeFromGgmlType(2)?.name; // 'q4_0'
 * ```
 */
export function dtypeFromGgmlType(id: number): DTypeInfo | undefined {
  return byGgmlType.get(id);
}

/**
 * Bytes of one row of `n` elements. Throws a {@link ShapeError} when `n` is not a multiple of the block size.
 *
 * @example
 * ```ts
 * rowBytes('q4_0', 4096); // 2304
 * ```
 */
export function rowBytes(dtype: DTypeName | DTypeInfo, n: number): number {
  const info = typeof dtype === 'string' ? dtypes[dtype] : dtype;
  if (!Number.isSafeInteger(n) || n < 0) throw new ShapeError(`row length ${n} is not a non-negative integer`);
  if (n % info.blockSize !== 0) {
    throw new ShapeError(`row length ${n} is not a multiple of ${info.name}'s block size ${info.blockSize}`);
  }
  return (n / info.blockSize) * info.bytesPerBlock;
}
