/**
 * Paths the conformance suite does not reach, against the JS backend (the reference of every op's semantics): a
 * Qwen/Gemma-style block with matmul bias, per-head rms_norm through reshape, neox rope with frequency factors and
 * YaRN, attention with a sliding window and soft-capping over a q8_0 cache, layer_norm with weight and bias, a fused
 * [gate | up] GLU with GELU, softcap, softmax; run for several steps so the caches carry state between runs.
 */
import { JsBackend } from '@nibble/backend-js';
import { formats } from '@nibble/formats';
import { type Backend, GraphBuilder, hostTensor } from '@nibble/tensor';
import { expect, it } from 'vitest';
import { WebGpuBackend } from './backend.js';
import { nodeGpu } from './node.js';

function values(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return ((s / 4294967296) * 2 - 1) * scale;
  });
}

async function block(b: Backend) {
  const dim = 64;
  const heads = 4;
  const hd = 16;
  const kvHeads = 2;
  const kvDim = kvHeads * hd;
  const w = (name: string, dtype: 'q8_0' | 'q4_K' | 'f16', r: number, c: number, seed: number) =>
    b.upload(
      hostTensor(dtype, [r, c], formats[dtype].quantize(values(r * c, seed, 2 / Math.sqrt(c)), { rowLength: c })),
      {
        name,
      },
    );
  const f32 = (name: string, n: number, seed: number, base = 0) =>
    b.upload(
      hostTensor(
        'f32',
        [n],
        values(n, seed, 0.5).map((v) => base + v),
      ),
      { name },
    );
  const wq = await w('wq', 'q8_0', dim, dim, 1);
  const wk = await w('wk', 'q8_0', kvDim, dim, 2);
  const wv = await w('wv', 'f16', kvDim, dim, 3);
  const wo = await w('wo', 'q8_0', dim, dim, 4);
  const wgu = await w('wgu', 'q4_K', 2 * 256, dim === 64 ? 256 : dim, 5);
  const wd = await w('wd', 'q8_0', dim, 256, 6);
  const bq = await f32('bq', dim, 7);
  const qn = await f32('q_norm', hd, 8, 1);
  const ff = await f32('rope_freqs', hd / 2, 9, 1.5);
  const ln = await f32('ln_w', dim, 10, 1);
  const lb = await f32('ln_b', dim, 11);
  const up256 = await w('up256', 'q8_0', 256, dim, 12);
  const kc = await b.alloc('q8_0', [16, kvDim], { name: 'kc' });
  const vc = await b.alloc('f16', [16, kvDim], { name: 'vc' });

  const g = new GraphBuilder();
  const n = g.param('n', { min: 1, max: 6 });
  const pos = g.param('pos', { max: 15 });
  const x = g.input('x', 'f32', [n, dim]);
  const h = g.layerNorm(x, 1e-5, { weight: g.weight(ln), bias: g.weight(lb) });
  const q0 = g.matmul(g.weight(wq), h, { bias: g.weight(bq) });
  const qh = g.rmsNorm(g.reshape(q0, [n, heads, hd]), 1e-6, { weight: g.weight(qn) });
  const rope = {
    mode: 'neox' as const,
    freqBase: 1e6,
    freqFactors: g.weight(ff),
    extFactor: 1,
    origCtx: 8,
    freqScale: 0.5,
  };
  const q = g.rope(g.reshape(qh, [n, dim]), pos, { ...rope, nHeads: heads });
  const k = g.rope(g.matmul(g.weight(wk), h), pos, { ...rope, nHeads: kvHeads });
  g.copy(k, g.state(kc), pos);
  g.copy(g.matmul(g.weight(wv), h), g.state(vc), pos);
  const att = g.attention(q, g.state(kc), g.state(vc), pos, {
    nHeads: heads,
    nKvHeads: kvHeads,
    window: 3,
    softcap: 5,
  });
  const x2 = g.matmul(g.weight(wo), att, { residual: x });
  const gu = g.glu(g.matmul(g.weight(wgu), g.matmul(g.weight(up256), x2)), undefined, { activation: 'gelu' });
  const y = g.matmul(g.weight(wd), gu, { residual: x2 });
  g.output('att', att);
  g.output('x2', x2);
  g.output('y', g.softcap(y, 3));
  g.output('p', g.softmax(y));
  return g.build();
}

it('matches the JS backend on a block of the less common ops over several steps', async () => {
  const js = new JsBackend();
  const gpu = await WebGpuBackend.create({ gpu: nodeGpu() });
  const gj = await block(js);
  const gg = await block(gpu);
  let p = 0;
  for (const n of [3, 1, 1, 6, 1]) {
    const x = values(n * 64, 100 + p);
    const a = await js.run(gj, { x, n, pos: p });
    const b = await gpu.run(gg, { x, n, pos: p });
    for (const name of ['att', 'x2', 'y', 'p']) {
      const want = a[name];
      const got = b[name];
      expect(got.length).toBe(want.length);
      for (let i = 0; i < want.length; i++) {
        expect(Math.abs(got[i] - want[i]), `${name}[${i}] at pos ${p}, n ${n}`).toBeLessThan(
          2e-4 * (1 + Math.abs(want[i])),
        );
      }
    }
    p += n;
  }
  gpu.dispose();
});
