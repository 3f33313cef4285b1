/**
 * End to end: prompt tok/s (32- and 128-token prompts), decode tok/s and peak RSS of nibble's WASM backend (and the
 * JS backend on the small models) beside llama.cpp (node-llama-cpp, same file, same explicit thread count), each
 * measurement in its own process, median of runs; the ratio to llama.cpp of the same run is in the table.
 *
 *   npx tsx --conditions=source benchmarks/e2e/bench.ts [--threads 1,2] [--runs 3] [--decode 64] [--models a,b]
 *     [--prompts 32,128] [--engines nibble-wasm,nibble-wasm-relaxed,llama.cpp,nibble-js] [--merge]
 *
 * `--models Q4_K_M` adds the TinyLlama-shaped file requantized to Q4_K_M (made on first use, a few minutes).
 * --merge keeps the rows of the existing results file that this run does not measure (other models or threads).
 * With NIBBLE_BENCH_QUICK=1 (`pnpm bench --quick`): 1 thread, 1 run, 32 decode steps, a 32-token prompt, stories260K
 * only.
 *
 * Writes results/e2e.json in the common shape (lib/results.ts) and prints a markdown table.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyLlamaQ4_0Path, tinyLlamaQ4_K_MPath } from '../gguf/generate.js';
import { type BenchFile, quick, resultsDir, writeResults } from '../lib/results.js';
import { type E2eDetails, e2eCases, e2eMethod, e2eTitle, isE2eRecord } from './cases.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../..');
const args = process.argv.slice(2);
const flag = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const threadCounts = flag('threads', quick ? '1' : '1,2')
  .split(',')
  .map(Number);
const runs = Number(flag('runs', quick ? '1' : '3'));
const decode = Number(flag('decode', quick ? '32' : '64'));
const promptCounts = flag('prompts', quick ? '32' : '32,128')
  .split(',')
  .map(Number);
const engines = flag(
  'engines',
  quick ? 'nibble-wasm,llama.cpp,nibble-js' : 'nibble-wasm,nibble-wasm-relaxed,llama.cpp,nibble-js',
).split(',');

const only = flag('models', quick ? 'stories260K' : '');
const big = 'TinyLlama-shaped synthetic (Q4_0, 620 MB)';
const bigK = 'TinyLlama-shaped synthetic (Q4_K_M, 668 MB)';
const candidates = [
  { name: 'stories260K (F32)', path: join(root, 'fixtures/models/stories260K.gguf'), decode, runs, js: true },
  { name: 'stories260K (Q4_0)', path: join(root, 'fixtures/models/stories260K-Q4_0.gguf'), decode, runs, js: true },
  // The 620 MB file is made only when this run measures it.
  ...(only === '' || only.split(',').some((o) => big.includes(o))
    ? [{ name: big, path: await tinyLlamaQ4_0Path(), decode, runs, js: false }]
    : []),
  // The K-quant mix only when asked for (--models Q4_K_M): making it takes minutes.
  ...(only.split(',').some((o) => o !== '' && bigK.includes(o))
    ? [{ name: bigK, path: await tinyLlamaQ4_K_MPath(), decode, runs, js: false }]
    : []),
];
const models = candidates.filter(
  (m) => (only === '' || only.split(',').some((o) => m.name.includes(o))) && existsSync(m.path),
);

interface Row {
  model: string;
  engine: string;
  threads: number;
  promptTokens: number;
  promptTokPerSec: number;
  decodeTokPerSec: number;
  /** Tokens per CPU-second of the process (all threads): steadier than wall time on a shared machine. */
  decodeTokPerCpuSec: number;
  maxRssMiB: number;
  loadMs: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const rows: Row[] = [];
