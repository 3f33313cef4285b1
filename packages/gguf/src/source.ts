import { GgufError } from './errors.js';

/**
 * Random access to the bytes of a file: what the reader needs from memory, a Blob, a URL or a file handle.
 * Implement it to read GGUF from anywhere else.
 */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** The whole file, when it is already in memory (then tensors are returned as views, not copies). */
  readonly bytes?: Uint8Array;
  /** Reads `length` bytes at `offset`; the range is always inside `[0, size)`. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Reads `dst.byteLength` bytes at `offset` into `dst`, for callers that reuse their buffers. Optional (the file
   * source of `@nibble/gguf/node` has it); the range is always inside `[0, size)`.
   */
  readInto?(offset: number, dst: Uint8Array): Promise<void>;
  /** Releases the source (closes a file handle). Optional. */
  close?(): Promise<void>;
}

/**
 * A source over bytes already in memory.
 *
 * @example
 * ```ts
 * const src = bytesSource(new Uint8Array([1, 2, 3]));
 * await src.read(1, 2); // Uint8Array [2, 3], a view
 * ```
 */
export function bytesSource(data: Uint8Array | ArrayBuffer): ByteSource {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  return {
    size: bytes.byteLength,
    bytes,
    read: async (offset, length) => bytes.subarray(offset, offset + length),
  };
}

/**
 * A source over a `Blob` or `File`: each read is one `slice()`, so the file is never loaded whole.
 *
 * @example
 * ```ts
 * const src = blobSource(new Blob([new Uint8Array(16)]));
 * (await src.read(0, 4)).byteLength; // 4
 * ```
 */
export function blobSource(blob: Blob): ByteSource {
  return {
    size: blob.size,
    read: async (offset, length) => new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer()),
  };
}

/** Options of {@link urlSource}. */
export interface UrlSourceOptions {
  /** Extra request headers (e.g. authorization). */
  headers?: Record<string, string>;
  /** The `fetch` to use; defaults to the global one. */
  fetch?: typeof fetch;
  /** Bytes asked for by the first request, which also learns the file size. Default 1 MiB. */
  firstRequestBytes?: number;
}

function parseContentRange(value: string | null): { start: number; end: number; total: number } | undefined {
  const m = value === null ? null : /^bytes (\d+)-(\d+)\/(\d+)$/.exec(value.trim());
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: Number(m[3]) };
}

/**
 * A source over a URL read with HTTP range requests: the first request fetches the start of the file and learns its
 * size from `Content-Range`; later reads fetch only the ranges asked for. A server that ignores `Range` is refused
 * (with `E_GGUF_SOURCE`) rather than downloading the whole file.
 *
 * @example
 * ```ts
 * const src = await urlSource('https://example.com/model.gguf');
 * src.size; // total bytes
 * ```
 */
export async function urlSource(url: string | URL, options: UrlSourceOptions = {}): Promise<ByteSource> {
  const doFetch = options.fetch ?? fetch;
  const href = String(url);
  const first = Math.max(1, options.firstRequestBytes ?? 1 << 20);

  async function get(start: number, endInclusive: number): Promise<Response> {
    let res: Response;
    try {
      res = await doFetch(href, { headers: { ...options.headers, Range: `bytes=${start}-${endInclusive}` } });
    } catch (cause) {
      throw new GgufError(
        'E_GGUF_SOURCE',
        `cannot fetch ${href}: ${(cause as Error).message}`,
        { offset: start },
        { cause },
      );
    }
    if (res.status === 416) {
      await res.body?.cancel();
      return res;
    }
    if (res.status !== 206) {
      await res.body?.cancel();
      if (res.ok) {
        throw new GgufError('E_GGUF_SOURCE', `${href} does not support HTTP range requests (status ${res.status})`, {
          offset: start,
        });
      }
      throw new GgufError('E_GGUF_SOURCE', `cannot fetch ${href}: HTTP ${res.status}`, { offset: start });
    }
    return res;
  }

  const head = await get(0, first - 1);
  let headBytes: Uint8Array;
  let size: number;
  if (head.status === 416) {
    // An empty file: no byte range is satisfiable.
    headBytes = new Uint8Array(0);
    size = 0;
  } else {
    const range = parseContentRange(head.headers.get('content-range'));
    if (range?.start !== 0) {
      await head.body?.cancel();
      throw new GgufError('E_GGUF_SOURCE', `${href} answered a range request without a valid Content-Range`);
    }
    size = range!.total;
    headBytes = new Uint8Array(await head.arrayBuffer());
  }

  return {
    size,
    async read(offset, length) {
      if (length === 0) return new Uint8Array(0);
      // The first response is kept, so parsing the header costs one request for most files.
      if (offset + length <= headBytes.byteLength) return headBytes.subarray(offset, offset + length);
      const res = await get(offset, offset + length - 1);
      const range = parseContentRange(res.headers.get('content-range'));
      if (res.status !== 206 || !range || range.start !== offset) {
        await res.body?.cancel();
        throw new GgufError('E_GGUF_SOURCE', `${href} answered a range request with the wrong range`, { offset });
      }
      const body = new Uint8Array(await res.arrayBuffer());
      if (body.byteLength !== length) {
        throw new GgufError('E_GGUF_SOURCE', `${href} sent ${body.byteLength} bytes, expected ${length}`, { offset });
      }
      return body;
    },
  };
}
