/**
 * End to end: prompt tok/s (128-token prompt), decode tok/s and peak RSS of nibble's JS backend beside llama.cpp
 * (node-llama-cpp, same file, same explicit thread count), each measurement in its own process, median of runs.
 *
 *   npx tsx --conditions=source benchmarks/e2e/bench.ts [--threads 1,2] [--runs 3] [--decode 64] [--models a,b] [--merge]
 *
 * --merge keeps the rows of the existing results file that this run does not measure (other models or threads).
 * With NIBBLE_BENCH_QUICK=1 (`pnpm bench --quick`): 1 thread, 1 run, 32 decode steps, stories260K only.
 *
 * Writes benchmarks/results/e2e.json and prints a markdown table.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyLlamaQ4_0Path } from '../gguf/generate.js';
import { type BenchFile, quick, resultsDir, writeResults } from '../lib/results.js';
import { e2eCases, e2eMethod, e2eTitle } from './cases.js';

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
const promptTokens = 128;

const candidates = [
  { name: 'stories260K (F32)', path: join(root, 'fixtures/models/stories260K.gguf'), decode, runs },
  { name: 'stories260K (Q4_0)', path: join(root, 'fixtures/models/stories260K-Q4_0.gguf'), decode, runs },
];
const only = flag('models', quick ? 'stories260K' : '');
// The JS backend needs minutes for a 128-token prompt on 1.1B parameters: one run of it, a few decode steps.
// The 620 MB file is made only when this run measures it.
const big = 'TinyLlama-shaped synthetic (Q4_0, 620 MB)';
if (only === '' || only.split(',').some((o) => big.includes(o))) {
  candidates.push({ name: big, path: await tinyLlamaQ4_0Path(), decode: Math.min(decode, 8), runs: 1 });
}
const models = candidates.filter(
  (m) => (only === '' || only.split(',').some((o) => m.name.includes(o))) && existsSync(m.path),
);

interface Row {
  model: string;
  engine: string;
  threads: number;
  promptTokPerSec: number;
  decodeTokPerSec: number;
  maxRssMiB: number;
  loadMs: number;
  runs: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const rows: Row[] = [];
for (const threads of threadCounts)
  for (const m of models) {
    for (const engine of ['nibble-js', 'llama.cpp']) {
      const results = [];
      const n = engine === 'llama.cpp' ? runs : m.runs;
      for (let r = 0; r < n; r++) {
        const out = execFileSync(
          process.execPath,
          [
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
        runs: n,
        promptTokPerSec: median(results.map((x) => x.promptTokPerSec)),
        decodeTokPerSec: median(results.map((x) => x.decodeTokPerSec)),
        maxRssMiB: median(results.map((x) => x.maxRssMiB)),
        loadMs: median(results.map((x) => x.loadMs)),
      });
    }
  }

const resultsPath = join(resultsDir(), 'e2e.json');
let threadsInFile = threadCounts;
if (args.includes('--merge') && existsSync(resultsPath)) {
  const old = (JSON.parse(readFileSync(resultsPath, 'utf8')) as BenchFile).details as {
    threads: number[];
    rows: Row[];
  };
  const kept = old.rows.filter(
    (o) => !rows.some((r) => r.model === o.model && r.engine === o.engine && r.threads === o.threads),
  );
  rows.unshift(...kept);
  threadsInFile = [...new Set([...old.threads, ...threadCounts])].sort((a, b) => a - b);
  // Keep the file's order: by threads, then model as listed above.
  const order = candidates.map((c) => c.name);
  rows.sort((a, b) => a.threads - b.threads || order.indexOf(a.model) - order.indexOf(b.model));
}
const details = {
  date: new Date().toISOString(),
  node: process.version,
  threads: threadsInFile,
  runs,
  promptTokens,
  decode,
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
console.log(`| model | engine | threads | prompt tok/s (${promptTokens}) | decode tok/s | peak RSS MiB | load ms |`);
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.model} | ${r.engine} | ${r.threads} | ${r.promptTokPerSec} | ${r.decodeTokPerSec} | ${r.maxRssMiB} | ${r.loadMs} |`,
  );
}
