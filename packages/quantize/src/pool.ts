/**
 * Worker pools: where quantization jobs run. The inline pool runs them in the calling thread; the worker pool posts
 * each job (its rows' bytes, copied) to the first idle worker and copies the result back. Both call the same
 * {@link JobRunner}, so the bytes cannot depend on the thread count.
 *
 * The pool itself is environment-neutral: it drives anything that looks like a worker (`postMessage` and message
 * events). `@nibble/quantize/node` spawns worker_threads; {@link webWorkerPool} spawns Web Workers.
 */
import { dtypes } from '@nibble/tensor';
import { QuantizeError } from './errors.js';
import { JobRunner, NonFiniteValue, type QuantizeJob } from './jobs.js';
import { quantizerModuleSync } from './wasm.js';

/** Where jobs run. */
export interface JobPool {
  /** Threads that run jobs at once. */
  readonly threads: number;
  /** Runs a job and writes its output into `dst` (exactly its size). */
  run(job: QuantizeJob, dst: Uint8Array): Promise<void>;
  /** Stops the workers. */
  close(): Promise<void>;
}

/**
 * A pool of one: jobs run synchronously in the calling thread.
 *
 * @example
 * ```ts
 * const pool = inlinePool();
 * await pool.run(job, dst);
 * ```
 */
export function inlinePool(): JobPool {
  const runner = new JobRunner();
  return {
    threads: 1,
    async run(job, dst) {
      runner.run(job, dst);
    },
    async close() {
      runner.release();
    },
  };
}

/** The message a worker receives. */
export interface JobMessage {
  readonly id: number;
  readonly job: QuantizeJob;
}

/** The message a worker answers with. */
export type JobReply =
  | { readonly id: number; readonly dst: Uint8Array }
  | { readonly id: number; readonly nonFinite: { row: number; column: number; value: number } }
  | { readonly id: number; readonly error: { name: string; code?: string; message: string } };

/** What the pool needs of a worker: Web Workers and worker_threads both fit through a small adapter. */
export interface WorkerLike {
  postMessage(message: JobMessage, transfer: ArrayBuffer[]): void;
  /** Registers the one message handler. */
  onReply(handler: (reply: JobReply) => void): void;
  /** Registers the one handler for a worker that died (an uncaught error or an exit). */
  onFailure(handler: (error: Error) => void): void;
  terminate(): Promise<unknown> | undefined;
}

/**
 * The body of a worker: answers each job message with its output bytes (transferred) or an error. The worker entry
 * files (`worker-node`, `worker-web`) connect it to their environment's message port.
 *
 * @example
 * ```ts
 * const answer = makeJobHandler();
 * self.onmessage = (e) => { const [reply, transfer] = answer(e.data); self.postMessage(reply, transfer); };
 * ```
 */
export function makeJobHandler(): (message: JobMessage) => [JobReply, ArrayBuffer[]] {
  // Workers may compile synchronously: the WebAssembly quantizers are ready for the first job.
  quantizerModuleSync();
  const runner = new JobRunner();
  return ({ id, job }) => {
    try {
      const out = new Uint8Array(outputBytes(job));
      runner.run(job, out);
      return [{ id, dst: out }, [out.buffer as ArrayBuffer]];
    } catch (e) {
      if (e instanceof NonFiniteValue) return [{ id, nonFinite: { row: e.row, column: e.column, value: e.value } }, []];
      const err = e as { name?: string; code?: string; message?: string };
      return [{ id, error: { name: err.name ?? 'Error', code: err.code, message: err.message ?? String(e) } }, []];
    }
  };
}

function outputBytes(job: QuantizeJob): number {
  const d = dtypes[job.to];
  return job.rows * (job.rowLength / d.blockSize) * d.bytesPerBlock;
}

/**
 * A pool over workers made by `spawn`: each job goes to the first idle worker (a queue holds the rest). A worker
 * that dies fails its job and every later one with a clear error.
 *
 * @example
 * ```ts
 * const pool = workerPool(2, () => adaptWebWorker(new Worker(url, { type: 'module' })));
 * ```
 */
