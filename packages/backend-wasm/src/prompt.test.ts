/**
 * The prompt path of the 8-row-group matmul (4 tokens or more: weights expanded once per group, tokens in tiles of
 * 4, 2 and 1) against the decode path (one token per call): every output float must be the same bit for bit, for
 * token counts that leave each kind of tile remainder, row counts that leave a partial group, and 1 and 2 threads.
 */
import { formats } from '@nibble/formats';
import { type Backend, createBackend, type DTypeName, GraphBuilder, hostTensor } from '@nibble/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import './node.js';

function values(n: number, seed: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return a;
}

const n = 96; // three 32-blocks
const outF = 44; // five full 8-row groups and a partial one
const counts = [4, 5, 6, 7, 8, 33];

for (const threads of [1, 2]) {
  describe(`prompt matmul on wasm, ${threads} thread(s)`, () => {
    let b: Backend;
    beforeAll(async () => {
      b = await createBackend('wasm', { threads, matmulActivations: 'ggml' });
    });
    afterAll(() => b?.dispose());

    for (const fmt of ['q4_0', 'q4_1', 'q8_0'] as DTypeName[]) {
      it(`${fmt}, ${outF}x${n}: ${counts.join(', ')} tokens give each token's one-token floats bit for bit`, async () => {
        const bytes = formats[fmt].quantize(values(outF * n, 11, 0.5), { rowLength: n });
        const w = await b.upload(hostTensor(fmt, [outF, n], bytes), { name: 'w' });
        const x = values(Math.max(...counts) * n, 12, 2);
        // Some rows far larger than the others: the activation scales differ from token to token.
        for (let i = 0; i < 4 * n; i += 3) x[i] *= 9;
        const matmul = async (t: number, xs: Float32Array) => {
          const g = new GraphBuilder();
          g.output('y', g.matmul(g.weight(w), g.input('x', 'f32', [t, n])));
          const { y } = await b.run(g.build(), { x: xs });
          return new Uint32Array((y as Float32Array).slice().buffer);
        };
        const single: Uint32Array[] = [];
        for (let t = 0; t < Math.max(...counts); t++) single.push(await matmul(1, x.subarray(t * n, (t + 1) * n)));
        for (const nTok of counts) {
          const y = await matmul(nTok, x.subarray(0, nTok * n));
          expect(y.length).toBe(nTok * outF);
          for (let t = 0; t < nTok; t++)
            expect(y.subarray(t * outF, (t + 1) * outF), `${nTok} tokens, token ${t}`).toEqual(single[t]);
        }
        b.free(w);
      });
    }
  });
}
