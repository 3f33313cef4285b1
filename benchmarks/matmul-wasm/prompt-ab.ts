// A/B of the WebAssembly prompt matmul (the 8-row-group kernels at nTok tokens) between two versions of
// packages/backend-wasm/assembly/kernels.ts in one process: the working tree's and one from git (default `main`).
// Both are compiled here with the package's build flags, instantiated on their own memories with the same weights and
// activations (random bytes, valid fp16 scales), checked to give bit-identical outputs, then timed alternately
// (1 thread: direct calls; 2 threads: worker_threads over a shared memory, rows split in 8-row groups like the
// pool). Prints ms per token of the matmul call alone, medians, as wall time and as the process's CPU time (all
// threads; on a busy machine the CPU time is the steadier figure).
//
//   npx tsx benchmarks/matmul-wasm/prompt-ab.ts [--base main] [--tokens 32] [--runs 9] [--threads 1,2]
//     [--shapes 2048x2048,5632x2048,2048x5632,4096x4096] [--formats q4_0,q8_0] [--emit DIR | --from DIR]
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../..');
const pkg = join(root, 'packages/backend-wasm');
const { values: opt } = parseArgs({
  options: {
    base: { type: 'string', default: 'main' },
    tokens: { type: 'string', default: '32' },
    runs: { type: 'string', default: '9' },
    threads: { type: 'string', default: '1,2' },
    shapes: { type: 'string', default: '2048x2048,5632x2048,2048x5632,4096x4096' },
    formats: { type: 'string', default: 'q4_0,q8_0' },
    emit: { type: 'string' },
    from: { type: 'string' },
  },
});
const nTok = Number(opt.tokens);
const runs = Number(opt.runs);
const threadCounts = opt.threads.split(',').map(Number);
const shapes = opt.shapes.split(',').map((s) => s.split('x').map(Number) as [number, number]);
const fmts = opt.formats.split(',');

// assemblyscript is the backend package's dev dependency (its exports map has only `import`): load it by path.
async function compile(source: string, shared: boolean): Promise<Uint8Array<ArrayBuffer>> {
  const asc = (await import(pathToFileURL(join(pkg, 'node_modules/assemblyscript/dist/asc.js')).href)).default;
  let binary: Uint8Array<ArrayBuffer> | undefined;
  const extra = shared ? ['--enable', 'threads', '--sharedMemory', '--maximumMemory', '65536'] : [];
  const args = ['k.ts', '-O3', '--runtime', 'stub', '--noAssert', '--enable', 'simd', '--importMemory'];
  const { error, stderr } = await asc.main([...args, '--initialMemory', '2', '--outFile', 'k.wasm', ...extra], {
    readFile: (name: string) => (name === 'k.ts' ? source : null),
    writeFile(name: string, contents: Uint8Array) {
      if (name.endsWith('.wasm')) binary = new Uint8Array(contents);
    },
    listFiles: () => [],
  });
  if (error || !binary) throw new Error(`asc failed: ${error?.message}\n${stderr.toString()}`);
  return binary;
}
const variants = ['base', 'new'] as const;
const mods = {} as Record<
  (typeof variants)[number],
  { plain: Uint8Array<ArrayBuffer>; shared: Uint8Array<ArrayBuffer> }
>;
if (opt.from) {
  // Modules compiled earlier with --emit (for a machine without the compiler or git).
  for (const v of variants)
    mods[v] = {
      plain: readFileSync(join(opt.from, `${v}.plain.wasm`)),
      shared: readFileSync(join(opt.from, `${v}.shared.wasm`)),
    };
} else {
  const sources = {
    base: execFileSync('git', ['show', `${opt.base}:packages/backend-wasm/assembly/kernels.ts`], {
      cwd: root,
    }).toString(),
    new: readFileSync(join(pkg, 'assembly/kernels.ts'), 'utf8'),
  };
  for (const v of variants)
    mods[v] = { plain: await compile(sources[v], false), shared: await compile(sources[v], true) };
}
if (opt.emit) {
  mkdirSync(opt.emit, { recursive: true });
  for (const v of variants) {
    writeFileSync(join(opt.emit, `${v}.plain.wasm`), mods[v].plain);
    writeFileSync(join(opt.emit, `${v}.shared.wasm`), mods[v].shared);
  }
  process.exit(0);
}

