import type { DTypeName } from '@nibble/tensor';

/**
 * GGUF metadata value type ids (`enum gguf_type`, spec §6.1).
 *
 * @example
 * ```ts
 * GgufValueType.STRING; // 8
 * ```
 */
export const GgufValueType = Object.freeze({
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const);

/** A GGUF metadata value type id. */
export type GgufValueTypeId = (typeof GgufValueType)[keyof typeof GgufValueType];

/** Name of a scalar (non-array) GGUF value type, lower-case as used by {@link GgufType}. */
export type GgufScalarType =
  | 'u8'
  | 'i8'
  | 'u16'
  | 'i16'
  | 'u32'
  | 'i32'
  | 'f32'
  | 'bool'
  | 'string'
  | 'u64'
  | 'i64'
  | 'f64';

/**
 * The stored type of a metadata value, kept beside the plain value so that a file can be rewritten byte for byte
 * (llama.cpp requires exact types, spec §6.6). An array records its element type; an array of arrays records the
 * type of each inner array, since each declares its own.
 */
export type GgufType =
  | GgufScalarType
  | { readonly array: GgufScalarType }
  | { readonly array: 'array'; readonly items: readonly GgufType[] };

/**
 * A metadata value as plain JavaScript:
 * 8/16/32-bit integers and floats -> `number`, 64-bit integers -> `bigint`, BOOL -> `boolean`, STRING -> `string`;
 * numeric arrays -> the matching typed array (`Float32Array`, `Int32Array`, `BigUint64Array`, ...), BOOL arrays ->
 * `boolean[]`, STRING arrays -> `string[]`, arrays of arrays -> `GgufValue[]`.
 */
export type GgufValue =
  | number
  | bigint
  | boolean
  | string
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array
  | boolean[]
  | string[]
  | GgufValue[];

/** Fixed byte size of each scalar type (STRING is variable: 0 here). */
export const scalarTypeIds: Readonly<Record<GgufScalarType, number>> = Object.freeze({
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  u64: 10,
  i64: 11,
  f64: 12,
});

/** Scalar type names indexed by type id (index 9, ARRAY, is undefined). */
export const scalarTypeNames: readonly (GgufScalarType | undefined)[] = [
  'u8',
  'i8',
  'u16',
  'i16',
  'u32',
  'i32',
  'f32',
  'bool',
  'string',
  undefined,
  'u64',
  'i64',
  'f64',
];

/** Byte size of each value type id (STRING and ARRAY are variable: 0). */
export const valueTypeSizes: readonly number[] = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8];

/** Layout of one ggml type as GGUF needs it: name, elements per block, bytes per block. */
export interface GgmlTypeTraits {
  readonly id: number;
  /** ggml's `type_name`, e.g. `q4_0`, `iq2_xxs`. */
  readonly name: string;
  readonly blockSize: number;
  readonly typeSize: number;
}

function t(id: number, name: string, blockSize: number, typeSize: number): GgmlTypeTraits {
  return Object.freeze({ id, name, blockSize, typeSize });
}

/**
 * Every ggml type a GGUF file may hold (spec §2), including ones nibble has no codec for, so that any valid file can
 * be indexed. Removed ids (4, 5, 31-33, 36-38) are absent and rejected like ggml does.
 *
 * @example
 * ```ts
 * ggmlTypes.get(16); // { id: 16, name: 'iq2_xxs', blockSize: 256, typeSize: 66 }
 * ```
 */
export const ggmlTypes: ReadonlyMap<number, GgmlTypeTraits> = new Map(
  [
    t(0, 'f32', 1, 4),
    t(1, 'f16', 1, 2),
    t(2, 'q4_0', 32, 18),
    t(3, 'q4_1', 32, 20),
    t(6, 'q5_0', 32, 22),
    t(7, 'q5_1', 32, 24),
    t(8, 'q8_0', 32, 34),
    t(9, 'q8_1', 32, 36),
    t(10, 'q2_K', 256, 84),
    t(11, 'q3_K', 256, 110),
    t(12, 'q4_K', 256, 144),
    t(13, 'q5_K', 256, 176),
    t(14, 'q6_K', 256, 210),
    t(15, 'q8_K', 256, 292),
    t(16, 'iq2_xxs', 256, 66),
    t(17, 'iq2_xs', 256, 74),
    t(18, 'iq3_xxs', 256, 98),
    t(19, 'iq1_s', 256, 50),
    t(20, 'iq4_nl', 32, 18),
    t(21, 'iq3_s', 256, 110),
    t(22, 'iq2_s', 256, 82),
    t(23, 'iq4_xs', 256, 136),
    t(24, 'i8', 1, 1),
    t(25, 'i16', 1, 2),
    t(26, 'i32', 1, 4),
    t(27, 'i64', 1, 8),
    t(28, 'f64', 1, 8),
    t(29, 'iq1_m', 256, 56),
    t(30, 'bf16', 1, 2),
    t(34, 'tq1_0', 256, 54),
    t(35, 'tq2_0', 256, 66),
    t(39, 'mxfp4', 32, 17),
    t(40, 'nvfp4', 64, 36),
    t(41, 'q1_0', 128, 18),
    t(42, 'q2_0', 64, 18),
  ].map((x) => [x.id, x]),
);

/**
 * One tensor of a GGUF file: where its bytes are and how to read them.
 *
 * `shape` is outermost first (numpy order, the last dimension is the row); `ne` is ggml's order (`ne[0]` is the row
 * length), i.e. `shape` reversed.
 */
export interface GgufTensorInfo {
  readonly name: string;
  /** nibble dtype, or undefined for a ggml type nibble has no dtype for (see `typeName`). */
  readonly dtype: DTypeName | undefined;
  /** ggml's name of the type, e.g. `q4_0`; always set. */
  readonly typeName: string;
  /** ggml type id (`enum ggml_type`). */
  readonly ggmlType: number;
  /** Outermost first; `shape[shape.length - 1]` is the row length. */
  readonly shape: readonly number[];
  /** ggml order: `ne[0]` is the row length. */
  readonly ne: readonly number[];
  /** Absolute byte offset of the tensor's data in the file. */
  readonly byteOffset: number;
  /** Bytes of the tensor's data (without padding). */
  readonly byteLength: number;
  /** Offset relative to the data section, as stored in the file. */
  readonly relativeOffset: number;
  /** Number of elements. */
  readonly elementCount: number;
}
