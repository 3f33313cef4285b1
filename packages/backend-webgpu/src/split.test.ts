/**
 * The split-layout matvec (`matvec: { split: true }`): Q4_0/Q8_0 matrices get a second copy with every block's quants
 * back to back and the scales after them. Checked against a float64 sum of the dequantized weights (f32 activations)
 * and the JS backend in ggml mode (int8 activations), with rows not a multiple of a workgroup's rows and K not a
 * multiple of the parts a thread group covers per iteration; fused units (rms_norm + q/k/v, gate/up + GLU) against the
 * GGUF-layout kernel of the same grid; `download` still the GGUF bytes.
 */
import { JsBackend } from '@nibble/backend-js';
import { formats } from '@nibble/formats';
import { allocKvCache, buildModelGraph } from '@nibble/runner';
import { loadModel } from '@nibble/runner/node';
import { type Backend, type DTypeName, GraphBuilder, hostTensor } from '@nibble/tensor';
import { describe, expect, it } from 'vitest';
import { WebGpuBackend, type WebGpuBackendOptions } from './backend.js';
import { nodeGpu } from './node.js';
import { joinBlocks, splitBlocks, splitBytes } from './wgsl/formats.js';

function values(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return ((s / 4294967296) * 2 - 1) * scale;
  });
}

type Grid = NonNullable<WebGpuBackendOptions['matvec']>;

/** Every split grid the sweep runs, in small: vec4 loads (wpp 4, 8), u32 loads (wpp 1, 2), f32 and int8 activations. */
const grids: Grid[] = [
  { wpp: 4, rows: 4, split: true },
  { wpp: 4, rows: 4, int8: true, split: true },
  { wpp: 2, rows: 2, split: true },
  { wpp: 1, rows: 4, int8: true, split: true },
  { wpp: 4, rows: 8, wg: 64, unroll: 3, split: true },
  { wpp: 8, rows: 4, int8: true, split: true },
  // x4 (q8 activations as vec4<u32>) only where K is a multiple of 128: these run at K = 384.
  { wpp: 4, rows: 4, int8: true, split: true, x4: true },
  { wpp: 8, rows: 2, int8: true, split: true, x4: true },
  { wpp: 4, rows: 4, int8: true, x4: true },
];

/** y = W x (plain), and rms_norm(x)·nw through q, k, v and gate/up + silu-GLU (the fused units). */
async function graphs(b: Backend, dtype: DTypeName, rows: number, cols: number) {
  const w = (seed: number, r = rows) =>
    b.upload(hostTensor(dtype, [r, cols], formats[dtype].quantize(values(r * cols, seed), { rowLength: cols })), {
      name: `w${seed}`,
    });
  const [w1, wq, wk, wv, wg, wu] = await Promise.all([w(1), w(2), w(3, 34), w(4, 34), w(5), w(6)]);
  const nw = await b.upload(
    hostTensor(
      'f32',
      [cols],
      values(cols, 7, 0.5).map((v) => 1 + v),
    ),
    { name: 'nw' },
  );
  const g = new GraphBuilder();
  const n = g.param('n', { min: 1, max: 6 });
  const x = g.input('x', 'f32', [n, cols]);
  g.output('y', g.matmul(g.weight(w1), x));
  g.output('e', g.getRows(g.weight(w1), g.input('ids', 'i32', [n])));
  const h = g.rmsNorm(x, 1e-5, { weight: g.weight(nw) });
  g.output('q', g.matmul(g.weight(wq), h));
  g.output('k', g.matmul(g.weight(wk), h));
  g.output('v', g.matmul(g.weight(wv), h));
  g.output('ff', g.glu(g.matmul(g.weight(wg), h), g.matmul(g.weight(wu), h)));
  return { graph: g.build(), w1 };
}

