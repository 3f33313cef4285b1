/**
 * The worker pool: `threads - 1` workers over the shared memory, the calling thread being thread 0. A step is one
 * command in the control block; the workers spin briefly and then sleep between steps, so waking them costs one
 * notify per step, never one per op.
 */
import { BackendError } from '@nibble/tensor';
import { barrier, cmd, ctl, type Kernels, type Profile, type Program, readError, runProgram } from './exec.js';

/** A started worker, whatever runs it (worker_threads in Node, Web Workers in browsers). */
export interface PoolWorker {
  postMessage(data: unknown): void;
  /** Called with each message the worker posts. */
  onMessage(fn: (data: unknown) => void): void;
  terminate(): void;
}

/** Starts one worker running `source` (the bundled worker script). */
export type WorkerSpawner = (source: string) => PoolWorker;

export class Pool {
  readonly threads: number;
  readonly #c: () => Int32Array;
  readonly #workers: PoolWorker[];
  readonly #canWait: boolean;
  readonly #memory: WebAssembly.Memory;
  readonly #ctlPtr: number;

  private constructor(memory: WebAssembly.Memory, ctlPtr: number, workers: PoolWorker[], canWait: boolean) {
    this.#memory = memory;
    this.#ctlPtr = ctlPtr;
    this.#workers = workers;
    this.threads = workers.length + 1;
    this.#canWait = canWait;
    let view = new Int32Array(memory.buffer, ctlPtr, ctl.bytes / 4);
    this.#c = () => {
      if (view.buffer !== memory.buffer) view = new Int32Array(memory.buffer, ctlPtr, ctl.bytes / 4);
      return view;
    };
  }

  /** Starts `threads - 1` workers and waits until each has its kernels instantiated. */
  static async create(
    threads: number,
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    ctlPtr: number,
    spawn: WorkerSpawner,
    source: string,
  ): Promise<Pool> {
    const c = new Int32Array(memory.buffer, ctlPtr, ctl.bytes / 4);
    c.fill(0);
    c[ctl.threads] = threads;
    const workers: PoolWorker[] = [];
    try {
      await Promise.all(
        Array.from({ length: threads - 1 }, (_, i) => {
          const w = spawn(source);
          workers.push(w);
          return new Promise<void>((resolve, reject) => {
            w.onMessage((m) => {
              const msg = m as { ready?: boolean; error?: string };
              if (msg.ready) resolve();
              else reject(new BackendError(`wasm backend: worker ${i + 1} failed to start: ${msg.error}`));
            });
            w.postMessage({ module, memory, ctlPtr, tid: i + 1 });
          });
        }),
      );
    } catch (e) {
      for (const w of workers) w.terminate();
      throw e;
    }
    // A browser's main thread may not block in Atomics.wait: it spins at barriers instead.
    let canWait = true;
    try {
      Atomics.wait(c, ctl.failed, 1, 0);
    } catch {
      canWait = false;
    }
    return new Pool(memory, ctlPtr, workers, canWait);
  }

  /** Set once threads lost step (a worker died): every later use throws. */
  #broken: string | undefined;

  #guard<T>(fn: () => T): T {
    if (this.#broken !== undefined) throw new BackendError(`wasm backend: the worker pool is broken: ${this.#broken}`);
    try {
      return fn();
    } catch (e) {
      this.#broken = (e as Error).message;
      throw e;
    }
  }

  /** Posts one command to every worker. */
  #post(command: number, prog: number, argPtr = 0, argLen = 0): Int32Array {
    const c = this.#c();
    c[ctl.cmd] = command;
    c[ctl.prog] = prog;
    c[ctl.argPtr] = argPtr;
    c[ctl.argLen] = argLen;
    Atomics.add(c, ctl.seq, 1);
    if (Atomics.load(c, ctl.idleSleepers) > 0) Atomics.notify(c, ctl.seq);
    return c;
  }

  /** Sends a program (JSON at `ptr`, `len` bytes in the shared memory) to every worker. */
  load(id: number, ptr: number, len: number): void {
    const c = this.#guard(() => {
      const c = this.#post(cmd.load, id, ptr, len);
      barrier(c, this.threads, this.#canWait);
      return c;
    });
    const error = readError(c);
    if (error !== undefined) throw new BackendError(`wasm backend: a worker could not load a program: ${error}`);
  }

  /** Forgets a program on every worker. */
  drop(id: number): void {
    this.#guard(() => barrier(this.#post(cmd.drop, id), this.threads, this.#canWait));
  }

  /** One step: the workers and this thread each run their share of `prog`. */
  run(prog: Program, k: Kernels, profile?: Profile): void {
    this.#guard(() => {
      const c = this.#post(cmd.run, prog.id);
      runProgram(prog, k, c, 0, this.threads, this.#canWait, profile);
      barrier(c, this.threads, this.#canWait);
    });
  }

  /** The control block (params are written there before {@link run}). */
  control(): Int32Array {
    return this.#c();
  }

  dispose(): void {
    if (this.#broken === undefined) this.#post(cmd.exit, 0);
    for (const w of this.#workers) w.terminate();
    void this.#memory;
    void this.#ctlPtr;
  }
}
