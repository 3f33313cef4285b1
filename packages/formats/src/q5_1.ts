/**
 * Q5_1 (spec §3.5): `{ f16 d; f16 m; u8 qh[4]; u8 qs[16] }` = 24 bytes per 32 values, value = q * d + m,
 * q in [0, 31], bit packing as Q5_0.
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';
import { fp16Table, fp32ToFp16 } from './half.js';
import { highBits, lutBlock, nibbleValues } from './lut.js';
import { checkImportance, imatrixWeights, makeQkx3Quants, searchOut, sumSquares } from './search.js';

// The CPU kernels read the fp16 table through a module constant (faster in their loops than one fetched per call).
const kernelHalf = /* @__PURE__ */ fp16Table();

const fround = Math.fround;
const FLT_MAX = 3.4028234663852886e38;
const F005 = /* @__PURE__ */ fround(0.05);
const FM09 = /* @__PURE__ */ fround(-0.9);

// Scratch of the imatrix path (one block at a time).
const L = new Uint8Array(32);
const Laux = new Uint8Array(32);
const weight = new Float32Array(32);

/**
 * The imatrix path of `ggml_quantize_chunk` (spec §3.21): `make_qkx3_quants(32, 31, x, w, L, &min, Laux, -0.9f,
 * 0.05f, 36)` per block with `w = importance · sqrtf(sigma2 + x²)`, `sigma2` the mean square of the whole row;
 * stores fp16(scale) and fp16(−min).
 */
function quantizeRowImatrix(
  src: Float32Array,
  srcOff: number,
  n: number,
  dst: Uint8Array,
  dstOff: number,
  row: number,
  qw: Float32Array,
): void {
  if (row === 0) checkImportance('q5_1', qw);
  const sigma2 = fround(sumSquares(src, srcOff, n) / n);
  for (let b = 0; b < n / 32; b++) {
    const o = srcOff + 32 * b;
    const q = dstOff + 24 * b;
    let sum = 0;
    for (let j = 0; j < 32; j++) sum += src[o + j];
    if (!Number.isFinite(sum)) throwNonFinite('q5_1', src, o, 32, srcOff, row);
    imatrixWeights(32, src, o, qw, 32 * b, sigma2, weight);
    const hd = fp32ToFp16(makeQkx3Quants(32, 31, src, o, weight, 0, L, 0, Laux, FM09, F005, 36));
    const hm = fp32ToFp16(-searchOut.min);
    dst[q] = hd & 0xff;
    dst[q + 1] = hd >>> 8;
    dst[q + 2] = hm & 0xff;
    dst[q + 3] = hm >>> 8;
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      dst[q + 8 + j] = (L[j] & 15) | ((L[j + 16] & 15) << 4);
      qh |= ((L[j] >>> 4) & 1) << j;
      qh |= ((L[j + 16] >>> 4) & 1) << (j + 16);
    }
    dst[q + 4] = qh & 0xff;
    dst[q + 5] = (qh >>> 8) & 0xff;
    dst[q + 6] = (qh >>> 16) & 0xff;
    dst[q + 7] = qh >>> 24;
  }
}

/** The 32 fifth bits of a Q5 block, little-endian at `p`. */
function qh32(w: Uint8Array, p: number): number {
  return w[p] | (w[p + 1] << 8) | (w[p + 2] << 16) | (w[p + 3] << 24);
}

/** Q5_1 weights times f32 activations: d·Σ q·x + m·Σ x per block. */
function dot(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 24 * b;
    const qh = qh32(w, q + 4);
    const o = xOff + 32 * b;
    let s = 0;
    let sx = 0;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 8 + j];
      const a = x[o + j];
      const c = x[o + j + 16];
      s += ((byte & 15) | (((qh >>> j) & 1) << 4)) * a + ((byte >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) * c;
      sx += a + c;
    }
    sum += s * kernelHalf[w[q] | (w[q + 1] << 8)] + sx * kernelHalf[w[q + 2] | (w[q + 3] << 8)];
  }
  return sum;
}

