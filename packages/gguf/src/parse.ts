/**
 * The GGUF header parser (spec §6). It runs synchronously over a prefix of the file and validates every count and
 * length against the bytes that remain in the *whole* file before sizing anything by it, like ggml's `gguf.cpp`.
 * When the prefix is too short it throws {@link NeedMore}; async sources then fetch more and parse again.
 */
import { type DTypeName, dtypeFromGgmlType } from '@nibble/tensor';
import { GgufError } from './errors.js';
import {
  type GgufScalarType,
  type GgufTensorInfo,
  type GgufType,
  type GgufValue,
  ggmlTypes,
  scalarTypeNames,
  valueTypeSizes,
} from './types.js';

/** "GGUF" read as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;
/** `GGUF_DEFAULT_ALIGNMENT`: 32 bytes, used when `general.alignment` is absent. */
export const DEFAULT_ALIGNMENT = 32;
/** ggml's limits (spec §6.5). */
const MAX_STRING_LENGTH = 1 << 30;
const MAX_ARRAY_LENGTH = 1 << 30;
const MAX_TENSOR_NAME = 63;
const MAX_DIMS = 4;
/** Nested arrays deeper than this are refused, so a crafted file cannot exhaust the stack. */
const MAX_NESTING = 8;
/** Smallest possible encodings, used to check counts against the remaining bytes before looping over them. */
const MIN_KV_BYTES = 8 + 1 + 4 + 1;
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8;

/** Thrown (internally) when the parser needs bytes up to `end` that the prefix does not hold yet. */
export class NeedMore {
  constructor(readonly end: number) {}
}

/** What the header says; {@link GgufFile} wraps it. */
export interface ParsedHeader {
  version: number;
  alignment: number;
  metadata: Map<string, GgufValue>;
  metadataTypes: Map<string, GgufType>;
  tensors: GgufTensorInfo[];
  /** End of the tensor infos. */
  headerByteLength: number;
  /** Absolute offset of the data section. */
  dataOffset: number;
  /** Bytes of the data section the tensors use, padding included. */
  dataByteLength: number;
  fileSize: number;
}

/**
 * Rounds `o` up to a multiple of `a` (`GGML_PAD`).
 *
 * @example
 * ```ts
 * alignUp(33, 32); // 64
 * ```
 */
export function alignUp(o: number, a: number): number {
  const r = o % a;
  return r === 0 ? o : o + (a - r);
}

