/**
 * Q8_0 (spec §3.6) and its activation sibling Q8_1 (§3.7): 32 int8 quants with an fp16 scale.
 *
 * Block Q8_0 = { f16 d; i8 qs[32] } = 34 bytes, value = qs[j] * d.
 * Block Q8_1 = { f16 d; f16 s; i8 qs[32] } = 36 bytes, s = d * sum(qs); activations only (no dequantizer in ggml).
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';
import { fp16Table, fp32ToFp16 } from './half.js';
import { roundAway } from './rounding.js';
import { amaxIndex, i8Of, u32Of } from './views.js';

const fround = Math.fround;

/**
 * C `roundf` of a binary32 value `v` with |v| <= 127.5 (the scaled quants): floor(v + 0.5) through truncation of
 * the positive v + 128.5 (exact in binary64), then the negative ties, which round away from zero, one lower.
 * Branch-free but for the rare tie.
 */
function round127(v: number): number {
  const r = ((v + 128.5) | 0) - 128;
  return v + 0.5 === r && r <= 0 ? r - 1 : r;
}

/**
 * Quantizes one 32-value block like `quantize_row_q8_0_ref` (`bits` is the source as binary32 words, `k` its
 * offset there); returns the unrounded f32 scale `d`, or NaN for a non-finite block.
 */
function q8Block(x: Float32Array, o: number, bits: Uint32Array, k: number, dst: Uint8Array, qOff: number): number {
  const at = amaxIndex(bits, k, 32);
  if (at >= 0 && (bits[k + at] & 0x7fffffff) >= 0x7f800000) return Number.NaN;
  const amax = at < 0 ? 0 : Math.abs(x[o + at]);
  const d = fround(amax / 127);
  const id = d !== 0 ? fround(1 / d) : 0;
  if (id === Number.POSITIVE_INFINITY) {
    // A tiny d whose inverse overflows: products are ±Inf or NaN, which C's cast (and ours) turns into 0.
    for (let j = 0; j < 32; j++) dst[qOff + j] = roundAway(fround(x[o + j] * id)) & 0xff;
    return d;
  }
  // |x·id| <= 127 (plus rounding): round127 applies. A Uint8Array store keeps the int mod 256, like C's int8_t.
  for (let j = 0; j < 32; j += 4) {
    dst[qOff + j] = round127(fround(x[o + j] * id));
    dst[qOff + j + 1] = round127(fround(x[o + j + 1] * id));
    dst[qOff + j + 2] = round127(fround(x[o + j + 2] * id));
    dst[qOff + j + 3] = round127(fround(x[o + j + 3] * id));
  }
  return d;
}

// Read through a module constant: measured faster in the loops than a table fetched per call.
const half = /* @__PURE__ */ fp16Table();

/**
 * Q8_0 weights times f32 activations, the quants read as int8 through `wi` (the same bytes as `w`): two accumulators
 * per block (elements j mod 4 in {0, 2} and {1, 3}, pairs added first), times the block's scale.
 */
function dotI8(w: Uint8Array, wi: Int8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 34 * b + 2;
    const o = xOff + 32 * b;
    let s0 = 0;
    let s1 = 0;
    for (let j = 0; j < 32; j += 4) {
      s0 += wi[q + j] * x[o + j] + wi[q + j + 2] * x[o + j + 2];
      s1 += wi[q + j + 1] * x[o + j + 1] + wi[q + j + 3] * x[o + j + 3];
    }
    sum += (s0 + s1) * half[w[q - 2] | (w[q - 1] << 8)];
  }
  return sum;
}

/** {@link dotI8} with the int8 view of the whole buffer (cached), indexed at `w.byteOffset`: the same sums. */
function dotQ8_0(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  const wi = i8Of(w.buffer);
  const base = w.byteOffset;
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 34 * b + 2;
    const k = base + q;
    const o = xOff + 32 * b;
    let s0 = 0;
    let s1 = 0;
    for (let j = 0; j < 32; j += 4) {
      s0 += wi[k + j] * x[o + j] + wi[k + j + 2] * x[o + j + 2];
      s1 += wi[k + j + 1] * x[o + j + 1] + wi[k + j + 3] * x[o + j + 3];
    }
    sum += (s0 + s1) * half[w[q - 2] | (w[q - 1] << 8)];
  }
  return sum;
}

/**
 * ggml's `vec_dot_q8_0_q8_0`: per block the integer sum Σ qw·qa times h(dw)·h(da). The product of two fp16 scales is
 * exact in double; ggml rounds it to float.
 */
function dotQ8_0xQ8_0(w: Uint8Array, off: number, a: Uint8Array, ai: Int8Array, aOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 34 * b;
    const p = aOff + 34 * b;
    let isum = 0;
    for (let j = 0; j < 32; j++) isum += ((w[q + 2 + j] << 24) >> 24) * ai[p + 2 + j];
    sum += isum * (half[w[q] | (w[q + 1] << 8)] * half[a[p] | (a[p + 1] << 8)]);
  }
  return sum;
}

/** Q8_0: error per element <= d/2 with d = amax/127 of its block (plus fp16 rounding of d). */
export const q8_0: Codec = /* @__PURE__ */ defineCodec({
  name: 'q8_0',
  errorBound: '|error| <= amax/254 per block (+ fp16 rounding of d)',
  importance: 'ignored',
  scaleOffsets: [0],
  kernels: { dot: dotQ8_0, dotI8, dotQ: dotQ8_0xQ8_0 },
  quantizeRow(src, srcOff, n, dst, dstOff, row) {
    const bits = u32Of(src.buffer);
    const base = src.byteOffset >> 2;
    for (let b = 0; b < n / 32; b++) {
      const o = srcOff + 32 * b;
      const q = dstOff + 34 * b;
      const d = q8Block(src, o, bits, base + o, dst, q + 2);
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
      for (let j = 0; j < 32; j += 8) {
        dst[o + j] = qs[k + j] * d;
        dst[o + j + 1] = qs[k + j + 1] * d;
        dst[o + j + 2] = qs[k + j + 2] * d;
        dst[o + j + 3] = qs[k + j + 3] * d;
        dst[o + j + 4] = qs[k + j + 4] * d;
        dst[o + j + 5] = qs[k + j + 5] * d;
        dst[o + j + 6] = qs[k + j + 6] * d;
        dst[o + j + 7] = qs[k + j + 7] * d;
      }
    }
  },
});

/**
 * Q8_1, the activation format paired with Q4_1/Q5_1 weights in ggml's dot products. ggml has no dequantizer for
 * it; ours reads `qs * d` and ignores `s`.
 */
export const q8_1: Codec = /* @__PURE__ */ defineCodec({
  name: 'q8_1',
  errorBound: '|error| <= amax/254 per block (+ fp16 rounding of d)',
  importance: 'ignored',
  // d only: s = d·Σq can overflow on its own (a block sum above 65504, e.g. 32 values near 2100), and then only
  // ggml's Q4_1/Q5_1 dot products read an Inf; the dequantized values stay finite.
  scaleOffsets: [0],
  quantizeRow(src, srcOff, n, dst, dstOff, row) {
    const bits = u32Of(src.buffer);
    const base = src.byteOffset >> 2;
    for (let b = 0; b < n / 32; b++) {
      const o = srcOff + 32 * b;
      const q = dstOff + 36 * b;
      const d = q8Block(src, o, bits, base + o, dst, q + 4);
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
