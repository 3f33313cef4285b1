/**
 * Quantize benchmark: a TinyLlama-shaped F16 GGUF (2.2 GB, model.ts) to Q4_0, Q8_0 and Q4_K_M with 1 and 2 threads,
 * nibble (`quantizeFile`, worker_threads for 2) beside llama.cpp's own `llama_model_quantize` (llama_peer.py, the
 * prebuilt libllama of node-llama-cpp) on the same file in the same run: wall time, MB/s of input, CPU seconds (all
 * threads), peak RSS (each run in its own process), and whether the two outputs are the same bytes. Runs alternate
 * between the two. The load average before and after goes with the figures: on a shared machine the CPU seconds
 * are the steadier measure.
 *
 *   pnpm bench quantize                          # the 2.2 GB file
 *   BENCH_LAYERS=2 pnpm bench quantize           # the same tensors with 2 of the 22 blocks (440 MB)
 *   BENCH_SHAPE=small pnpm bench quantize        # a 40 MB file of the same layout, to check the benchmark works
 *   BENCH_ROUNDS=3 BENCH_PRESETS=Q4_0,Q8_0 BENCH_THREADS=1,2
 *   BENCH_SOURCE=1                               # run nibble from its TypeScript sources (through tsx)
 *
 * nibble runs as users get it, the built package (dist/, built here first with its dependencies), as llama.cpp runs
 * as a compiled library: from the sources each worker thread would spend most of a second compiling TypeScript.
 *
 * Writes benchmarks/results/quantize.json (other shapes: benchmarks/.cache/quantize-SHAPE.json) and prints a
 * markdown table.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { f16ModelPath } from './model.js';

const here = dirname(fileURLToPath(import.meta.url));
const small = process.env.BENCH_SHAPE === 'small';
const layers = Number(process.env.BENCH_LAYERS ?? 22);
const full = !small && layers === 22;
const shapeName = small ? 'small' : full ? 'tinyllama-1.1b' : `tinyllama-1.1b-${layers}-layers`;
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const presets = (process.env.BENCH_PRESETS ?? 'Q4_0,Q8_0,Q4_K_M').split(',');
const threadCounts = (process.env.BENCH_THREADS ?? '1,2').split(',').map(Number);

interface Run {
  seconds: number;
  cpuSeconds: number;
  peakRssMB: number;
}

if (!Number.isInteger(layers) || layers < 1 || layers > 22)
  throw new Error(`BENCH_LAYERS must be 1..22, got ${layers}`);
const input = await f16ModelPath(small, layers);
const inputBytes = statSync(input).size;
const cache = dirname(input);

function sha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

const fromSource = process.env.BENCH_SOURCE === '1';
if (!fromSource) {
  console.error('building @nibble/quantize and its dependencies (BENCH_SOURCE=1 skips this)');
  execFileSync('pnpm', ['--filter', '@nibble/quantize...', 'run', 'build'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

function ours(out: string, preset: string, threads: number): Run {
  const conditions = fromSource ? ['--conditions=source'] : [];
  const stdout = execFileSync(
    process.execPath,
    [...conditions, '--import', 'tsx', join(here, 'worker.ts'), input, out, preset, String(threads)],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout.trim().split('\n').pop() as string) as Run;
}

let peerError: string | undefined;
function peer(out: string, preset: string, threads: number): Run | undefined {
  if (peerError) return undefined;
  try {
    const stdout = execFileSync('python3', [join(here, 'llama_peer.py'), input, out, preset, String(threads)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return JSON.parse(stdout.trim()) as Run;
  } catch (e) {
    peerError = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
    console.error(`llama.cpp peer unavailable: ${peerError}`);
    return undefined;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor((s.length - 1) / 2)];
};

const loadBefore = loadavg();
const rows = [];
for (const preset of presets) {
  for (const threads of threadCounts) {
    const a: Run[] = [];
    const b: Run[] = [];
    const outA = join(cache, `bench-nibble-${preset}.gguf`);
    const outB = join(cache, `bench-llama-${preset}.gguf`);
    let same: boolean | undefined;
    for (let r = 0; r < rounds; r++) {
      // Alternate who goes first, so both share the machine's drift.
      const order = r % 2 === 0 ? ['nibble', 'llama'] : ['llama', 'nibble'];
      for (const who of order) {
        if (who === 'nibble') a.push(ours(outA, preset, threads));
        else {
          const p = peer(outB, preset, threads);
          if (p) b.push(p);
        }
      }
      if (r === 0 && b.length > 0) same = (await sha256(outA)) === (await sha256(outB));
    }
    rmSync(outA, { force: true });
    rmSync(outB, { force: true });
    const ms = median(a.map((x) => x.seconds));
    const ps = median(b.map((x) => x.seconds));
    const mc = median(a.map((x) => x.cpuSeconds));
    const pc = median(b.map((x) => x.cpuSeconds));
    rows.push({
      preset,
      threads,
      nibbleSeconds: ms,
      nibbleMBs: inputBytes / 1e6 / ms,
      nibbleCpuSeconds: mc,
      nibblePeakRssMB: Math.max(...a.map((x) => x.peakRssMB)),
      llamaSeconds: b.length ? ps : null,
      llamaMBs: b.length ? inputBytes / 1e6 / ps : null,
      llamaCpuSeconds: b.length ? pc : null,
      llamaPeakRssMB: b.length ? Math.max(...b.map((x) => x.peakRssMB)) : null,
      speedRatio: b.length ? ps / ms : null,
      cpuRatio: b.length ? pc / mc : null,
      sameBytes: same ?? null,
    });
    console.error(
      `${preset} x${threads}: nibble ${ms.toFixed(2)} s (${mc.toFixed(2)} CPU-s), llama.cpp ${b.length ? `${ps.toFixed(2)} s (${pc.toFixed(2)} CPU-s)` : '-'}`,
    );
  }
}

const result = {
  date: new Date().toISOString(),
  node: process.version,
  loadAverage1m: loadavg()[0],
  loadAverageBefore: loadBefore,
  loadAverageAfter: loadavg(),
  cpus: cpus().length,
  input: { shape: shapeName, bytes: inputBytes, type: 'f16' },
  rounds,
  nibble: fromSource ? 'TypeScript sources (tsx)' : 'built package (dist)',
  peer: peerError
    ? { error: peerError }
    : { library: 'libllama of @node-llama-cpp/linux-x64 3.21.1, llama_model_quantize' },
  rows,
};
// Other shapes than the full file only check the benchmark or look closer: their figures go to the cache.
writeFileSync(
  join(here, full ? '../results/quantize.json' : `../.cache/quantize-${shapeName}.json`),
  `${JSON.stringify(result, null, 2)}\n`,
);

const f = (x: number | null, d = 2) => (x === null || Number.isNaN(x) ? '-' : x.toFixed(d));
const la = (l: number[]) => l.map((x) => x.toFixed(1)).join(' ');
console.log(
  `Quantize ${(inputBytes / 1e9).toFixed(2)} GB F16 (${result.input.shape} shape), median of ${rounds}, peak RSS max; ` +
    `${result.cpus} CPUs, load average ${la(loadBefore)} before, ${la(result.loadAverageAfter)} after.\n`,
);
console.log(
  '| preset | threads | nibble s | MB/s | CPU-s | peak RSS MB | llama.cpp s | MB/s | CPU-s | peak RSS MB | speed vs llama.cpp | CPU-s ratio | same bytes |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.preset} | ${r.threads} | ${f(r.nibbleSeconds)} | ${f(r.nibbleMBs, 1)} | ${f(r.nibbleCpuSeconds)} | ${f(r.nibblePeakRssMB, 0)} | ${f(r.llamaSeconds)} | ${f(r.llamaMBs, 1)} | ${f(r.llamaCpuSeconds)} | ${f(r.llamaPeakRssMB, 0)} | ${f(r.speedRatio)}x | ${f(r.cpuRatio)}x | ${r.sameBytes ?? '-'} |`,
  );
}
