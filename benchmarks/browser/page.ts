// The benchmark page (bundled by bench.ts): one measurement per page load, chosen by the query string
// (?engine=wllama|nibble-wasm|nibble-wasm-plain&model=/m.gguf&threads=N&prompt=P&decode=D; nibble-wasm-plain forces
// the plain SIMD kernels where the relaxed-SIMD ones would run). Leaves the result on window.__bench.
import '@nibble/backend-wasm';
import { loadModel } from '@nibble/runner';
import { createBackend } from '@nibble/tensor';
import { Wllama } from '@wllama/wllama';

const q = new URLSearchParams(location.search);
const engine = q.get('engine') ?? 'nibble-wasm';
const modelUrl = q.get('model') ?? '/model.gguf';
const threads = Number(q.get('threads') ?? 1);
const promptTokens = Number(q.get('prompt') ?? 32);
const decode = Number(q.get('decode') ?? 32);
const out = globalThis as unknown as { __bench?: unknown };

/** BOS + ids 300, 301, ... as in benchmarks/e2e/worker.ts. */
function promptIds(n: number): number[] {
  const ids = [1];
  for (let i = 1; i < n; i++) ids.push(300 + ((i * 7) % 200));
  return ids;
}

async function nibble() {
  const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
  const t0 = performance.now();
  const wasm = await createBackend('wasm', { threads, relaxedSimd: engine !== 'nibble-wasm-plain' });
  const model = await loadModel(bytes, { backend: wasm, contextSize: promptTokens + decode + 8 });
  const loadMs = performance.now() - t0;
  const backend = model.backend as unknown as { threads: number; threadNote?: string; simd: string };
  // Warm-up: a few steps so the engine has compiled and the pool is awake.
  await model.generate(promptIds(8), { temperature: 0, maxTokens: 4, ignoreEos: true }).collect();
  let n = 0;
  let tFirst = 0;
  const tStart = performance.now();
  for await (const _ of model.generate(promptIds(promptTokens), {
    temperature: 0,
    maxTokens: decode,
    ignoreEos: true,
  })) {
    if (n === 0) tFirst = performance.now();
    n++;
  }
  const tEnd = performance.now();
  await model.dispose();
  wasm.dispose();
  return {
    engine,
    simd: backend.simd,
    threads: backend.threads,
    note: backend.threadNote ?? null,
    loadMs,
    promptTokens,
    promptTokPerSec: (promptTokens / (tFirst - tStart)) * 1000,
    decodeTokPerSec: ((n - 1) / (tEnd - tFirst)) * 1000,
  };
}

async function wllama() {
  const w = new Wllama({ default: '/wllama.wasm' }, { suppressNativeLog: true });
  const blob = await (await fetch(modelUrl)).blob();
  const t0 = performance.now();
  await w.loadModel([blob], { n_threads: threads, n_ctx: promptTokens + decode + 64, n_gpu_layers: 0 } as never);
  const loadMs = performance.now() - t0;
  // Text prompts only (v3 API): words that tokenize to about one token each; the real count comes back in timings.
  const words = (k: number, salt: number) =>
    Array.from({ length: k }, (_, i) => ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'ran'][(i * 3 + salt) % 8]).join(
      ' ',
    );
  // Warm-up: wllama needs a few seconds before a small model reaches speed.
  const warmUntil = performance.now() + 3000;
  for (let i = 0; performance.now() < warmUntil; i++)
    await w.createCompletion({ prompt: words(8, i), max_tokens: 8, temperature: 0 } as never);
  const r = (await w.createCompletion({
    prompt: words(promptTokens - 1, 5),
    max_tokens: decode,
    temperature: 0,
  } as never)) as {
    timings?: { prompt_n: number; prompt_per_second: number; predicted_n: number; predicted_per_second: number };
  };
  await w.exit();
  return {
    engine,
    threads,
    note: null,
    loadMs,
    promptTokens: r.timings?.prompt_n,
    predicted: r.timings?.predicted_n,
    promptTokPerSec: r.timings?.prompt_per_second,
    decodeTokPerSec: r.timings?.predicted_per_second,
  };
}

try {
  out.__bench = engine === 'wllama' ? await wllama() : await nibble();
} catch (e) {
  out.__bench = { error: String((e as Error)?.stack ?? e) };
}
