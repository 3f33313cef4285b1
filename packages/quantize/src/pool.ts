/**
 * Worker pools: where quantization jobs run. The inline pool runs them in the calling thread; the worker pool posts
 * each job to the first idle worker (its rows' bytes transferred, not copied, when the caller hands the buffer
 * over) and copies the result back. Both call the same {@link JobRunner}, so the bytes cannot depend on the thread
 * count.
 *
 * The pool itself is environment-neutral: it drives anything that looks like a worker (`postMessage` and message
 * events). `@nibble/quantize/node` spawns worker_threads; {@link webWorkerPool} spawns Web Workers.
 */
import { QuantizeError } from './errors.js';
import { JobRunner, jobOutputBytes, NonFiniteValue, type QuantizeJob, ScaleOverflow } from './jobs.js';
import { quantizerModuleSync } from './wasm.js';

/** Options of {@link JobPool.run}. */
export interface RunOptions {
  /**
   * The caller lends `job.src`'s whole buffer: a worker pool transfers it to the worker instead of copying the rows,
   * so the caller's views of it are detached until {@link JobPool.run} gives the buffer back.
   */
  readonly transfer?: boolean;
}

/** Where jobs run. */
export interface JobPool {
  /** Threads that run jobs at once. */
  readonly threads: number;
  /**
   * Runs a job and writes its output into `dst` (exactly its size). With `transfer`, resolves to `job.src`'s buffer
   * (the same one, back from the worker, for reuse); otherwise to undefined.
   */
  run(job: QuantizeJob, dst: Uint8Array, options?: RunOptions): Promise<ArrayBuffer | undefined>;
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
    async run(job, dst, options) {
      runner.run(job, dst);
      return options?.transfer ? (job.src.buffer as ArrayBuffer) : undefined;
    },
    async close() {
      runner.release();
    },
  };
}

/** The message a worker receives: a job, and optionally a spent output buffer to write this job's output into. */
export interface JobMessage {
  readonly id: number;
  readonly job: QuantizeJob;
  readonly out?: ArrayBuffer;
}

/** The message a worker answers with (`src`: the job's input buffer, handed back). */
export type JobReply =
  | { readonly id: number; readonly dst: Uint8Array; readonly src: ArrayBuffer }
  | { readonly id: number; readonly nonFinite: { row: number; column: number; value: number } }
  | { readonly id: number; readonly overflow: { row: number; column: number; amax: number } }
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
  return ({ id, job, out }) => {
    try {
      const bytes = jobOutputBytes(job.to, job.rows, job.rowLength);
      const dst = out && out.byteLength >= bytes ? new Uint8Array(out, 0, bytes) : new Uint8Array(bytes);
      runner.run(job, dst);
      const src = job.src.buffer as ArrayBuffer;
      return [{ id, dst, src }, [dst.buffer as ArrayBuffer, src]];
    } catch (e) {
      if (e instanceof NonFiniteValue) return [{ id, nonFinite: { row: e.row, column: e.column, value: e.value } }, []];
      if (e instanceof ScaleOverflow) return [{ id, overflow: { row: e.row, column: e.column, amax: e.amax } }, []];
      const err = e as { name?: string; code?: string; message?: string };
      return [{ id, error: { name: err.name ?? 'Error', code: err.code, message: err.message ?? String(e) } }, []];
    }
  };
}

// Whether a view's buffer can be transferred (a SharedArrayBuffer cannot).
function transferable(v: ArrayBufferView): boolean {
  return !(typeof SharedArrayBuffer !== 'undefined' && v.buffer instanceof SharedArrayBuffer);
}

/**
 * A pool over workers made by `spawn`: each job goes to the first idle worker (a queue holds the rest). A worker
 * that dies fails its job and every later one with a clear error. Output buffers travel back and forth: a worker's
 * reply buffer, once copied out, goes with a later job for the worker to write into, so steady work allocates
 * nothing but its input.
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
    transfer: boolean;
    resolve(src: ArrayBuffer | undefined): void;
    reject(e: unknown): void;
  }
  const workers: WorkerLike[] = [];
  // Two jobs per worker at once, so that a worker finds its next job waiting when it posts a reply. A worker
  // answers in order: the first of its list is the one a reply is about.
  const PER_WORKER = 2;
  const busy = new Map<WorkerLike, { id: number; p: Pending }[]>();
  const queue: Pending[] = [];
  const spare: ArrayBuffer[] = [];
  let nextId = 1;
  let dead: Error | undefined;
  let closed = false;

  const dispatch = (w: WorkerLike) => {
    const list = busy.get(w) as { id: number; p: Pending }[];
    if (list.length >= PER_WORKER) return;
    const p = queue.shift();
    if (!p) return;
    const id = nextId++;
    list.push({ id, p });
    // The rows travel in their own buffer: the caller's when it lends it, else a copy.
    const src = p.transfer && transferable(p.job.src) ? p.job.src : p.job.src.slice();
    const importance = p.job.importance?.slice();
    const transfer = [src.buffer as ArrayBuffer];
    const need = p.dst.byteLength;
    const at = spare.findIndex((b) => b.byteLength >= need);
    const out = at >= 0 ? spare.splice(at, 1)[0] : undefined;
    if (out) transfer.push(out);
    w.postMessage({ id, job: { ...p.job, src, importance }, out }, transfer);
  };
  const failAll = (e: Error) => {
    dead ??= e;
    for (const list of busy.values()) for (const { p } of list.splice(0)) p.reject(e);
    for (const p of queue.splice(0)) p.reject(e);
  };
  for (let i = 0; i < threads; i++) {
    const w = spawn();
    busy.set(w, []);
    w.onReply((reply) => {
      const list = busy.get(w) as { id: number; p: Pending }[];
      if (list.length === 0 || list[0].id !== reply.id) return;
      const cur = list.shift() as { id: number; p: Pending };
      if ('dst' in reply) {
        if (reply.dst.byteLength !== cur.p.dst.byteLength) {
          cur.p.reject(new QuantizeError('E_QUANT_OPTION', 'a worker returned the wrong number of bytes'));
        } else {
          cur.p.dst.set(reply.dst);
          if (spare.length < 2 * threads) spare.push(reply.dst.buffer as ArrayBuffer);
          cur.p.resolve(cur.p.transfer ? reply.src : undefined);
        }
      } else if ('nonFinite' in reply) {
        const { row, column, value } = reply.nonFinite;
        cur.p.reject(new NonFiniteValue(row, column, value));
      } else if ('overflow' in reply) {
        const { row, column, amax } = reply.overflow;
        cur.p.reject(new ScaleOverflow(row, column, amax));
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
    run(job, dst, options) {
      if (closed) return Promise.reject(new QuantizeError('E_QUANT_OPTION', 'the pool is closed'));
      if (dead) return Promise.reject(dead);
      return new Promise<ArrayBuffer | undefined>((resolve, reject) => {
        queue.push({ job, dst, transfer: options?.transfer === true, resolve, reject });
        // The least busy worker first.
        for (let k = 0; k < PER_WORKER && queue.length > 0; k++) {
          for (const w of workers) if ((busy.get(w)?.length ?? 0) === k) dispatch(w);
        }
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      failAll(new QuantizeError('E_QUANT_OPTION', 'the pool was closed'));
      spare.length = 0;
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
