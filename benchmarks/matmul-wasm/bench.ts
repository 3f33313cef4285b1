// Matrix-vector throughput of @nibble/backend-wasm: GB/s of weight bytes per second (median of runs) per format, at
// 4096x4096 and 11008x4096 ([out, in]), with 1 and 2 threads, in ggml mode (activations quantized to the vec_dot
// type, integer dots) and with f32 activations. Each run multiplies enough distinct copies of the weight to exceed
// the L3 cache, so the bytes come from DRAM as in a decode step. Beside, from the same run: ggml's native
// single-thread matrix × vector (ggml_matvec.c, built here with the system C compiler against node-llama-cpp's
// libggml-cpu; without a compiler the figures quoted in the matmul issue stand in, marked as quoted), and a
// one-thread read of a large f32 array.
//
//   npx tsx --conditions=source benchmarks/matmul-wasm/bench.ts [format ...]
//   THREADS=1,2 RUNS=5 SHAPES=4096,11008 MIN_MB=160 MATMUL_WASM_RESULTS=path
//
// Then the prompt case: PROMPT_TOKENS (32; 0 skips) activation rows at once, ms per token, for PROMPT_FORMATS
// (q4_0,q8_0) at PROMPT_SHAPES (out x in: 2048x2048,5632x2048,2048x5632 as TinyLlama's, and 4096x4096), ggml mode.
// The A/B of two kernel versions on that path is prompt-ab.ts.
//
// With NIBBLE_BENCH_QUICK=1 (`pnpm bench --quick`): q4_0, q8_0, q4_K, f16 at 4096x4096, one thread, 3 runs; the
// prompt case q4_0 at 2048x2048 only. Writes
// results/matmul-wasm.json in the common shape (lib/results.ts).
import '@nibble/backend-wasm/node';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formats } from '@nibble/formats';
import {
  type Backend,
  createBackend,
  type DTypeName,
  type Graph,
  GraphBuilder,
  hostTensor,
  rowBytes,
} from '@nibble/tensor';
import { quick, resultsDir, writeResults } from '../lib/results.js';
import { type MatmulWasmDetails, matmulWasmCases, matmulWasmMethod, matmulWasmTitle } from './cases.js';

const ggmlGBs: Record<string, number> = { q4_0: 9.2, q8_0: 16.6, q4_K: 9.8, q6_K: 11.5, f16: 14.2 };
const all: DTypeName[] = [
  'f32',
  'f16',
  'bf16',
  'q8_0',
  'q4_0',
  'q4_1',
  'q5_0',
  'q5_1',
  'q2_K',
  'q3_K',
  'q4_K',
  'q5_K',
  'q6_K',
  'iq4_nl',
  'iq4_xs',
  'mxfp4',
];
const wanted = process.argv.slice(2) as DTypeName[];
const list = wanted.length ? wanted : quick ? (['q4_0', 'q8_0', 'q4_K', 'f16'] as DTypeName[]) : all;
const threadCounts = (process.env.THREADS ?? (quick ? '1' : '1,2')).split(',').map(Number);
const runs = Number(process.env.RUNS ?? (quick ? 3 : 5));
const shapes = (process.env.SHAPES ?? (quick ? '4096' : '4096,11008')).split(',').map(Number);
const minBytes = Number(process.env.MIN_MB ?? 160) * 1e6;
const inF = 4096;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
function values(n: number, seed: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return a;
}
function readGBs(): number {
  const big = values(48 << 20, 7, 1);
  const times: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    let s0 = 0;
    let s1 = 0;
    for (let i = 0; i < big.length; i += 2) {
      s0 += big[i];
      s1 += big[i + 1];
    }
    times.push(performance.now() - t0);
    if (s0 + s1 === 42) console.log('');
  }
  return big.byteLength / 1e9 / (median(times) / 1000);
}

type GgmlRows = NonNullable<MatmulWasmDetails['ggml']>['rows'];
/**
 * ggml's own matrix × vector, one thread, in this run: builds ggml_matvec.c in a temp folder and runs it once per
 * format and shape on node-llama-cpp's libggml-cpu variants (it keeps the one ggml would pick). Returns why not,
 * instead, when there is no compiler or library.
 */
