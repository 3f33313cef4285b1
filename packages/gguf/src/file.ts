import { type HostTensor, hostTensor } from '@nibble/tensor';
import { GgufError } from './errors.js';
import { NeedMore, type ParsedHeader, parseHeader } from './parse.js';
import { type ByteSource, blobSource, bytesSource, type UrlSourceOptions, urlSource } from './source.js';
import type { GgufTensorInfo, GgufType, GgufValue } from './types.js';

function unsupported(info: GgufTensorInfo): GgufError {
  return new GgufError('E_GGUF_UNSUPPORTED_TYPE', `ggml type ${info.typeName} has no nibble dtype`, {
    tensor: info.name,
  });
}

/**
 * An opened GGUF file: its header (version, metadata, tensor table) parsed and validated, and its tensors read on
 * demand from the source it was opened from. Made by {@link parseGguf}, {@link openGguf} or `openGgufFile`.
 *
 * @example
 * ```ts
 * const file = parseGguf(bytes);
 * file.tensors.length; // 48
 * ```
 */
export class GgufFile {
  /** GGUF version (2 or 3). */
  readonly version: number;
  /** Data alignment (`general.alignment`, default 32). */
  readonly alignment: number;
  /** Every metadata entry, in file order, as plain values (see {@link GgufValue}). A `Map`, so no key can reach a prototype. */
  readonly metadata: Map<string, GgufValue>;
  /** The stored type of every metadata entry (needed to rewrite the file with the same types). */
  readonly metadataTypes: Map<string, GgufType>;
  /** Every tensor, in file order. */
  readonly tensors: readonly GgufTensorInfo[];
  /** Bytes of the header up to the end of the tensor infos (before padding). */
  readonly headerByteLength: number;
  /** Absolute offset of the data section. */
  readonly dataOffset: number;
  /** Total file size in bytes. */
  readonly fileSize: number;
  /** Where the bytes come from. */
  readonly source: ByteSource;
  readonly #byName: Map<string, GgufTensorInfo>;

  constructor(header: ParsedHeader, source: ByteSource) {
    this.version = header.version;
    this.alignment = header.alignment;
    this.metadata = header.metadata;
    this.metadataTypes = header.metadataTypes;
    this.tensors = Object.freeze(header.tensors);
    this.headerByteLength = header.headerByteLength;
    this.dataOffset = header.dataOffset;
    this.fileSize = header.fileSize;
    this.source = source;
    this.#byName = new Map(header.tensors.map((t) => [t.name, t]));
  }

  /**
   * The tensor info of this name, or undefined.
   *
   * @example
   * ```ts
   * file.getTensor('token_embd.weight')?.shape; // [512, 64]
   * ```
   */
  getTensor(name: string): GgufTensorInfo | undefined {
    return this.#byName.get(name);
  }

  /**
   * The raw bytes of a tensor: a view into the file when it is in memory, otherwise one read from the source.
   *
   * @example
   * ```ts
   * const bytes = await file.readTensorBytes('output_norm.weight'); // 256 bytes for 64 f32
   * ```
   */
  async readTensorBytes(nameOrInfo: string | GgufTensorInfo): Promise<Uint8Array> {
    const info = typeof nameOrInfo === 'string' ? this.#require(nameOrInfo) : nameOrInfo;
    return this.source.read(info.byteOffset, info.byteLength);
  }

  /**
   * A tensor as a {@link HostTensor}: a view, not a copy, when the file is in memory. Throws `E_GGUF_UNSUPPORTED_TYPE` for a
   * ggml type nibble has no dtype for, and `E_GGUF_TENSOR_NOT_FOUND` for an unknown name.
   *
   * @example
   * ```ts
   * const t = await file.readTensor('output_norm.weight');
   * t.dtype; // 'f32'
   * t.shape; // [64]
   * ```
   */
  async readTensor(name: string): Promise<HostTensor> {
    const info = this.#require(name);
    if (info.dtype === undefined) throw unsupported(info);
    return hostTensor(info.dtype, info.shape, await this.readTensorBytes(info));
  }

  /**
   * A tensor synchronously; only for files opened from memory (e.g. {@link parseGguf}).
   *
   * @example
   * ```ts
   * parseGguf(bytes).readTensorSync('output_norm.weight').data.byteLength; // 256
   * ```
   */
  readTensorSync(name: string): HostTensor {
    const info = this.#require(name);
    const bytes = this.source.bytes;
    if (!bytes) throw new GgufError('E_GGUF_SOURCE', 'readTensorSync needs a file held in memory', { tensor: name });
    if (info.dtype === undefined) throw unsupported(info);
    return hostTensor(info.dtype, info.shape, bytes.subarray(info.byteOffset, info.byteOffset + info.byteLength));
  }

