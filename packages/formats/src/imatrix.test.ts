// Properties of the importance-weighted (imatrix) paths of ggml_quantize_chunk (spec §3.9, §3.21). Their bytes are
// checked against ggml's in golden.test.ts (golden/ggml-imatrix); these check what the bytes cannot show.
import { ShapeError, ValueError } from '@nibble/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Codec } from './codec.js';
import { iq4_nl, iq4_xs } from './iq4.js';
import { mxfp4 } from './mxfp4.js';
import { q2_K } from './q2_k.js';
import { q3_K } from './q3_k.js';
import { q4_0 } from './q4_0.js';
import { q4_1 } from './q4_1.js';
import { q4_K } from './q4_k.js';
import { q5_0 } from './q5_0.js';
import { q5_1 } from './q5_1.js';
import { q5_K } from './q5_k.js';
import { q6_K } from './q6_k.js';
import { q8_0 } from './q8_0.js';
import { q8_K } from './q8_k.js';
import { tq1_0, tq2_0 } from './ternary.js';
import { firstDiff, readBytes, readF32 } from './test/fixtures.js';

const seed = Number(process.env.FC_SEED ?? 20261125);
const runs = (n: number) => ({ seed, numRuns: n });

const weighted: Codec[] = [q4_0, q4_1, q5_0, q5_1, q2_K, q3_K, q4_K, q5_K, q6_K, iq4_nl, iq4_xs];
const ignoring: Codec[] = [q8_0, q8_K, mxfp4, tq1_0, tq2_0];

/** The real stories260K token embedding (128 rows of 256) and the log-normal importance of the ggml-imatrix set. */
const emb = readF32('golden/ggml-real/stories260K-token_embd.f32');
const rowLength = 256;
const importance = readF32('golden/ggml-imatrix/importance-lognormal256.f32');

function weightedError(x: Float32Array, y: Float32Array, w: Float32Array): number {
  let e = 0;
  for (let i = 0; i < x.length; i++) e += w[i % w.length] * (x[i] - y[i]) ** 2;
  return e;
}

const rowsOf = (bs: number) =>
  fc
    .integer({ min: 1, max: 2 })
    .chain((k) =>
      fc
        .array(fc.float({ min: -8, max: 8, noNaN: true }), { minLength: 2 * bs * k, maxLength: 2 * bs * k })
        .map((a) => ({ x: Float32Array.from(a), rowLength: bs * k })),
    );
const positive = fc.float({ min: Math.fround(1e-3), max: 1000, noNaN: true });

describe.each(weighted)('$name with importance', (codec) => {
  const bs = codec.info.blockSize;

  it('lowers the importance-weighted squared error on the real stories260K weights', () => {
    const plain = codec.dequantize(codec.quantize(emb, { rowLength }));
    const imat = codec.dequantize(codec.quantize(emb, { rowLength, importance }));
    expect(weightedError(emb, imat, importance)).toBeLessThan(weightedError(emb, plain, importance));
  });

  it('is invariant to scaling the importance by a power of two (only ratios matter)', () => {
    fc.assert(
      fc.property(rowsOf(bs), fc.integer({ min: -8, max: 8 }), (r, k) => {
        const w = new Float32Array(r.rowLength).map((_, j) => 0.25 + ((j * 7919) % 101) / 10);
        const w2 = w.map((v) => v * 2 ** k);
        expect(codec.quantize(r.x, { rowLength: r.rowLength, importance: w2 })).toEqual(
          codec.quantize(r.x, { rowLength: r.rowLength, importance: w }),
        );
      }),
      runs(20),
    );
  });

  it('all-ones importance still takes the imatrix path, which differs from the plain path', () => {
    const ones = new Float32Array(rowLength).fill(1);
    expect(codec.quantize(emb, { rowLength, importance: ones })).not.toEqual(codec.quantize(emb, { rowLength }));
  });

  it('multi-row input equals row-by-row results, and the output decodes to finite values', () => {
    fc.assert(
      fc.property(rowsOf(bs), fc.array(positive, { minLength: 2 * bs, maxLength: 2 * bs }), (r, wa) => {
        const w = Float32Array.from(wa.slice(0, r.rowLength));
        const all = codec.quantize(r.x, { rowLength: r.rowLength, importance: w });
        const half = all.length / 2;
        expect(all.subarray(0, half)).toEqual(codec.quantize(r.x.subarray(0, r.rowLength), { importance: w }));
        expect(all.subarray(half)).toEqual(codec.quantize(r.x.subarray(r.rowLength), { importance: w }));
        expect(codec.dequantize(all).every(Number.isFinite)).toBe(true);
      }),
      runs(20),
    );
  });

  it('zero importance on every column gives finite output, not NaN', () => {
    const x = emb.subarray(0, 2 * rowLength);
    const y = codec.dequantize(codec.quantize(x, { rowLength, importance: new Float32Array(rowLength) }));
    expect(y.every(Number.isFinite)).toBe(true);
  });

  it('rejects a NaN, infinite or negative weight with a ValueError naming its column', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, -1]) {
      const w = importance.slice();
      w[37] = bad;
      try {
        codec.quantize(emb, { rowLength, importance: w });
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(ValueError);
        expect((e as ValueError).column).toBe(37);
      }
    }
  });

  it('rejects an importance vector that is not one weight per column', () => {
    expect(() => codec.quantize(emb, { rowLength, importance: new Float32Array(rowLength - 1) })).toThrowError(
      ShapeError,
    );
  });
});

describe.each(ignoring)('$name ignores importance, as ggml does', (codec) => {
  it('gives the same bytes with and without it', () => {
    expect(codec.quantize(emb, { rowLength, importance })).toEqual(codec.quantize(emb, { rowLength }));
  });
});

describe("ggml's bytes on adversarial rows (fixtures/quantize/kquant)", () => {
  // ggml_quantize_chunk on sparse, tiny, huge-among-tiny and constant rows of 256, alone and with importance vectors
  // that are sparse (mostly zero), tiny or log-normal. Row 96 is one where sparse weights push a rounding of
  // make_qkx3_quants (Q4_K's imatrix search) beyond nearest_int's range, where ggml's bit trick wraps; the last two hold float32 subnormals.
  const rows = readF32('quantize/kquant/rows.f32');
  const imps = readF32('quantize/kquant/importance.f32');
  const n = rows.length / 256;
  describe.each([...weighted, q8_0, mxfp4, tq1_0, tq2_0])('$name', (codec) => {
    const plain = readBytes(`quantize/kquant/${codec.name}.q`);
    const size = plain.length / n;
    it(`${n} rows without importance`, () => {
      expect(firstDiff(codec.quantize(rows, { rowLength: 256 }), plain)).toBe(-1);
    });
    it(`${n} rows, each with its own importance`, () => {
      const weighted = readBytes(`quantize/kquant/${codec.name}.imatrix.q`);
      for (let r = 0; r < n; r++) {
        const got = codec.quantize(rows.subarray(256 * r, 256 * r + 256), {
          importance: imps.subarray(256 * r, 256 * r + 256),
        });
        expect(firstDiff(got, weighted.subarray(size * r, size * r + size)), `row ${r}`).toBe(-1);
      }
    });
  });
});
