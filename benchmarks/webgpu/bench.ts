/// <reference types="@webgpu/types" />
/**
 * The WebGPU backend on whatever adapter dawn.node finds (the H200 on the GPU machine, SwiftShader here):
 *   1. copy bandwidth of a plain vec4 copy kernel (the card's practical peak), in the same run;
 *   2. matrix-vector GB/s per format at 4096x4096, 11008x4096 and 32000x4096, with a sweep of the matvec grid for
 *      Q4_0/Q8_0 at 11008x4096 and a check of the results against the CPU;
 *   3. attention alone: decode (one query row) at several cache positions and a 512-token prompt, TinyLlama's and
 *      7B's head shapes, f32 and f16 caches;
 *   4. decode and prompt tok/s on the synthetic TinyLlama- and 7B-shaped Q4_0/Q8_0 files: decode pipelined (greedy on
 *      the GPU, ids fed back on the GPU, several steps in flight), decode step by step (greedy on the GPU, one id read
 *      back per step), decode with all logits read back, prompt (512 tokens); dispatches per step, GPU time per step
 *      (timestamps) and the host's share, and every kernel's time.
 * Kernel times are measured two ways, both reported: timestamps around one dispatch (Dawn's 65.536 us quantization
 * is turned off, see nodeGpu), and `--reps` dispatches back to back in one pass and one submit, timed by the host
 * (`wallMs`) and by timestamps (`repMs`); GB/s figures use the latter two.
 * Every section is time-boxed (--deadline seconds in all), prints progress, and rewrites the JSON after each item, so
 * a run cut short still leaves its results. `merge` folds llama-bench JSON files into the result afterwards.
 *
 *   node --conditions=source --import tsx benchmarks/webgpu/bench.ts [--out F] [--models DIR] [--deadline S] [--tiny]
 *        [--sections copy,matvec,sweep,attention,gold,generate,models] [--model-list tinyllama:q4_0,llama7b:q4_0]
 *   node .gpu/webgpu-bench.mjs merge --out F LLAMA_BENCH_JSON...
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type KernelTime, WebGpuBackend, type WebGpuBackendOptions } from '@nibble/backend-webgpu';
import { nodeGpu } from '@nibble/backend-webgpu/node';
import { formats } from '@nibble/formats';
import { allocKvCache, buildModelGraph } from '@nibble/runner';
import { loadModel } from '@nibble/runner/node';
import { type DTypeName, dtypes, GraphBuilder, hostTensor, type RunInputs } from '@nibble/tensor';
import { type BenchDType, type LlamaShape, modelPath, shapes } from './models.js';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  strict: true,
  options: {
    out: { type: 'string' },
    models: { type: 'string' },
    // `pnpm bench --quick` (NIBBLE_BENCH_QUICK=1) gives the whole run 150 s.
    deadline: { type: 'string', default: process.env.NIBBLE_BENCH_QUICK === '1' ? '150' : '420' },
    tiny: { type: 'boolean', default: false },
    sections: { type: 'string', default: 'copy,matvec,sweep,attention,gold,generate,models' },
    /** Models to measure: shape:dtype pairs (default: TinyLlama and 7B in Q4_0 and Q8_0). */
    'model-list': { type: 'string' },
    /** Formats of the matvec section (default: all twelve). */
    'matvec-formats': { type: 'string' },
    /** Back-to-back dispatches per kernel timing. */
    reps: { type: 'string', default: '200' },
    /** Decode steps per measurement (default 128, as llama-bench's tg128). */
    steps: { type: 'string', default: '128' },
    /** A JSON WebGpuBackendOptions fragment for every backend (e.g. '{"matvec":{"wpp":2}}'). */
    backend: { type: 'string' },
    /**
     * The models section runs every model once per option set of this JSON array (each merged over --backend), e.g.
     * '[{},{"matvec":{"int8":true}}]': old and new kernels side by side in one run. Default '[{}]'.
     */
    'model-options': { type: 'string', default: '[{}]' },
    /** Before measuring models, wait (at most --wait-max seconds) until this file exists: a parallel build is done. */
    'wait-for': { type: 'string' },
    'wait-max': { type: 'string', default: '300' },
    repo: { type: 'string' },
  },
});

