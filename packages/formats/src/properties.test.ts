// Properties of the first-issue formats (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, INT8): error bounds, idempotence,
// exhaustive 16-bit round trips, multi-row consistency, typed errors, and ggml's own test-quantize-fns thresholds.
import { ShapeError, SizeError, ValueError } from '@nibble/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Codec } from './codec.js';
import { bf16, f16 } from './float.js';
import { bf16ToFp32, fp16ToFp32, fp32ToBf16, fp32ToFp16 } from './half.js';
import { int8 } from './int8.js';
import { q4_0 } from './q4_0.js';
import { q4_1 } from './q4_1.js';
import { q5_0 } from './q5_0.js';
import { q5_1 } from './q5_1.js';
import { q8_0 } from './q8_0.js';
import { readF32 } from './test/fixtures.js';

const seed = Number(process.env.FC_SEED ?? 20261125);
const runs = (n: number) => ({ seed, numRuns: n });

/** Float32 values in a range that every block scale can hold in fp16 (|x| <= 60000), including zeros and tiny values. */
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

const EPS16 = 2 ** -11; // relative rounding of an fp16 scale
const SUB16 = 2 ** -25; // absolute rounding of an fp16 scale in the subnormal range

/** Per-element error bounds, from each format's definition (spec §3.2-§3.6). */
const bounds: Record<string, (block: Float32Array) => (x: number) => number> = {
  q8_0: (b) => {
    const amax = Math.max(...b.map(Math.abs));
    const d = amax / 127;
    return () => d / 2 + 127 * (d * EPS16 + SUB16) + 1e-30;
  },
  q4_0: (b) => signedBound(b, 8),
  q5_0: (b) => signedBound(b, 16),
  q4_1: (b) => minMaxBound(b, 15),
  q5_1: (b) => minMaxBound(b, 31),
};

function signedBound(b: Float32Array, nmax: number): (x: number) => number {
  let amax = 0;
  let max = 0;
  for (const v of b) if (amax < Math.abs(v)) [amax, max] = [Math.abs(v), v];
  const d = Math.abs(max / nmax);
  const slack = nmax * (d * EPS16 + SUB16) + 1e-30;
  // The value at -max would need q = 2*nmax, which clamps to 2*nmax-1: one full step of error there.
  return (x) => (Math.sign(x) === -Math.sign(max) && Math.abs(x) > (nmax - 0.5) * d ? d : d / 2) * (1 + 1e-6) + slack;
}

function minMaxBound(b: Float32Array, levels: number): (x: number) => number {
  const min = Math.min(...b);
  const max = Math.max(...b);
  const d = (max - min) / levels;
  // fp16 rounding of d (times up to `levels`) and of the min, plus the f32 add.
  const slack = levels * (d * EPS16 + SUB16) + Math.abs(min) * EPS16 + SUB16 + Math.abs(max) * 2 ** -23 + 1e-30;
  return () => d / 2 + slack;
}

function minMaxInNormalRange(x: Float32Array, levels: number): boolean {
  for (let b = 0; b < x.length; b += 32) {
    const block = x.subarray(b, b + 32);
    const min = Math.min(...block);
    const d = (Math.max(...block) - min) / levels;
    if ((min !== 0 && Math.abs(min) < 2 ** -14) || (d !== 0 && d < 2 ** -14)) return false;
  }
  return true;
}

const legacy: [string, Codec][] = [
  ['q8_0', q8_0],
  ['q4_0', q4_0],
  ['q4_1', q4_1],
  ['q5_0', q5_0],
  ['q5_1', q5_1],
];

