// Where the time of one decode step goes on the WASM backend: time per op kind over DECODE steps after a short
// prompt, with the matmul GB/s of weight bytes.
//
//   npx tsx --conditions=source benchmarks/e2e/profile-wasm.ts [MODEL] [THREADS] [DECODE]
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
const s = await model.createSession();
await s.evaluate([1, 300, 301, 302]);
await s.evaluate([303]);
backend.profile = {};
const t0 = performance.now();
for (let i = 0; i < decode; i++) await s.evaluate([304 + i]);
const total = performance.now() - t0;
const prof = backend.profile;
backend.profile = undefined;
let matmulMs = 0;
console.log(`| op | ms per step | share | calls per step |`);
console.log('|---|---|---|---|');
for (const [k, v] of Object.entries(prof).sort((a, b) => b[1].ms - a[1].ms)) {
  if (k.startsWith('matmul')) matmulMs += v.ms;
  console.log(`| ${k} | ${(v.ms / decode).toFixed(3)} | ${((100 * v.ms) / total).toFixed(1)}% | ${v.calls / decode} |`);
}
// Bytes the matmuls read per step: every 2-D weight but the embedding table (unless it is also the output).
const file = await openGgufFile(path);
const hasOutput = file.tensors.some((t) => t.name === 'output.weight');
let weightBytes = 0;
for (const t of file.tensors) {
  if (t.shape.length === 2 && (t.name !== 'token_embd.weight' || !hasOutput)) weightBytes += t.byteLength;
}
await file.close();
console.log(
  `\n${(total / decode).toFixed(2)} ms per step (${((1000 * decode) / total).toFixed(2)} tok/s), ${threadsArg} thread(s); matmuls ${(weightBytes / 1e6).toFixed(0)} MB per step at ${(weightBytes / 1e6 / (matmulMs / decode)).toFixed(2)} GB/s`,
);
s.dispose();
await model.dispose();
