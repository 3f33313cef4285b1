/**
 * @nibble/backend-wasm: kernels in WebAssembly SIMD (AssemblyScript) and a worker pool over one shared memory.
 * Importing it registers the `'wasm'` backend; in browsers the pool uses Web Workers (a cross-origin-isolated page
 * is needed for more than one thread). In Node import `@nibble/backend-wasm/node`, which adds worker_threads.
 *
 * @example
 * ```ts
 * import { createBackend } from '@nibble/tensor';
 * import '@nibble/backend-wasm';
 * const backend = await createBackend('wasm', { threads: 2 });
 * ```
 * @packageDocumentation
 */
import { type BackendFactory, registerBackend } from '@nibble/tensor';
import { createWasmBackend, type WasmBackendOptions, type WasmEnvironment } from './backend.js';
import type { PoolWorker, WorkerSpawner } from './pool.js';

export type { WasmBackendOptions, WasmEnvironment, WasmSimd } from './backend.js';
export { createWasmBackend, WasmBackend, WasmTensor, wasmCapabilities } from './backend.js';
export type { Profile } from './exec.js';
export type { PoolWorker, WorkerSpawner } from './pool.js';

interface WebWorkerLike {
  postMessage(data: unknown): void;
  addEventListener(type: 'message', fn: (e: { data: unknown }) => void): void;
  terminate(): void;
}

/** Web Workers from a Blob URL of the bundled worker script (classic, no imports). */
function browserSpawner(): WorkerSpawner | undefined {
  const W = (globalThis as { Worker?: new (url: string) => WebWorkerLike }).Worker;
  if (typeof W !== 'function' || typeof Blob === 'undefined' || typeof URL?.createObjectURL !== 'function') return;
  return (source): PoolWorker => {
    const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    const w = new W(url);
    return {
      postMessage: (d) => w.postMessage(d),
      onMessage: (fn) => w.addEventListener('message', (e) => fn(e.data)),
      terminate: () => {
        w.terminate();
        URL.revokeObjectURL(url);
      },
    };
  };
}

let environment: WasmEnvironment = {
  spawn: browserSpawner(),
  cores: Math.max(
    1,
    (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1,
  ),
};

/**
 * Replaces how workers are started and how many cores there are (the Node adapter calls it).
 *
 * @example
 * ```ts
 * setWasmEnvironment({ spawn: mySpawner, cores: 4 });
 * ```
 */
export function setWasmEnvironment(env: WasmEnvironment): void {
  environment = env;
}

/**
 * The WASM backend's factory. Pass it to `createBackend` directly, or use the name `'wasm'` after importing this
 * package.
 *
 * @example
 * ```ts
 * const backend = await createBackend(wasm, { threads: 1, matmulActivations: 'f32' });
 * ```
 */
export const wasm: BackendFactory = Object.freeze({
  name: 'wasm',
  create: (options?: WasmBackendOptions) => createWasmBackend(options, environment),
});

registerBackend(wasm);
