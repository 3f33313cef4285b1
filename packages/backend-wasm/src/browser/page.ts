// The test page's script (bundled for the browser by browser.test.ts): loads stories260K over HTTP, runs the greedy
// gold on the 'wasm' backend with 2 threads (Web Workers over a SharedArrayBuffer memory) and leaves the ids on
// `window.__nibble` for the test to read.
import '../index.js';
import { loadModel } from '@nibble/runner';

const out = globalThis as unknown as { __nibble?: unknown };
try {
  const bytes = new Uint8Array(await (await fetch('/stories260K.gguf')).arrayBuffer());
  const model = await loadModel(bytes, { backend: 'wasm', threads: 2, contextSize: 256 });
  const { ids } = await model.generate([1], { temperature: 0, maxTokens: 200 }).collect();
  const backend = model.backend as unknown as { name: string; threads: number; threadNote?: string; simd: string };
  out.__nibble = {
    ids,
    backend: backend.name,
    simd: backend.simd,
    threads: backend.threads,
    note: backend.threadNote ?? null,
    isolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated,
  };
  await model.dispose();
} catch (e) {
  out.__nibble = { error: String((e as Error)?.stack ?? e) };
}
