/**
 * Node-only helpers of @nibble/gguf: open a GGUF file by path through a file handle (the header is read first and
 * tensors on demand; the file is never loaded whole).
 */
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { GgufError } from './errors.js';
import { type GgufFile, type OpenGgufOptions, openGgufSource } from './file.js';
import type { ByteSource } from './source.js';
import { type GgufSink, GgufWriter, type GgufWriterOptions } from './writer.js';

/**
 * A {@link ByteSource} over a local file, read with positioned reads through one file handle. Call `close()` when done.
 *
 * @example
 * ```ts
 * const src = await fileSource('model.gguf');
 * const magic = await src.read(0, 4);
 * await src.close?.();
 * ```
 */
export async function fileSource(path: string): Promise<ByteSource> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (cause) {
    throw new GgufError('E_GGUF_SOURCE', `cannot open ${path}: ${(cause as Error).message}`, {}, { cause });
  }
  const { size } = await handle.stat();
  let closed = false;
  const readInto = async (offset: number, dst: Uint8Array) => {
    if (closed) throw new GgufError('E_GGUF_SOURCE', `${path} is closed`, { offset });
    const length = dst.byteLength;
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(dst, done, length - done, offset + done);
      if (bytesRead === 0) throw new GgufError('E_GGUF_TRUNCATED', `${path} ended early`, { offset: offset + done });
      done += bytesRead;
    }
  };
  return {
    size,
    async read(offset, length) {
      const out = new Uint8Array(length);
      await readInto(offset, out);
      return out;
    },
    readInto,
    async close() {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

/**
 * Opens a GGUF file by path: reads and validates the header (only the bytes it spans), then reads tensors on demand.
 * Call `file.close()` to release the file handle.
 *
 * @example
 * ```ts
 * import { openGgufFile } from '@nibble/gguf/node';
 * const file = await openGgufFile('fixtures/models/stories260K.gguf');
 * const norm = await file.readTensor('output_norm.weight');
 * await file.close();
 * ```
 */
export async function openGgufFile(path: string, options: OpenGgufOptions = {}): Promise<GgufFile> {
  const source = await fileSource(path);
  try {
    return await openGgufSource(source, options);
  } catch (e) {
    await source.close?.();
    throw e;
  }
}

/**
 * A {@link GgufSink} that writes to a temporary file beside `path` and renames it to `path` on `close()`, so a
 * reader never sees a half-written file; `abort()` deletes the temporary file.
 *
 * @example
 * ```ts
 * const w = new GgufWriter(await fileSink('out.gguf'));
 * ```
 */
export async function fileSink(path: string): Promise<GgufSink> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(tmp, 'w');
  } catch (cause) {
    throw new GgufError('E_GGUF_SOURCE', `cannot create ${tmp}: ${(cause as Error).message}`, {}, { cause });
  }
  let done = false;
  return {
    async write(chunk) {
      let off = 0;
      while (off < chunk.byteLength) {
        const { bytesWritten } = await handle.write(chunk, off, chunk.byteLength - off);
        off += bytesWritten;
      }
    },
    async close() {
      if (done) return;
      done = true;
      await handle.close();
      await rename(tmp, path);
    },
    async abort() {
      if (done) return;
      done = true;
      await handle.close().catch(() => {});
      await unlink(tmp).catch(() => {});
    },
  };
}

/**
 * A {@link GgufWriter} to a local path (through a temporary file, renamed on `finish()`).
 *
 * @example
 * ```ts
 * const w = await createGgufFileWriter('out.gguf');
 * w.metadata.setString('general.architecture', 'llama');
 * await w.finish();
 * ```
 */
export async function createGgufFileWriter(path: string, options: GgufWriterOptions = {}): Promise<GgufWriter> {
  return new GgufWriter(await fileSink(path), options);
}