describe.each(legacy)('%s properties', (name, codec) => {
  it('dequantize(quantize(x)) stays within the documented bound', () => {
    fc.assert(
      fc.property(blocks(32, 4), (x) => {
        const y = codec.dequantize(codec.quantize(x));
        for (let b = 0; b < x.length; b += 32) {
          const bound = bounds[name](x.subarray(b, b + 32));
          for (let j = b; j < b + 32; j++) {
            if (!(Math.abs(y[j] - x[j]) <= bound(x[j]))) {
              throw new Error(`element ${j}: x=${x[j]} y=${y[j]} err=${Math.abs(y[j] - x[j])} bound=${bound(x[j])}`);
            }
          }
        }
      }),
      runs(300),
    );
  });

  it('is idempotent: quantize(dequantize(q)) == q for any q that quantize produced', () => {
    fc.assert(
      fc.property(blocks(32, 4), (x) => {
        // Q4_1/Q5_1 quantize against the unrounded min but store it as fp16; when the min or the step falls below
        // fp16's normal range (2^-14) that rounding moves the grid, and re-quantizing may pick other bytes. The
        // symmetric formats have no such term and are idempotent everywhere.
        if (name === 'q4_1' || name === 'q5_1') fc.pre(minMaxInNormalRange(x, name === 'q4_1' ? 15 : 31));
        const q = codec.quantize(x);
        expect(codec.quantize(codec.dequantize(q))).toEqual(q);
      }),
      runs(300),
    );
  });

  it('multi-row input equals row-by-row results', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 3 }),
        blocks(32, 15),
        (rows, perRow, pool) => {
          const rowLength = 32 * perRow;
          const x = new Float32Array(rows * rowLength).map((_, i) => pool[i % pool.length]);
          const all = codec.quantize(x, { rowLength });
          const rowBytes = all.length / rows;
          for (let r = 0; r < rows; r++) {
            expect(all.subarray(r * rowBytes, (r + 1) * rowBytes)).toEqual(
              codec.quantize(x.subarray(r * rowLength, (r + 1) * rowLength)),
            );
          }
        },
      ),
      runs(100),
    );
  });

  it('names the row and column of a non-finite value', () => {
    const x = new Float32Array(4 * 64);
    x[2 * 64 + 37] = Number.NaN;
    expect(() => codec.quantize(x, { rowLength: 64 })).toThrowError(/row 2, column 37/);
    x[2 * 64 + 37] = 0;
    x[3 * 64 + 1] = Number.NEGATIVE_INFINITY;
    try {
      codec.quantize(x, { rowLength: 64 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ValueError);
      expect((e as ValueError).code).toBe('E_VALUE');
      expect([(e as ValueError).row, (e as ValueError).column]).toEqual([3, 1]);
    }
  });

  it('rejects lengths that are not whole blocks, and wrong destination sizes', () => {
    expect(() => codec.quantize(new Float32Array(33))).toThrowError(ShapeError);
    expect(() => codec.quantize(new Float32Array(64), { rowLength: 48 })).toThrowError(ShapeError);
    expect(() => codec.quantizeInto(new Float32Array(32), new Uint8Array(codec.info.bytesPerBlock + 1))).toThrowError(
      SizeError,
    );
    expect(() => codec.dequantizeInto(new Uint8Array(codec.info.bytesPerBlock - 1), new Float32Array(32))).toThrowError(
      SizeError,
    );
    expect(() => codec.dequantize(new Uint8Array(codec.info.bytesPerBlock + 1))).toThrowError(SizeError);
  });
});

