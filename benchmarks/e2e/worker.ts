/**
 * One end-to-end measurement in its own process (so peak RSS belongs to one engine): load a model, feed a prompt of
 * N tokens, decode M tokens greedily, print one JSON line.
 *
 *   npx tsx --conditions=source benchmarks/e2e/worker.ts ENGINE MODEL THREADS PROMPT_TOKENS DECODE_TOKENS
 *
 * ENGINE is `nibble-wasm`, `nibble-wasm-relaxed` (the relaxed-SIMD build; Node 20 needs
 * `--experimental-wasm-relaxed-simd`, which bench.ts passes), `nibble-js` or `llama.cpp`. The prompt is the same ids for both: BOS then a fixed cycle of token ids,
 * so both engines do identical work whatever their tokenizers.
 */

const [engine, modelPath, threadsArg, promptArg, decodeArg] = process.argv.slice(2);
const threads = Number(threadsArg);
const promptTokens = Number(promptArg);
const decodeTokens = Number(decodeArg);

/** BOS + ids 300, 301, ... (ordinary vocabulary pieces in llama-style vocabularies). */
function promptIds(n: number): number[] {
  const ids = [1];
  for (let i = 1; i < n; i++) ids.push(300 + ((i * 7) % 200));
  return ids;
}

interface Result {
  engine: string;
  loadMs: number;
  promptMs: number;
  decodeMs: number;
  promptTokPerSec: number;
  decodeTokPerSec: number;
  promptTokPerCpuSec: number;
  decodeTokPerCpuSec: number;
  generated: number;
  maxRssMiB: number;
}

async function nibble(): Promise<Result> {
  const backend = engine.startsWith('nibble-wasm') ? 'wasm' : 'js';
  if (backend === 'wasm') await import('@nibble/backend-wasm/node');
  else await import('@nibble/backend-js');
  const { loadModel } = await import('@nibble/runner/node');
  const t0 = performance.now();
  const model = await loadModel(modelPath, { backend, threads, contextSize: promptTokens + decodeTokens + 8 });
  const loadMs = performance.now() - t0;
  // nibble-wasm-relaxed runs under Node 20's --experimental-wasm-relaxed-simd: make sure that build really ran.
  const simd = (model.backend as { simd?: string }).simd;
  if (engine === 'nibble-wasm-relaxed' && simd !== 'relaxed-simd') {
    throw new Error(`nibble-wasm-relaxed: the backend runs ${simd ?? 'no wasm'} kernels, not relaxed-simd`);
  }
  if (engine === 'nibble-wasm' && simd !== 'simd128') throw new Error(`nibble-wasm: expected simd128, ran ${simd}`);
  const gen = model.generate(promptIds(promptTokens), { temperature: 0, maxTokens: decodeTokens, ignoreEos: true });
  let n = 0;
  let tFirst = 0;
  let cFirst = 0;
  const tStart = performance.now();
  const cStart = cpuMs();
  for await (const _ of gen) {
    if (n === 0) {
      tFirst = performance.now();
      cFirst = cpuMs();
    }
    n++;
  }
  const tEnd = performance.now();
  const cEnd = cpuMs();
  await model.dispose();
  return summarize(engine, loadMs, tFirst - tStart, tEnd - tFirst, n, cFirst - cStart, cEnd - cFirst);
}

async function llamaCpp(): Promise<Result> {
  const { getLlama } = await import('node-llama-cpp');
  const t0 = performance.now();
  const llama = await getLlama({ gpu: false, build: 'never', maxThreads: threads, logLevel: 'error' as never });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: promptTokens + decodeTokens + 8, threads, batchSize: 512 });
  const loadMs = performance.now() - t0;
  const seq = context.getSequence();
  let n = 0;
  let tFirst = 0;
  let cFirst = 0;
  const tStart = performance.now();
  const cStart = cpuMs();
  for await (const _ of seq.evaluate(promptIds(promptTokens) as never[], { temperature: 0 })) {
    if (n === 0) {
      tFirst = performance.now();
      cFirst = cpuMs();
    }
    n++;
    if (n >= decodeTokens) break;
  }
  const tEnd = performance.now();
  const cEnd = cpuMs();
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  return summarize('llama.cpp', loadMs, tFirst - tStart, tEnd - tFirst, n, cFirst - cStart, cEnd - cFirst);
}

/** CPU time of the whole process (every thread), ms: on a busy machine, a steadier cost measure than wall time. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function summarize(
  name: string,
  loadMs: number,
  promptMs: number,
  decodeMs: number,
  generated: number,
  promptCpuMs: number,
  decodeCpuMs: number,
): Result {
  return {
    engine: name,
    loadMs: round(loadMs),
    promptMs: round(promptMs),
    decodeMs: round(decodeMs),
    // The first token comes out of the prompt's forward pass; each later one is one decode step.
    promptTokPerSec: round((promptTokens / promptMs) * 1000),
    decodeTokPerSec: round(((generated - 1) / decodeMs) * 1000),
    // Tokens per CPU-second (all threads together).
    promptTokPerCpuSec: round((promptTokens / promptCpuMs) * 1000),
    decodeTokPerCpuSec: round(((generated - 1) / decodeCpuMs) * 1000),
    generated,
    maxRssMiB: round(process.resourceUsage().maxRSS / 1024),
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

const result = engine === 'llama.cpp' ? await llamaCpp() : await nibble();
console.log(JSON.stringify(result));

export {};