const repo = resolve(flags.repo ?? process.cwd());
// `pnpm bench` (run-all.ts) says where results go through NIBBLE_BENCH_OUT (results/quick/ for --quick).
const outPath = resolve(
  flags.out ?? join(process.env.NIBBLE_BENCH_OUT ?? join(repo, 'benchmarks/results'), 'webgpu.json'),
);
const t0 = performance.now();
const deadline = Number(flags.deadline) * 1000;
const left = () => deadline - (performance.now() - t0);
const log = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1)}s] ${s}`);
const reps = Math.max(1, Number(flags.reps));
const extra = JSON.parse(flags.backend ?? '{}') as WebGpuBackendOptions;

interface Result {
  date: string;
  adapter: string;
  features: readonly string[];
  limits: Record<string, number>;
  machine: string;
  sizes: 'full' | 'tiny';
  dawnFlags: string;
  backendOptions: WebGpuBackendOptions;
  copy?: Record<string, number>;
  matvec: Record<string, unknown>[];
  sweep: Record<string, unknown>[];
  attention: Record<string, unknown>[];
  models: Record<string, unknown>[];
  llamaBench?: Record<string, unknown>[];
  gold?: Record<string, unknown>[];
  ratios?: Record<string, unknown>[];
  notes: string[];
}

function save(r: Result): void {
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, `${JSON.stringify(r, null, 2)}\n`);
}

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length === 0
    ? Number.NaN
    : s.length % 2
      ? s[(s.length - 1) / 2]
      : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const f3 = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(3));

// ---- merge: llama-bench results into ours -----------------------------------------------------------------------------

if (positionals[0] === 'merge') {
  const r = JSON.parse(readFileSync(outPath, 'utf8')) as Result;
  r.llamaBench = [];
  for (const f of positionals.slice(1)) {
    if (!existsSync(f)) continue;
    try {
      const rows = JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>[];
      for (const row of rows) r.llamaBench.push({ file: f, ...row });
    } catch (e) {
      r.notes.push(`llama-bench output ${f} unreadable: ${(e as Error).message}`);
    }
  }
  r.ratios = [];
  for (const m of r.models) {
    const file = String(m.file);
    const peer = r.llamaBench.filter((b) => String(b.model_filename ?? '').endsWith(file));
    const tg = peer.find((b) => Number(b.n_gen) > 0);
    const pp = peer.find((b) => Number(b.n_prompt) > 0);
    const ratio = (ours: unknown, theirs: unknown) => (theirs ? Number(ours) / Number(theirs) : undefined);
    r.ratios.push({
      file,
      decodeTokS: m.decodeTokS,
      llamaDecodeTokS: tg?.avg_ts,
      decodeRatio: ratio(m.decodeTokS, tg?.avg_ts),
      stepwiseDecodeRatio: ratio(m.stepwiseTokS, tg?.avg_ts),
      promptTokS: m.promptTokS,
      llamaPromptTokS: pp?.avg_ts,
      promptRatio: ratio(m.promptTokS, pp?.avg_ts),
    });
  }
  save(r);
  console.table(r.ratios);
  process.exit(0);
}

// ---- setup ----------------------------------------------------------------------------------------------------------

const probe = await WebGpuBackend.create({ gpu: nodeGpu(), timestamps: true, ...extra });
const software = probe.info.subgroups && probe.info.subgroupMax <= 4;
const tiny = flags.tiny || software;
const lim = probe.device.limits;
const result: Result = {
  date: new Date().toISOString(),
  adapter: probe.info.adapter,
  features: probe.info.features,
  limits: {
    maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
    maxBufferSize: lim.maxBufferSize,
    maxComputeInvocationsPerWorkgroup: lim.maxComputeInvocationsPerWorkgroup,
    subgroupMin: probe.info.subgroupMin,
    subgroupMax: probe.info.subgroupMax,
  },
  machine: `${process.platform} ${process.arch}, node ${process.version}`,
  sizes: tiny ? 'tiny' : 'full',
  dawnFlags: process.env.NIBBLE_DAWN_FLAGS ?? '',
  backendOptions: extra,
  matvec: [],
  sweep: [],
  attention: [],
  models: [],
  notes: tiny ? ['software adapter or --tiny: small shapes, figures are not speed figures'] : [],
};
log(
  `adapter: ${result.adapter}; timestamps ${probe.info.timestamps}; subgroups ${probe.info.subgroupMin}-${probe.info.subgroupMax}`,
);
save(result);
const sections = new Set(flags.sections.split(','));
const backend = (o: WebGpuBackendOptions = {}) =>
  WebGpuBackend.create({ gpu: nodeGpu(), timestamps: true, ...extra, ...o });

// ---- 1. copy bandwidth --------------------------------------------------------------------------------------------------

async function copyBandwidth(b: WebGpuBackend): Promise<void> {
  const d = b.device;
  const bytes = tiny ? 16 << 20 : Math.min(1 << 30, Math.floor(lim.maxStorageBufferBindingSize / 2 ** 20) * 2 ** 20);
  const mk = (usage: number) => d.createBuffer({ size: bytes, usage });
  const src = mk(128 | 8);
  const dst = mk(128);
  const module = d.createShaderModule({
    code: `@group(0) @binding(0) var<storage, read> S: array<vec4u>;