describe('F16 and BF16', () => {
  it('round-trip all 65,536 bit patterns (NaNs stay NaN with their sign, quieted like ggml)', () => {
    for (const [name, toF32, fromF32, quiet] of [
      ['f16', fp16ToFp32, fp32ToFp16, (h: number) => (h & 0x8000) | 0x7e00],
      ['bf16', bf16ToFp32, fp32ToBf16, (h: number) => h | 0x0040],
    ] as const) {
      let nans = 0;
      for (let h = 0; h < 65536; h++) {
        const f = toF32(h);
        const back = fromF32(f);
        if (Number.isNaN(f)) {
          nans++;
          expect(back, `${name} NaN 0x${h.toString(16)}`).toBe(quiet(h));
        } else if (back !== h) {
          throw new Error(`${name} 0x${h.toString(16)} -> ${f} -> 0x${back.toString(16)}`);
        }
      }
      expect(nans).toBe(name === 'f16' ? 2046 : 254);
    }
  });

  it('the codecs agree with the scalar conversions and round to nearest even', () => {
    fc.assert(
      fc.property(fc.float32Array({ minLength: 1, maxLength: 64 }), (x) => {
        const h = new Uint16Array(f16.quantize(x).buffer);
        const b = new Uint16Array(bf16.quantize(x).buffer);
        for (let i = 0; i < x.length; i++) {
          expect(h[i]).toBe(fp32ToFp16(x[i]));
          expect(b[i]).toBe(fp32ToBf16(x[i]));
          if (Number.isFinite(x[i]) && Math.abs(x[i]) < 65504) {
            // Nearest: no other half is closer than the one chosen.
            const err = Math.abs(fp16ToFp32(h[i]) - x[i]);
            for (const n of [h[i] - 1, h[i] + 1]) {
              if ((n & 0x7c00) !== 0x7c00 && n >= 0 && n < 65536) {
                expect(err).toBeLessThanOrEqual(Math.abs(fp16ToFp32(n) - x[i]));
              }
            }
          }
        }
      }),
      runs(200),
    );
  });

  it('the fast row paths equal the scalar conversions on 1M bit patterns spread over all 2^32', () => {
    const bits = new Uint32Array(1 << 20);
    for (let i = 0; i < bits.length; i++) bits[i] = (i * 4093 + (i >>> 7)) * 1031 + 17;
    const x = new Float32Array(bits.buffer);
    const h = new Uint16Array(f16.quantize(x).buffer);
    const b = new Uint16Array(bf16.quantize(x).buffer);
    for (let i = 0; i < x.length; i++) {
      if (h[i] !== fp32ToFp16(x[i]) || b[i] !== fp32ToBf16(x[i])) {
        throw new Error(
          `bits 0x${bits[i].toString(16)}: f16 ${h[i]} vs ${fp32ToFp16(x[i])}, bf16 ${b[i]} vs ${fp32ToBf16(x[i])}`,
        );
      }
    }
  });

  it('follows ggml on the edges: overflow to Inf at 65520, ties to even, subnormals kept', () => {
    expect(fp32ToFp16(65519.99)).toBe(0x7bff);
    expect(fp32ToFp16(65520)).toBe(0x7c00);
    expect(fp32ToFp16(-1e6)).toBe(0xfc00);
    expect(fp32ToFp16(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(fp32ToFp16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(fp32ToFp16(2 ** -24)).toBe(0x0001);
    expect(fp32ToFp16(2 ** -25)).toBe(0x0000); // tie with zero -> even
    expect(fp32ToBf16(Number.POSITIVE_INFINITY)).toBe(0x7f80);
    expect(fp32ToBf16(1e-40)).not.toBe(0); // subnormals are not flushed
  });
});

describe('INT8', () => {
  const cfgs = fc.record({
    granularity: fc.constantFrom('tensor' as const, 'channel' as const, 'group' as const),
    groupSize: fc.constantFrom(1, 4, 8, 16, 32),
    symmetric: fc.boolean(),
    scaleType: fc.constantFrom('f32' as const, 'f16' as const),
  });
  const data = fc.integer({ min: 1, max: 6 }).chain((rows) =>
    fc.integer({ min: 1, max: 4 }).chain((k) =>
      fc
        .array(fc.float({ min: -1000, max: 1000, noNaN: true }), {
          minLength: rows * 32 * k,
          maxLength: rows * 32 * k,
        })
        .map((a) => ({ rows, rowLength: 32 * k, x: Float32Array.from(a) })),
    ),
  );

  it('every element is within scale/2 of its group (plus float rounding)', () => {
    fc.assert(
      fc.property(cfgs, data, (cfg, { rowLength, x }) => {
        const bytes = int8.quantize(x, { rowLength, ...cfg });
        const layout = int8.layout(bytes);
        expect(bytes.length).toBe(int8.byteLength(x.length / rowLength, rowLength, cfg));
        const y = int8.dequantize(bytes);
        const view = new DataView(bytes.buffer);
        for (let g = 0; g < layout.groups; g++) {
          const s =
            layout.scaleType === 'f16'
              ? fp16ToFp32(view.getUint16(layout.scalesOffset + 2 * g, true))
              : view.getFloat32(layout.scalesOffset + 4 * g, true);
          for (let i = g * layout.groupSize; i < (g + 1) * layout.groupSize; i++) {
            const err = Math.abs(y[i] - x[i]);
            if (!(err <= s / 2 + Math.abs(x[i]) * 2 ** -22 + 1e-30)) {
              throw new Error(`group ${g} element ${i}: x=${x[i]} y=${y[i]} err=${err} scale=${s}`);
            }
          }
        }
      }),
      runs(300),
    );
  });

  it('rejects a damaged header with a typed error', () => {
    const bytes = int8.quantize(new Float32Array(64).fill(1), { rowLength: 32, granularity: 'group', groupSize: 16 });
    expect(() => int8.dequantize(bytes.subarray(0, 30))).toThrowError(/needs/);
    const bad = bytes.slice();
    bad[16] = 7; // group size
    expect(() => int8.dequantize(bad)).toThrowError(/group size 7 at offset 16/);
    expect(() =>
      int8.quantize(new Float32Array(64), { rowLength: 32, granularity: 'group', groupSize: 12 }),
    ).toThrowError(ShapeError);
  });
});

describe("ggml's test-quantize-fns thresholds (spec §4.1) on glibc generate_data", () => {
  // ggml's array_rmse is sqrt(sum of squares)/n, not the usual RMSE; these are the values ggml printed.
  const printed: Record<string, number> = {
    f16: 0.000004,
    bf16: 0.000036,
    q4_0: 0.001121,
    q4_1: 0.001144,
    q5_0: 0.000591,
    q5_1: 0.000556,
    q8_0: 0.000074,
  };
  const x1 = readF32('golden/ggml-kat/generate_data_0_4096_glibc.f32');
  for (const codec of [f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0]) {
    it(`${codec.name}: absolute quantization error below 0.002 and equal to ggml's printed value`, () => {
      const y = codec.dequantize(codec.quantize(x1));
      let sum = 0;
      for (let i = 0; i < x1.length; i++) sum += (x1[i] - y[i]) ** 2;
      const err = Math.fround(Math.sqrt(sum)) / x1.length;
      expect(err).toBeLessThan(0.002);
      expect(err.toFixed(6)).toBe(printed[codec.name].toFixed(6));
    });
  }
});