/** ggml's `vec_dot_q5_1_q8_1`: h(dw)·h(da)·Σ q·qa + h(mw)·h(sa) per block (the activations' stored sum s). */
function dotQ(w: Uint8Array, off: number, a: Uint8Array, ai: Int8Array, aOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 24 * b;
    const p = aOff + 36 * b;
    const qh = qh32(w, q + 4);
    let isum = 0;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 8 + j];
      isum +=
        ((byte & 15) | (((qh >>> j) & 1) << 4)) * ai[p + 4 + j] +
        ((byte >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) * ai[p + 20 + j];
    }
    const dw = kernelHalf[w[q] | (w[q + 1] << 8)];
    const mw = kernelHalf[w[q + 2] | (w[q + 3] << 8)];
    sum += dw * kernelHalf[a[p] | (a[p + 1] << 8)] * isum + mw * kernelHalf[a[p + 2] | (a[p + 3] << 8)];
  }
  return sum;
}

/** Through the nibble and high-bit tables of the activation row (see lut.ts). */
function dotLut(w: Uint8Array, off: number, lut: Float32Array, xsum: Float64Array, n: number): number {
  const hb = (n / 32) * 4096;
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 24 * b;
    const s = lutBlock(w, q + 8, lut, 4096 * b) + 16 * highBits(w, q + 4, lut, hb + 1024 * b);
    sum += s * kernelHalf[w[q] | (w[q + 1] << 8)] + xsum[b] * kernelHalf[w[q + 2] | (w[q + 3] << 8)];
  }
  return sum;
}

/** Q5_1: |error| <= (max - min)/62 per element (+ fp16 rounding of d and m). */
export const q5_1: Codec = /* @__PURE__ */ defineCodec({
  name: 'q5_1',
  errorBound: '|error| <= (max-min)/62 per element (+ fp16 rounding of d, m)',
  importance: 'used',
  scaleOffsets: [0, 2],
  kernels: { dot, dotQ, dotLut, lutValues: nibbleValues, lutHigh: true },
  quantizeRow(src, srcOff, n, dst, dstOff, row, importance) {
    if (importance) return quantizeRowImatrix(src, srcOff, n, dst, dstOff, row, importance);
    for (let b = 0; b < n / 32; b++) {
      const o = srcOff + 32 * b;
      const q = dstOff + 24 * b;
      let min = FLT_MAX;
      let max = -FLT_MAX;
      let sum = 0;
      for (let j = 0; j < 32; j++) {
        const v = src[o + j];
        sum += v;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      if (!Number.isFinite(sum)) throwNonFinite('q5_1', src, o, 32, srcOff, row);
      const d = fround(fround(max - min) / 31);
      const id = d !== 0 ? fround(1 / d) : 0;
      const hd = fp32ToFp16(d);
      const hm = fp32ToFp16(min);
      dst[q] = hd & 0xff;
      dst[q + 1] = hd >>> 8;
      dst[q + 2] = hm & 0xff;
      dst[q + 3] = hm >>> 8;
      let qh = 0;
      for (let j = 0; j < 16; j++) {
        // (uint8_t)(x + 0.5f): no clamp in ggml.
        const a = (fround(fround(fround(src[o + j] - min) * id) + 0.5) | 0) & 0xff;
        const c = (fround(fround(fround(src[o + j + 16] - min) * id) + 0.5) | 0) & 0xff;
        dst[q + 8 + j] = (a & 15) | ((c & 15) << 4);
        qh |= ((a >>> 4) & 1) << j;
        qh |= ((c >>> 4) & 1) << (j + 16);
      }
      dst[q + 4] = qh & 0xff;
      dst[q + 5] = (qh >>> 8) & 0xff;
      dst[q + 6] = (qh >>> 16) & 0xff;
      dst[q + 7] = qh >>> 24;
    }
  },
  dequantizeBlocks(src, srcOff, dst, dstOff, nBlocks) {
    const half = fp16Table();
    for (let b = 0; b < nBlocks; b++) {
      const q = srcOff + 24 * b;
      const d = half[src[q] | (src[q + 1] << 8)];
      const m = half[src[q + 2] | (src[q + 3] << 8)];
      const qh = src[q + 4] | (src[q + 5] << 8) | (src[q + 6] << 16) | (src[q + 7] << 24);
      const o = dstOff + 32 * b;
      for (let j = 0; j < 16; j++) {
        const byte = src[q + 8 + j];
        dst[o + j] = ((byte & 15) | (((qh >>> j) & 1) << 4)) * d + m;
        dst[o + j + 16] = ((byte >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) * d + m;
      }
    }
  },
});