describe('split layout', () => {
  it('places a header, quants back to back, then the scales, as the GGUF bytes', () => {
    // Two Q4_0 blocks: scale bytes 0-1, quants 2-17 each.
    const raw = Uint8Array.from({ length: 36 }, (_, i) => i + 1);
    const s = splitBlocks(raw, 18, 2);
    expect(s.length).toBe(splitBytes(18, 2));
    expect(s.length).toBe(64);
    // Word 0: the scales' word index (byte 48).
    expect([...s.subarray(0, 16)]).toEqual([12, ...new Array(15).fill(0)]);
    expect([...s.subarray(16, 32)]).toEqual([...raw.subarray(2, 18)]);
    expect([...s.subarray(32, 48)]).toEqual([...raw.subarray(20, 36)]);
    expect([...s.subarray(48, 52)]).toEqual([1, 2, 19, 20]);
    expect([...s.subarray(52)]).toEqual(new Array(12).fill(0));
    expect(joinBlocks(s, 18, 2)).toEqual(raw);
    const q8 = Uint8Array.from({ length: 3 * 34 }, (_, i) => (i * 7) & 255);
    expect(joinBlocks(splitBlocks(q8, 34, 3), 34, 3)).toEqual(q8);
  });

  // 70 rows (not a multiple of a workgroup's rows), K = 288 (9 blocks: not a multiple of any part count per iteration;
  // x4 grids: 384, 12 blocks).
  const rows = 70;
  for (const dtype of ['q4_0', 'q8_0'] as const) {
    it(`${dtype}: every split grid against float64 (f32 activations) or the JS backend (int8), plain and fused`, async () => {
      const js = new JsBackend({ matmulActivations: 'ggml' });
      for (const matvec of grids) {
        const cols = matvec.x4 ? 384 : 288;
        const gj = await graphs(js, dtype, rows, cols);
        // Q4_0 has 4 quant words a block: wpp 8 takes the 32-element unit path (f32 activations, no split).
        const sliced = dtype === 'q8_0' || (matvec.wpp ?? 1) <= 4;
        const int8 = matvec.int8 === true && sliced;
        const gpu = await WebGpuBackend.create({ gpu: nodeGpu(), matvec });
        const plain = await WebGpuBackend.create({ gpu: nodeGpu(), matvec: { ...matvec, split: false, x4: false } });
        const [gg, gp] = await Promise.all([graphs(gpu, dtype, rows, cols), graphs(plain, dtype, rows, cols)]);
        const what = `${dtype} ${JSON.stringify(matvec)}`;
        // The GGUF bytes come back, whatever the matvec reads.
        const bytes = formats[dtype].quantize(values(rows * cols, 1), { rowLength: cols });
        expect((await gpu.download(gg.w1)).data, what).toEqual(bytes);
        const ids0 = Int32Array.of(5);
        const labels = (await gpu.profileStep(gg.graph, { x: values(cols, 1), ids: ids0, n: 1 })).map((k) => k.label);
        const tag = `${int8 ? ' int8' : ''}${matvec.split ? ' split' : ''}${int8 && matvec.x4 ? ' x4' : ''}`;
        if (sliced) {
          expect(labels, what).toContain(`matvec ${dtype}${tag}`);
          expect(labels, what).toContain(`matvec ${dtype}+${dtype}+${dtype}${int8 ? tag : ` norm${tag}`}`);
          expect(labels, what).toContain(`matvec ${dtype}+${dtype} glu${int8 ? tag : ` norm${tag}`}`);
        } else {
          expect(
            labels.some((l) => l.includes('split')),
            what,
          ).toBe(false);
        }
        const deq = formats[dtype].dequantize(bytes, rows * cols);
        // 6 tokens: the prompt path (tiled matmuls) reads the split layout too.
        for (const n of [1, 3, 6]) {
          const x = values(n * cols, 10 + n, 2);
          const ids = Int32Array.from({ length: n }, (_, i) => (i * 29 + 3) % rows);
          const got = await gpu.run(gg.graph, { x, ids, n });
          // get_rows: the dequantized rows themselves.
          for (let t = 0; t < n; t++)
            for (let i = 0; i < cols; i++)
              expect(got.e[t * cols + i], `${what} get_rows ${ids[t]}`).toBe(deq[ids[t] * cols + i]);
          if (int8 && n <= 4) {
            const want = await js.run(gj.graph, { x, ids, n });
            for (const name of ['y', 'q', 'k', 'v', 'ff']) {
              const mag = Math.max(...Array.from(want[name], Math.abs));
              let err = 0;
              for (let i = 0; i < want[name].length; i++) err = Math.max(err, Math.abs(got[name][i] - want[name][i]));
              // As int8.test.ts: exact integer sums, only the f32 rounding of the block sums differs.
              expect(err / mag, `${what} ${name} n=${n}`).toBeLessThan(1e-6);
            }
          } else {
            for (let t = 0; t < n; t++) {
              for (let o = 0; o < rows; o++) {
                let s = 0;
                let mag = 0;
                for (let i = 0; i < cols; i++) {
                  s += deq[o * cols + i] * x[t * cols + i];
                  mag += Math.abs(deq[o * cols + i] * x[t * cols + i]);
                }
                // As backend.test.ts: f32 sums in another order, within a few ulps of the magnitude summed (the
                // tiled path sums in order over K: 5e-7 there).
                expect(Math.abs(got.y[t * rows + o] - s) / mag, `${what} token ${t} row ${o}`).toBeLessThan(
                  n > 4 ? 5e-7 : 1.5e-7,
                );
              }
            }
          }
          // The fused units read the same bits as the GGUF-layout kernel of the same grid, in the same order.
          const ref = await plain.run(gp.graph, { x, ids, n });
          for (const name of ['y', 'e', 'q', 'k', 'v', 'ff'])
            expect(got[name], `${what} ${name} n=${n}`).toEqual(ref[name]);
        }
        gpu.dispose();
        plain.dispose();
      }
      js.dispose();
    }, 600_000);
  }

  it('splits a weight over several bindings, each chunk in its own split layout', async () => {
    const [rows, cols] = [70, 288];
    const bytes = formats.q4_0.quantize(values(rows * cols, 3), { rowLength: cols });
    const deq = formats.q4_0.dequantize(bytes, rows * cols);
    // 20 rows of 162 bytes a binding: four chunks.
    const b = await WebGpuBackend.create({
      gpu: nodeGpu(),
      maxBindingBytes: 20 * 162 + 64,
      matvec: { wpp: 4, int8: true, split: true, x4: false },
    });
    const plain = await WebGpuBackend.create({
      gpu: nodeGpu(),
      maxBindingBytes: 20 * 162 + 64,
      matvec: { wpp: 4, int8: true },
    });
    const build = async (be: WebGpuBackend) => {
      const w = await be.upload(hostTensor('q4_0', [rows, cols], bytes), { name: 'w' });
      expect((await be.download(w)).data).toEqual(bytes);
      const g = new GraphBuilder();
      const n = g.param('n', { max: 2 });
      g.output('e', g.getRows(g.weight(w), g.input('ids', 'i32', [n])));
      g.output('y', g.matmul(g.weight(w), g.input('x', 'f32', [n, cols])));
      return g.build();
    };
    const [graph, ref] = await Promise.all([build(b), build(plain)]);
    const ids = Int32Array.of(69, 21);
    const x = values(2 * cols, 4);
    const got = await b.run(graph, { x, ids, n: 2 });
    const labels = (await b.profileStep(graph, { x, ids, n: 2 })).map((k) => k.label);
    expect(labels.filter((l) => l === 'matvec q4_0 int8 split').length).toBe(4);
    for (let t = 0; t < 2; t++) for (let i = 0; i < cols; i++) expect(got.e[t * cols + i]).toBe(deq[ids[t] * cols + i]);
    // The same bits as the GGUF-layout int8 kernel, chunk by chunk (which int8.test.ts checks against ggml's sums).
    const want = await plain.run(ref, { x, ids, n: 2 });
    expect(got.y).toEqual(want.y);
    plain.dispose();
    b.dispose();
  }, 120_000);

  for (const name of ['Q4_0', 'Q8_0']) {
    it(`stories260K ${name}: the same greedy ids as the GGUF layout, prompt and decode`, async () => {
      const run = async (matvec: Grid) => {
        const backend = await WebGpuBackend.create({ gpu: nodeGpu(), matvec });
        const file = new URL(`../../../fixtures/models/stories260K-${name}.gguf`, import.meta.url).pathname;
        const model = await loadModel(file, { backend, contextSize: 64 });
        const cache = await allocKvCache(backend, model.hparams, 64, 'f32');
        try {
          const graph = buildModelGraph(model.hparams, model.weights, cache, { maxTokens: 8, logits: true });
          // An 8-token prompt (the tiled path), then decode steps (the matvecs).
          const prompt = Int32Array.of(1, 400, 17, 89, 3, 250, 61, 12);
          let id = await backend.runGreedy(graph, { tokens: prompt, nTokens: 8, pos: 0 });
          const ids = [id];
          for (let pos = 8; pos < 40; pos++) {
            id = await backend.runGreedy(graph, { tokens: Int32Array.of(id), nTokens: 1, pos });
            ids.push(id);
          }
          const labels = (await backend.profileStep(graph, { tokens: Int32Array.of(1), nTokens: 1, pos: 0 })).map(
            (k) => k.label,
          );
          return { ids, labels };
        } finally {
          for (const t of [...cache.k, ...cache.v]) backend.free(t);
          await model.dispose();
        }
      };
      const split = await run({ wpp: 4, int8: true, split: true });
      const plain = await run({ wpp: 4, int8: true });
      expect(split.labels.some((l) => l.endsWith('int8 split'))).toBe(true);
      expect(plain.labels.some((l) => l.includes('split'))).toBe(false);
      expect(split.ids).toEqual(plain.ids);
    }, 300_000);
  }
});