  /** Releases the source (closes the file handle of a file opened by path). */
  async close(): Promise<void> {
    await this.source.close?.();
  }

  #require(name: string): GgufTensorInfo {
    const info = this.#byName.get(name);
    if (!info) throw new GgufError('E_GGUF_TENSOR_NOT_FOUND', 'no such tensor', { tensor: name });
    return info;
  }
}

/**
 * Parses a whole GGUF file held in memory, synchronously. Tensors read from it are views into `bytes`.
 *
 * @example
 * ```ts
 * const file = parseGguf(new Uint8Array(await (await fetch(url)).arrayBuffer()));
 * file.metadata.get('general.architecture'); // 'llama'
 * ```
 */
export function parseGguf(bytes: Uint8Array | ArrayBuffer): GgufFile {
  const source = bytesSource(bytes);
  const all = source.bytes as Uint8Array;
  try {
    return new GgufFile(parseHeader(all, all.byteLength), source);
  } catch (e) {
    if (e instanceof NeedMore) throw new Error('unreachable: the whole file was given');
    throw e;
  }
}

/** Options of {@link openGguf} and {@link openGgufSource}. */
export interface OpenGgufOptions extends UrlSourceOptions {
  /** Bytes read at first from a non-memory source; more are read, doubling, if the header is longer. Default 1 MiB. */
  initialReadBytes?: number;
}

/**
 * Reads and validates the header of any {@link ByteSource}, fetching only the bytes the header spans (a prefix that
 * grows by doubling), then returns a {@link GgufFile} that reads tensors from the same source.
 *
 * @example
 * ```ts
 * const file = await openGgufSource(blobSource(blob));
 * ```
 */
export async function openGgufSource(source: ByteSource, options: OpenGgufOptions = {}): Promise<GgufFile> {
  if (source.bytes) return new GgufFile(parseHeader(source.bytes, source.size), source);
  let want = Math.min(source.size, Math.max(64, options.initialReadBytes ?? 1 << 20));
  let prefix = await source.read(0, want);
  for (;;) {
    try {
      return new GgufFile(parseHeader(prefix, source.size), source);
    } catch (e) {
      if (!(e instanceof NeedMore)) throw e;
      // The parser checked `e.end` against the file size already; grow geometrically so a long header costs
      // O(log n) reads, and read only the missing tail.
      want = Math.min(source.size, Math.max(e.end, want * 2));
      const more = await source.read(prefix.byteLength, want - prefix.byteLength);
      const grown = new Uint8Array(want);
      grown.set(prefix);
      grown.set(more, prefix.byteLength);
      prefix = grown;
    }
  }
}

/** What {@link openGguf} accepts: bytes, a Blob or File, or a URL (a `URL` or an http(s) string). */
export type GgufSource = Uint8Array | ArrayBuffer | Blob | URL | string;

/**
 * Opens a GGUF file from memory, a `Blob`/`File` (read by slices) or a URL (read with HTTP range requests: the
 * header first, then only the tensors asked for). For a local path in Node use `openGgufFile` from
 * `@nibble/gguf/node`.
 *
 * @example
 * ```ts
 * const file = await openGguf('https://example.com/stories260K.gguf');
 * const emb = await file.readTensor('token_embd.weight'); // one range request
 * ```
 */
export async function openGguf(source: GgufSource, options: OpenGgufOptions = {}): Promise<GgufFile> {
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return parseGguf(source);
  if (typeof Blob !== 'undefined' && source instanceof Blob) return openGgufSource(blobSource(source), options);
  if (source instanceof URL || typeof source === 'string') {
    let url: URL;
    try {
      url = source instanceof URL ? source : new URL(source);
    } catch {
      throw new GgufError('E_GGUF_SOURCE', `'${source}' is not a URL (open local paths with @nibble/gguf/node)`);
    }
    return openGgufSource(
      await urlSource(url, { ...options, firstRequestBytes: options.initialReadBytes ?? options.firstRequestBytes }),
      options,
    );
  }
  throw new GgufError('E_GGUF_SOURCE', `cannot open a GGUF file from ${Object.prototype.toString.call(source)}`);
}
