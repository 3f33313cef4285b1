import { type DTypeInfo, type DTypeName, dtypes } from '@nibble/tensor';

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

/**
 * Layout of one ggml type as GGUF needs it: the dtype row of `@nibble/tensor` (`ggmlType`, `name`, `blockSize`,
 * `bytesPerBlock`). There is one layout table, `dtypes`; this name is kept for the readers of earlier versions.
 */
export type GgmlTypeTraits = DTypeInfo;

function byGgmlId(): ReadonlyMap<number, DTypeInfo> {
  const m = new Map<number, DTypeInfo>();
  for (const info of Object.values(dtypes)) if (info.ggmlType >= 0) m.set(info.ggmlType, info);
  return m;
}

/**
 * Every ggml type a GGUF file may hold (spec §2), keyed by ggml type id: the rows of `@nibble/tensor`'s `dtypes`
 * that have an id, including types nibble has no codec for, so that any valid file can be indexed. Removed ids
 * (4, 5, 31-33, 36-38) are absent and rejected like ggml does.
 *
 * @example
 * ```ts
 * const t = ggmlTypes.get(16)!; // iq2_xxs
 * [t.name, t.blockSize, t.bytesPerBlock]; // ['iq2_xxs', 256, 66]
 * ```
 */
export const ggmlTypes: ReadonlyMap<number, GgmlTypeTraits> = /* @__PURE__ */ byGgmlId();

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
