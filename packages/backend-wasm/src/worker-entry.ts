/**
 * The pool worker script (bundled by scripts/build-wasm.mjs into `workerSource`): receives the compiled module, the
 * shared memory and its thread index once, instantiates the kernels over that memory and enters {@link workerLoop}.
 * In Node the adapter prepends `globalThis.__nibblePort = parentPort`; in browsers `self` is the port.
 */
import { type Kernels, workerLoop } from './exec.js';

interface Init {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly ctlPtr: number;
  readonly tid: number;
}

interface Port {
  addEventListener(type: 'message', fn: (e: { data: unknown }) => void): void;
  postMessage(data: unknown): void;
}

const port = ((globalThis as { __nibblePort?: Port }).__nibblePort ?? (globalThis as unknown as Port)) as Port;

port.addEventListener('message', (e) => {
  const init = e.data as Init;
  let k: Kernels;
  try {
    const instance = new WebAssembly.Instance(init.module, {
      env: {
        memory: init.memory,
        abort() {
          throw new Error('wasm abort');
        },
      },
    });
    k = instance.exports as unknown as Kernels;
  } catch (err) {
    port.postMessage({ error: String(err) });
    return;
  }
  port.postMessage({ ready: true });
  // Leave the message handler first, so the ready message goes out, then block in the loop for good.
  setTimeout(() => workerLoop(k, init.memory, init.ctlPtr, init.tid), 0);
});
// Node's MessagePort needs start() once a listener is added with addEventListener.
(port as { start?: () => void }).start?.();
