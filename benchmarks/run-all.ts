// Runs every benchmark (benchmarks/<topic>/bench.ts) one after another, each in its own process so that one
// benchmark's heap never disturbs the next, then writes the report (RESULTS.md and its charts) from every results
// file of the common shape (lib/results.ts), including ones measured elsewhere (the GPU machine's).
//
//   pnpm bench                      every topic, full sizes: benchmarks/results/*.json and benchmarks/RESULTS.md
//   pnpm bench formats gguf         some topics
//   pnpm bench --quick              small sizes, few runs (under 10 minutes on 2 cores): benchmarks/results/quick/
//   pnpm bench --out DIR            results into DIR (RESULTS.md beside them)
//   pnpm bench --report             only rewrite the report from the results already there
//
// The peers (llama.cpp through node-llama-cpp, @huggingface/gguf, gpt-tokenizer, js-tiktoken) are dependencies of
// this private package only; when one is missing, this installs them first.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { resultsAdapters } from './lib/adapters.js';
import { renderReport } from './lib/report.js';
import { benchDir, readResults } from './lib/results.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const { values: opts, positionals: wanted } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  allowPositionals: true,
  strict: true,
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    report: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  console.log('usage: pnpm bench [--quick] [--out DIR] [--report] [topic ...]');
  process.exit(0);
}

const topics = readdirSync(here, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(`${here}${d.name}/bench.ts`))
  .map((d) => d.name)
  .sort();
const unknown = wanted.filter((t) => !topics.includes(t));
if (unknown.length) {
  console.error(`unknown topic ${unknown.join(', ')}; topics: ${topics.join(', ')}`);
  process.exit(2);
}
const outDir = resolve(opts.out ?? join(benchDir, 'results', ...(opts.quick ? ['quick'] : [])));
const reportPath = opts.out || opts.quick ? join(outDir, 'RESULTS.md') : join(benchDir, 'RESULTS.md');

/** Installs this package's dependencies (the peers) when any of them is missing. */
function ensurePeers(): void {
  const pkg = JSON.parse(readFileSync(join(benchDir, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  const missing = Object.keys(pkg.dependencies).filter(
    (d) => !existsSync(join(benchDir, 'node_modules', d, 'package.json')),
  );
  if (missing.length === 0) return;
  console.log(`installing the benchmark peers (${missing.join(', ')} missing)`);
  const r = spawnSync('pnpm', ['install', '--frozen-lockfile', '--filter', '@nibble/benchmarks...'], {
    cwd: join(benchDir, '..'),
    stdio: 'inherit',
  });
  if (r.status !== 0) {
    console.error('could not install the benchmark peers');
    process.exit(1);
  }
}

// Without a GPU, dawn.node finds an adapter only through Chromium's SwiftShader Vulkan driver (toolchain notes); a
// machine with an NVIDIA device, or a VK_ICD_FILENAMES already set, is left alone.
const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';
function gpuEnv(topic: string): Record<string, string> {
  if (topic !== 'webgpu' || process.env.VK_ICD_FILENAMES || existsSync('/dev/nvidia0') || !existsSync(swiftshader))
    return {};
  return {
    VK_ICD_FILENAMES: swiftshader,
    LD_LIBRARY_PATH: ['/usr/lib/chromium', process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
  };
}

let failed = 0;
if (!opts.report) {
  ensurePeers();
  const run = wanted.length ? wanted : topics;
  const t0 = performance.now();
  for (const topic of run) {
    console.log(`\n## ${topic}\n`);
    const t = performance.now();
    const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', `${here}${topic}/bench.ts`], {
      stdio: 'inherit',
      cwd: join(benchDir, '..'), // the repository root, which some benchmarks take as their base
      env: { ...process.env, ...gpuEnv(topic), NIBBLE_BENCH_OUT: outDir, NIBBLE_BENCH_QUICK: opts.quick ? '1' : '0' },
    });
    console.log(`\n(${topic}: ${((performance.now() - t) / 1000).toFixed(0)} s)`);
    if (r.status !== 0) {
      console.error(`benchmark ${topic} failed with status ${r.status}`);
      failed++;
    }
  }
  console.log(`\nAll benchmarks: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

// The report: every results file of the common shape in the output folder.
const { files, skipped } = readResults(outDir, resultsAdapters);
const chartDir = join(outDir, 'charts');
rmSync(chartDir, { recursive: true, force: true });
mkdirSync(chartDir, { recursive: true });
const body = renderReport(files, {
  charts: {
    kind: 'files',
    write: (name, svg) => {
      writeFileSync(join(chartDir, name), svg);
      return relative(dirname(reportPath), join(chartDir, name));
    },
  },
  skipped,
});
const intro = `# Benchmark results

Written by \`pnpm bench${opts.quick ? ' --quick' : ''}\` (benchmarks/run-all.ts) from the results files in \`${relative(join(benchDir, '..'), outDir)}/\`. Every
figure is a median of several runs, and every ratio compares engines measured in the same run on the same machine:
quote ratios, not absolute figures, from a shared machine. Above 1× means nibble is better (faster, or smaller).
The [benchmarks README](${relative(dirname(reportPath), join(benchDir, 'README.md'))}) says what each benchmark measures.

`;
writeFileSync(reportPath, intro + body);
console.log(`\nResults: ${relative(process.cwd(), outDir)}/*.json; report: ${relative(process.cwd(), reportPath)}`);
for (const s of skipped) console.log(`not in the report: ${s.file} (${s.reason})`);
process.exitCode = failed > 0 ? 1 : 0;
