/**
 * Node-only parts of @nibble/quantize: quantize a file by path (written atomically: a temporary file beside the
 * output, renamed at the end and removed on any failure), a worker_threads pool for `threads`, and imatrix files by
 * path.
 *
 * @example
 * ```ts
 * import { quantizeFile } from '@nibble/quantize/node';
 * const r = await quantizeFile('model-f16.gguf', 'model-q4_k_m.gguf', { preset: 'Q4_K_M', threads: 2 });
 * ```
 * @packageDocumentation
 */
import { existsSync } from 'node:fs';
import { open, readFile, realpath, rename, unlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { GgufSink } from '@nibble/gguf';
import { openGgufFile } from '@nibble/gguf/node';
import { QuantizeError } from './errors.js';
import { type Imatrix, readImatrix, writeImatrix } from './imatrix.js';
import { type JobPool, type JobReply, workerPool } from './pool.js';
import { type QuantizeModelOptions, type QuantizeResult, quantizeModel } from './quantize.js';

/**
 * A pool of `threads` worker_threads running this package's worker entry.
 *
 * @example
 * ```ts
 * const pool = await nodeWorkerPool(2);
 * await quantizeModel(file, sink, { preset: 'Q8_0', pool });
 * await pool.close();
 * ```
 */
export async function nodeWorkerPool(threads: number): Promise<JobPool> {
  const here = import.meta.url;
  let entry: string;
  let options: ConstructorParameters<typeof Worker>[1];
  if (here.endsWith('.ts')) {
    // From source (tests, `pnpm nibble`), the worker is TypeScript: Node 20 does not run --import hooks in workers,
    // so a small bootstrap registers tsx in the worker and imports the entry, resolving the `source` condition.
    const tsxDir = createRequire(here)
      .resolve('tsx/package.json')
      .replace(/package\.json$/, '');
    const api = pathToFileURL(`${tsxDir}dist/esm/api/index.mjs`).href;
    const target = new URL('./worker-node.ts', here).href;
    entry = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(target)}); });`;
    options = { eval: true, execArgv: ['--conditions=source'] };
  } else {
    entry = fileURLToPath(new URL('./worker-node.js', here));
    options = {};
  }
  return workerPool(threads, () => {
    const w = new Worker(entry, options);
    w.unref();
    return {
      postMessage: (m, t) => w.postMessage(m, t),
      onReply: (h) => w.on('message', (r: JobReply) => h(r)),
      onFailure: (h) => {
        w.on('error', (e) => h(e));
        w.on('exit', (code) => {
          if (code !== 0) h(new Error(`worker exited with code ${code}`));
        });
      },
      terminate: () => w.terminate(),
    };
  });
}

/**
 * A sink that writes to a temporary file beside `path` (created at the first write, so a failure before it leaves
 * nothing) and renames it to `path` on close; any failure, the rename's included, removes the temporary file.
 *
 * @example
 * ```ts
 * const sink = atomicFileSink('out.gguf');
 * ```
 */
export function atomicFileSink(path: string): GgufSink {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  let done = false;
  const removeTmp = async () => {
    await handle?.close().catch(() => {});
    handle = undefined;
    await unlink(tmp).catch(() => {});
  };
  return {
    async write(chunk) {
      if (done) throw new QuantizeError('E_QUANT_OPTION', `${path}: write after close`);
      if (!handle) {
        try {
          handle = await open(tmp, 'wx');
        } catch (cause) {
          throw new QuantizeError('E_QUANT_OPTION', `cannot create ${tmp}: ${(cause as Error).message}`, undefined, {
            cause,
          });
        }
      }
      let off = 0;
      while (off < chunk.byteLength) {
        const { bytesWritten } = await handle.write(chunk, off, chunk.byteLength - off);
        off += bytesWritten;
      }
    },
    async close() {
      if (done) return;
      done = true;
      try {
        if (!handle) handle = await open(tmp, 'wx');
        await handle.close();
        handle = undefined;
        await rename(tmp, path);
      } catch (e) {
        await removeTmp();
        throw e;
      }
    },
    async abort() {
      if (done) return;
      done = true;
      await removeTmp();
    },
  };
}

/** Options of {@link quantizeFile}. */
export interface QuantizeFileOptions extends QuantizeModelOptions {
  /** Replace an existing output file (default: refuse). */
  overwrite?: boolean;
}

/**
 * Quantizes the GGUF file at `input` into `output` like `llama-quantize input output PRESET`: streamed (the input is
 * read tensor by tensor through one file handle), atomic (see {@link atomicFileSink}), on a worker pool when
 * `threads` > 1. An existing `output` is kept unless `overwrite`; the input is never the output.
 *
 * @example
 * ```ts
 * const r = await quantizeFile('f16.gguf', 'q4_0.gguf', { preset: 'Q4_0', onProgress: (p) => log(p.tensor) });
 * r.bytesOut; // tensor data bytes written
 * ```
 */
export async function quantizeFile(
  input: string,
  output: string,
  options: QuantizeFileOptions,
): Promise<QuantizeResult> {
  if (existsSync(output)) {
    if (!options.overwrite)
      throw new QuantizeError('E_QUANT_OPTION', `${output} exists; pass overwrite to replace it`, undefined, {
        option: { api: 'overwrite', flag: '--force' },
      });
    const [a, b] = await Promise.all([realpath(input).catch(() => resolve(input)), realpath(output)]);
    if (a === b) throw new QuantizeError('E_QUANT_OPTION', `input and output are the same file: ${input}`);
  }
  const file = await openGgufFile(input);
  const threads = options.threads ?? 1;
  const pool = options.pool ?? (threads > 1 ? await nodeWorkerPool(threads) : undefined);
  try {
    return await quantizeModel(file, atomicFileSink(output), { ...options, pool });
  } finally {
    if (pool && !options.pool) await pool.close();
    await file.close();
  }
}

/**
 * Reads an imatrix file (GGUF or legacy `.dat`) by path.
 *
 * @example
 * ```ts
 * const im = await readImatrixFile('imatrix.gguf');
 * ```
 */
export async function readImatrixFile(path: string): Promise<Imatrix> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (cause) {
    throw new QuantizeError('E_QUANT_IMATRIX_FORMAT', `cannot read ${path}: ${(cause as Error).message}`, undefined, {
      cause,
    });
  }
  return readImatrix(bytes);
}

/**
 * Writes an imatrix in llama-imatrix's GGUF layout to `path`, atomically.
 *
 * @example
 * ```ts
 * await writeImatrixFile(collector.toImatrix(info), 'imatrix.gguf');
 * ```
 */
export async function writeImatrixFile(imatrix: Imatrix, path: string): Promise<void> {
  await writeImatrix(imatrix, atomicFileSink(path));
}
