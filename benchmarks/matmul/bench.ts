// Matrix-vector throughput of @nibble/backend-js, one thread: GB/s of weight bytes per second (median of several
// runs) per format, for 4096x4096 and 11008x4096 weights ([out, in]), with f32 activations and in ggml mode
// (activations quantized to the vec_dot type). Scale: ggml's native single-thread dot products on this machine kind,
// and a plain read of an f32 array of the same size measured in this run.
//
// Then several activation rows (prefill): 4096x4096 times TOKENS (default 8 and 32) rows, GB/s of weight bytes and
// tokens/s.
//
//   npx tsx --conditions=source benchmarks/matmul/bench.ts [format ...]
//   TOKENS=8,32 MULTI_RUNS=5 RUNS=7 SINGLE=0 (skip the one-token part) MATMUL_RESULTS=path
//   MATMUL_BACKEND=path/to/backend.ts (another JsBackend, e.g. an older copy, to compare)
// With NIBBLE_BENCH_QUICK=1 (`pnpm bench --quick`): f32, q8_0, q4_0, q4_K, q6_K, 4096x4096 only, RUNS=3, TOKENS=8.
import { fileURLToPath } from 'node:url';
import type { JsBackend as JsBackendType } from '@nibble/backend-js';
import { formats } from '@nibble/formats';
import { type DTypeName, type Graph, GraphBuilder, hostTensor, rowBytes } from '@nibble/tensor';
import { quick, writeResults } from '../lib/results.js';
import { matmulCases, matmulMethod, matmulTitle } from './cases.js';

/** ggml's single-thread dot products from DRAM on this machine kind (spec/toolchain.md and the issue), GB/s. */
const ggmlGBs: Record<string, number> = { q4_0: 9.2, q8_0: 16.6, q4_K: 9.8, q6_K: 11.5, f16: 14.2 };
const memoryGBs = 27;

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
  'tq1_0',
  'tq2_0',
  'mxfp4',
];
const wanted = process.argv.slice(2) as DTypeName[];
const quickList: DTypeName[] = ['f32', 'q8_0', 'q4_0', 'q4_K', 'q6_K'];
const list = wanted.length ? wanted : quick ? quickList : all;
const shapes: [number, number][] = quick
  ? [[4096, 4096]]
  : [
      [4096, 4096],
      [11008, 4096],
    ];
const runs = Number(process.env.RUNS ?? (quick ? 3 : 7));
const multiRuns = Number(process.env.MULTI_RUNS ?? (quick ? 2 : 5));
const tokenCounts = (process.env.TOKENS ?? (quick ? '8' : '8,32')).split(',').filter(Boolean).map(Number);
const single = process.env.SINGLE !== '0';
const { JsBackend } = (await import(process.env.MATMUL_BACKEND ?? '@nibble/backend-js')) as {
  JsBackend: typeof JsBackendType;
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// Deterministic weights N(0, 0.02)-ish and one activation row.
function values(n: number, seed: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return a;
}

const inF = 4096;
const maxOut = Math.max(...shapes.map(([out]) => out));
const src = values(maxOut * inF, 1, 0.05);
const x = values(inF, 2, 1);

// Same-run scale: one thread summing an f32 array as large as the biggest weight here.
function readGBs(): number {
  const big = new Float32Array(maxOut * inF);
  big.set(src);
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let i = 0; i < big.length; i += 4) {
      s0 += big[i];
      s1 += big[i + 1];
      s2 += big[i + 2];
      s3 += big[i + 3];
    }
    times.push(performance.now() - t0);
    if (s0 + s1 + s2 + s3 === 42) console.log('');
  }
  return big.byteLength / 1e9 / (median(times) / 1000);
}

interface Row {
  format: string;
  shape: string;
  mode: 'f32' | 'ggml';
  weightMB: number;
  ms: number;
  gbs: number;
  ggmlGBs: number | null;
}

const rows: Row[] = [];
const quantized = new Map<string, Uint8Array>();
const readBefore = readGBs();
const backends = {
  f32: new JsBackend({ matmulActivations: 'f32' }),
  ggml: new JsBackend({ matmulActivations: 'ggml' }),
};
for (const fmt of list) {
  const codec = formats[fmt];
  if (!codec) {
    console.error(`unknown format ${fmt}`);
    continue;
  }
  process.stderr.write(`${fmt} `);
  const bytes = codec.quantize(src, { rowLength: inF }); // [11008, 4096]; the first 4096 rows serve the square case
  quantized.set(fmt, bytes);
  for (const [outF] of single ? shapes : []) {
    const wBytes = bytes.subarray(0, outF * rowBytes(fmt, inF));
    const graphs = {} as Record<'f32' | 'ggml', Graph>;
    for (const mode of ['f32', 'ggml'] as const) {
      const w = await backends[mode].upload(hostTensor(fmt, [outF, inF], wBytes), { name: `w_${fmt}` });
      const g = new GraphBuilder();
      g.output('y', g.matmul(g.weight(w), g.input('x', 'f32', [1, inF])));
      graphs[mode] = g.build();
    }
    // The two modes alternate run by run, so that both see the same machine load.
    const times = { f32: [] as number[], ggml: [] as number[] };
    for (let r = 0; r < runs + 2; r++) {
      for (const mode of ['f32', 'ggml'] as const) {
        const t0 = performance.now();
        await backends[mode].run(graphs[mode], { x });
        if (r >= 2) times[mode].push(performance.now() - t0);
      }
    }
    for (const mode of ['f32', 'ggml'] as const) {
      const ms = median(times[mode]);
      rows.push({
        format: fmt,
        shape: `${outF}x${inF}`,
        mode,
        weightMB: wBytes.byteLength / 1e6,
        ms,
        gbs: wBytes.byteLength / 1e9 / (ms / 1000),
        ggmlGBs: ggmlGBs[fmt] ?? null,
      });
    }
  }
}
process.stderr.write('\n');

