// Two copies of the JS backend side by side (before/after a change), in one process, alternating run by run so that
// both see the same machine load: milliseconds per product, the ratio B/A, and whether the outputs are the same bits.
//
//   MATMUL_A=/abs/path/to/old/packages/backend-js/src/index.ts npx tsx --conditions=source benchmarks/matmul/ab.ts
//   (from outside this repository, TSX_TSCONFIG_PATH=<an empty tsconfig>: tsx applies the tsconfig `paths` of the
//   working directory to every import, which would send the old copy's @nibble/* imports to this checkout)
//   MATMUL_B=...            (default: this checkout's backend)   AB_SIZE=1024 (square weight)   AB_TOKENS=1,8
//   AB_RUNS=9  AB_CLOCK=cpu (process CPU time, steadier on a shared machine than wall time; or wall)  [format ...]
import type { JsBackend as JsBackendType } from '@nibble/backend-js';
import { formats } from '@nibble/formats';
import { type DTypeName, GraphBuilder, hostTensor, rowBytes } from '@nibble/tensor';

type Ctor = typeof JsBackendType;
const load = async (path: string | undefined) =>
  ((await import(path ?? '@nibble/backend-js')) as { JsBackend: Ctor }).JsBackend;
if (!process.env.MATMUL_A) throw new Error('set MATMUL_A to the other backend-js src/index.ts');
const A = await load(process.env.MATMUL_A);
const B = await load(process.env.MATMUL_B);
const size = Number(process.env.AB_SIZE ?? 1024);
const tokens = (process.env.AB_TOKENS ?? '1,8').split(',').map(Number);
const runs = Number(process.env.AB_RUNS ?? 9);
const cpuClock = (process.env.AB_CLOCK ?? 'cpu') === 'cpu';
/** Milliseconds: this process's CPU time (user + system), or wall time. */
const now = cpuClock
  ? () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    }
  : () => performance.now();
const wanted = process.argv.slice(2);
const list = (wanted.length ? wanted : Object.keys(formats)) as DTypeName[];

function values(n: number, seed: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return a;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const src = values(size * size, 1, 0.05);
const xs = values(Math.max(...tokens) * size, 2, 1);

console.log(`A = ${process.env.MATMUL_A}\nB = ${process.env.MATMUL_B ?? 'this checkout'}`);
console.log(
  `${size}x${size} weight, median of ${runs} alternating runs, one thread; ${cpuClock ? 'CPU' : 'wall'} ms per product\n`,
);
const head = tokens.flatMap((t) => ['f32', 'ggml'].map((m) => `${t} tok ${m}-act A / B (B/A)`));
console.log(`| format | ${head.join(' | ')} | same bits |`);
console.log(`|---|${head.map(() => '---').join('|')}|---|`);
const ratios: number[] = [];
for (const fmt of list) {
  const codec = formats[fmt];
  if (codec === undefined || fmt === 'q8_1' || fmt === 'q8_K') continue; // activation-only formats
  const bytes = codec.quantize(src, { rowLength: size });
  const cells: string[] = [];
  let same = true;
  for (const t of tokens) {
    for (const mode of ['f32', 'ggml'] as const) {
      const sides = await Promise.all(
        [A, B].map(async (Backend) => {
          const be = new Backend({ matmulActivations: mode });
          const w = await be.upload(hostTensor(fmt, [size, size], bytes.subarray(0, size * rowBytes(fmt, size))));
          const g = new GraphBuilder();
          g.output('y', g.matmul(g.weight(w), g.input('x', 'f32', [t, size])));
          return { be, graph: g.build(), times: [] as number[], out: undefined as Float32Array | undefined };
        }),
      );
      const x = xs.subarray(0, t * size);
      for (let r = 0; r < runs + 2; r++) {
        for (const s of r % 2 ? [...sides].reverse() : sides) {
          const t0 = now();
          const { y } = await s.be.run(s.graph, { x });
          if (r >= 2) s.times.push(now() - t0);
          s.out = y.slice();
        }
      }
      const [a, b] = sides.map((s) => median(s.times));
      const [ya, yb] = sides.map((s) => s.out!);
      if (ya.length !== yb.length || ya.some((v, i) => !Object.is(v, yb[i]))) same = false;
      ratios.push(b / a);
      cells.push(`${a.toFixed(2)} / ${b.toFixed(2)} (${(b / a).toFixed(2)})`);
    }
  }
  console.log(`| ${fmt} | ${cells.join(' | ')} | ${same ? 'yes' : 'NO'} |`);
}
const geo = Math.exp(ratios.reduce((s, r) => s + Math.log(r), 0) / ratios.length);
console.log(`\ngeometric mean of B/A over ${ratios.length} cells: ${geo.toFixed(3)}`);