interface GgmlPeer {
  /** One format and shape: ggml's row and the libggml-cpu variant that ran it, or why it failed. */
  measure: (fmt: DTypeName, outF: number) => { row: GgmlRows[number]; variant: string } | string;
  done: () => void;
}
function ggmlPeer(): GgmlPeer | string {
  // The package's bins folder, where benchmarks/ installs it (its exports map hides the files from resolve()).
  const dir = join(dirname(fileURLToPath(import.meta.url)), '../node_modules/@node-llama-cpp/linux-x64/bins/linux-x64');
  let libs: string[];
  try {
    libs = readdirSync(dir)
      .filter((f) => /^libggml-cpu-.*\.so$/.test(f))
      .map((f) => join(dir, f));
  } catch {
    return '@node-llama-cpp/linux-x64 not installed';
  }
  if (process.platform !== 'linux' || process.arch !== 'x64' || !libs.length) return 'no libggml-cpu for this platform';
  const tmp = mkdtempSync(join(tmpdir(), 'nibble-ggml-matvec-'));
  const exe = join(tmp, 'ggml_matvec');
  const src = join(dirname(fileURLToPath(import.meta.url)), 'ggml_matvec.c');
  const cc = spawnSync(process.env.CC ?? 'cc', ['-O2', '-o', exe, src, '-ldl'], { encoding: 'utf8' });
  if (cc.error || cc.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    return `C compiler failed: ${cc.error?.message ?? cc.stderr.trim().split('\n')[0]}`;
  }
  return {
    measure(fmt, outF) {
      const args = [formats[fmt].layout.ggmlType, outF, inF, minBytes, runs].map(String);
      const r = spawnSync(exe, [...args, ...libs], { encoding: 'utf8' });
      if (r.status !== 0) return `ggml_matvec ${fmt}: ${r.stderr.trim() || r.error?.message}`;
      const o = JSON.parse(r.stdout) as { variant: string; gbs: number; ms: number; y: number[] };
      return { row: { format: fmt, shape: `${outF}x${inF}`, gbs: o.gbs, ms: o.ms, y: o.y }, variant: o.variant };
    },
    done: () => rmSync(tmp, { recursive: true, force: true }),
  };
}

// 64 quantized rows tiled: real blocks (scales, quants) without quantizing 45M values per format.
const tile = values(64 * inF, 1, 0.05);
const x = values(inF, 2, 1);
interface Row {
  format: string;
  shape: string;
  threads: number;
  mode: 'ggml' | 'f32';
  gbs: number;
  ms: number;
}
const rows: Row[] = [];
const readBefore = readGBs();
const peer = threadCounts.includes(1) ? ggmlPeer() : 'no 1-thread rows in this run';
const ggml: NonNullable<MatmulWasmDetails['ggml']> = { rows: [] };
if (typeof peer === 'string') {
  ggml.note = peer;
  console.error(`ggml peer not measured: ${peer}`);
}
// ggml's outputs beside ours (ggml mode, 1 thread) show that both multiplied the same thing.
const agreement: string[] = [];
for (const threads of threadCounts) {
  for (const mode of ['ggml', 'f32'] as const) {
    const backend: Backend = await createBackend('wasm', { threads, matmulActivations: mode });
    for (const fmt of list) {
      const codec = formats[fmt];
      const rb = rowBytes(fmt, inF);
      const block = codec.quantize(tile, { rowLength: inF });
      for (const outF of shapes) {
        const bytes = new Uint8Array(outF * rb);
        for (let o = 0; o < bytes.length; o += block.length)
          bytes.set(block.subarray(0, Math.min(block.length, bytes.length - o)), o);
        const copies = Math.max(1, Math.ceil(minBytes / bytes.length));
        const g = new GraphBuilder();
        const xi = g.input('x', 'f32', [1, inF]);
        const ws = [];
        for (let c = 0; c < copies; c++) {
          const w = await backend.upload(hostTensor(fmt, [outF, inF], bytes), { name: `w${c}` });
          ws.push(w);
          g.output(`y${c}`, g.matmul(g.weight(w), xi));
        }
        const graph: Graph = g.build();
        const times: number[] = [];
        let y0: Float32Array | undefined;
        for (let r = 0; r < runs + 1; r++) {
          const t0 = performance.now();
          const out = await backend.run(graph, { x });
          if (r > 0) times.push((performance.now() - t0) / copies);
          y0 = out.y0 as Float32Array;
        }
        for (const w of ws) backend.free(w);
        const ms = median(times);
        if (threads === 1 && mode === 'ggml' && typeof peer !== 'string') {
          const m = peer.measure(fmt, outF);
          if (typeof m === 'string') console.error(m);
          else {
            ggml.variant = m.variant;
            ggml.rows.push(m.row);
            const theirs = m.row.y;
            const ours = Array.from(y0?.subarray(0, 4) ?? []);
            const scale = Math.max(...theirs.map(Math.abs), 1e-6);
            const gap = Math.max(...theirs.map((v, i) => Math.abs(v - (ours[i] ?? Number.NaN)))) / scale;
            const show = (ys: number[]) => ys.map((v) => v.toPrecision(6)).join(', ');
            if (!(gap <= 1e-3)) agreement.push(`${fmt} ${outF}x${inF}: ours ${show(ours)}; ggml ${show(theirs)}`);
          }
        }
        rows.push({ format: fmt, shape: `${outF}x${inF}`, threads, mode, ms, gbs: bytes.length / 1e9 / (ms / 1000) });
        process.stderr.write('.');
      }
    }
    backend.dispose();
  }
}
// The prompt: many activation rows per weight row, compute-bound (the weights stay in cache between runs).
const promptTokens = Number(process.env.PROMPT_TOKENS ?? 32);
const promptFormats = (process.env.PROMPT_FORMATS ?? (quick ? 'q4_0' : 'q4_0,q8_0')).split(',') as DTypeName[];
const promptShapes = (process.env.PROMPT_SHAPES ?? (quick ? '2048x2048' : '2048x2048,5632x2048,2048x5632,4096x4096'))
  .split(',')
  .map((s) => s.split('x').map(Number) as [number, number]);
