/**
 * Q4_1 (spec §3.3): `{ f16 d; f16 m; u8 qs[16] }` = 20 bytes per 32 values, value = q * d + m, q in [0, 15].
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';
import { fp16Table, fp32ToFp16 } from './half.js';
import { lutBlock, nibbleValues } from './lut.js';
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
 * The imatrix path of `ggml_quantize_chunk` (spec §3.21): `make_qkx3_quants(32, 15, x, w, L, &min, Laux, -0.9f,
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
  if (row === 0) checkImportance('q4_1', qw);
  const sigma2 = fround(sumSquares(src, srcOff, n) / n);
  for (let b = 0; b < n / 32; b++) {
    const o = srcOff + 32 * b;
    const q = dstOff + 20 * b;
    let sum = 0;
    for (let j = 0; j < 32; j++) sum += src[o + j];
    if (!Number.isFinite(sum)) throwNonFinite('q4_1', src, o, 32, srcOff, row);
    imatrixWeights(32, src, o, qw, 32 * b, sigma2, weight);
    const hd = fp32ToFp16(makeQkx3Quants(32, 15, src, o, weight, 0, L, 0, Laux, FM09, F005, 36));
    const hm = fp32ToFp16(-searchOut.min);
    dst[q] = hd & 0xff;
    dst[q + 1] = hd >>> 8;
    dst[q + 2] = hm & 0xff;
    dst[q + 3] = hm >>> 8;
    for (let j = 0; j < 16; j++) dst[q + 4 + j] = L[j] | (L[j + 16] << 4);
  }
}

/** Q4_1 weights times f32 activations: d·Σ q·x + m·Σ x per block. */
function dot(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 20 * b + 4;
    const o = xOff + 32 * b;
    let lo = 0;
    let hi = 0;
    let sx = 0;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + j];
      const a = x[o + j];
      const c = x[o + j + 16];
      lo += (byte & 15) * a;
      hi += (byte >>> 4) * c;
      sx += a + c;
    }
    sum += (lo + hi) * kernelHalf[w[q - 4] | (w[q - 3] << 8)] + sx * kernelHalf[w[q - 2] | (w[q - 1] << 8)];
  }
  return sum;
}

/**
 * ggml's `vec_dot_q4_1_q8_1`: h(dw)·h(da)·Σ q·qa + h(mw)·h(sa) per block, the min term from the activation block's
 * stored sum s = d·Σ qa (fp16), as ggml does.
 */
function dotQ(w: Uint8Array, off: number, a: Uint8Array, ai: Int8Array, aOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 20 * b;
    const p = aOff + 36 * b;
    let isum = 0;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 4 + j];
      isum += (byte & 15) * ai[p + 4 + j] + (byte >>> 4) * ai[p + 20 + j];
    }
    const dw = kernelHalf[w[q] | (w[q + 1] << 8)];
    const mw = kernelHalf[w[q + 2] | (w[q + 3] << 8)];
    sum += dw * kernelHalf[a[p] | (a[p + 1] << 8)] * isum + mw * kernelHalf[a[p + 2] | (a[p + 3] << 8)];
  }
  return sum;
}

/** Through the nibble table of the activation row (see lut.ts): d·Σ q·x + m·Σ x per block. */
function dotLut(w: Uint8Array, off: number, lut: Float32Array, xsum: Float64Array, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 20 * b;
    sum +=
      lutBlock(w, q + 4, lut, 4096 * b) * kernelHalf[w[q] | (w[q + 1] << 8)] +
      xsum[b] * kernelHalf[w[q + 2] | (w[q + 3] << 8)];
  }
  return sum;
}

/** Q4_1: |error| <= (max - min)/30 per element (+ fp16 rounding of d and m). */
export const q4_1: Codec = /* @__PURE__ */ defineCodec({
  name: 'q4_1',
  errorBound: '|error| <= (max-min)/30 per element (+ fp16 rounding of d, m)',
  importance: 'used',
  scaleOffsets: [0, 2],
  kernels: { dot, dotQ, dotLut, lutValues: nibbleValues },
  quantizeRow(src, srcOff, n, dst, dstOff, row, importance) {
    if (importance) return quantizeRowImatrix(src, srcOff, n, dst, dstOff, row, importance);
    for (let b = 0; b < n / 32; b++) {
      const o = srcOff + 32 * b;
      const q = dstOff + 20 * b;
      let min = FLT_MAX;
      let max = -FLT_MAX;
      let sum = 0;
      for (let j = 0; j < 32; j++) {
        const v = src[o + j];
        sum += v;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      if (!Number.isFinite(sum)) throwNonFinite('q4_1', src, o, 32, srcOff, row);
      const d = fround(fround(max - min) / 15);
      const id = d !== 0 ? fround(1 / d) : 0;
      const hd = fp32ToFp16(d);
      const hm = fp32ToFp16(min);
      dst[q] = hd & 0xff;
      dst[q + 1] = hd >>> 8;
      dst[q + 2] = hm & 0xff;
      dst[q + 3] = hm >>> 8;
      for (let j = 0; j < 16; j++) {
        const a = fround(fround(fround(src[o + j] - min) * id) + 0.5) | 0;
        const c = fround(fround(fround(src[o + j + 16] - min) * id) + 0.5) | 0;
        dst[q + 4 + j] = (a < 15 ? a : 15) | ((c < 15 ? c : 15) << 4);
      }
    }
  },
  dequantizeBlocks(src, srcOff, dst, dstOff, nBlocks) {
    const half = fp16Table();
    for (let b = 0; b < nBlocks; b++) {
      const q = srcOff + 20 * b;
      const d = half[src[q] | (src[q + 1] << 8)];
      const m = half[src[q + 2] | (src[q + 3] << 8)];
      const o = dstOff + 32 * b;
      for (let j = 0; j < 16; j++) {
        const byte = src[q + 4 + j];
        // q*d is exact in binary32; the one rounding is the add, which the Float32Array store performs.
        dst[o + j] = (byte & 15) * d + m;
        dst[o + j + 16] = (byte >>> 4) * d + m;
      }
    }
  },
});
