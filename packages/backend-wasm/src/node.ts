/**
 * Node entry of @nibble/backend-wasm: everything of the main entry, with the worker pool on `worker_threads` and
 * the thread count defaulting to `os.availableParallelism()`.
 *
 * @example
 * ```ts
 * import '@nibble/backend-wasm/node';
 * const backend = await createBackend('wasm', { threads: 2 });
 * ```
 * @packageDocumentation
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { setWasmEnvironment } from './index.js';
import type { PoolWorker } from './pool.js';

export * from './index.js';

setWasmEnvironment({
  cores: availableParallelism(),
  spawn(source): PoolWorker {
    const w = new Worker(`globalThis.__nibblePort = require('node:worker_threads').parentPort;\n${source}`, {
      eval: true,
      // A clean worker: the parent's loaders (test runners, tsx) have no business in it.
      execArgv: [],
    });
    // The pool's workers never end by themselves: they must not keep the process alive.
    w.unref();
    return {
      postMessage: (d) => w.postMessage(d),
      onMessage: (fn) => w.on('message', fn),
      terminate: () => void w.terminate(),
    };
  },
});
