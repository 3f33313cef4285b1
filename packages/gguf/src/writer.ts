/**
 * A streaming GGUF v3 writer (spec §6.1, §6.3). The header (metadata and tensor infos) is built in memory, since
 * every tensor's offset must be known before the first data byte; tensor data is then streamed to the sink one tensor
 * at a time, each padded with zeros to the alignment, the last one included, as llama.cpp requires.
 */
import { type DTypeName, dtypes } from '@nibble/tensor';
import { GgufError } from './errors.js';
import type { GgufFile } from './file.js';
import { alignUp, DEFAULT_ALIGNMENT, GGUF_MAGIC } from './parse.js';
import {
  type GgufScalarType,
  type GgufType,
  type GgufValue,
  ggmlTypes,
  scalarTypeIds,
  valueTypeSizes,
} from './types.js';

/** Where the writer's bytes go. `write` may keep a reference to the chunk until its promise resolves. */
export interface GgufSink {
  write(chunk: Uint8Array): Promise<void>;
  /** Called once after the last write. */
  close(): Promise<void>;
  /** Called instead of `close` when writing failed. */
  abort?(reason?: unknown): Promise<void>;
}

const utf8 = new TextEncoder();
const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function writeError(message: string, ctx: { key?: string; tensor?: string } = {}): GgufError {
  return new GgufError('E_GGUF_WRITE', message, ctx);
}

/** A growable little-endian byte buffer for the header. */
class Encoder {
  buf = new Uint8Array(1 << 16);
  dv = new DataView(this.buf.buffer);
  pos = 0;