// ignoreBOM: a token may be exactly U+FEFF, which the default decoder would drop.
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** Decodes UTF-8; short ASCII strings (most token strings) skip TextDecoder, which is slow per call. */
function decodeString(buf: Uint8Array, start: number, len: number): string {
  if (len <= 24) {
    let ascii = true;
    for (let i = start; i < start + len; i++) {
      if (buf[i] >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, buf.subarray(start, start + len) as unknown as number[]);
  }
  return utf8.decode(buf.subarray(start, start + len));
}

class Cursor {
  pos = 0;
  readonly dv: DataView;
  constructor(
    readonly buf: Uint8Array,
    readonly fileSize: number,
  ) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  remaining(): number {
    return this.fileSize - this.pos;
  }

  need(n: number, what: string, ctx: { key?: string; tensor?: string }): void {
    const end = this.pos + n;
    if (end > this.fileSize) {
      throw new GgufError('E_GGUF_TRUNCATED', `file ends inside ${what}`, { offset: this.pos, ...ctx });
    }
    if (end > this.buf.byteLength) throw new NeedMore(end);
  }

  u8(what: string, ctx: { key?: string; tensor?: string }): number {
    this.need(1, what, ctx);
    return this.buf[this.pos++];
  }

  u32(what: string, ctx: { key?: string; tensor?: string }): number {
    this.need(4, what, ctx);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** A u64 as a number; values past 2^53 come back inexact but still larger than every limit they are checked against. */
  u64(what: string, ctx: { key?: string; tensor?: string }): number {
    this.need(8, what, ctx);
    const lo = this.dv.getUint32(this.pos, true);
    const hi = this.dv.getUint32(this.pos + 4, true);
    this.pos += 8;
    return hi * 4294967296 + lo;
  }

  string(what: string, ctx: { key?: string; tensor?: string }, maxLength = MAX_STRING_LENGTH): string {
    const at = this.pos;
    const len = this.u64(`the length of ${what}`, ctx);
    if (len > maxLength || len > this.remaining()) {
      const code = maxLength === MAX_TENSOR_NAME ? 'E_GGUF_TENSOR_NAME' : 'E_GGUF_STRING_LENGTH';
      const limit = len > maxLength ? `the limit is ${maxLength}` : `only ${this.remaining()} bytes remain`;
      throw new GgufError(code, `${what} has length ${len}; ${limit}`, { offset: at, ...ctx });
    }
    this.need(len, what, ctx);
    const s = decodeString(this.buf, this.pos, len);
    this.pos += len;
    return s;
  }
}

function typeError(id: number, at: number, key: string): GgufError {
  return new GgufError('E_GGUF_VALUE_TYPE', `unknown metadata value type ${id}`, { offset: at, key });
}

function readScalar(c: Cursor, type: GgufScalarType, key: string): GgufValue {
  const ctx = { key };
  switch (type) {
    case 'string':
      return c.string('a string value', ctx);
    case 'bool':
      // ggml treats any non-zero byte as true.
      return c.u8('a bool', ctx) !== 0;
    default: {
      const size = valueTypeSizes[typeIdOf(type)];
      c.need(size, `a ${type} value`, ctx);
      const p = c.pos;
      c.pos += size;
      switch (type) {
        case 'u8':
          return c.dv.getUint8(p);
        case 'i8':
          return c.dv.getInt8(p);
        case 'u16':
          return c.dv.getUint16(p, true);
        case 'i16':
          return c.dv.getInt16(p, true);
        case 'u32':
          return c.dv.getUint32(p, true);
        case 'i32':
          return c.dv.getInt32(p, true);
        case 'f32':
          return c.dv.getFloat32(p, true);
        case 'u64':
          return c.dv.getBigUint64(p, true);
        case 'i64':
          return c.dv.getBigInt64(p, true);
        default:
          return c.dv.getFloat64(p, true);
      }
    }
  }
}

function typeIdOf(type: GgufScalarType): number {
  return scalarTypeNames.indexOf(type);
}

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function numericArray(c: Cursor, type: GgufScalarType, n: number): GgufValue {
  const size = valueTypeSizes[typeIdOf(type)];
  const src = c.buf.subarray(c.pos, c.pos + n * size);
  let out: Exclude<GgufValue, number | bigint | boolean | string | unknown[]>;
  switch (type) {
    case 'u8':
      out = new Uint8Array(n);
      break;
    case 'i8':
      out = new Int8Array(n);
      break;
    case 'u16':
      out = new Uint16Array(n);
      break;
    case 'i16':
      out = new Int16Array(n);
      break;
    case 'u32':
      out = new Uint32Array(n);
      break;
    case 'i32':
      out = new Int32Array(n);
      break;
    case 'f32':
      out = new Float32Array(n);
      break;
    case 'u64':
      out = new BigUint64Array(n);
      break;
    case 'i64':
      out = new BigInt64Array(n);
      break;
    default:
      out = new Float64Array(n);
  }
  // The file is little-endian; copying bytes is exact on little-endian hosts (all current browsers and Node builds).
  if (littleEndianHost) new Uint8Array(out.buffer).set(src);
  else {
    const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
    for (let i = 0; i < n; i++) {
      const p = i * size;
      if (out instanceof Float32Array) out[i] = dv.getFloat32(p, true);
      else if (out instanceof Float64Array) out[i] = dv.getFloat64(p, true);
      else if (out instanceof BigUint64Array) out[i] = dv.getBigUint64(p, true);
      else if (out instanceof BigInt64Array) out[i] = dv.getBigInt64(p, true);
      else if (out instanceof Uint32Array) out[i] = dv.getUint32(p, true);
      else if (out instanceof Int32Array) out[i] = dv.getInt32(p, true);
      else if (out instanceof Uint16Array) out[i] = dv.getUint16(p, true);
      else if (out instanceof Int16Array) out[i] = dv.getInt16(p, true);
      else if (out instanceof Int8Array) out[i] = dv.getInt8(p);
      else (out as Uint8Array)[i] = dv.getUint8(p);
    }
  }
  c.pos += n * size;
  return out;
}

function readArray(c: Cursor, key: string, depth: number): { value: GgufValue; type: GgufType } {
  const ctx = { key };
  const typeAt = c.pos;
  const elemId = c.u32('an array element type', ctx);
  if (elemId > 12) throw typeError(elemId, typeAt, key);
  const lenAt = c.pos;
  const n = c.u64('an array length', ctx);
  const minElem = elemId === 8 ? 8 : elemId === 9 ? 12 : valueTypeSizes[elemId];
  if (n > MAX_ARRAY_LENGTH || n * minElem > c.remaining()) {
    const limit = n > MAX_ARRAY_LENGTH ? `the limit is ${MAX_ARRAY_LENGTH}` : `only ${c.remaining()} bytes remain`;
    throw new GgufError('E_GGUF_ARRAY_LENGTH', `array of ${n} elements; ${limit}`, { offset: lenAt, key });
  }
  if (elemId === 9) {
    if (depth >= MAX_NESTING) {
      throw new GgufError('E_GGUF_NESTING', `arrays nested deeper than ${MAX_NESTING}`, { offset: typeAt, key });
    }
    const values: GgufValue[] = [];
    const items: GgufType[] = [];
    for (let i = 0; i < n; i++) {
      const inner = readArray(c, key, depth + 1);
      values.push(inner.value);
      items.push(inner.type);
    }
    return { value: values, type: { array: 'array', items } };
  }
  const elem = scalarTypeNames[elemId] as GgufScalarType;
  if (elem === 'string') {
    const values: string[] = new Array(n);
    for (let i = 0; i < n; i++) values[i] = c.string('a string array element', ctx);
    return { value: values, type: { array: 'string' } };
  }
  c.need(n * minElem, `an array of ${n} ${elem}`, ctx);
  if (elem === 'bool') {
    const values: boolean[] = new Array(n);
    for (let i = 0; i < n; i++) values[i] = c.buf[c.pos + i] !== 0;
    c.pos += n;
    return { value: values, type: { array: 'bool' } };
  }
  return { value: numericArray(c, elem, n), type: { array: elem } };
}

/**
 * Parses and validates a GGUF header from `buf`, the first `buf.byteLength` bytes of a file of `fileSize` bytes.
 * Throws {@link GgufError} on invalid input and {@link NeedMore} when `buf` is too short.
 */
export function parseHeader(buf: Uint8Array, fileSize: number): ParsedHeader {
  const c = new Cursor(buf, fileSize);
  const none = {};

  c.need(4, 'the magic', none);
  if (c.dv.getUint32(0, true) !== GGUF_MAGIC) {
    throw new GgufError('E_GGUF_MAGIC', 'not a GGUF file: the first 4 bytes are not "GGUF"', { offset: 0 });
  }
  c.pos = 4;
  const version = c.u32('the version', none);
  if (version !== 0 && (version & 0xffff) === 0) {
    throw new GgufError('E_GGUF_ENDIAN', 'big-endian GGUF files are not supported', { offset: 4 });
  }
  if (version === 1) {
    throw new GgufError('E_GGUF_VERSION', 'GGUF v1 is obsolete and not supported; convert the file to v3', {
      offset: 4,
    });
  }
  if (version < 2 || version > 3) {
    throw new GgufError('E_GGUF_VERSION', `unsupported GGUF version ${version}; expected 2 or 3`, { offset: 4 });
  }

  const tensorCountAt = c.pos;
  const tensorCount = c.u64('the tensor count', none);
  const kvCount = c.u64('the metadata count', none);
  if (tensorCount * MIN_TENSOR_INFO_BYTES + kvCount * MIN_KV_BYTES > c.remaining()) {
    throw new GgufError(
      'E_GGUF_COUNT',
      `${tensorCount} tensors and ${kvCount} metadata entries cannot fit in the ${c.remaining()} remaining bytes`,
      { offset: tensorCountAt },
    );
  }

  const metadata = new Map<string, GgufValue>();
  const metadataTypes = new Map<string, GgufType>();
  for (let i = 0; i < kvCount; i++) {
    const keyAt = c.pos;
    const key = c.string(`the name of metadata entry ${i}`, none);
    if (key.length === 0) throw new GgufError('E_GGUF_KEY', `metadata entry ${i} has an empty key`, { offset: keyAt });
    if (metadata.has(key))
      throw new GgufError('E_GGUF_DUPLICATE_KEY', 'duplicate metadata key', { offset: keyAt, key });
    const typeAt = c.pos;
    const typeId = c.u32('a value type', { key });
    if (typeId > 12) throw typeError(typeId, typeAt, key);
    if (typeId === 9) {
      const { value, type } = readArray(c, key, 1);
      metadata.set(key, value);
      metadataTypes.set(key, type);
    } else {
      const type = scalarTypeNames[typeId] as GgufScalarType;
      metadata.set(key, readScalar(c, type, key));
      metadataTypes.set(key, type);
    }
  }

  let alignment = DEFAULT_ALIGNMENT;
  if (metadata.has('general.alignment')) {
    const a = metadata.get('general.alignment');
    if (metadataTypes.get('general.alignment') !== 'u32' || typeof a !== 'number' || a === 0 || (a & (a - 1)) !== 0) {
      throw new GgufError('E_GGUF_ALIGNMENT', `general.alignment must be a UINT32 power of two, got ${String(a)}`, {
        key: 'general.alignment',
      });
    }
    alignment = a;
  }

  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  let expectedOffset = 0;
  const pending: { info: Omit<GgufTensorInfo, 'byteOffset'> }[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const nameAt = c.pos;
    const name = c.string(`the name of tensor ${i}`, none, MAX_TENSOR_NAME);
    if (names.has(name)) {
      throw new GgufError('E_GGUF_DUPLICATE_TENSOR', 'duplicate tensor name', { offset: nameAt, tensor: name });
    }
    names.add(name);
    const ctx = { tensor: name };
    const dimsAt = c.pos;
    const nDims = c.u32('the dimension count', ctx);
    if (nDims < 1 || nDims > MAX_DIMS) {
      throw new GgufError('E_GGUF_DIMS', `${nDims} dimensions; expected 1 to ${MAX_DIMS}`, { offset: dimsAt, ...ctx });
    }
    const ne: number[] = [];
    let elements = 1;
    let zero = false;
    for (let d = 0; d < nDims; d++) {
      const at = c.pos;
      const n = c.u64('a dimension', ctx);
      if (!Number.isSafeInteger(n)) {
        throw new GgufError('E_GGUF_DIMS', `dimension ${d} is ${n}, out of range`, { offset: at, ...ctx });
      }
      ne.push(n);
      if (n === 0) zero = true;
      else if (!zero) {
        elements *= n;
        if (!Number.isSafeInteger(elements)) {
          throw new GgufError('E_GGUF_DIMS', 'element count overflows', { offset: at, ...ctx });
        }
      }
    }
    if (zero) elements = 0;
    const typeAt = c.pos;
    const ggmlType = c.u32('the tensor type', ctx);
    const traits = ggmlTypes.get(ggmlType);
    if (!traits) {
      throw new GgufError('E_GGUF_TENSOR_TYPE', `unknown or removed ggml type ${ggmlType}`, { offset: typeAt, ...ctx });
    }
    if (ne[0] % traits.blockSize !== 0) {
      throw new GgufError(
        'E_GGUF_TENSOR_TYPE',
        `row length ${ne[0]} is not a multiple of ${traits.name}'s block size ${traits.blockSize}`,
        { offset: typeAt, ...ctx },
      );
    }
    const byteLength = (elements / traits.blockSize) * traits.bytesPerBlock;
    const offsetAt = c.pos;
    const relativeOffset = c.u64('the tensor offset', ctx);
    if (relativeOffset !== expectedOffset) {
      throw new GgufError(
        'E_GGUF_OFFSET',
        `data offset ${relativeOffset}; tensors must be stored in order, aligned to ${alignment}, so expected ${expectedOffset}`,
        { offset: offsetAt, ...ctx },
      );
    }
    expectedOffset += alignUp(byteLength, alignment);
    if (!Number.isSafeInteger(expectedOffset) || expectedOffset > fileSize) {
      throw new GgufError('E_GGUF_DATA_SIZE', `tensor data of ${byteLength} bytes cannot fit in the file`, {
        offset: offsetAt,
        ...ctx,
      });
    }
    const dtype: DTypeName | undefined = dtypeFromGgmlType(ggmlType)?.name;
    pending.push({
      info: {
        name,
        dtype,
        typeName: traits.name,
        ggmlType,
        shape: Object.freeze([...ne].reverse()),
        ne: Object.freeze(ne),
        byteLength,
        relativeOffset,
        elementCount: elements,
      },
    });
  }

  const headerByteLength = c.pos;
  const dataOffset = alignUp(headerByteLength, alignment);
  // ggml reads the data section as one blob of Σ PAD(nbytes), so the last tensor's padding must be present too.
  if (tensorCount > 0 && dataOffset + expectedOffset > fileSize) {
    throw new GgufError(
      'E_GGUF_DATA_SIZE',
      `the data section needs ${expectedOffset} bytes from byte ${dataOffset}, but the file has ${fileSize} bytes`,
      { offset: dataOffset },
    );
  }
  for (const { info } of pending)
    tensors.push(Object.freeze({ ...info, byteOffset: dataOffset + info.relativeOffset }));

  return {
    version,
    alignment,
    metadata,
    metadataTypes,
    tensors,
    headerByteLength,
    dataOffset,
    dataByteLength: expectedOffset,
    fileSize,
  };
}
