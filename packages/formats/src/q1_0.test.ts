// Q1_0's own properties (its bytes are checked against ggml's in golden.test.ts, ggml-real set).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fp16ToFp32, fp32ToFp16 } from './half.js';
import { q1_0 } from './q1_0.js';

const seed = Number(process.env.FC_SEED ?? 20261125);
const block = fc
  .array(fc.float({ min: -1000, max: 1000, noNaN: true, noDefaultInfinity: true }), { minLength: 128, maxLength: 128 })
  .map((a) => Float32Array.from(a));

describe('q1_0', () => {
  it('stores the sign of every value and d = fp16(mean |x|), so |error| <= max(amax − d, d)', () => {
    fc.assert(
      fc.property(block, (x) => {
        const y = q1_0.dequantize(q1_0.quantize(x));
        let sum = 0;
        let amax = 0;
        for (const v of x) {
          sum += Math.abs(v);
          amax = Math.max(amax, Math.abs(v));
        }
        // Independently of the code: the fp16 of the double mean, within fp16's own rounding of the float sum.
        const d = fp16ToFp32(fp32ToFp16(sum / 128));
        for (let i = 0; i < 128; i++) {
          expect(Math.abs(Math.abs(y[i]) - d)).toBeLessThanOrEqual(d * 2 ** -10);
          expect(y[i] >= 0).toBe(x[i] >= 0);
          expect(Math.abs(y[i] - x[i])).toBeLessThanOrEqual(Math.max(amax - Math.abs(y[i]), Math.abs(y[i])) + 1e-30);
        }
      }),
      { seed, numRuns: 200 },
    );
  });
});