// Several activation rows: each weight block is decoded once per group of weight rows and used by every token.
interface MultiRow {
  format: string;
  shape: string;
  tokens: number;
  mode: 'f32' | 'ggml';
  ms: number;
  gbs: number;
  tokPerSec: number;
}
const multi: MultiRow[] = [];
const xs = values(Math.max(1, ...tokenCounts) * inF, 3, 1);
for (const fmt of tokenCounts.length ? list : []) {
  const bytes = quantized.get(fmt);
  if (bytes === undefined) continue;
  process.stderr.write(`${fmt}* `);
  const outF = 4096;
  const wBytes = bytes.subarray(0, outF * rowBytes(fmt, inF));
  const graphs = {} as Record<'f32' | 'ggml', Graph>;
  for (const mode of ['f32', 'ggml'] as const) {
    const w = await backends[mode].upload(hostTensor(fmt, [outF, inF], wBytes), { name: `w_${fmt}` });
    const g = new GraphBuilder();
    const nt = g.param('n', { max: Math.max(1, ...tokenCounts) });
    g.output('y', g.matmul(g.weight(w), g.input('x', 'f32', [nt, inF])));
    graphs[mode] = g.build();
  }
  for (const tokens of tokenCounts) {
    const x = xs.subarray(0, tokens * inF);
    const times = { f32: [] as number[], ggml: [] as number[] };
    for (let r = 0; r < multiRuns + 1; r++) {
      for (const mode of ['f32', 'ggml'] as const) {
        const t0 = performance.now();
        await backends[mode].run(graphs[mode], { x, n: tokens });
        if (r >= 1) times[mode].push(performance.now() - t0);
      }
    }
    for (const mode of ['f32', 'ggml'] as const) {
      const ms = median(times[mode]);
      multi.push({
        format: fmt,
        shape: `${outF}x${inF}`,
        tokens,
        mode,
        ms,
        gbs: wBytes.byteLength / 1e9 / (ms / 1000),
        tokPerSec: tokens / (ms / 1000),
      });
    }
  }
}
process.stderr.write('\n');
const readAfter = readGBs();
const jsRead = (readBefore + readAfter) / 2;

const fmtN = (v: number, d = 2) => v.toFixed(d);
console.log(`\nmatrix-vector, one thread, median of ${runs}; GB/s = weight bytes / time`);
console.log(
  `same-run scale: plain JS f32 array read ${fmtN(jsRead)} GB/s; machine read bandwidth ~${memoryGBs} GB/s (one thread)\n`,
);
console.log(
  '| format | bits/weight | 4096x4096 f32-act | 4096x4096 ggml-act | 11008x4096 f32-act | 11008x4096 ggml-act | ggml native (DRAM) | best JS / ggml |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const fmt of list) {
  const get = (shape: string, mode: string) =>
    rows.find((r) => r.format === fmt && r.shape === shape && r.mode === mode);
  const a = get('4096x4096', 'f32');
  const b = get('4096x4096', 'ggml');
  const c = get('11008x4096', 'f32');
  const d = get('11008x4096', 'ggml');
  if (!a || !b || !c || !d) continue;
  const peer = ggmlGBs[fmt];
  const ratio = peer ? `${((100 * Math.max(c.gbs, d.gbs)) / peer).toFixed(1)}%` : '-';
  console.log(
    `| ${fmt} | ${+formats[fmt].info.bitsPerWeight.toFixed(3)} | ${fmtN(a.gbs)} | ${fmtN(b.gbs)} | ${fmtN(c.gbs)} | ${fmtN(d.gbs)} | ${peer ?? '-'} | ${ratio} |`,
  );
}
if (multi.length) {
  console.log(
    `\nseveral activation rows, 4096x4096, one thread, median of ${multiRuns}; GB/s = weight bytes / time, tok/s = rows / time`,
  );
  const head = tokenCounts.flatMap((t) => [`${t} tok f32-act GB/s (tok/s)`, `${t} tok ggml-act GB/s (tok/s)`]);
  console.log(`| format | ${head.join(' | ')} |`);
  console.log(`|---|${head.map(() => '---').join('|')}|`);
  for (const fmt of list) {
    const cells = tokenCounts.flatMap((t) =>
      (['f32', 'ggml'] as const).map((mode) => {
        const m = multi.find((r) => r.format === fmt && r.tokens === t && r.mode === mode);
        return m ? `${fmtN(m.gbs)} (${fmtN(m.tokPerSec, 0)})` : '-';
      }),
    );
    if (cells.some((c) => c !== '-')) console.log(`| ${fmt} | ${cells.join(' | ')} |`);
  }
}
// MATMUL_RESULTS: where to write the JSON (default benchmarks/results/matmul.json).
const details = {
  date: new Date().toISOString(),
  runs,
  jsReadGBs: { before: readBefore, after: readAfter },
  memoryGBs,
  ggmlGBs,
  rows,
  multiRuns,
  multi,
};
const resultsPath = process.env.MATMUL_RESULTS;
writeResults({
  topic: 'matmul',
  title: matmulTitle,
  method: matmulMethod(details),
  cases: matmulCases(details),
  details,
  ...(resultsPath ? { path: resultsPath.startsWith('file:') ? fileURLToPath(resultsPath) : resultsPath } : {}),
});