const prompt: NonNullable<MatmulWasmDetails['prompt']> = [];
for (const threads of promptTokens > 0 ? threadCounts : []) {
  const backend: Backend = await createBackend('wasm', { threads, matmulActivations: 'ggml' });
  for (const fmt of promptFormats) {
    for (const [outF, n] of promptShapes) {
      const w = await backend.upload(
        hostTensor(fmt, [outF, n], formats[fmt].quantize(values(outF * n, 3, 0.05), { rowLength: n })),
        { name: 'w' },
      );
      const g = new GraphBuilder();
      g.output('y', g.matmul(g.weight(w), g.input('x', 'f32', [promptTokens, n])));
      const graph = g.build();
      const xs = values(promptTokens * n, 4, 1);
      const times: number[] = [];
      for (let r = 0; r < runs + 1; r++) {
        const t0 = performance.now();
        await backend.run(graph, { x: xs });
        if (r > 0) times.push(performance.now() - t0);
      }
      backend.free(w);
      const ms = median(times) / promptTokens;
      prompt.push({ format: fmt, shape: `${outF}x${n}`, threads, tokens: promptTokens, msPerToken: ms });
      process.stderr.write('.');
    }
  }
  backend.dispose();
}
process.stderr.write('\n');
if (typeof peer !== 'string') peer.done();
if (agreement.length)
  console.error(`ggml's outputs differ from ours (relative gap > 1e-3):\n  ${agreement.join('\n  ')}`);
const read = (readBefore + readGBs()) / 2;
console.log(`\nwasm matrix-vector, median of ${runs}, weights from DRAM; GB/s = weight bytes / time`);
console.log(
  `same-run scale: one-thread JS read of a 200 MB f32 array ${read.toFixed(1)} GB/s (the f32 rows below are the wasm read)\n`,
);
const cols = threadCounts.flatMap((t) => shapes.flatMap((s) => [`${s}x${inF} ${t}T ggml`, `${s}x${inF} ${t}T f32`]));
console.log(`| format | ${cols.join(' | ')} | ggml native 1T | best 1T / ggml |`);
console.log(`|---|${cols.map(() => '---').join('|')}|---|---|`);
for (const fmt of list) {
  const cells = threadCounts.flatMap((t) =>
    shapes.flatMap((s) =>
      (['ggml', 'f32'] as const).map(
        (m) =>
          rows
            .find((r) => r.format === fmt && r.threads === t && r.shape === `${s}x${inF}` && r.mode === m)
            ?.gbs.toFixed(2) ?? '-',
      ),
    ),
  );
  const best = Math.max(...rows.filter((r) => r.format === fmt && r.threads === 1).map((r) => r.gbs));
  // Same-run ggml at the largest shape (the decode-like one), else the quoted figure.
  const same = ggml.rows.filter((r) => r.format === fmt).at(-1)?.gbs;
  const ref = same ?? (ggml.rows.length ? undefined : ggmlGBs[fmt]);
  console.log(
    `| ${fmt} | ${cells.join(' | ')} | ${ref?.toFixed(2) ?? '-'}${same === undefined && ref !== undefined ? ' (quoted)' : ''} | ${ref ? `${((100 * best) / ref).toFixed(0)}%` : '-'} |`,
  );
}
if (prompt.length) {
  console.log(`\nwasm prompt matmul, ${promptTokens} tokens at once, ggml mode: ms per token (median of ${runs})\n`);
  console.log(
    `| format | ${threadCounts.flatMap((t) => promptShapes.map(([o, i]) => `${o}x${i} ${t}T`)).join(' | ')} |`,
  );
  console.log(`|---|${threadCounts.flatMap(() => promptShapes.map(() => '---')).join('|')}|`);
  for (const fmt of promptFormats) {
    const cells = threadCounts.flatMap((t) =>
      promptShapes.map(
        ([o, i]) => prompt.find((r) => r.format === fmt && r.threads === t && r.shape === `${o}x${i}`)?.msPerToken,
      ),
    );
    console.log(`| ${fmt} | ${cells.map((c) => c?.toFixed(3) ?? '-').join(' | ')} |`);
  }
}
const details: MatmulWasmDetails = {
  date: new Date().toISOString(),
  runs,
  readGBs: read,
  ggmlGBs,
  ggml,
  quick,
  rows,
  prompt,
};
writeResults({
  topic: 'matmul-wasm',
  title: matmulWasmTitle,
  method: matmulWasmMethod(details),
  cases: matmulWasmCases(details),
  details,
  path: process.env.MATMUL_WASM_RESULTS ?? join(resultsDir(), 'matmul-wasm.json'),
});
