/**
 * Q5_0 (spec §3.4): `{ f16 d; u8 qh[4]; u8 qs[16] }` = 22 bytes per 32 values, value = (q - 16) * d, q in [0, 31].
 * qh (little-endian u32) bit j is bit 4 of element j; qs holds the low nibbles as in Q4_0.
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';
import { fp16Table, fp32ToFp16 } from './half.js';
import { highBits, lutBlock, nibbleValues } from './lut.js';
import { checkImportance, imatrixWeights, makeQxQuants, sumSquares } from './search.js';

// The CPU kernels read the fp16 table through a module constant (faster in their loops than one fetched per call).
const kernelHalf = /* @__PURE__ */ fp16Table();

const fround = Math.fround;

// Scratch of the imatrix path (one block at a time).
const L = new Uint8Array(32);
const weight = new Float32Array(32);

/**
 * The imatrix path of `ggml_quantize_chunk` (spec §3.21): `make_qx_quants(32, 16, x, L, 1, w)` per block with
 * `w = importance · sqrtf(sigma2 + x²)` and `sigma2` the mean square of the whole row.
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
  if (row === 0) checkImportance('q5_0', qw);
  const sigma2 = fround(sumSquares(src, srcOff, n) / n);
  for (let b = 0; b < n / 32; b++) {
    const o = srcOff + 32 * b;
    const q = dstOff + 22 * b;
    let sum = 0;
    for (let j = 0; j < 32; j++) sum += src[o + j];
    if (!Number.isFinite(sum)) throwNonFinite('q5_0', src, o, 32, srcOff, row);
    imatrixWeights(32, src, o, qw, 32 * b, sigma2, weight);
    const h = fp32ToFp16(makeQxQuants(32, 16, src, o, L, 0, weight, 0));
    dst[q] = h & 0xff;
    dst[q + 1] = h >>> 8;
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      dst[q + 6 + j] = (L[j] & 15) | ((L[j + 16] & 15) << 4);
      qh |= ((L[j] >>> 4) & 1) << j;
      qh |= ((L[j + 16] >>> 4) & 1) << (j + 16);
    }
    dst[q + 2] = qh & 0xff;
    dst[q + 3] = (qh >>> 8) & 0xff;
    dst[q + 4] = (qh >>> 16) & 0xff;
    dst[q + 5] = qh >>> 24;
  }
}

/** The 32 fifth bits of a Q5 block, little-endian at `p`. */
function qh32(w: Uint8Array, p: number): number {
  return w[p] | (w[p + 1] << 8) | (w[p + 2] << 16) | (w[p + 3] << 24);
}

/** Q5_0 weights times f32 activations: Σ (q − 16)·x = Σ q·x − 16·Σ x per block. */
function dot(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 22 * b;
    const qh = qh32(w, q + 2);
    const o = xOff + 32 * b;
    let s = 0;
    let sx = 0;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 6 + j];
      const a = x[o + j];
      const c = x[o + j + 16];
      s += ((byte & 15) | (((qh >>> j) & 1) << 4)) * a + ((byte >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) * c;
      sx += a + c;
    }
    sum += (s - 16 * sx) * kernelHalf[w[q] | (w[q + 1] << 8)];
  }
  return sum;
}

/** ggml's `vec_dot_q5_0_q8_0`: per block Σ (q − 16)·qa times h(dw)·h(da). */
function dotQ(w: Uint8Array, off: number, a: Uint8Array, ai: Int8Array, aOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 22 * b;
    const p = aOff + 34 * b;
    const qh = qh32(w, q + 2);
    let isum = 0;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 6 + j];
      isum +=
        (((byte & 15) | (((qh >>> j) & 1) << 4)) - 16) * ai[p + 2 + j] +
        (((byte >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * ai[p + 18 + j];
    }
    sum += isum * kernelHalf[w[q] | (w[q + 1] << 8)] * kernelHalf[a[p] | (a[p + 1] << 8)];
  }
  return sum;
}

/** Through the nibble and high-bit tables of the activation row (see lut.ts). */
function dotLut(w: Uint8Array, off: number, lut: Float32Array, xsum: Float64Array, n: number): number {
  const hb = (n / 32) * 4096;
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 22 * b;
    const s = lutBlock(w, q + 6, lut, 4096 * b) + 16 * (highBits(w, q + 2, lut, hb + 1024 * b) - xsum[b]);
    sum += s * kernelHalf[w[q] | (w[q + 1] << 8)];
  }
  return sum;
}

/** Q5_0: |error| <= amax/32 per element (amax/16 at -max). */
export const q5_0: Codec = /* @__PURE__ */ defineCodec({
  name: 'q5_0',
  errorBound: '|error| <= amax/32 per element (amax/16 at -max)',
  importance: 'used',
  scaleOffsets: [0],
  kernels: { dot, dotQ, dotLut, lutValues: nibbleValues, lutHigh: true },
  quantizeRow(src, srcOff, n, dst, dstOff, row, importance) {
    if (importance) return quantizeRowImatrix(src, srcOff, n, dst, dstOff, row, importance);
    for (let b = 0; b < n / 32; b++) {
      const o = srcOff + 32 * b;
      const q = dstOff + 22 * b;
      let amax = 0;
      let max = 0;
      let sum = 0;
      for (let j = 0; j < 32; j++) {
        const v = src[o + j];
        sum += v;
        if (amax < Math.abs(v)) {
          amax = Math.abs(v);
          max = v;
        }
      }
      if (!Number.isFinite(sum)) throwNonFinite('q5_0', src, o, 32, srcOff, row);
      const d = fround(max / -16);
      const id = d !== 0 ? fround(1 / d) : 0;
      const h = fp32ToFp16(d);
      dst[q] = h & 0xff;
      dst[q + 1] = h >>> 8;
      let qh = 0;
      for (let j = 0; j < 16; j++) {
        let a = fround(fround(src[o + j] * id) + 16.5) | 0;
        let c = fround(fround(src[o + j + 16] * id) + 16.5) | 0;
        a = a < 31 ? a : 31;
        c = c < 31 ? c : 31;
        dst[q + 6 + j] = (a & 15) | ((c & 15) << 4);
        qh |= ((a >>> 4) & 1) << j;
        qh |= ((c >>> 4) & 1) << (j + 16);
      }
      dst[q + 2] = qh & 0xff;
      dst[q + 3] = (qh >>> 8) & 0xff;
      dst[q + 4] = (qh >>> 16) & 0xff;
      dst[q + 5] = qh >>> 24;
    }
  },
  dequantizeBlocks(src, srcOff, dst, dstOff, nBlocks) {
    const half = fp16Table();
    for (let b = 0; b < nBlocks; b++) {
      const q = srcOff + 22 * b;
      const d = half[src[q] | (src[q + 1] << 8)];
      const qh = src[q + 2] | (src[q + 3] << 8) | (src[q + 4] << 16) | (src[q + 5] << 24);
      const o = dstOff + 32 * b;
      for (let j = 0; j < 16; j++) {
        const byte = src[q + 6 + j];
        dst[o + j] = (((byte & 15) | (((qh >>> j) & 1) << 4)) - 16) * d;
        dst[o + j + 16] = (((byte >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d;
      }
    }
  },
});
