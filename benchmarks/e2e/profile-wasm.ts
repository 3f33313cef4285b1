// Where the time of one decode step goes on the WASM backend: time per op kind over DECODE steps after a short
// prompt, with the matmul GB/s of weight bytes. PROMPT=N profiles one N-token prompt instead (after a warm-up one).
// With threads, an op's time includes waiting for the other threads at the barrier before it.
//
//   npx tsx --conditions=source benchmarks/e2e/profile-wasm.ts [MODEL] [THREADS] [DECODE]
//   PROMPT=32 npx tsx --conditions=source benchmarks/e2e/profile-wasm.ts '' 2
import '@nibble/backend-wasm/node';
import type { WasmBackend } from '@nibble/backend-wasm';
import { openGgufFile } from '@nibble/gguf/node';
import { loadModel } from '@nibble/runner/node';
import { tinyLlamaQ4_0Path } from '../gguf/generate.js';

const [pathArg, threadsArg = '1', decodeArg = '16'] = process.argv.slice(2);
const path = pathArg || (await tinyLlamaQ4_0Path());
const decode = Number(decodeArg);
const model = await loadModel(path, { backend: 'wasm', threads: Number(threadsArg), contextSize: 64 });
const backend = model.backend as unknown as WasmBackend;
const promptLength = Number(process.env.PROMPT ?? 0);
let steps = decode;
let total = 0;
let prof: NonNullable<WasmBackend['profile']>;
if (promptLength > 0) {
  const ids = Array.from({ length: promptLength }, (_, i) => 300 + i);
  const warm = await model.createSession();
  await warm.evaluate(ids);
  warm.dispose();
  const p = await model.createSession();
  backend.profile = {};
  const t0 = performance.now();
  await p.evaluate(ids);
  total = performance.now() - t0;
  prof = backend.profile;
  p.dispose();
  steps = 1;
} else {
  const s = await model.createSession();
  await s.evaluate([1, 300, 301, 302]);
  await s.evaluate([303]);
  backend.profile = {};
  const t0 = performance.now();
  for (let i = 0; i < decode; i++) await s.evaluate([304 + i]);
  total = performance.now() - t0;
  prof = backend.profile;
  s.dispose();
}
backend.profile = undefined;
let matmulMs = 0;
console.log(`| op | ms per ${promptLength > 0 ? `${promptLength}-token prompt` : 'step'} | share | calls per step |`);
console.log('|---|---|---|---|');
for (const [k, v] of Object.entries(prof).sort((a, b) => b[1].ms - a[1].ms)) {
  if (k.startsWith('matmul')) matmulMs += v.ms;
  console.log(`| ${k} | ${(v.ms / steps).toFixed(3)} | ${((100 * v.ms) / total).toFixed(1)}% | ${v.calls / steps} |`);
}
// Bytes the matmuls read per step: every 2-D weight but the embedding table (unless it is also the output).
const file = await openGgufFile(path);
const hasOutput = file.tensors.some((t) => t.name === 'output.weight');
let weightBytes = 0;
for (const t of file.tensors) {
  if (t.shape.length === 2 && (t.name !== 'token_embd.weight' || !hasOutput)) weightBytes += t.byteLength;
}
await file.close();
const tokens = promptLength > 0 ? promptLength : decode;
console.log(
  `\n${(total / steps).toFixed(2)} ms per ${promptLength > 0 ? 'prompt' : 'step'} (${((1000 * tokens) / total).toFixed(2)} tok/s), ${threadsArg} thread(s); matmuls ${(weightBytes / 1e6).toFixed(0)} MB of weights per step at ${(weightBytes / 1e6 / (matmulMs / steps)).toFixed(2)} GB/s`,
);
await model.dispose();