  reserve(n: number): void {
    if (this.pos + n <= this.buf.byteLength) return;
    let size = this.buf.byteLength * 2;
    while (size < this.pos + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
    this.dv = new DataView(grown.buffer);
  }
  u32(v: number): void {
    this.reserve(4);
    this.dv.setUint32(this.pos, v, true);
    this.pos += 4;
  }
  u64(v: number | bigint): void {
    this.reserve(8);
    this.dv.setBigUint64(this.pos, BigInt(v), true);
    this.pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.byteLength);
    this.buf.set(b, this.pos);
    this.pos += b.byteLength;
  }
  string(s: string): void {
    const b = utf8.encode(s);
    this.u64(b.byteLength);
    this.bytes(b);
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

const intRanges: Partial<Record<GgufScalarType, [number, number]>> = {
  u8: [0, 0xff],
  i8: [-0x80, 0x7f],
  u16: [0, 0xffff],
  i16: [-0x8000, 0x7fff],
  u32: [0, 0xffffffff],
  i32: [-0x80000000, 0x7fffffff],
};

function encodeScalar(e: Encoder, type: GgufScalarType, v: GgufValue, key: string): void {
  if (type === 'string') {
    if (typeof v !== 'string') throw writeError(`expected a string, got ${typeof v}`, { key });
    e.string(v);
    return;
  }
  if (type === 'bool') {
    if (typeof v !== 'boolean') throw writeError(`expected a boolean, got ${typeof v}`, { key });
    e.reserve(1);
    e.buf[e.pos++] = v ? 1 : 0;
    return;
  }
  if (type === 'u64' || type === 'i64') {
    if (typeof v !== 'bigint' && !(typeof v === 'number' && Number.isSafeInteger(v))) {
      throw writeError(`expected a bigint or safe integer for ${type}`, { key });
    }
    const b = BigInt(v);
    if (type === 'u64' ? b < 0n || b > 0xffffffffffffffffn : b < -(1n << 63n) || b >= 1n << 63n) {
      throw writeError(`${b} does not fit ${type}`, { key });
    }
    e.reserve(8);
    if (type === 'u64') e.dv.setBigUint64(e.pos, b, true);
    else e.dv.setBigInt64(e.pos, b, true);
    e.pos += 8;
    return;
  }
  if (typeof v !== 'number') throw writeError(`expected a number for ${type}, got ${typeof v}`, { key });
  const range = intRanges[type];
  if (range && (!Number.isInteger(v) || v < range[0] || v > range[1])) {
    throw writeError(`${v} does not fit ${type}`, { key });
  }
  const size = valueTypeSizes[scalarTypeIds[type]];
  e.reserve(size);
  const p = e.pos;
  switch (type) {
    case 'u8':
      e.dv.setUint8(p, v);
      break;
    case 'i8':
      e.dv.setInt8(p, v);
      break;
    case 'u16':
      e.dv.setUint16(p, v, true);
      break;
    case 'i16':
      e.dv.setInt16(p, v, true);
      break;
    case 'u32':
      e.dv.setUint32(p, v, true);
      break;
    case 'i32':
      e.dv.setInt32(p, v, true);
      break;
    case 'f32':
      e.dv.setFloat32(p, v, true);
      break;
    default:
      e.dv.setFloat64(p, v, true);
  }
  e.pos += size;
}

const typedArrayOf: Partial<Record<GgufScalarType, { new (n: number): ArrayBufferView; name: string }>> = {
  u8: Uint8Array,
  i8: Int8Array,
  u16: Uint16Array,
  i16: Int16Array,
  u32: Uint32Array,
  i32: Int32Array,
  f32: Float32Array,
  u64: BigUint64Array,
  i64: BigInt64Array,
  f64: Float64Array,
};

function encodeValue(e: Encoder, type: GgufType, v: GgufValue, key: string, withTypeId: boolean): void {
  if (typeof type === 'string') {
    if (withTypeId) e.u32(scalarTypeIds[type]);
    encodeScalar(e, type, v, key);
    return;
  }
  if (withTypeId) e.u32(9);
  if (type.array === 'array') {
    if (!Array.isArray(v)) throw writeError('expected an array of arrays', { key });
    const items = (type as { items: readonly GgufType[] }).items;
    if (items.length !== v.length) throw writeError('array of arrays: items and values differ in length', { key });
    e.u32(9);
    e.u64(v.length);
    for (let i = 0; i < v.length; i++) {
      if (typeof items[i] === 'string') throw writeError('array of arrays: an item type is not an array', { key });
      encodeValue(e, items[i], v[i], key, false);
    }
    return;
  }
  const elem = type.array;
  e.u32(scalarTypeIds[elem]);
  const ctor = typedArrayOf[elem];
  if (ctor && ArrayBuffer.isView(v) && v.constructor === ctor) {
    const view = v as unknown as ArrayLike<number>;
    e.u64(view.length);
    if (littleEndianHost) e.bytes(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    else for (let i = 0; i < view.length; i++) encodeScalar(e, elem, view[i] as GgufValue, key);
    return;
  }
  if (!Array.isArray(v) && !ArrayBuffer.isView(v)) throw writeError(`expected an array of ${elem}`, { key });
  const list = v as ArrayLike<GgufValue>;
  e.u64(list.length);
  for (let i = 0; i < list.length; i++) encodeScalar(e, elem, list[i], key);
}

/**
 * Infers the stored type of a value whose type is unambiguous (not a plain number).
 *
 * @example
 * ```ts
 * inferGgufType(new Float32Array(2)); // { array: 'f32' }
 * inferGgufType(3); // undefined: say 'u32', 'i32' or 'f32'
 * ```
 */
export function inferGgufType(value: GgufValue): GgufType | undefined {
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'bigint') return 'i64';
  if (value instanceof Float32Array) return { array: 'f32' };
  if (value instanceof Float64Array) return { array: 'f64' };
  if (value instanceof Int32Array) return { array: 'i32' };
  if (value instanceof Uint32Array) return { array: 'u32' };
  if (value instanceof Int16Array) return { array: 'i16' };
  if (value instanceof Uint16Array) return { array: 'u16' };
  if (value instanceof Int8Array) return { array: 'i8' };
  if (value instanceof Uint8Array) return { array: 'u8' };
  if (value instanceof BigInt64Array) return { array: 'i64' };
  if (value instanceof BigUint64Array) return { array: 'u64' };
  if (Array.isArray(value)) {
    if (value.length > 0 && typeof value[0] === 'string') return { array: 'string' };
    if (value.length > 0 && typeof value[0] === 'boolean') return { array: 'bool' };
  }
  return undefined;
}

/**
 * Metadata entries with their stored types, in insertion order. Keys are unique; setting a key again replaces it in
 * place.
 *
 * @example
 * ```ts
 * const m = new GgufMetadataBuilder()
 *   .setString('general.architecture', 'llama')
 *   .setU32('llama.block_count', 22)
 *   .setF32('llama.rope.freq_base', 10000)
 *   .set('tokenizer.ggml.tokens', ['<unk>', '<s>', '</s>']);
 * ```
 */
export class GgufMetadataBuilder {
  readonly #entries = new Map<string, { type: GgufType; value: GgufValue }>();

  /** Sets `key` to `value` stored as `type`; the type may be left out for strings, booleans, bigints and arrays. */
  set(key: string, value: GgufValue, type?: GgufType): this {
    if (key.length === 0) throw writeError('metadata keys must not be empty');
    const t = type ?? inferGgufType(value);
    if (t === undefined) throw writeError('give the stored type of a number (e.g. u32, f32)', { key });
    // Encoding now validates the value against its type, so a bad value fails at `set`, not mid-stream.
    encodeValue(new Encoder(), t, value, key, true);
    this.#entries.set(key, { type: t, value });
    return this;
  }
  setString(key: string, value: string): this {
    return this.set(key, value, 'string');
  }
  setU32(key: string, value: number): this {
    return this.set(key, value, 'u32');
  }
  setI32(key: string, value: number): this {
    return this.set(key, value, 'i32');
  }
  setF32(key: string, value: number): this {
    return this.set(key, value, 'f32');
  }
  setBool(key: string, value: boolean): this {
    return this.set(key, value, 'bool');
  }
  /** Removes a key; returns whether it was present. */
  delete(key: string): boolean {
    return this.#entries.delete(key);
  }
  has(key: string): boolean {
    return this.#entries.has(key);
  }
  get(key: string): { type: GgufType; value: GgufValue } | undefined {
    return this.#entries.get(key);
  }
  /** Copies every entry of a file (or those `filter` keeps), with their stored types. */
  copyFrom(file: Pick<GgufFile, 'metadata' | 'metadataTypes'>, filter?: (key: string) => boolean): this {
    for (const [key, value] of file.metadata) {
      if (filter && !filter(key)) continue;
      this.set(key, value, file.metadataTypes.get(key));
    }
    return this;
  }
  get size(): number {
    return this.#entries.size;
  }
  entries(): IterableIterator<[string, { type: GgufType; value: GgufValue }]> {
    return this.#entries.entries();
  }
}

/** A tensor declared to the writer: name, type (a nibble dtype or a ggml type id) and shape (outermost first). */
export interface GgufTensorSpec {
  name: string;
  dtype: DTypeName | number;
  /** Outermost first; the last dimension is the row. Stored as `ne` = reversed. */
  shape: readonly number[];
}

interface Declared {
  name: string;
  ggmlType: number;
  ne: number[];
  byteLength: number;
  relativeOffset: number;
}

/** Options of {@link GgufWriter}. */
export interface GgufWriterOptions {
  /** Data alignment. Default: `general.alignment` of the metadata if set, else 32. A non-default value is written to `general.alignment`. */
  alignment?: number;
}

/**
 * Writes a GGUF v3 file to a {@link GgufSink} without holding it in memory: declare metadata and tensors, then
 * write each tensor's bytes in declaration order, then `finish()`.
 *
 * @example
 * ```ts
 * const out = blobSink();
 * const w = new GgufWriter(out);
 * w.metadata.setString('general.architecture', 'llama');
 * w.addTensor({ name: 'output_norm.weight', dtype: 'f32', shape: [64] });
 * await w.writeTensor('output_norm.weight', new Uint8Array(256));
 * await w.finish();
 * const file = await openGguf(out.blob());
 * ```
 */
export class GgufWriter {
  /** The metadata to write; edit it before the first tensor is written. */
  readonly metadata = new GgufMetadataBuilder();
  readonly #sink: GgufSink;
  readonly #options: GgufWriterOptions;
  readonly #tensors: Declared[] = [];
  readonly #names = new Set<string>();
  #alignment = DEFAULT_ALIGNMENT;
  #headerWritten = false;
  #next = 0;
  #finished = false;
  #failed = false;
  #bytesWritten = 0;

  constructor(sink: GgufSink, options: GgufWriterOptions = {}) {
    this.#sink = sink;
    this.#options = options;
  }

  /** Bytes written so far. */
  get bytesWritten(): number {
    return this.#bytesWritten;
  }

  /** Declares the next tensor. All tensors must be declared before the first one is written. */
  addTensor(spec: GgufTensorSpec): this {
    if (this.#headerWritten)
      throw writeError('tensors must be declared before the header is written', { tensor: spec.name });
    const { name } = spec;
    const ctx = { tensor: name };
    if (utf8.encode(name).byteLength > 63) throw writeError('tensor names are at most 63 bytes', ctx);
    if (this.#names.has(name)) throw writeError('duplicate tensor name', ctx);
    const ggmlType = typeof spec.dtype === 'number' ? spec.dtype : dtypes[spec.dtype]?.ggmlType;
    const traits = ggmlType === undefined ? undefined : ggmlTypes.get(ggmlType);
    if (!traits) throw writeError(`GGUF cannot store dtype ${String(spec.dtype)}`, ctx);
    if (spec.shape.length < 1 || spec.shape.length > 4) throw writeError('tensors have 1 to 4 dimensions', ctx);
    const ne = [...spec.shape].reverse();
    let elements = 1;
    for (const n of ne) {
      if (!Number.isSafeInteger(n) || n < 0) throw writeError(`bad dimension ${n}`, ctx);
      elements *= n;
    }
    if (!Number.isSafeInteger(elements)) throw writeError('element count overflows', ctx);
    if (ne[0] % traits.blockSize !== 0) {
      throw writeError(`row length ${ne[0]} is not a multiple of ${traits.name}'s block size ${traits.blockSize}`, ctx);
    }
    this.#names.add(name);
    this.#tensors.push({
      name,
      ggmlType,
      ne,
      byteLength: (elements / traits.blockSize) * traits.bytesPerBlock,
      relativeOffset: 0,
    } as Declared);
    return this;
  }

  /** Serializes and writes the header (called by the first `writeTensor` or `finish` if not called before). */
  async writeHeader(): Promise<void> {
    if (this.#headerWritten) throw writeError('the header was already written');
    const alignment = this.#options.alignment ?? (this.metadata.get('general.alignment')?.value as number) ?? 32;
    if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
      throw writeError(`alignment ${alignment} is not a power of two`, { key: 'general.alignment' });
    }
    if (
      this.#options.alignment !== undefined &&
      (alignment !== DEFAULT_ALIGNMENT || this.metadata.has('general.alignment'))
    ) {
      this.metadata.setU32('general.alignment', alignment);
    }
    this.#alignment = alignment;
    this.#headerWritten = true;
    let offset = 0;
    for (const t of this.#tensors) {
      t.relativeOffset = offset;
      offset += alignUp(t.byteLength, alignment);
    }
    const e = new Encoder();
    e.u32(GGUF_MAGIC);
    e.u32(3);
    e.u64(this.#tensors.length);
    e.u64(this.metadata.size);
    for (const [key, { type, value }] of this.metadata.entries()) {
      e.string(key);
      encodeValue(e, type, value, key, true);
    }
    for (const t of this.#tensors) {
      e.string(t.name);
      e.u32(t.ne.length);
      for (const n of t.ne) e.u64(n);
      e.u32(t.ggmlType);
      e.u64(t.relativeOffset);
    }
    const end = alignUp(e.pos, alignment);
    e.reserve(end - e.pos);
    e.buf.fill(0, e.pos, end);
    e.pos = end;
    await this.#write(e.result());
  }

  /**
   * Writes the bytes of the next declared tensor (in declaration order), then its zero padding. `name` must match
   * the declaration; `data` may be any typed array view and must have exactly the tensor's byte length.
   */
  async writeTensor(name: string, data: ArrayBufferView): Promise<void> {
    if (!this.#headerWritten) await this.writeHeader();
    const t = this.#tensors[this.#next];
    if (!t) throw writeError('no more tensors were declared', { tensor: name });
    if (t.name !== name) throw writeError(`expected tensor '${t.name}' next`, { tensor: name });
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength !== t.byteLength) {
      throw writeError(`expected ${t.byteLength} bytes, got ${bytes.byteLength}`, { tensor: name });
    }
    this.#next++;
    await this.#write(bytes);
    const pad = alignUp(t.byteLength, this.#alignment) - t.byteLength;
    if (pad > 0) await this.#write(new Uint8Array(pad));
  }

  /** Checks that every declared tensor was written and closes the sink. */
  async finish(): Promise<void> {
    if (this.#finished) return;
    if (!this.#headerWritten) await this.writeHeader();
    if (this.#next !== this.#tensors.length) {
      const missing = this.#tensors[this.#next].name;
      await this.abort(writeError('finish() before every tensor was written', { tensor: missing }));
      throw writeError(`finish() before every tensor was written`, { tensor: missing });
    }
    this.#finished = true;
    await this.#sink.close();
  }

  /** Abandons the file (a Node file sink deletes its temporary file). */
  async abort(reason?: unknown): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    this.#failed = true;
    await this.#sink.abort?.(reason);
  }

  async #write(chunk: Uint8Array): Promise<void> {
    if (this.#finished) throw writeError(this.#failed ? 'the writer was aborted' : 'the writer is finished');
    try {
      await this.#sink.write(chunk);
    } catch (e) {
      await this.abort(e);
      throw e;
    }
    this.#bytesWritten += chunk.byteLength;
  }
}

/**
 * A sink that writes to a `WritableStream` (e.g. a File System Access API stream), awaiting its backpressure.
 *
 * @example
 * ```ts
 * const w = new GgufWriter(writableStreamSink(await fileHandle.createWritable()));
 * ```
 */
export function writableStreamSink(stream: WritableStream<Uint8Array>): GgufSink {
  const writer = stream.getWriter();
  return {
    async write(chunk) {
      await writer.ready;
      await writer.write(chunk);
    },
    async close() {
      await writer.close();
    },
    async abort(reason) {
      await writer.abort(reason);
    },
  };
}

/** A {@link GgufSink} that builds a `Blob`; call `blob()` after `finish()`. */
export interface BlobSink extends GgufSink {
  blob(): Blob;
}

/**
 * A sink that builds a `Blob` part by part. Browsers may keep large Blobs on disk, so this does not need the file in
 * JS memory at once.
 *
 * @example
 * ```ts
 * const out = blobSink();
 * // ... write with a GgufWriter, then:
 * const blob = out.blob();
 * ```
 */
export function blobSink(type = 'application/octet-stream'): BlobSink {
  let blob = new Blob([], { type });
  let closed = false;
  return {
    async write(chunk) {
      // Copy: the caller may reuse its buffer after the write resolves.
      blob = new Blob([blob, chunk.slice()], { type });
    },
    async close() {
      closed = true;
    },
    blob() {
      if (!closed) throw writeError('blob() before finish()');
      return blob;
    },
  };
}

/**
 * Copies a GGUF file to a sink: the same metadata (with the same stored types) and tensors, read one at a time.
 * `transform` may edit the metadata before the header is written.
 *
 * @example
 * ```ts
 * const out = blobSink();
 * await rewriteGguf(await openGguf(bytes), out);
 * ```
 */
export async function rewriteGguf(
  file: GgufFile,
  sink: GgufSink,
  transform?: (metadata: GgufMetadataBuilder) => void,
): Promise<void> {
  const w = new GgufWriter(sink, { alignment: file.alignment === DEFAULT_ALIGNMENT ? undefined : file.alignment });
  w.metadata.copyFrom(file);
  transform?.(w.metadata);
  for (const t of file.tensors) w.addTensor({ name: t.name, dtype: t.ggmlType, shape: t.shape });
  try {
    for (const t of file.tensors) await w.writeTensor(t.name, await file.readTensorBytes(t));
    await w.finish();
  } catch (e) {
    await w.abort(e);
    throw e;
  }
}