const groupBytes: Record<string, number> = { q4_0: 144, q4_1: 160, q8_0: 272 };
const headBytes: Record<string, number> = { q4_0: 16, q4_1: 32, q8_0: 16 };
interface Layout {
  w: number;
  a: number;
  ad: number;
  as: number;
  y: number;
  scratch: number;
  end: number;
}
function layout(base: number, fmt: string, outF: number, n: number, nth: number): Layout {
  const nb = n / 32;
  const up = (x: number) => Math.ceil(x / 64) * 64;
  const w = up(base);
  const a = up(w + ((Math.ceil(outF / 8) * nb * groupBytes[fmt]) as number));
  const ad = up(a + nTok * n * 2);
  const as = up(ad + nTok * nb * 4);
  const y = up(as + nTok * nb * 4);
  const scratch = up(y + nTok * outF * 4);
  return { w, a, ad, as, y, scratch, end: scratch + nth * up(nb * 576) };
}
function fill(mem: ArrayBuffer | SharedArrayBuffer, l: Layout, fmt: string, outF: number, n: number): void {
  let s = 12345;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
  const u8 = new Uint8Array(mem);
  for (let i = l.w; i < l.a; i++) u8[i] = rnd() >>> 24;
  const dv = new DataView(mem);
  const nb = n / 32;
  const gb = groupBytes[fmt];
  // Valid fp16 scales (and q4_1 mins): 2^-10 .. 2^-7 or so.
  for (let b = 0; b < Math.ceil(outF / 8) * nb; b++)
    for (let k = 0; k < headBytes[fmt] / 2; k++) dv.setUint16(l.w + b * gb + 2 * k, 0x1800 + (rnd() >>> 22), true);
  // Activations as the quantizer would leave them: q8 values, times 256/16/1/256 in the nibble layout.
  const mul = fmt === 'q8_0' ? [1, 1, 1, 1] : [256, 16, 1, 256];
  for (let i = 0; i < nTok * n; i++) dv.setInt16(l.a + 2 * i, ((rnd() % 255) - 127) * mul[(i >> 1) & 3], true);
  for (let i = 0; i < nTok * nb; i++) {
    dv.setFloat32(l.ad + 4 * i, 0.01 + (rnd() >>> 8) / 2 ** 30, true);
    if (fmt === 'q4_1') dv.setFloat32(l.as + 4 * i, (rnd() >>> 16) / 256 - 128, true);
    else dv.setInt32(l.as + 4 * i, (rnd() % 4000) - 2000, true);
  }
}
type Kern = Record<string, (...a: number[]) => number>;
function call(k: Kern, fmt: string, l: Layout, n: number, outF: number, r0: number, r1: number, scratch: number): void {
  if (fmt === 'q4_0') k.matmulQ4_0(l.w, l.a, l.ad, l.as, l.y, n, outF, nTok, r0, r1, scratch);
  else if (fmt === 'q4_1') k.matmulQ4_1(l.w, l.a, l.ad, l.as, l.y, n, outF, nTok, r0, r1, scratch);
  else k.matmulQ8_0(l.w, l.a, l.ad, l.y, n, outF, nTok, r0, r1, scratch);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// The 2-thread runner: each worker instantiates both variants on their shared memories and waits on a flag.
const workerCode = `
const { parentPort, workerData } = require('node:worker_threads');
const { mods, mems, ctl, tid } = workerData;
const ks = mods.map((m, i) => new WebAssembly.Instance(new WebAssembly.Module(m), { env: { memory: mems[i], abort() { throw new Error('abort'); } } }).exports);
const c = new Int32Array(ctl);
let seen = 0;
for (;;) {
  while (Atomics.load(c, 0) === seen) Atomics.wait(c, 0, seen);
  seen = Atomics.load(c, 0);
  const [v, fmt, n, outF, nTok, r0, r1, w, a, ad, as, y, scratch] = Array.from(c.subarray(8 + tid * 16, 8 + tid * 16 + 13));
  if (v < 0) break;
  const k = ks[v];
  if (r1 > r0) {
    if (fmt === 0) k.matmulQ4_0(w, a, ad, as, y, n, outF, nTok, r0, r1, scratch);
    else if (fmt === 1) k.matmulQ4_1(w, a, ad, as, y, n, outF, nTok, r0, r1, scratch);
    else k.matmulQ8_0(w, a, ad, y, n, outF, nTok, r0, r1, scratch);
  }
  if (Atomics.add(c, 1, 1) === 1) Atomics.notify(c, 1);
}
`;

const rows: string[] = [];
for (const nth of threadCounts) {
  let maxEnd = 0;
  for (const fmt of fmts)
    for (const [outF, n] of shapes) maxEnd = Math.max(maxEnd, layout(1 << 20, fmt, outF, n, nth).end);
  const pages = Math.ceil(maxEnd / 65536) + 1;
  const mems = variants.map(() =>
    nth === 1
      ? new WebAssembly.Memory({ initial: pages })
      : new WebAssembly.Memory({ initial: pages, maximum: 65536, shared: true }),
  );
  const ks = variants.map(
    (v, i) =>
      new WebAssembly.Instance(new WebAssembly.Module(nth === 1 ? mods[v].plain : mods[v].shared), {
        env: {
          memory: mems[i],
          abort: () => {
            throw new Error('abort');
          },
        },
      }).exports as unknown as Kern,
  );
  const base = Math.max(...ks.map((k) => k.heapBase()));
  const ctl = new SharedArrayBuffer(4 * 64);
  const c = new Int32Array(ctl);
  const workers =
    nth === 1
      ? []
      : [0, 1].map(
          (tid) =>
            new Worker(workerCode, {
              eval: true,
              workerData: { mods: variants.map((v) => mods[v].shared), mems, ctl, tid },
            }),
        );
  if (workers.length) await new Promise((r) => setTimeout(r, 300));
  const run2 = (v: number, fmt: string, l: Layout, n: number, outF: number) => {
    const groups = Math.ceil(outF / 8);
    const half = Math.ceil(groups / 2) * 8;
    const sst = Math.ceil(((n / 32) * 576) / 64) * 64;
    const f = fmt === 'q4_0' ? 0 : fmt === 'q4_1' ? 1 : 2;
    for (let tid = 0; tid < 2; tid++) {
      const [r0, r1] = tid === 0 ? [0, Math.min(half, outF)] : [Math.min(half, outF), outF];
      c.set([v, f, n, outF, nTok, r0, r1, l.w, l.a, l.ad, l.as, l.y, l.scratch + tid * sst], 8 + tid * 16);
    }
    Atomics.store(c, 1, 0);
    Atomics.add(c, 0, 1);
    Atomics.notify(c, 0);
    while (Atomics.load(c, 1) !== 2) Atomics.wait(c, 1, Atomics.load(c, 1));
  };
  for (const fmt of fmts) {
    for (const [outF, n] of shapes) {
      const l = layout(base, fmt, outF, n, nth);
      for (const m of mems) fill(m.buffer, l, fmt, outF, n);
      const go = (i: number) =>
        nth === 1 ? call(ks[i], fmt, l, n, outF, 0, outF, l.scratch) : run2(i, fmt, l, n, outF);
      go(0);
      go(1);
      const y0 = new Uint32Array(mems[0].buffer, l.y, nTok * outF);
      const y1 = new Uint32Array(mems[1].buffer, l.y, nTok * outF);
      let diff = 0;
      for (let i = 0; i < y0.length; i++) if (y0[i] !== y1[i]) diff++;
      const times: number[][] = [[], []];
      const cpu: number[][] = [[], []];
      for (let r = 0; r < runs; r++)
        for (const i of r % 2 ? [1, 0] : [0, 1]) {
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          go(i);
          times[i].push((performance.now() - t0) / nTok);
          const c1 = process.cpuUsage(c0);
          cpu[i].push((c1.user + c1.system) / 1000 / nTok);
        }
      const [mb, mn] = times.map(median);
      const [cb, cn] = cpu.map(median);
      const f = (x: number) => x.toFixed(3);
      const same = diff === 0 ? 'yes' : `NO (${diff})`;
      const row = `| ${fmt} | ${outF}x${n} | ${nth} | ${f(mb)} | ${f(mn)} | ${(mb / mn).toFixed(2)}x | ${f(cb)} | ${f(cn)} | ${(cb / cn).toFixed(2)}x | ${same} |`;
      rows.push(row);
      process.stderr.write(`${row}\n`);
    }
  }
  if (workers.length) {
    for (let tid = 0; tid < 2; tid++) c[8 + tid * 16] = -1;
    Atomics.add(c, 0, 1);
    Atomics.notify(c, 0);
    await Promise.all(workers.map((w) => new Promise((r) => w.once('exit', r))));
  }
}
console.log(
  `\nprompt matmul, ${nTok} tokens, ms per token (median of ${runs}); base = ${opt.base}, new = working tree`,
);
console.log(
  '| format | out x in | threads | base wall | new wall | speedup | base CPU | new CPU | CPU speedup | bit-identical |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
