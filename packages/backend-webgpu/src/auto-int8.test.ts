/**
 * The automatic matvec choice (`matvec.int8` and `matvec.split` unset): Q4_0/Q8_0 matrices of 8 MiB or more are
 * stored split and their matvecs run on q8 activations (the int8 grid), smaller ones keep the GGUF layout and f32
 * activations; `int8: false` turns the choice off. Results against the JS backend: ggml mode (q8 activations) for
 * the big matrix, f32 activations for the small one, at the int8 test's tolerance.
 */
import { JsBackend } from '@nibble/backend-js';
import { formats } from '@nibble/formats';
import { type Backend, GraphBuilder, hostTensor } from '@nibble/tensor';
import { describe, expect, it } from 'vitest';
import { WebGpuBackend } from './backend.js';
import { nodeGpu } from './node.js';

function values(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return ((s / 4294967296) * 2 - 1) * scale;
  });
}

const cols = 4096;
// 3648 rows of 4096 Q4_0 weights: 3648 x 2304 bytes = 8.4 MB, just over the 8 MiB threshold; 64 rows stay under.
const bigRows = 3648;
const smallRows = 64;

async function graph(b: Backend, big: Uint8Array, small: Uint8Array) {
  const wb = await b.upload(hostTensor('q4_0', [bigRows, cols], big), { name: 'big' });
  const ws = await b.upload(hostTensor('q4_0', [smallRows, cols], small), { name: 'small' });
  const g = new GraphBuilder();
  // Two inputs, so the two matmuls are two units (one unit over one x would mix layouts).
  g.output('yb', g.matmul(g.weight(wb), g.input('xb', 'f32', [1, cols])));
  g.output('ys', g.matmul(g.weight(ws), g.input('xs', 'f32', [1, cols])));
  return { graph: g.build(), wb };
}

function relErr(got: Float32Array, want: Float32Array): number {
  let err = 0;
  let mag = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    mag = Math.max(mag, Math.abs(want[i]));
  }
  return err / mag;
}

describe('automatic int8 matvecs', () => {
  it('big Q4_0 matrices go split + int8, small ones stay on f32 activations; int8: false turns it off', async () => {
    const q = formats.q4_0;
    const big = q.quantize(values(bigRows * cols, 1), { rowLength: cols });
    const small = q.quantize(values(smallRows * cols, 2), { rowLength: cols });
    const inputs = { xb: values(cols, 3, 2), xs: values(cols, 4, 2) };

    const auto = await WebGpuBackend.create({ gpu: nodeGpu() });
    expect(auto.info.packedDot).toBe(true);
    const off = await WebGpuBackend.create({ gpu: nodeGpu(), matvec: { int8: false } });
    const ggml = new JsBackend({ matmulActivations: 'ggml' });
    const f32 = new JsBackend();
    const [ga, go, gg, gf] = await Promise.all([auto, off, ggml, f32].map((b) => graph(b, big, small)));

    const labels = (await auto.profileStep(ga.graph, inputs)).map((k) => k.label);
    expect(labels).toContain('matvec q4_0 int8 split x4');
    expect(labels).toContain('matvec q4_0');
    expect(labels.filter((l) => l.startsWith('quantize'))).toHaveLength(1);
    const offLabels = (await off.profileStep(go.graph, inputs)).map((k) => k.label);
    expect(offLabels.filter((l) => l.includes('int8') || l.includes('split') || l.startsWith('quantize'))).toEqual([]);

    const ya = await auto.run(ga.graph, inputs);
    const yo = await off.run(go.graph, inputs);
    const yg = await ggml.run(gg.graph, inputs);
    const yf = await f32.run(gf.graph, inputs);
    // The int8 test's bound (exact integer sums, f32 rounding of the block sums), and the f32 path's bound.
    expect(relErr(ya.yb, yg.yb)).toBeLessThan(1e-6);
    expect(relErr(ya.yb, yf.yb)).toBeGreaterThan(1e-3);
    expect(relErr(ya.ys, yf.ys)).toBeLessThan(1e-5);
    expect(relErr(yo.yb, yf.yb)).toBeLessThan(1e-5);
    // The big weight still reads back as its GGUF bytes.
    const back = await auto.download(ga.wb);
    expect(Buffer.from(back.data as Uint8Array).equals(Buffer.from(big))).toBe(true);
    for (const b of [auto, off, ggml, f32]) b.dispose();
  }, 300_000);
});
