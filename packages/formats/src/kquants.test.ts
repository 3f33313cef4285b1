// Properties of the second-issue formats (K-quants, Q8_K, IQ4_NL/XS, TQ1_0/TQ2_0, MXFP4): error bounds, the
// formats that are idempotent, multi-row consistency, typed errors, and ggml's test-quantize-fns thresholds.
import { ValueError } from '@nibble/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Codec } from './codec.js';
import { iq4_nl, iq4_nlRef, iq4_xs } from './iq4.js';
import { mxfp4 } from './mxfp4.js';
import { q2_K } from './q2_k.js';
import { q3_K } from './q3_k.js';
import { q4_K } from './q4_k.js';
import { q5_K } from './q5_k.js';
import { q6_K } from './q6_k.js';
import { q8_K } from './q8_k.js';
import { tq1_0, tq2_0 } from './ternary.js';
import { readF32 } from './test/fixtures.js';

const seed = Number(process.env.FC_SEED ?? 20261125);
const runs = (n: number) => ({ seed, numRuns: n });

const value = fc.oneof(
  { weight: 6, arbitrary: fc.float({ min: -60000, max: 60000, noNaN: true, noDefaultInfinity: true }) },
  { weight: 3, arbitrary: fc.float({ min: -2, max: 2, noNaN: true, noDefaultInfinity: true }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -0, 1e-30, 0.5, -3.25) },
);
const blocks = (blockSize: number, maxBlocks: number) =>
  fc
    .integer({ min: 1, max: maxBlocks })
    .chain((n) =>
      fc.array(value, { minLength: n * blockSize, maxLength: n * blockSize }).map((a) => Float32Array.from(a)),
    );

/**
 * The documented bound of each format as a function of its block (the `errorBound` text), for blocks whose
 * largest magnitude is 0 or at least 0.01 (smaller ones put the fp16 scales in the subnormal range, where
 * the bound is absolute instead: see `tinyBlocks` below).
 */
const spec: [Codec, number, (amax: number, range: number) => number][] = [
  [q2_K, 256, (_a, r) => r / 2],
  [q3_K, 256, (a) => a / 3],
  [q4_K, 256, (_a, r) => r / 15],
  [q5_K, 256, (_a, r) => r / 24],
  [q6_K, 256, (a) => a / 32],
  [q8_K, 256, (a) => a / 250],
  [iq4_nl, 32, (a) => a / 8],
  [iq4_xs, 256, (a) => a / 6],
  [tq1_0, 256, (a) => (a / 2) * (1 + 2 ** -10)],
  [tq2_0, 256, (a) => (a / 2) * (1 + 2 ** -10)],
  [mxfp4, 32, (a) => (a / 4) * (1 + 2 ** -20)],
];

describe.each(spec.map(([codec, bs, bound]) => ({ name: codec.name, codec, bs, bound })))(
  '$name properties',
  ({ codec, bs, bound }) => {
    it('dequantize(quantize(x)) stays within the documented bound', () => {
      fc.assert(
        fc.property(blocks(bs, bs === 32 ? 4 : 2), (x) => {
          const y = codec.dequantize(codec.quantize(x));
          for (let b = 0; b < x.length; b += bs) {
            let amax = 0;
            let min = Number.POSITIVE_INFINITY;
            let max = Number.NEGATIVE_INFINITY;
            for (let j = b; j < b + bs; j++) {
              amax = Math.max(amax, Math.abs(x[j]));
              min = Math.min(min, x[j]);
              max = Math.max(max, x[j]);
            }
            if (amax !== 0 && amax < 0.01) continue;
            const limit = bound(amax, max - min);
            for (let j = b; j < b + bs; j++) {
              if (!(Math.abs(y[j] - x[j]) <= limit)) {
                throw new Error(`element ${j}: x=${x[j]} y=${y[j]} err=${Math.abs(y[j] - x[j])} bound=${limit}`);
              }
            }
          }
        }),
        runs(bs === 32 ? 200 : 60),
      );
    });

    it('tiny blocks (scales in the fp16 subnormal range) stay within the bound plus 2^-12 absolute', () => {
      const tiny = fc.float({ min: Math.fround(-0.01), max: Math.fround(0.01), noNaN: true });
      fc.assert(
        fc.property(fc.array(tiny, { minLength: bs, maxLength: bs }), (a) => {
          const x = Float32Array.from(a);
          const y = codec.dequantize(codec.quantize(x));
          const amax = Math.max(...x.map(Math.abs));
          const limit = bound(amax, Math.max(...x) - Math.min(...x)) + 2 ** -12;
          for (let j = 0; j < bs; j++) expect(Math.abs(y[j] - x[j])).toBeLessThanOrEqual(limit);
        }),
        runs(30),
      );
    });

    it('multi-row input equals row-by-row results', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 2 }), blocks(bs, 4), (rows, k, pool) => {
          const rowLength = bs * k;
          const x = new Float32Array(rows * rowLength).map((_, i) => pool[i % pool.length]);
          const all = codec.quantize(x, { rowLength });
          const rowBytes = all.length / rows;
          for (let r = 0; r < rows; r++) {
            expect(all.subarray(r * rowBytes, (r + 1) * rowBytes)).toEqual(
              codec.quantize(x.subarray(r * rowLength, (r + 1) * rowLength)),
            );
          }
        }),
        runs(25),
      );
    });

    it('names the row and column of a non-finite value', () => {
      const x = new Float32Array(3 * 256);
      x[2 * 256 + 37] = Number.NaN;
      try {
        codec.quantize(x, { rowLength: 256 });
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(ValueError);
        expect([(e as ValueError).row, (e as ValueError).column]).toEqual([2, 37]);
      }
    });
  },
);