export function workerPool(threads: number, spawn: () => WorkerLike): JobPool {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new QuantizeError('E_QUANT_OPTION', `threads must be a positive integer, got ${threads}`);
  }
  interface Pending {
    job: QuantizeJob;
    dst: Uint8Array;
    resolve(): void;
    reject(e: unknown): void;
  }
  const workers: WorkerLike[] = [];
  const busy = new Map<WorkerLike, { id: number; p: Pending }>();
  const queue: Pending[] = [];
  let nextId = 1;
  let dead: Error | undefined;
  let closed = false;

  const dispatch = (w: WorkerLike) => {
    const p = queue.shift();
    if (!p) return;
    const id = nextId++;
    busy.set(w, { id, p });
    // Copy the rows into their own buffer so it can be transferred (the source buffer stays with the caller).
    const src = p.job.src.slice();
    const importance = p.job.importance?.slice();
    w.postMessage({ id, job: { ...p.job, src, importance } }, [src.buffer as ArrayBuffer]);
  };
  const failAll = (e: Error) => {
    dead ??= e;
    for (const { p } of busy.values()) p.reject(e);
    busy.clear();
    for (const p of queue.splice(0)) p.reject(e);
  };
  for (let i = 0; i < threads; i++) {
    const w = spawn();
    w.onReply((reply) => {
      const cur = busy.get(w);
      if (!cur || cur.id !== reply.id) return;
      busy.delete(w);
      if ('dst' in reply) {
        if (reply.dst.byteLength !== cur.p.dst.byteLength) {
          cur.p.reject(new QuantizeError('E_QUANT_OPTION', 'a worker returned the wrong number of bytes'));
        } else {
          cur.p.dst.set(reply.dst);
          cur.p.resolve();
        }
      } else if ('nonFinite' in reply) {
        const { row, column, value } = reply.nonFinite;
        cur.p.reject(new NonFiniteValue(row, column, value));
      } else {
        const err = new Error(reply.error.message);
        err.name = reply.error.name;
        if (reply.error.code) (err as Error & { code?: string }).code = reply.error.code;
        cur.p.reject(err);
      }
      dispatch(w);
    });
    w.onFailure((e) => {
      if (!closed) failAll(new QuantizeError('E_QUANT_OPTION', `a quantization worker failed: ${e.message}`));
    });
    workers.push(w);
  }
  return {
    threads,
    run(job, dst) {
      if (closed) return Promise.reject(new QuantizeError('E_QUANT_OPTION', 'the pool is closed'));
      if (dead) return Promise.reject(dead);
      return new Promise<void>((resolve, reject) => {
        queue.push({ job, dst, resolve, reject });
        for (const w of workers) if (!busy.has(w)) dispatch(w);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      failAll(new QuantizeError('E_QUANT_OPTION', 'the pool was closed'));
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

/** Options of {@link webWorkerPool}. */
export interface WebWorkerPoolOptions {
  /** Workers to start. */
  threads: number;
  /** URL of the bundled `worker-web` entry of this package (bundlers resolve `new URL('…', import.meta.url)`). */
  url: string | URL;
}

/**
 * A pool of Web Workers (module workers) running `worker-web.js` of this package.
 *
 * @example
 * ```ts
 * const pool = await webWorkerPool({ threads: navigator.hardwareConcurrency, url: workerUrl });
 * await quantizeModel(file, sink, { preset: 'Q4_K_M', pool });
 * await pool.close();
 * ```
 */
export async function webWorkerPool(options: WebWorkerPoolOptions): Promise<JobPool> {
  return workerPool(options.threads, () => {
    const w = new Worker(options.url, { type: 'module' });
    return {
      postMessage: (m, t) => w.postMessage(m, t),
      onReply: (h) => {
        w.onmessage = (e: MessageEvent<JobReply>) => h(e.data);
      },
      onFailure: (h) => {
        w.onerror = (e: ErrorEvent) => h(new Error(e.message || 'worker error'));
      },
      terminate: () => {
        w.terminate();
        return undefined;
      },
    };
  });
}
