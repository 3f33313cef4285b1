import { formats } from '@nibble/formats';
import { BackendError, GraphBuilder, GraphError, hostTensor } from '@nibble/tensor';
import { describe, expect, it } from 'vitest';
import { WebGpuBackend } from './backend.js';
import { GpuDeviceLostError } from './device.js';
import { nodeGpu } from './node.js';

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
});