for (const threads of threadCounts)
  for (const m of models)
    for (const promptTokens of promptCounts)
      for (const engine of engines) {
        // The JS backend needs minutes for a prompt on 1.1B parameters: small models only.
        if (engine === 'nibble-js' && !m.js) continue;
        const results = [];
        for (let r = 0; r < m.runs; r++) {
          const out = execFileSync(
            process.execPath,
            [
              // Node 20 ships relaxed SIMD behind a flag (Node 22 and browsers have it on).
              ...(engine === 'nibble-wasm-relaxed' ? ['--experimental-wasm-relaxed-simd'] : []),
              '--conditions=source',
              '--import',
              'tsx',
              join(here, 'worker.ts'),
              engine,
              m.path,
              String(threads),
              String(promptTokens),
              String(m.decode),
            ],
            { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 },
          );
          results.push(JSON.parse(out.trim().split('\n').pop() as string));
        }
        rows.push({
          model: m.name,
          engine,
          threads,
          promptTokens,
          promptTokPerSec: median(results.map((x) => x.promptTokPerSec)),
          decodeTokPerSec: median(results.map((x) => x.decodeTokPerSec)),
          decodeTokPerCpuSec: median(results.map((x) => x.decodeTokPerCpuSec)),
          maxRssMiB: median(results.map((x) => x.maxRssMiB)),
          loadMs: median(results.map((x) => x.loadMs)),
        });
      }

const resultsPath = join(resultsDir(), 'e2e.json');
let threadsInFile = threadCounts;
if (args.includes('--merge') && existsSync(resultsPath)) {
  // The common shape keeps the record under details; older files are the record itself.
  const file = JSON.parse(readFileSync(resultsPath, 'utf8')) as BenchFile | E2eDetails;
  const old = (isE2eRecord(file) ? file : (file as BenchFile).details) as { threads: number[]; rows: Row[] };
  const kept = old.rows.filter(
    (o) =>
      !rows.some(
        (r) =>
          r.model === o.model && r.engine === o.engine && r.threads === o.threads && r.promptTokens === o.promptTokens,
      ),
  );
  rows.unshift(...kept);
  threadsInFile = [...new Set([...old.threads, ...threadCounts])].sort((a, b) => a - b);
  // Keep the file's order: by threads, then model as listed above.
  const order = candidates.map((c) => c.name);
  rows.sort(
    (a, b) =>
      a.threads - b.threads || order.indexOf(a.model) - order.indexOf(b.model) || a.promptTokens - b.promptTokens,
  );
}
const details: E2eDetails = {
  date: new Date().toISOString(),
  node: process.version,
  threads: threadsInFile,
  runs,
  prompts: promptCounts,
  decode,
  quick,
  rows,
};
writeResults({
  topic: 'e2e',
  title: e2eTitle,
  method: e2eMethod(details),
  peers: ['node-llama-cpp', '@node-llama-cpp/linux-x64'],
  cases: e2eCases(details),
  details,
});
const peer = (r: Row) =>
  rows.find(
    (p) =>
      p.engine === 'llama.cpp' && p.model === r.model && p.threads === r.threads && p.promptTokens === r.promptTokens,
  );
const ratio = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(2)}x` : '');
console.log(
  '| model | engine | threads | prompt | prompt tok/s | vs llama.cpp | decode tok/s | vs llama.cpp | decode tok/CPU-s | vs llama.cpp | peak RSS MiB | load ms |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const p = r.engine === 'llama.cpp' ? undefined : peer(r);
  console.log(
    `| ${r.model} | ${r.engine} | ${r.threads} | ${r.promptTokens} | ${r.promptTokPerSec} | ${ratio(r.promptTokPerSec, p?.promptTokPerSec)} | ${r.decodeTokPerSec} | ${ratio(r.decodeTokPerSec, p?.decodeTokPerSec)} | ${r.decodeTokPerCpuSec} | ${ratio(r.decodeTokPerCpuSec, p?.decodeTokPerCpuSec)} | ${r.maxRssMiB} | ${r.loadMs} |`,
  );
}
