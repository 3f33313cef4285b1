import { formats } from '@nibble/formats';
import { BackendError, createBackend, GraphBuilder, GraphError, hostTensor, registeredBackends } from '@nibble/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsBackend, JsTensor, js } from './index.js';

const fcParams = { seed: Number(process.env.FC_SEED ?? 20261125), numRuns: 15 };

function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 4294967296) * 2 - 1;
  });
}

describe('JsBackend', () => {
  it('registers as js and keeps uploaded bytes where they are', async () => {
    expect(registeredBackends()).toContain('js');
    const backend = await createBackend('js');
    const bytes = formats.q4_0.quantize(values(64, 1));
    const host = hostTensor('q4_0', [2, 32], bytes);
    const t = await backend.upload(host, { name: 'w' });
    expect(t).toBeInstanceOf(JsTensor);
    expect((t as JsTensor).bytes.buffer).toBe(bytes.buffer); // a view, not a copy
    const back = await backend.download(t);
    expect(back.data).toEqual(bytes);
    backend.dispose();
    await expect(backend.upload(host)).rejects.toBeInstanceOf(BackendError);
  });

  it('rejects tensors of another backend instance and unclaimed input names', async () => {
    const a = new JsBackend();
    const b = new JsBackend();
    const w = await a.upload(hostTensor('f32', [2, 2], new Float32Array(4)), { name: 'w' });
    const g = new GraphBuilder();
    g.output('y', g.matmul(g.weight(w), g.input('x', 'f32', [1, 2])));
    const graph = g.build();
    await expect(b.run(graph, { x: new Float32Array(2) })).rejects.toThrow(/not made by this backend/);
    await expect(a.run(graph, { x: new Float32Array(2), extra: 1 })).rejects.toBeInstanceOf(GraphError);
  });

  it('names the node when get_rows ids or cache positions are out of range', async () => {
    const backend = new JsBackend();
    const table = await backend.upload(hostTensor('f16', [3, 4], new Uint8Array(24)), { name: 'emb' });
    const g = new GraphBuilder();
    const n = g.param('n', { max: 2 });
    g.output('y', g.getRows(g.weight(table), g.input('ids', 'i32', [n]), { name: 'embd' }));
    const err = await backend.run(g.build(), { ids: Int32Array.of(3), n: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(GraphError);
    expect(err.node).toBe('embd');
    const cache = await backend.alloc('q8_0', [2, 32], { name: 'kc' });
    const c = new GraphBuilder();
    const pos = c.input('pos', 'i32', [1]);
    c.copy(c.input('src', 'f32', [1, 32]), c.state(cache), pos, { name: 'k_store' });
    const e2 = await backend.run(c.build(), { src: new Float32Array(32), pos: Int32Array.of(2) }).catch((e) => e);
    expect(e2.node).toBe('k_store');
  });

  it('a whole block in one graph equals the same ops run one graph each (buffer sharing is safe)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('q4_0', 'q8_0', 'f16', 'q4_K'),
        fc.integer({ min: 1, max: 3 }),
        fc.integer(),
        fc.constantFrom<'f32' | 'ggml'>('f32', 'ggml'),
        async (dtype, n, seed, mode) => {
          const dim = dtype === 'q4_K' ? 256 : 64;
          const hidden = 2 * dim;
          const backend = new JsBackend({ matmulActivations: mode });
          const up = async (name: string, rows: number, cols: number) =>
            backend.upload(
              hostTensor(
                dtype,
                [rows, cols],
                formats[dtype].quantize(values(rows * cols, seed ^ name.length), { rowLength: cols }),
              ),
              { name },
            );
          const gate = await up('gate', hidden, dim);
          const upw = await up('up.w', hidden, dim);
          const down = await up('down.weight', dim, hidden);
          const norm = await backend.upload(hostTensor('f32', [dim], values(dim, seed + 9)), { name: 'norm' });
          const xs = values(n * dim, seed + 1);

          const g = new GraphBuilder();
          const nt = g.param('n', { min: 1, max: 3 });
          const x = g.input('x', 'f32', [nt, dim]);
          const f = g.mul(g.rmsNorm(x, 1e-5), g.weight(norm));
          const act = g.mul(g.silu(g.matmul(g.weight(gate), f)), g.matmul(g.weight(upw), f));
          g.output('out', g.add(x, g.matmul(g.weight(down), act)));
          const { out } = await backend.run(g.build(), { x: xs, n });

          // The same, one node per graph, copying every result out.
          type Ref = ReturnType<GraphBuilder['input']>;
          const step = async (build: (b: GraphBuilder, ins: Ref[]) => Ref, ...ins: Float32Array[]) => {
            const b = new GraphBuilder();
            const refs = ins.map((a, i) => b.input(`i${i}`, 'f32', [n, a.length / n])); // [n, cols]
            b.output('y', build(b, refs));
            const r = await backend.run(b.build(), Object.fromEntries(ins.map((a, i) => [`i${i}`, a])));
            return r.y.slice();
          };
          const nrm = await step((b, [a]) => b.mul(b.rmsNorm(a, 1e-5), b.weight(norm)), xs);
          const gt = await step((b, [a]) => b.silu(b.matmul(b.weight(gate), a)), nrm);
          const u = await step((b, [a]) => b.matmul(b.weight(upw), a), nrm);
          const m = await step((b, [a, c]) => b.mul(a, c), gt, u);
          const d = await step((b, [a]) => b.matmul(b.weight(down), a), m);
          const want = await step((b, [a, c]) => b.add(a, c), xs, d);
          expect(Array.from(out)).toEqual(Array.from(want));
        },
      ),
      fcParams,
    );
  });

  it('creates through the factory with options', async () => {
    const b = await js.create({ matmulActivations: 'ggml' });
    expect(b.capabilities.matmulActivations).toEqual(['f32', 'ggml']);
    await expect(js.create({ matmulActivations: 'int4' as 'f32' })).rejects.toBeInstanceOf(BackendError);
  });
});