describe('idempotence: quantize(dequantize(q)) == q', () => {
  // Holds for the formats whose dequantized block re-derives the same scale: TQ1_0/TQ2_0 (d = amax is a stored
  // value, so the values are exactly ±d and 0) and MXFP4 (the largest element decodes to 8·d or 12·d, which gives
  // the same exponent). It does not hold for the K-quants and IQ4 (their scale searches re-fit on the dequantized
  // values and can land on another scale/level split) nor Q8_K (d = 1/iscale is rounded to binary32).
  for (const codec of [tq1_0, tq2_0, mxfp4]) {
    it(codec.name, () => {
      fc.assert(
        fc.property(blocks(codec.info.blockSize, 2), (x) => {
          const q = codec.quantize(x);
          expect(codec.quantize(codec.dequantize(q))).toEqual(q);
        }),
        runs(200),
      );
    });
  }
  it('and does not hold for Q4_K, Q6_K, IQ4_XS and Q8_K (a counterexample each)', () => {
    const x = readF32('golden/ggml-kat/kat_input.f32');
    for (const codec of [q4_K, q6_K, iq4_xs, q8_K]) {
      const q = codec.quantize(x);
      expect(codec.quantize(codec.dequantize(q)), codec.name).not.toEqual(q);
    }
  });
});

describe('IQ4_NL paths', () => {
  it('the default (ggml_quantize_chunk, ntry = 7) and the ref path (ntry = -1) differ, same layout', () => {
    const x = readF32('golden/ggml-kat/generate_data_0_4096_glibc.f32');
    const chunk = iq4_nl.quantize(x);
    const ref = iq4_nlRef.quantize(x);
    expect(chunk.length).toBe(ref.length);
    expect(chunk).not.toEqual(ref);
  });
  it("the ref path keeps ggml's artefact: an all-zero block repeats the previous block's quants (d = 0)", () => {
    // ggml's own KAT input has such a block (block 5 of kat_input), and golden.test.ts matches its bytes.
    const x = new Float32Array(64);
    for (let j = 0; j < 32; j++) x[j] = j - 15.5;
    const q = iq4_nlRef.quantize(x);
    expect(Array.from(q.subarray(18, 20))).toEqual([0, 0]);
    expect(q.subarray(20, 36)).toEqual(q.subarray(2, 18));
    expect(
      iq4_nlRef
        .dequantize(q)
        .subarray(32)
        .every((v) => v === 0),
    ).toBe(true); // ±0, as in ggml
  });
  it('an all-zero block stores d = 0; the chunk path writes index 8 (value 1·0) for its quants', () => {
    const q = iq4_nl.quantize(new Float32Array(32));
    expect(Array.from(q)).toEqual([0, 0, ...new Array(16).fill(0x88)]);
  });
});

describe("ggml's test-quantize-fns thresholds (spec §4.1) on glibc generate_data", () => {
  // ggml's array_rmse is sqrt(sum of squares)/n; threshold and the value ggml printed, per type.
  const expected: [Codec, number, number][] = [
    [q2_K, 0.0075, 0.004672],
    [q3_K, 0.004, 0.00251],
    [q4_K, 0.002, 0.000982],
    [q5_K, 0.002, 0.000531],
    [q6_K, 0.002, 0.000261],
    [iq4_nl, 0.002, 0.001296],
    [iq4_xs, 0.002, 0.001256],
    [tq1_0, 0.01, 0.008681],
    [tq2_0, 0.01, 0.008681],
    [mxfp4, 0.003, 0.001881],
  ];
  const x1 = readF32('golden/ggml-kat/generate_data_0_4096_glibc.f32');
  for (const [codec, threshold, printed] of expected) {
    it(`${codec.name}: absolute quantization error below ${threshold} and equal to ggml's printed value`, () => {
      // test-quantize-fns quantizes with the CPU from_float, which for IQ4_NL is the ref path.
      const c = codec === iq4_nl ? iq4_nlRef : codec;
      const y = c.dequantize(c.quantize(x1));
      let sum = 0;
      for (let i = 0; i < x1.length; i++) sum += (x1[i] - y[i]) ** 2;
      const err = Math.fround(Math.sqrt(sum)) / x1.length;
      expect(err).toBeLessThan(threshold);
      expect(err.toFixed(6)).toBe(printed.toFixed(6));
    });
  }
});
