/**
 * Q8_0 (spec §3.6) and its activation sibling Q8_1 (§3.7): 32 int8 quants with an fp16 scale.
 *
 * Block Q8_0 = { f16 d; i8 qs[32] } = 34 bytes, value = qs[j] * d.
 * Block Q8_1 = { f16 d; f16 s; i8 qs[32] } = 36 bytes, s = d * sum(qs); activations only (no dequantizer in ggml).
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';
import { fp16Table, fp32ToFp16 } from './half.js';
import { roundAway } from './rounding.js';
import { i8Of } from './views.js';

const fround = Math.fround;

/** Quantizes one 32-value block like `quantize_row_q8_0_ref`; returns the unrounded f32 scale `d`. */
function q8Block(x: Float32Array, o: number, dst: Uint8Array, qOff: number): number {
  let amax = 0;
  let sum = 0;
  for (let j = 0; j < 32; j++) {
    const v = x[o + j];
    sum += v;
    const a = Math.abs(v);
    if (amax < a) amax = a;
  }
  if (!Number.isFinite(sum)) return Number.NaN;
  const d = fround(amax / 127);
  const id = d !== 0 ? fround(1 / d) : 0;
  for (let j = 0; j < 32; j++) dst[qOff + j] = roundAway(fround(x[o + j] * id)) & 0xff;
  return d;
}

/** Q8_0: error per element <= d/2 with d = amax/127 of its block (plus fp16 rounding of d). */
export const q8_0: Codec = /* @__PURE__ */ defineCodec('q8_0', '|error| <= amax/254 per block (+ fp16 rounding of d)', {
  quantizeRow(src, srcOff, n, dst, dstOff, row) {
    for (let b = 0; b < n / 32; b++) {
      const o = srcOff + 32 * b;
      const q = dstOff + 34 * b;
      const d = q8Block(src, o, dst, q + 2);
      if (Number.isNaN(d)) throwNonFinite('q8_0', src, o, 32, srcOff, row);
      const h = fp32ToFp16(d);
      dst[q] = h & 0xff;
      dst[q + 1] = h >>> 8;
    }
  },
  dequantizeBlocks(src, srcOff, dst, dstOff, nBlocks) {
    const half = fp16Table();
    const qs = i8Of(src.buffer); // the quants as int8, read in place
    const base = src.byteOffset;
    for (let b = 0; b < nBlocks; b++) {
      const q = srcOff + 34 * b;
      const d = half[src[q] | (src[q + 1] << 8)];
      const o = dstOff + 32 * b;
      const k = base + q + 2;
      for (let j = 0; j < 32; j++) dst[o + j] = qs[k + j] * d;
    }
  },
});

/**
 * Q8_1, the activation format paired with Q4_1/Q5_1 weights in ggml's dot products. ggml has no dequantizer for
 * it; ours reads `qs * d` and ignores `s`.
 */
export const q8_1: Codec = /* @__PURE__ */ defineCodec('q8_1', '|error| <= amax/254 per block (+ fp16 rounding of d)', {
  quantizeRow(src, srcOff, n, dst, dstOff, row) {
    for (let b = 0; b < n / 32; b++) {
      const o = srcOff + 32 * b;
      const q = dstOff + 36 * b;
      const d = q8Block(src, o, dst, q + 4);
      if (Number.isNaN(d)) throwNonFinite('q8_1', src, o, 32, srcOff, row);
      let sum = 0;
      for (let j = 0; j < 32; j++) sum += (dst[q + 4 + j] << 24) >> 24;
      const h = fp32ToFp16(d);
      const s = fp32ToFp16(fround(sum * d));
      dst[q] = h & 0xff;
      dst[q + 1] = h >>> 8;
      dst[q + 2] = s & 0xff;
      dst[q + 3] = s >>> 8;
    }
  },
  dequantizeBlocks(src, srcOff, dst, dstOff, nBlocks) {
    const half = fp16Table();
    for (let b = 0; b < nBlocks; b++) {
      const q = srcOff + 36 * b;
      const d = half[src[q] | (src[q + 1] << 8)];
      const o = dstOff + 32 * b;
      for (let j = 0; j < 32; j++) dst[o + j] = ((src[q + 4 + j] << 24) >> 24) * d;
    }
  },
});
