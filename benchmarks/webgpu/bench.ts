/// <reference types="@webgpu/types" />
/**
 * The WebGPU backend on whatever adapter dawn.node finds (the H200 on the GPU machine, SwiftShader here):
 *   1. copy bandwidth of a plain vec4 copy kernel (the card's practical peak), in the same run;
 *   2. matrix-vector GB/s per format at 4096x4096, 11008x4096 and 32000x4096 (GPU time from timestamp queries), with
 *      a sweep of the matvec grid for Q4_0/Q8_0 at 11008x4096 and a check of the results against the CPU;
 *   3. decode (greedy on the GPU, and with logits read back) and prompt (512 tokens) tok/s on the synthetic
 *      TinyLlama- and 7B-shaped Q4_0/Q8_0 files, dispatches per step, GPU time per step and the rest (overhead).
 * Every section is time-boxed (--deadline seconds in all), prints progress, and rewrites the JSON after each item, so
 * a run cut short still leaves its results. `merge` folds llama-bench JSON files into the result afterwards.
 *
 *   node --conditions=source --import tsx benchmarks/webgpu/bench.ts [--out F] [--models DIR] [--deadline S] [--tiny]
 *   node .gpu/webgpu-bench.mjs merge --out F LLAMA_BENCH_JSON...
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { WebGpuBackend } from '@nibble/backend-webgpu';
import { nodeGpu } from '@nibble/backend-webgpu/node';
import { formats } from '@nibble/formats';
import { allocKvCache, buildModelGraph } from '@nibble/runner';
import { loadModel } from '@nibble/runner/node';
import { type DTypeName, dtypes, GraphBuilder, hostTensor } from '@nibble/tensor';
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
    sections: { type: 'string', default: 'copy,matvec,sweep,gold,generate,models' },
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

interface Result {
  date: string;
  adapter: string;
  features: readonly string[];
  limits: Record<string, number>;
  machine: string;
  sizes: 'full' | 'tiny';
  copy?: { bytes: number; gbs: number; ms: number };
  matvec: Record<string, unknown>[];
  sweep: Record<string, unknown>[];
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
    r.ratios.push({
      file,
      decodeTokS: m.decodeTokS,
      llamaDecodeTokS: tg?.avg_ts,
      decodeRatio: tg ? Number(m.decodeTokS) / Number(tg.avg_ts) : undefined,
      promptTokS: m.promptTokS,
      llamaPromptTokS: pp?.avg_ts,
      promptRatio: pp ? Number(m.promptTokS) / Number(pp.avg_ts) : undefined,
    });
  }
  save(r);
  console.table(r.ratios);
  process.exit(0);
}

// ---- setup ----------------------------------------------------------------------------------------------------------

const probe = await WebGpuBackend.create({ gpu: nodeGpu(), timestamps: true });
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
  matvec: [],
  sweep: [],
  models: [],
  notes: tiny ? ['software adapter or --tiny: small shapes, figures are not speed figures'] : [],
};
log(
  `adapter: ${result.adapter}; timestamps ${probe.info.timestamps}; subgroups ${probe.info.subgroupMin}-${probe.info.subgroupMax}`,
);
save(result);
const sections = new Set(flags.sections.split(','));

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
  const times: number[] = [];
  for (let rep = 0; rep < (tiny ? 3 : 12); rep++) {
    const enc = d.createCommandEncoder();
    const pass = enc.beginComputePass(
      q ? { timestampWrites: { querySet: q, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : undefined,
    );
    pass.setPipeline(pipe);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(gx, gy);
    pass.end();
    if (q) {
      enc.resolveQuerySet(q, 0, 2, res, 0);
      enc.copyBufferToBuffer(res, 0, rb, 0, 16);
    }
    const w0 = performance.now();
    d.queue.submit([enc.finish()]);
    await rb.mapAsync(1);
    const wall = performance.now() - w0;
    const ts = new BigUint64Array(rb.getMappedRange().slice(0));
    rb.unmap();
    if (rep > 0) times.push(q ? Number(ts[1] - ts[0]) / 1e6 : wall);
  }
  const ms = median(times);
  result.copy = { bytes, ms, gbs: (2 * bytes) / (ms / 1e3) / 1e9 };
  log(
    `copy: ${(bytes / 2 ** 20).toFixed(0)} MiB read + written in ${ms.toFixed(3)} ms = ${result.copy.gbs.toFixed(1)} GB/s`,
  );
  for (const x of [src, dst, res, rb]) x.destroy();
}

// ---- 2. matrix-vector -----------------------------------------------------------------------------------------------

const matvecFormats: DTypeName[] = [
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

async function matvecRun(
  b: WebGpuBackend,
  dtype: DTypeName,
  rows: number,
  cols: number,
  reps: number,
): Promise<{ gbs: number; gpuMs: number; wallMs: number; maxRelErr: number }> {
  const { bytes, tile } = tiledWeight(dtype, rows, cols);
  const w = await b.upload(hostTensor(dtype, [rows, cols], bytes), { name: `w ${dtype}` });
  const g = new GraphBuilder();
  g.output('y', g.matmul(g.weight(w), g.input('x', 'f32', [1, cols])));
  const graph = g.build();
  const x = randomF32(cols, 11);
  const y = new Float32Array(rows);
  const opts = { outputs: { y } };
  await b.run(graph, { x }, opts);
  const gpu: number[] = [];
  const wall: number[] = [];
  for (let i = 0; i < reps; i++) {
    const w0 = performance.now();
    await b.run(graph, { x }, opts);
    wall.push(performance.now() - w0);
    if (b.lastStep.gpuMs !== undefined) gpu.push(b.lastStep.gpuMs);
  }
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
  b.free(w);
  const gpuMs = gpu.length ? median(gpu) : median(wall);
  return { gbs: bytes.byteLength / (gpuMs / 1e3) / 1e9, gpuMs, wallMs: median(wall), maxRelErr };
}

async function matvecSection(): Promise<void> {
  const b = await WebGpuBackend.create({ gpu: nodeGpu(), timestamps: true });
  for (const [rows, cols] of matvecShapes) {
    for (const dtype of matvecFormats) {
      if (left() < 60_000) {
        result.notes.push('matvec: stopped early (deadline)');
        return;
      }
      const r = await matvecRun(b, dtype, rows, cols, tiny ? 3 : 20);
      const row = {
        format: dtype,
        shape: `${rows}x${cols}`,
        weightMB: (rows * cols * dtypes[dtype].bitsPerWeight) / 8 / 1e6,
        ...r,
        ofCopy: result.copy ? r.gbs / result.copy.gbs : undefined,
      };
      result.matvec.push(row);
      log(
        `matvec ${dtype} ${rows}x${cols}: ${r.gbs.toFixed(1)} GB/s (${r.gpuMs.toFixed(3)} ms GPU, ${r.wallMs.toFixed(3)} ms wall) err ${r.maxRelErr.toExponential(1)}`,
      );
      save(result);
    }
  }
  b.dispose();
}

async function sweepSection(): Promise<void> {
  // The grid: threads per workgroup, threads per row group, rows per group.
  const [rows, cols] = matvecShapes[1];
  for (const wg of [128, 256, 512]) {
    for (const maxTpr of [32, 64, 128]) {
      for (const rowsPer of [2, 4, 8]) {
        if (wg > lim.maxComputeInvocationsPerWorkgroup || maxTpr > wg) continue;
        if (left() < 90_000) {
          result.notes.push('sweep: stopped early (deadline)');
          return;
        }
        const sb = await WebGpuBackend.create({
          gpu: nodeGpu(),
          timestamps: true,
          matvec: { wg, maxTpr, rows: rowsPer },
        });
        for (const dtype of ['q4_0', 'q8_0'] as const) {
          const r = await matvecRun(sb, dtype, rows, cols, tiny ? 2 : 10);
          result.sweep.push({ format: dtype, shape: `${rows}x${cols}`, wg, maxTpr, rows: rowsPer, ...r });
          log(`sweep ${dtype} wg ${wg} tpr<=${maxTpr} rows ${rowsPer}: ${r.gbs.toFixed(1)} GB/s`);
        }
        sb.dispose();
        save(result);
        if (tiny) return;
      }
    }
  }
}

// ---- 3. models -----------------------------------------------------------------------------------------------------

const modelDir = resolve(flags.models ?? join(repo, 'benchmarks/.cache/webgpu'));
const vocab = join(repo, 'fixtures/vocab/ggml-vocab-llama-spm.gguf');
const modelList: [LlamaShape, BenchDType][] = tiny
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
  const best = [...result.sweep].sort((a, b) => Number(b.gbs) - Number(a.gbs))[0];
  const grids = [
    undefined,
    best ? { wg: Number(best.wg), maxTpr: Number(best.maxTpr), rows: Number(best.rows) } : undefined,
  ];
  result.gold = [];
  for (const matvec of grids.slice(0, best ? 2 : 1)) {
    const backend = await WebGpuBackend.create({ gpu: nodeGpu(), matvec });
    const model = await loadModel(join(repo, 'fixtures/models/stories260K.gguf'), { backend, contextSize: 256 });
    const { ids } = await model.generate([1], { temperature: 0, maxTokens: 200 }).collect();
    const at = ids.findIndex((id, i) => id !== want.tokens[i]);
    result.gold.push({ model: 'stories260K', matvec, idsMatch: at < 0 && ids.length === 200, firstMismatch: at });
    log(
      `gold stories260K greedy (grid ${JSON.stringify(matvec ?? 'default')}): ${at < 0 ? '200 ids as llama2.c' : `differs at ${at}`}`,
    );
    await model.dispose();
    backend.dispose();
  }
  save(result);
}

async function modelSection(): Promise<void> {
  const dir = modelDir;
  const list = modelList;
  // Best matvec grid from the sweep, if one ran.
  const best = [...result.sweep].sort((a, b) => Number(b.gbs) - Number(a.gbs))[0];
  const matvec = best ? { wg: Number(best.wg), maxTpr: Number(best.maxTpr), rows: Number(best.rows) } : undefined;
  const decodeSteps = tiny ? 8 : 128;
  const promptTokens = tiny ? 64 : 512;
  for (const [shape, dtype] of list) {
    if (left() < 60_000) {
      result.notes.push(`models: stopped before ${shape.name} ${dtype} (deadline)`);
      return;
    }
    const g0 = performance.now();
    const path = await modelPath(dir, shape, dtype, vocab);
    log(`model ${shape.name} ${dtype}: file ready in ${((performance.now() - g0) / 1000).toFixed(1)} s`);
    const backend = await WebGpuBackend.create({ gpu: nodeGpu(), timestamps: true, matvec });
    const l0 = performance.now();
    const model = await loadModel(path, {
      backend,
      contextSize: promptTokens + decodeSteps + 8,
      batchSize: promptTokens,
    });
    const loadS = (performance.now() - l0) / 1000;
    const hp = model.hparams;
    const cache = await allocKvCache(backend, hp, promptTokens + decodeSteps + 8, 'f32');
    const decode = buildModelGraph(hp, model.weights, cache, { maxTokens: 1, logits: true });
    const prompt = buildModelGraph(hp, model.weights, cache, { maxTokens: promptTokens, logits: false });
    const tokens = new Int32Array(promptTokens).map((_, i) => (i * 7919 + 1) % hp.vocabSize);
    const one = new Int32Array(1);
    // Decode from an empty cache, like llama-bench's tg: greedy on the GPU, only the id read back.
    one[0] = 1;
    await backend.runGreedy(decode, { tokens: one, nTokens: 1, pos: 0 });
    const gpu: number[] = [];
    const w0 = performance.now();
    for (let pos = 0; pos < decodeSteps; pos++) {
      one[0] = await backend.runGreedy(decode, { tokens: one, nTokens: 1, pos });
      if (backend.lastStep.gpuMs !== undefined) gpu.push(backend.lastStep.gpuMs);
    }
    const stepMs = (performance.now() - w0) / decodeSteps;
    const dispatches = backend.lastStep.dispatches;
    // The same steps reading all logits back.
    const logitsSteps = Math.min(32, decodeSteps);
    const l1 = performance.now();
    for (let pos = 0; pos < logitsSteps; pos++) await backend.run(decode, { tokens: one, nTokens: 1, pos });
    const logitsStepMs = (performance.now() - l1) / logitsSteps;
    // Prompt: promptTokens at position 0, no logits (the prompt graph), median of 3.
    const pt: number[] = [];
    const pg: number[] = [];
    for (let rep = 0; rep < 3 && left() > 30_000; rep++) {
      const p0 = performance.now();
      await backend.run(prompt, { tokens, nTokens: promptTokens, pos: 0 });
      pt.push(performance.now() - p0);
      if (backend.lastStep.gpuMs !== undefined) pg.push(backend.lastStep.gpuMs);
    }
    const promptMs = median(pt);
    // Where a step goes: every kernel in a pass of its own (GPU time per kernel, summed by kernel name).
    const byLabel = (ks: { label: string; ms: number }[]) => {
      const m = new Map<string, { label: string; ms: number; count: number }>();
      for (const k of ks) {
        const e = m.get(k.label) ?? { label: k.label, ms: 0, count: 0 };
        e.ms += k.ms;
        e.count++;
        m.set(k.label, e);
      }
      return [...m.values()].sort((a, b) => b.ms - a.ms);
    };
    one[0] = 1;
    const decodeKernels = byLabel(await backend.profileStep(decode, { tokens: one, nTokens: 1, pos: decodeSteps }));
    const promptKernels =
      left() > 30_000 ? byLabel(await backend.profileStep(prompt, { tokens, nTokens: promptTokens, pos: 0 })) : [];
    const gpuStep = gpu.length ? median(gpu) : undefined;
    const row = {
      file: `${shape.name}-${dtype}.gguf`,
      shape: shape.name,
      format: dtype,
      loadS,
      decodeTokS: 1000 / stepMs,
      decodeStepMs: stepMs,
      decodeGpuMs: gpuStep,
      decodeOverheadMs: gpuStep !== undefined ? stepMs - gpuStep : undefined,
      dispatchesPerStep: dispatches,
      decodeWithLogitsTokS: 1000 / logitsStepMs,
      promptTokS: (promptTokens / promptMs) * 1000,
      promptMs,
      promptGpuMs: pg.length ? median(pg) : undefined,
      promptTokens,
      decodeSteps,
      matvec,
      decodeKernels,
      promptKernels,
    };
    result.models.push(row);
    log(
      `${row.file}: decode ${row.decodeTokS.toFixed(1)} tok/s (${stepMs.toFixed(2)} ms/step, GPU ${gpuStep?.toFixed(2)} ms, ${dispatches} dispatches), with logits ${row.decodeWithLogitsTokS.toFixed(1)} tok/s, prompt ${row.promptTokS.toFixed(1)} tok/s`,
    );
    save(result);
    await model.dispose();
    backend.dispose();
  }
}

try {
  if (sections.has('copy')) await copyBandwidth(probe);
  save(result);
  if (sections.has('matvec')) await matvecSection();
  if (sections.has('sweep')) await sweepSection();
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
