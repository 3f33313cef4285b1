import { JsBackend } from '@nibble/backend-js';
import { formats } from '@nibble/formats';
import { type Backend, BackendError, type DTypeName, GraphBuilder, GraphError, hostTensor } from '@nibble/tensor';
import { describe, expect, it } from 'vitest';
import { WebGpuBackend } from './backend.js';
import { GpuDeviceLostError } from './device.js';
import { dawnFlags, nodeGpu } from './node.js';

function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 4294967296) * 2 - 1;
  });
}

describe('WebGpuBackend', () => {
  it('splits tensors larger than a binding into row chunks: get_rows and matmul across chunks', async () => {
    // 100 rows of 64 q8_0 values (68 bytes each); a 2048-byte binding holds 30 rows: 4 chunks.
    const b = await WebGpuBackend.create({ gpu: nodeGpu(), maxBindingBytes: 2048 });
    const rows = 100;
    const cols = 64;
    const bytes = formats.q8_0.quantize(values(rows * cols, 3), { rowLength: cols });
    const deq = formats.q8_0.dequantize(bytes, rows * cols);
    const t = await b.upload(hostTensor('q8_0', [rows, cols], bytes), { name: 'emb' });
    expect((t as unknown as { chunks: unknown[] }).chunks.length).toBe(4);
    const g = new GraphBuilder();
    const n = g.param('n', { max: 4 });
    const ids = g.input('ids', 'i32', [n]);
    const x = g.getRows(g.weight(t), ids);
    g.output('rows', x);
    g.output('y', g.matmul(g.weight(t), x));
    const graph = g.build();
    for (const pick of [[99], [0, 29, 30, 99], [59, 60, 89, 90]]) {
      const idArr = Int32Array.from(pick);
      const out = await b.run(graph, { ids: idArr, n: idArr.length });
      for (let r = 0; r < pick.length; r++) {
        expect(Array.from(out.rows.subarray(r * cols, (r + 1) * cols))).toEqual(
          Array.from(deq.subarray(pick[r] * cols, (pick[r] + 1) * cols)),
        );
        for (let o = 0; o < rows; o++) {
          let s = 0;
          for (let i = 0; i < cols; i++) s += deq[o * cols + i] * deq[pick[r] * cols + i];
          expect(Math.abs(out.y[r * rows + o] - s)).toBeLessThan(1e-4 * (1 + Math.abs(s)));
        }
      }
    }
    await expect(b.alloc('f32', [1000, 64], { name: 'kv' })).rejects.toThrow(/largest binding/);
    const bad = await b.run(graph, { ids: Int32Array.of(100), n: 1 }).catch((e) => e);
    expect(bad).toBeInstanceOf(GraphError);
    b.dispose();
  });

  it('turns a lost device into a typed error, and a new backend works again', async () => {
    const make = async () => {
      const b = await WebGpuBackend.create({ gpu: nodeGpu() });
      const w = await b.upload(hostTensor('f32', [4, 4], values(16, 1)), { name: 'w' });
      const g = new GraphBuilder();
      g.output('y', g.matmul(g.weight(w), g.input('x', 'f32', [1, 4])));
      return { b, graph: g.build() };
    };
    const first = await make();
    const x = Float32Array.of(1, 2, 3, 4);
    const want = Array.from((await first.b.run(first.graph, { x })).y);
    first.b.device.destroy();
    await new Promise((r) => setTimeout(r, 50));
    const err = await first.b.run(first.graph, { x }).catch((e) => e);
    expect(err).toBeInstanceOf(GpuDeviceLostError);
    expect(err).toBeInstanceOf(BackendError);
    expect(err.code).toBe('E_DEVICE_LOST');
    const second = await make();
    expect(Array.from((await second.b.run(second.graph, { x })).y)).toEqual(want);
    second.b.dispose();
  });

  it('gives the same results with and without fusions, and fewer dispatches with them', async () => {
    const run = async (fuse: boolean) => {
      const b = await WebGpuBackend.create({ gpu: nodeGpu(), fuse });
      const dim = 64;
      const up = (name: string, r: number, c: number, seed: number) =>
        b.upload(hostTensor('q4_0', [r, c], formats.q4_0.quantize(values(r * c, seed), { rowLength: c })), { name });
      const wq = await up('wq', dim, dim, 1);
      const wk = await up('wk', dim, dim, 2);
      const wg = await up('wg', 2 * dim, dim, 3);
      const wu = await up('wu', 2 * dim, dim, 4);
      const norm = await b.upload(
        hostTensor(
          'f32',
          [dim],
          values(dim, 5).map((v) => 1 + v / 4),
        ),
        { name: 'norm' },
      );
      const kc = await b.alloc('f16', [8, dim], { name: 'kc' });
      const g = new GraphBuilder();
      const n = g.param('n', { min: 1, max: 8 });
      const pos = g.param('pos', { max: 7 });
      const x = g.input('x', 'f32', [n, dim]);
      const h = g.rmsNorm(x, 1e-5, { weight: g.weight(norm) });
      g.copy(g.rope(g.matmul(g.weight(wk), h), pos, { nHeads: 4 }), g.state(kc), pos);
      const q = g.rope(g.matmul(g.weight(wq), h), pos, { nHeads: 4 });
      const att = g.attention(q, g.state(kc), g.state(kc), pos, { nHeads: 4, nKvHeads: 4 });
      g.output('y', g.glu(g.matmul(g.weight(wg), att), g.matmul(g.weight(wu), att)));
      const graph = g.build();
      const outs: number[][] = [];
      const dispatches: number[] = [];
      for (const [nt, p] of [
        [1, 0],
        [1, 1],
        [6, 2],
      ]) {
        const { y } = await b.run(graph, { x: values(nt * dim, 10 + p), n: nt, pos: p });
        outs.push(Array.from(y));
        dispatches.push(b.lastStep.dispatches);
      }
      const kernels = await b.profileStep(graph, { x: values(dim, 1), n: 1, pos: 0 });
      b.dispose();
      return { outs, dispatches, kernels };
    };
    const fused = await run(true);
    expect(fused.kernels.map((k) => k.label)).toEqual([
      'matvec q4_0+q4_0 norm', // k (rope, KV write) and q (rope) with the rms_norm in the prologue
      'attention f16',
      'matvec q4_0+q4_0 glu', // gate and up with act(gate)·up
    ]);
    for (const k of fused.kernels) expect(k.ms).toBeGreaterThan(0);
    const plain = await run(false);
    expect(fused.dispatches[0]).toBeLessThan(plain.dispatches[0]);
    expect(fused.dispatches[0]).toBe(3); // k and q with the norm and rope (k also writes the cache), attention, glu
    for (let i = 0; i < fused.outs.length; i++) {
      fused.outs[i].forEach((v, j) => {
        expect(Math.abs(v - plain.outs[i][j])).toBeLessThan(2e-5 * (1 + Math.abs(v)));
      });
    }
  });

  it('splits the positions of decode attention and merges the splits like one pass (vs the JS backend)', async () => {
    // Caches of 150 positions, one to three query rows at late positions: several splits of 32 keys (SwiftShader's
    // chunk), merged by the combine kernel; six rows take one pass. GQA, a window and soft-capping on the f16 cache.
    const run = async (b: Backend, dtype: DTypeName, heads: number, kv: number, hd: number, window: number) => {
      const ctx = 150;
      const kvDim = kv * hd;
      const kc = await b.alloc(dtype, [ctx, kvDim], { name: 'kc' });
      const vc = await b.alloc(dtype, [ctx, kvDim], { name: 'vc' });
      const fill = new GraphBuilder();
      const fp = fill.input('pos', 'i32', [ctx]);
      fill.copy(fill.input('k', 'f32', [ctx, kvDim]), fill.state(kc), fp);
      fill.copy(fill.input('v', 'f32', [ctx, kvDim]), fill.state(vc), fp);
      const all = Int32Array.from({ length: ctx }, (_, i) => i);
      await b.run(fill.build(), { k: values(ctx * kvDim, 1), v: values(ctx * kvDim, 2), pos: all });
      const g = new GraphBuilder();
      const n = g.param('n', { min: 1, max: 6 });
      const start = g.param('start', { max: ctx - 1 });
      const q = g.input('q', 'f32', [n, heads * hd]);
      const opts = { nHeads: heads, nKvHeads: kv, window, softcap: window > 0 ? 4 : 0 };
      g.output('y', g.attention(q, g.state(kc), g.state(vc), start, opts));
      const graph = g.build();
      const outs: { y: number[]; dispatches: number }[] = [];
      for (const [rows, st] of [
        [1, 149],
        [1, 31],
        [3, 97],
        [6, 140],
      ]) {
        const { y } = await b.run(graph, {
          q: values(rows * heads * hd, 3 + rows).map((v) => 2 * v),
          n: rows,
          start: st,
        });
        outs.push({ y: Array.from(y), dispatches: b instanceof WebGpuBackend ? b.lastStep.dispatches : 0 });
      }
      b.dispose();
      return outs;
    };
    for (const [dtype, heads, kv, hd, window] of [
      ['f32', 8, 2, 64, 0],
      ['f16', 4, 4, 128, 70],
      ['q8_0', 2, 1, 32, 0],
    ] as const) {
      const gpu = await run(await WebGpuBackend.create({ gpu: nodeGpu() }), dtype, heads, kv, hd, window);
      const ref = await run(new JsBackend(), dtype, heads, kv, hd, window);
      gpu.forEach((o, i) => {
        o.y.forEach((v, j) => {
          expect(Math.abs(v - ref[i].y[j]), `${dtype} case ${i} at ${j}`).toBeLessThan(2e-6);
        });
      });
      // Split decode steps run two kernels; one position's chunk and the six-row pass run one.
      expect(gpu.map((o) => o.dispatches)).toEqual([window > 0 ? 2 : 2, 1, window > 0 ? 2 : 2, 1]);
    }
  });

  it('runs Q4_0/Q8_0 matrix-vector in every grid: words per thread, rows per group, K split over subgroups', async () => {
    const grids = [
      { wpp: 1 },
      { wpp: 2, rows: 4, unroll: 3 },
      { wpp: 4, wg: 64, unroll: 1 },
      { wpp: 1, wg: 128, threads: 1 << 30 },
      { wpp: 0 },
    ];
    for (const matvec of grids) {
      const b = await WebGpuBackend.create({ gpu: nodeGpu(), matvec });
      for (const dtype of ['q4_0', 'q8_0'] as const) {
        for (const [rows, cols] of [
          [66, 256],
          [7, 96],
        ]) {
          const bytes = formats[dtype].quantize(values(rows * cols, rows), { rowLength: cols });
          const deq = formats[dtype].dequantize(bytes, rows * cols);
          const w = await b.upload(hostTensor(dtype, [rows, cols], bytes), { name: 'w' });
          const g = new GraphBuilder();
          g.output('y', g.matmul(g.weight(w), g.input('x', 'f32', [1, cols])));
          const x = values(cols, 9);
          const { y } = await b.run(g.build(), { x });
          for (let o = 0; o < rows; o++) {
            let s = 0;
            let mag = 0;
            for (let i = 0; i < cols; i++) {
              s += deq[o * cols + i] * x[i];
              mag += Math.abs(deq[o * cols + i] * x[i]);
            }
            // f32 sums in another order: within a few ulps of the magnitude summed (measured: 4e-8).
            const e = Math.abs(y[o] - s) / mag;
            expect(e, `${dtype} ${rows}x${cols} ${JSON.stringify(matvec)} row ${o}`).toBeLessThan(1.5e-7);
          }
          b.free(w);
        }
      }
      b.dispose();
    }
  });

  it('tiles prompt matmuls (32 x 32 on SwiftShader, 128 x 64 on GPUs): partial tiles, a residual, K % 32 != 0', async () => {
    // Rows and tokens past one tile and not a whole number of tiles; odd K for f32 (zero-padded k steps).
    const b = await WebGpuBackend.create({ gpu: nodeGpu() });
    for (const [dtype, rows, cols, n] of [
      ['q4_0', 130, 96, 66],
      ['q8_0', 140, 64, 65],
      ['f32', 9, 45, 6],
    ] as const) {
      const bytes = formats[dtype].quantize(values(rows * cols, 3), { rowLength: cols });
      const deq = formats[dtype].dequantize(bytes, rows * cols);
      const w = await b.upload(hostTensor(dtype, [rows, cols], bytes), { name: 'w' });
      const g = new GraphBuilder();
      const nt = g.param('n', { max: 80 });
      const res = g.input('r', 'f32', [nt, rows]);
      g.output('y', g.matmul(g.weight(w), g.input('x', 'f32', [nt, cols]), { residual: res }));
      const x = values(n * cols, 9);
      const r = values(n * rows, 11);
      const { y } = await b.run(g.build(), { x, r, n });
      for (let t = 0; t < n; t++) {
        for (let o = 0; o < rows; o++) {
          let s = r[t * rows + o];
          let mag = Math.abs(s);
          for (let i = 0; i < cols; i++) {
            s += deq[o * cols + i] * x[t * cols + i];
            mag += Math.abs(deq[o * cols + i] * x[t * cols + i]);
          }
          // One f32 sum in order over K (measured: 2e-7 of the magnitude at K = 256).
          const e = Math.abs(y[t * rows + o] - s) / mag;
          expect(e, `${dtype} token ${t} row ${o}`).toBeLessThan(5e-7);
        }
      }
      b.free(w);
    }
    b.dispose();
  });

  it('profiles kernels alone and back to back, with timestamps unquantized in Node', async () => {
    expect(dawnFlags('')).toEqual(['disable-dawn-features=timestamp_quantization']);
    expect(dawnFlags('disable-dawn-features=a;backend=vulkan')).toEqual([
      'disable-dawn-features=a,timestamp_quantization',
      'backend=vulkan',
    ]);
    expect(dawnFlags('enable-dawn-features=timestamp_quantization')).toEqual([
      'enable-dawn-features=timestamp_quantization',
    ]);
    const b = await WebGpuBackend.create({ gpu: nodeGpu(), timestamps: true });
    const w = await b.upload(hostTensor('f32', [64, 64], values(64 * 64, 1)), { name: 'w' });
    const g = new GraphBuilder();
    g.output('y', g.matmul(g.weight(w), g.input('x', 'f32', [1, 64])));
    const graph = g.build();
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      await b.run(graph, { x: values(64, i) });
      times.push(b.lastStep.gpuMs!);
    }
    // Quantized timestamps are whole multiples of 65.536 us (most often 0 for a kernel this small).
    expect(times.some((t) => t > 0 && Math.abs(t / 0.065536 - Math.round(t / 0.065536)) > 1e-3)).toBe(true);
    const [k] = await b.profileStep(graph, { x: values(64, 1) }, { reps: 5 });
    expect(k.label).toBe('matvec f32');
    expect(k.wallMs).toBeGreaterThan(0);
    expect(k.repMs).toBeGreaterThan(0);
    b.dispose();
  });
});