@group(0) @binding(1) var<storage, read_write> D: array<vec4u>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) n: vec3u) {
  let i = g.y * n.x * 256u + g.x;
  if (i < arrayLength(&S)) { D[i] = S[i]; }
}`,
  });
  const pipe = d.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bg = d.createBindGroup({
    layout: pipe.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: src } },
      { binding: 1, resource: { buffer: dst } },
    ],
  });
  const groups = bytes / 16 / 256;
  const gx = Math.min(groups, 65535);
  const gy = Math.ceil(groups / gx);
  const q = b.info.timestamps ? d.createQuerySet({ type: 'timestamp', count: 2 }) : undefined;
  const res = d.createBuffer({ size: 16, usage: 512 | 4 });
  const rb = d.createBuffer({ size: 16, usage: 1 | 8 });
  // n copies in one pass and one submit: GPU time (timestamps) and host time (submit to done), per copy.
  const timed = async (n: number) => {
    const enc = d.createCommandEncoder();
    const pass = enc.beginComputePass(
      q ? { timestampWrites: { querySet: q, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : undefined,
    );
    pass.setPipeline(pipe);
    pass.setBindGroup(0, bg);
    for (let i = 0; i < n; i++) pass.dispatchWorkgroups(gx, gy);
    pass.end();
    if (q) {
      enc.resolveQuerySet(q, 0, 2, res, 0);
      enc.copyBufferToBuffer(res, 0, rb, 0, 16);
    }
    const cb = enc.finish();
    await d.queue.onSubmittedWorkDone();
    const w0 = performance.now();
    d.queue.submit([cb]);
    await d.queue.onSubmittedWorkDone();
    const wall = (performance.now() - w0) / n;
    await rb.mapAsync(1);
    const ts = new BigUint64Array(rb.getMappedRange().slice(0));
    rb.unmap();
    return { wall, gpu: q ? Number(ts[1] - ts[0]) / 1e6 / n : wall };
  };
  const n = tiny ? 2 : 20;
  await timed(1);
  const runs = [];
  for (let rep = 0; rep < 3; rep++) runs.push(await timed(n));
  const single = [];
  for (let rep = 0; rep < 5; rep++) single.push((await timed(1)).gpu);
  const wallMs = median(runs.map((r) => r.wall));
  const gpuMs = median(runs.map((r) => r.gpu));
  const gbs = (ms: number) => (2 * bytes) / (ms / 1e3) / 1e9;
  result.copy = {
    bytes,
    reps: n,
    wallMs,
    gpuMs,
    singleMs: median(single),
    gbs: gbs(wallMs),
    gbsGpu: gbs(gpuMs),
    gbsSingle: gbs(median(single)),
  };
  log(
    `copy: ${(bytes / 2 ** 20).toFixed(0)} MiB read + written: ${gbs(wallMs).toFixed(0)} GB/s (host, ${n} back to back), ${gbs(gpuMs).toFixed(0)} GB/s (timestamps), ${gbs(median(single)).toFixed(0)} GB/s (one dispatch)`,
  );
  for (const x of [src, dst, res, rb]) x.destroy();
}

// ---- 2. matrix-vector -----------------------------------------------------------------------------------------------

const allMatvecFormats: DTypeName[] = [
  'q4_0',
  'q8_0',
  'f16',
  'bf16',
  'f32',
  'q4_1',
  'q5_0',
  'q5_1',
  'q4_K',
  'q5_K',
  'q6_K',
  'iq4_nl',
];
const matvecFormats = flags['matvec-formats'] ? (flags['matvec-formats'].split(',') as DTypeName[]) : allMatvecFormats;
const matvecShapes: [number, number][] = tiny
  ? [
      [256, 256],
      [512, 256],
    ]
  : [
      [4096, 4096],
      [11008, 4096],
      [32000, 4096],
    ];

function randomF32(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 4294967296) * 2 - 1;
  });
}

/** A [rows, cols] weight of `dtype`: a 64-row quantized tile repeated (bandwidth does not care about values). */
function tiledWeight(dtype: DTypeName, rows: number, cols: number): { bytes: Uint8Array; tile: Float32Array } {
  const tileRows = 64;
  const codec = formats[dtype];
  const q = codec.quantize(randomF32(tileRows * cols, 7), { rowLength: cols });
  const tile = codec.dequantize(q, tileRows * cols);
  const bytes = new Uint8Array((rows / tileRows) * q.length);
  for (let r = 0; r < rows / tileRows; r++) bytes.set(q, r * q.length);
  return { bytes, tile };
}

/**
 * The same matvec over distinct copies of the weight in one pass (each copy its own input, so each is its own unit
 * with its own quantize kernel under int8), `copies` chosen so they total at least 384 MB: several times the GPU's
 * L2 (50 MB on an H200), so the weights stream from memory as in a model's step, where the back-to-back figures of
 * one matrix can sit in L2 (Q8_0 at 11008x4096 is 48 MB). GB/s from the pass's GPU time (timestamps), median of 5.
 */
async function matvecStream(b: WebGpuBackend, dtype: DTypeName, rows: number, cols: number, bytes: Uint8Array) {
  if (!b.info.timestamps) return {};
  const copies = tiny ? 2 : Math.max(2, Math.ceil(384e6 / bytes.byteLength));
  const ws = [];
  for (let i = 0; i < copies; i++) ws.push(await b.upload(hostTensor(dtype, [rows, cols], bytes), { name: `s${i}` }));
  const g = new GraphBuilder();
  const inputs: Record<string, Float32Array> = {};
  ws.forEach((w, i) => {
    g.output(`y${i}`, g.matmul(g.weight(w), g.input(`x${i}`, 'f32', [1, cols])));
    inputs[`x${i}`] = randomF32(cols, 20 + i);
  });
  const graph = g.build();
  const was = b.timestamps;
  b.timestamps = true;
  await b.run(graph, inputs);
  const ms: number[] = [];
  for (let i = 0; i < (tiny ? 1 : 5); i++) {
    await b.run(graph, inputs);
    if (b.lastStep.gpuMs !== undefined) ms.push(b.lastStep.gpuMs);
  }
  b.timestamps = was;
  for (const w of ws) b.free(w);
  if (ms.length === 0) return {};
  const streamMs = median(ms) / copies;
  return { streamCopies: copies, streamMs, gbsStream: bytes.byteLength / 1e9 / (streamMs / 1e3) };
}

/** Sums kernel times by label (a step runs each kernel many times). */
function byLabel(ks: readonly KernelTime[]) {
  const m = new Map<string, { label: string; count: number; ms: number; wallMs: number; repMs: number }>();
  for (const k of ks) {
    const e = m.get(k.label) ?? { label: k.label, count: 0, ms: 0, wallMs: 0, repMs: 0 };
    e.count++;
    e.ms += k.ms;
    e.wallMs += k.wallMs ?? 0;
    e.repMs += k.repMs ?? 0;
    m.set(k.label, e);
  }
  return [...m.values()].sort((a, b) => b.wallMs - a.wallMs || b.ms - a.ms);
}

async function matvecRun(b: WebGpuBackend, dtype: DTypeName, rows: number, cols: number, stream = true) {
  const { bytes, tile } = tiledWeight(dtype, rows, cols);
  const w = await b.upload(hostTensor(dtype, [rows, cols], bytes), { name: `w ${dtype}` });
  const g = new GraphBuilder();
  g.output('y', g.matmul(g.weight(w), g.input('x', 'f32', [1, cols])));
  const graph = g.build();
  const x = randomF32(cols, 11);
  const y = new Float32Array(rows);
  await b.run(graph, { x }, { outputs: { y } });
  // Check the first tile against the CPU (float64 over the decoded weights).
  let maxRelErr = 0;
  for (let r = 0; r < 64; r++) {
    let s = 0;
    let mag = 0;
    for (let i = 0; i < cols; i++) {
      s += tile[r * cols + i] * x[i];
      mag += Math.abs(tile[r * cols + i] * x[i]);
    }
    maxRelErr = Math.max(maxRelErr, Math.abs(y[r] - s) / (mag || 1));
  }
  const kt = await b.profileStep(graph, { x }, { reps: tiny ? 4 : reps });
  // With int8 activations the step is a quantize kernel, then the matvec: GB/s from the matvec, both times kept.
  const k = kt.find((q) => q.label.startsWith('matvec')) ?? kt[0];
  const quant = kt.find((q) => q.label.startsWith('quantize'));
  const wall: number[] = [];
  for (let i = 0; i < (tiny ? 2 : 10); i++) {
    const w0 = performance.now();
    await b.run(graph, { x }, { outputs: { y } });
    wall.push(performance.now() - w0);
  }
  b.free(w);
  const gb = bytes.byteLength / 1e9;
  // Streaming copies for the formats the targets name (time on the GPU machine is short).
  const streamed =
    stream && (dtype === 'q4_0' || dtype === 'q8_0') ? await matvecStream(b, dtype, rows, cols, bytes) : {};
  return {
    ...streamed,
    singleMs: k.ms,
    repMs: k.repMs,
    wallMs: k.wallMs,
    gbs: gb / ((k.wallMs ?? k.ms) / 1e3),
    gbsGpu: k.repMs ? gb / (k.repMs / 1e3) : undefined,
    gbsSingle: gb / (k.ms / 1e3),
    kernel: k.label,
    quantizeWallMs: quant?.wallMs,
    quantizeRepMs: quant?.repMs,
    gbsWithQuantize:
      quant?.wallMs !== undefined && k.wallMs !== undefined ? gb / ((k.wallMs + quant.wallMs) / 1e3) : undefined,
    runMs: median(wall),
    maxRelErr,
  };
}

async function matvecSection(): Promise<void> {
  const b = await backend();
  for (const [rows, cols] of matvecShapes) {
    for (const dtype of matvecFormats) {
      if (left() < 60_000) {
        result.notes.push('matvec: stopped early (deadline)');
        return;
      }
      const r = await matvecRun(b, dtype, rows, cols);
      const row = {
        format: dtype,
        shape: `${rows}x${cols}`,
        weightMB: (rows * cols * dtypes[dtype].bitsPerWeight) / 8 / 1e6,
        ...r,
        ofCopy: result.copy ? r.gbs / result.copy.gbs : undefined,
        streamOfCopy: result.copy && r.gbsStream ? r.gbsStream / result.copy.gbs : undefined,
      };
      result.matvec.push(row);
      log(
        `matvec ${dtype} ${rows}x${cols}: ${r.gbs.toFixed(0)} GB/s = ${((row.ofCopy ?? 0) * 100).toFixed(0)}% of copy (${f3(r.wallMs)} ms host/${f3(r.repMs)} ms GPU per dispatch back to back, ${f3(r.singleMs)} ms alone, ${f3(r.runMs)} ms a whole run); streaming ${r.streamCopies} copies: ${r.gbsStream?.toFixed(0)} GB/s = ${((row.streamOfCopy ?? 0) * 100).toFixed(0)}% of copy [${r.kernel}] err ${r.maxRelErr.toExponential(1)}`,
      );
      save(result);
    }
  }
  b.dispose();
}

/**
 * Matvec grids for Q4_0/Q8_0 at 11008x4096 and 4096x4096: words per thread, rows per group, threads aimed for,
 * workgroup size, parts per loop iteration (the default is `{ wpp: 1, rows: 4, threads: 131072, wg: 256, unroll: 2 }`).
 */
async function sweepSection(): Promise<void> {
  // Split layout (`split`: aligned quants, then scales; vec4<u32> weight loads at wpp 4 and 8) and vec4 q8 activation
  // loads (`x4`), first so a short deadline still measures them; the baseline to beat is { wpp: 4, rows: 4, int8 }.
  // wpp 8 is Q8_0's whole block (Q4_0 has 4 words a block: it runs the 32-element unit path there).
  const split: WebGpuBackendOptions['matvec'][] = [
    { wpp: 4, rows: 4, int8: true },
    { wpp: 4, rows: 4, int8: true, split: true },
    { wpp: 4, rows: 4, int8: true, split: true, x4: true },
    { wpp: 4, rows: 2, int8: true, split: true, x4: true },
    { wpp: 4, rows: 4, unroll: 4, int8: true, split: true, x4: true },
    { wpp: 4, rows: 4, threads: 65536, int8: true, split: true, x4: true },
    { wpp: 4, rows: 4, wg: 128, int8: true, split: true, x4: true },
    { wpp: 8, rows: 4, int8: true, split: true, x4: true },
    { wpp: 4, rows: 4, split: true },
  ];
  // The f32-activation grids (earlier sweeps tried wider ones: rows 2/8, threads, wg 128/512, unroll 1/4; none
  // beat these by more than the run-to-run spread).
  const grids: WebGpuBackendOptions['matvec'][] = tiny
    ? [{ wpp: 1 }, { wpp: 2 }, { wpp: 1, int8: true }, { wpp: 2, int8: true }, ...split]
    : [...split, { wpp: 0 }, { wpp: 1, rows: 4 }, { wpp: 2, rows: 4 }, { wpp: 4, rows: 4 }];
  for (const matvec of grids) {
    if (left() < 90_000) {
      result.notes.push('sweep: stopped early (deadline)');
      return;
    }
    // int8: false unless the entry sets it: an entry naming neither int8 nor split would get the automatic choice.
    const sb = await backend({ matvec: { int8: false, ...matvec } });
    for (const [rows, cols] of tiny ? [matvecShapes[1]] : [matvecShapes[1], matvecShapes[0]]) {
      for (const dtype of ['q4_0', 'q8_0'] as const) {
        const r = await matvecRun(sb, dtype, rows, cols, rows === 11008);
        result.sweep.push({ format: dtype, shape: `${rows}x${cols}`, matvec, ...r });
        log(
          `sweep ${dtype} ${rows}x${cols} ${JSON.stringify(matvec)}: ${r.gbs.toFixed(0)} GB/s host, ${r.gbsGpu?.toFixed(0)} GB/s GPU, ${r.gbsStream?.toFixed(0)} GB/s streaming ${r.streamCopies} copies${r.quantizeWallMs !== undefined ? `, ${r.gbsWithQuantize?.toFixed(0)} GB/s with the quantize kernel (${f3(r.quantizeWallMs)} ms host)` : ''} [${r.kernel}] err ${r.maxRelErr.toExponential(1)}`,
        );
      }
    }
    sb.dispose();
    save(result);
  }
}

// ---- 3. attention ---------------------------------------------------------------------------------------------------

/** Attention kernels alone: one query row at cache positions, and a prompt of 512 rows from position 0. */
async function attentionSection(): Promise<void> {
  // Decode also with other chunk sizes and split targets (`attention` options); the prompt with the defaults.
  const variants: WebGpuBackendOptions['attention'][] = tiny
    ? [undefined]
    : [undefined, { chunk: 64 }, { workgroups: 64 }, { workgroups: 1024 }];
  for (const attention of variants) await attentionRun(attention);
}

async function attentionRun(attention: WebGpuBackendOptions['attention']): Promise<void> {
  const b = await backend({ attention });
  const cfgs = [
    { name: 'tinyllama', heads: 32, kv: 4, hd: 64 },
    { name: 'llama7b', heads: 32, kv: 32, hd: 128 },
  ];
  const positions = tiny ? [16, 100] : [128, 512, 2048];
  const prompt = tiny ? 32 : 512;
  const ctx = Math.max(...positions, prompt) + 1;
  for (const c of cfgs) {
    for (const dtype of ['f32', 'f16'] as const) {
      if (left() < 60_000) {
        result.notes.push('attention: stopped early (deadline)');
        return;
      }
      const kvDim = c.kv * c.hd;
      const kc = await b.alloc(dtype, [ctx, kvDim], { name: 'k' });
      const vc = await b.alloc(dtype, [ctx, kvDim], { name: 'v' });
      const g = new GraphBuilder();
      const n = g.param('n', { max: prompt });
      const pos = g.param('pos', { max: ctx - 1 });
      const q = g.input('q', 'f32', [n, c.heads * c.hd]);
      g.output('y', g.attention(q, g.state(kc), g.state(vc), pos, { nHeads: c.heads, nKvHeads: c.kv }));
      const graph = g.build();
      const measure = async (rows: number, at: number, r: number) => {
        const inputs: RunInputs = { q: randomF32(rows * c.heads * c.hd, 5), n: rows, pos: at };
        await b.run(graph, inputs);
        const ks = await b.profileStep(graph, inputs, { reps: r });
        const sum = (f: (k: KernelTime) => number | undefined) => ks.reduce((s, k) => s + (f(k) ?? 0), 0);
        return {
          kernels: ks.map((k) => k.label),
          ms: sum((k) => k.ms),
          wallMs: sum((k) => k.wallMs),
          repMs: sum((k) => k.repMs),
        };
      };
      for (const p of positions) {
        const m = await measure(1, p, tiny ? 2 : reps);
        // K and V read once per kv head (from L2 for the grouped heads).
        const kvBytes = 2 * (p + 1) * kvDim * (dtype === 'f32' ? 4 : 2);
        result.attention.push({
          shape: c.name,
          cache: dtype,
          options: attention,
          rows: 1,
          position: p,
          ...m,
          kvGBs: kvBytes / 1e9 / (m.wallMs / 1e3),
        });
        log(
          `attention ${JSON.stringify(attention ?? 'default')} ${c.name} ${dtype} decode at ${p}: ${f3(m.wallMs)} ms host / ${f3(m.repMs)} ms GPU per call (${m.kernels.join(' + ')})`,
        );
      }
      if (attention === undefined) {
        const m = await measure(prompt, 0, tiny ? 1 : 10);
        result.attention.push({ shape: c.name, cache: dtype, rows: prompt, position: 0, ...m });
        log(`attention ${c.name} ${dtype} prompt ${prompt}: ${f3(m.wallMs)} ms host / ${f3(m.repMs)} ms GPU per call`);
      }
      b.free(kc);
      b.free(vc);
      save(result);
    }
  }
  b.dispose();
}

// ---- 4. models -----------------------------------------------------------------------------------------------------

const modelDir = resolve(flags.models ?? join(repo, 'benchmarks/.cache/webgpu'));
const vocab = join(repo, 'fixtures/vocab/ggml-vocab-llama-spm.gguf');
const modelList: [LlamaShape, BenchDType][] = flags['model-list']
  ? flags['model-list'].split(',').map((s) => {
      const [shape, dtype] = s.split(':');
      const sh = shapes[shape as keyof typeof shapes];
      if (sh === undefined || (dtype !== 'q4_0' && dtype !== 'q8_0')) throw new Error(`--model-list: bad entry ${s}`);
      return [sh, dtype];
    })
  : tiny
    ? [
        [shapes.tiny, 'q4_0'],
        [shapes.tiny, 'q8_0'],
      ]
    : [
        [shapes.tinyllama, 'q4_0'],
        [shapes.llama7b, 'q4_0'],
        [shapes.tinyllama, 'q8_0'],
        [shapes.llama7b, 'q8_0'],
      ];

async function generateSection(): Promise<void> {
  for (const [shape, dtype] of modelList) {
    if (left() < 120_000) return;
    const g0 = performance.now();
    await modelPath(modelDir, shape, dtype, vocab);
    log(`model ${shape.name} ${dtype}: file ready in ${((performance.now() - g0) / 1000).toFixed(1)} s`);
  }
}

async function waitFor(): Promise<void> {
  const file = flags['wait-for'];
  if (file === undefined) return;
  const until = performance.now() + Number(flags['wait-max']) * 1000;
  while (!existsSync(file) && performance.now() < until && left() > 150_000)
    await new Promise((r) => setTimeout(r, 1000));
  log(existsSync(file) ? `${file} exists: measuring on a quiet machine` : `gave up waiting for ${file}`);
  if (!existsSync(file))
    result.notes.push(`models measured while ${file} was still missing (a build may have been running)`);
}

/** stories260K's greedy 200 ids against llama2.c's on this adapter: the kernels are right here too. */
async function goldSection(): Promise<void> {
  const want = JSON.parse(readFileSync(join(repo, 'fixtures/reference/stories260K-greedy-llama2c.json'), 'utf8')) as {
    tokens: number[];
  };
  result.gold = [];
  const b = await backend();
  const model = await loadModel(join(repo, 'fixtures/models/stories260K.gguf'), { backend: b, contextSize: 512 });
  const { ids } = await model.generate([1], { temperature: 0, maxTokens: 200 }).collect();
  const at = ids.findIndex((id, i) => id !== want.tokens[i]);
  // The pipelined greedy path (ids fed back on the GPU) on the same model.
  const cache = await allocKvCache(b, model.hparams, 256, 'f32');
  const graph = buildModelGraph(model.hparams, model.weights, cache, { maxTokens: 1, logits: true });
  const piped: number[] = [];
  for await (const id of b.greedy(graph, { tokens: Int32Array.of(1), nTokens: 1, pos: 0 }, { steps: 200 })) {
    piped.push(id);
  }
  const at2 = piped.findIndex((id, i) => id !== want.tokens[i]);
  // The prompt path (tiled matmuls, prompt attention): llama2.c's perplexity of the TinyStories sample.
  const ppl = (await model.perplexity(readFileSync(join(repo, 'fixtures/text/cs336-tinystories_sample.txt'), 'utf8')))
    .perplexity;
  const pplRef = 3.548202;
  result.gold.push({
    model: 'stories260K',
    perplexity: ppl,
    llama2c: pplRef,
    within01pct: Math.abs(ppl / pplRef - 1) <= 1e-3,
  });
  result.gold.push({ model: 'stories260K', idsMatch: at < 0 && ids.length === 200, firstMismatch: at });
  result.gold.push({ model: 'stories260K', path: 'greedy pipelined', idsMatch: at2 < 0, firstMismatch: at2 });
  log(
    `gold stories260K greedy: ${at < 0 ? '200 ids as llama2.c' : `differs at ${at}`}; pipelined: ${at2 < 0 ? '200 ids as llama2.c' : `differs at ${at2}`}; perplexity ${ppl.toFixed(6)} (llama2.c ${pplRef})`,
  );
  for (const t of [...cache.k, ...cache.v]) b.free(t);
  await model.dispose();
  b.dispose();
  save(result);
}

async function modelSection(): Promise<void> {
  const optionSets = JSON.parse(flags['model-options']) as WebGpuBackendOptions[];
  for (const [shape, dtype] of modelList) {
    for (const options of optionSets) {
      if (left() < 60_000) {
        result.notes.push(`models: stopped before ${shape.name} ${dtype} ${JSON.stringify(options)} (deadline)`);
        return;
      }
      await modelRun(shape, dtype, options);
    }
  }
}

async function modelRun(shape: LlamaShape, dtype: BenchDType, options: WebGpuBackendOptions): Promise<void> {
  const decodeSteps = tiny ? 8 : Number(flags.steps);
  const promptTokens = tiny ? 64 : 512;
  {
    const g0 = performance.now();
    const path = await modelPath(modelDir, shape, dtype, vocab);
    log(`model ${shape.name} ${dtype}: file ready in ${((performance.now() - g0) / 1000).toFixed(1)} s`);
    const b = await backend(options);
    const l0 = performance.now();
    const model = await loadModel(path, {
      backend: b,
      contextSize: promptTokens + decodeSteps + 8,
      batchSize: promptTokens,
    });
    const loadS = (performance.now() - l0) / 1000;
    const hp = model.hparams;
    const cache = await allocKvCache(b, hp, promptTokens + decodeSteps + 8, 'f32');
    const decode = buildModelGraph(hp, model.weights, cache, { maxTokens: 1, logits: true });
    const prompt = buildModelGraph(hp, model.weights, cache, { maxTokens: promptTokens, logits: false });
    const tokens = new Int32Array(promptTokens).map((_, i) => (i * 7919 + 1) % hp.vocabSize);
    const one = new Int32Array(1);
    // Warm up every path (pipelines, buffers).
    one[0] = 1;
    await b.runGreedy(decode, { tokens: one, nTokens: 1, pos: 0 });
    await b.run(decode, { tokens: one, nTokens: 1, pos: 0 });
    for await (const _ of b.greedy(decode, { tokens: one, nTokens: 1, pos: 0 }, { steps: 4 })) void _;
    b.timestamps = false;

    // Decode from an empty cache, like llama-bench's tg: (a) pipelined, ids fed back on the GPU;
    // the median of 3 runs at the default depth;
    const piped: number[] = [];
    for (let rep = 0; rep < (tiny ? 1 : 3); rep++) {
      const p0 = performance.now();
      let n = 0;
      for await (const _ of b.greedy(decode, { tokens: one, nTokens: 1, pos: 0 }, { steps: decodeSteps })) n++;
      piped.push((performance.now() - p0) / n);
    }
    const pipedMs = median(piped);
    // ... with fewer and more steps in flight (one run each);
    const byDepth: Record<string, number> = {};
    for (const depth of tiny ? [] : [1, 2, 3, 4, 6, 8, 12, 16]) {
      const d0 = performance.now();
      let m = 0;
      for await (const _ of b.greedy(decode, { tokens: one, nTokens: 1, pos: 0 }, { steps: decodeSteps, depth })) m++;
      byDepth[depth] = 1000 / ((performance.now() - d0) / m);
    }
    // (b) step by step, the id read back each step (and where the host's time goes);
    const host: number[] = [];
    const wait: number[] = [];
    const w0 = performance.now();
    for (let pos = 0; pos < decodeSteps; pos++) {
      one[0] = await b.runGreedy(decode, { tokens: one, nTokens: 1, pos });
      host.push(b.lastStep.hostMs);
      wait.push(b.lastStep.waitMs);
    }
    const stepMs = (performance.now() - w0) / decodeSteps;
    const dispatches = b.lastStep.dispatches;
    // (c) the same steps reading all logits back;
    const l1 = performance.now();
    for (let pos = 0; pos < decodeSteps; pos++) await b.run(decode, { tokens: one, nTokens: 1, pos });
    const logitsStepMs = (performance.now() - l1) / decodeSteps;
    // (d) GPU time per step (timestamps around the pass), over the same positions.
    b.timestamps = true;
    const gpu: number[] = [];
    for (let pos = 0; pos < decodeSteps; pos += Math.max(1, Math.floor(decodeSteps / 16))) {
      await b.runGreedy(decode, { tokens: one, nTokens: 1, pos });
      if (b.lastStep.gpuMs !== undefined) gpu.push(b.lastStep.gpuMs);
    }
    // Prompt: promptTokens at position 0, no logits (the prompt graph). One warm-up run first (the prompt graph's
    // first run builds its pipelines; llama-bench warms up too), then the median of 3 wall-timed runs without
    // timestamps (their resolve and read-back would count as prompt time), then 2 timestamped runs for GPU time.
    const pt: number[] = [];
    const pg: number[] = [];
    b.timestamps = false;
    if (left() > 30_000) await b.run(prompt, { tokens, nTokens: promptTokens, pos: 0 });
    for (let rep = 0; rep < 3 && left() > 30_000; rep++) {
      const q0 = performance.now();
      await b.run(prompt, { tokens, nTokens: promptTokens, pos: 0 });
      // The prompt graph has no outputs: run() returns once submitted, so wait for the GPU to finish.
      await b.device.queue.onSubmittedWorkDone();
      pt.push(performance.now() - q0);
    }
    b.timestamps = true;
    for (let rep = 0; rep < 2 && left() > 30_000; rep++) {
      await b.run(prompt, { tokens, nTokens: promptTokens, pos: 0 });
      if (b.lastStep.gpuMs !== undefined) pg.push(b.lastStep.gpuMs);
    }
    const promptMs = median(pt);
    // Where a step goes: every kernel alone (timestamps) and `reps` times back to back (last: they clobber state).
    one[0] = 1;
    const at = Math.floor(decodeSteps / 2);
    const decodeKernels = byLabel(
      await b.profileStep(decode, { tokens: one, nTokens: 1, pos: at }, { reps: tiny ? 2 : Math.min(reps, 50) }),
    );
    const promptKernels =
      left() > 30_000
        ? byLabel(await b.profileStep(prompt, { tokens, nTokens: promptTokens, pos: 0 }, { reps: tiny ? 1 : 3 }))
        : [];
    const gpuStep = gpu.length ? median(gpu) : undefined;
    const kernelSum = (ks: typeof decodeKernels, f: 'wallMs' | 'repMs' | 'ms') => ks.reduce((s, k) => s + k[f], 0);
    const row = {
      file: `${shape.name}-${dtype}.gguf`,
      options,
      shape: shape.name,
      format: dtype,
      adapter: result.adapter,
      loadS,
      decodeTokS: 1000 / pipedMs,
      decodeStepMs: pipedMs,
      decodeTokSByDepth: byDepth,
      stepwiseTokS: 1000 / stepMs,
      stepwiseStepMs: stepMs,
      stepwiseHostMs: median(host),
      stepwiseWaitMs: median(wait),
      decodeGpuMs: gpuStep,
      decodeOverheadMs: gpuStep !== undefined ? stepMs - gpuStep : undefined,
      dispatchesPerStep: dispatches,
      decodeWithLogitsTokS: 1000 / logitsStepMs,
      decodeKernelsWallMs: kernelSum(decodeKernels, 'wallMs'),
      decodeKernelsGpuMs: kernelSum(decodeKernels, 'repMs'),
      decodeKernelsAloneMs: kernelSum(decodeKernels, 'ms'),
      promptTokS: (promptTokens / promptMs) * 1000,
      promptMs,
      promptGpuMs: pg.length ? median(pg) : undefined,
      promptTokens,
      decodeSteps,
      profiledAt: at,
      decodeKernels,
      promptKernels,
    };
    result.models.push(row);
    log(
      `${row.file} ${JSON.stringify(options)}: decode ${row.decodeTokS.toFixed(1)} tok/s pipelined (${pipedMs.toFixed(2)} ms/step); step by step ${row.stepwiseTokS.toFixed(1)} tok/s (${stepMs.toFixed(2)} ms: host ${row.stepwiseHostMs.toFixed(2)} + wait ${row.stepwiseWaitMs.toFixed(2)}; GPU ${gpuStep?.toFixed(2)} ms, ${dispatches} dispatches); with logits ${row.decodeWithLogitsTokS.toFixed(1)} tok/s; prompt ${row.promptTokS.toFixed(1)} tok/s (GPU ${row.promptGpuMs?.toFixed(1)} ms)`,
    );
    for (const k of decodeKernels.slice(0, 8)) {
      log(`  decode ${k.label} x${k.count}: ${f3(k.wallMs)} ms host, ${f3(k.repMs)} ms GPU, ${f3(k.ms)} ms alone`);
    }
    for (const k of promptKernels.slice(0, 5)) {
      log(`  prompt ${k.label} x${k.count}: ${f3(k.wallMs)} ms host, ${f3(k.repMs)} ms GPU, ${f3(k.ms)} ms alone`);
    }
    save(result);
    for (const t of [...cache.k, ...cache.v]) b.free(t);
    await model.dispose();
    b.dispose();
  }
}

try {
  if (sections.has('copy')) await copyBandwidth(probe);
  save(result);
  if (sections.has('matvec')) await matvecSection();
  if (sections.has('sweep')) await sweepSection();
  if (sections.has('attention')) await attentionSection();
  if (sections.has('gold')) await goldSection();
  if (sections.has('generate')) await generateSection();
  if (sections.has('models')) {
    await waitFor();
    await modelSection();
  }
} catch (e) {
  result.notes.push(`failed: ${(e as Error).stack ?? String(e)}`);
  save(result);
  console.error(e);
  process.exitCode = 1;
}
probe.dispose();
log(`wrote ${outPath}`);
