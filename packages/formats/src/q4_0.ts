/**
 * Q4_0 (spec §3.2): `{ f16 d; u8 qs[16] }` = 18 bytes per 32 values, value = (q - 8) * d, q in [0, 15].
 * qs[j] holds element j in its low nibble and element j + 16 in its high nibble.
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';
import { fp16Table, fp32ToFp16 } from './half.js';
import { lutBlock, nibbleValues } from './lut.js';
import { checkImportance, imatrixWeights, makeQxQuants, sumSquares } from './search.js';
import { amaxIndex, u16Of, u32Of } from './views.js';

// The CPU kernels read the fp16 table through a module constant (faster in their loops than one fetched per call).
const kernelHalf = /* @__PURE__ */ fp16Table();

const fround = Math.fround;

// Scratch of the imatrix path (one block at a time).
const L = new Uint8Array(32);
const weight = new Float32Array(32);

/**
 * The imatrix path of `ggml_quantize_chunk` (spec §3.21): `make_qx_quants(32, 8, x, L, 1, w)` per block with
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
  if (row === 0) checkImportance('q4_0', qw);
  const sigma2 = fround(sumSquares(src, srcOff, n) / n);
  for (let b = 0; b < n / 32; b++) {
    const o = srcOff + 32 * b;
    const q = dstOff + 18 * b;
    let sum = 0;
    for (let j = 0; j < 32; j++) sum += src[o + j];
    if (!Number.isFinite(sum)) throwNonFinite('q4_0', src, o, 32, srcOff, row);
    imatrixWeights(32, src, o, qw, 32 * b, sigma2, weight);
    const h = fp32ToFp16(makeQxQuants(32, 8, src, o, L, 0, weight, 0));
    dst[q] = h & 0xff;
    dst[q + 1] = h >>> 8;
    for (let j = 0; j < 16; j++) dst[q + 2 + j] = L[j] | (L[j + 16] << 4);
  }
}

/** Q4_0 weights times f32 activations: Σ (q − 8)·x = Σ q·x − 8·Σ x, low and high nibbles in separate sums. */
function dot(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 18 * b + 2;
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
    sum += (lo + hi - 8 * sx) * kernelHalf[w[q - 2] | (w[q - 1] << 8)];
  }
  return sum;
}

/** ggml's `vec_dot_q4_0_q8_0`: per block Σ (q − 8)·qa times h(dw)·h(da). */
function dotQ(w: Uint8Array, off: number, a: Uint8Array, ai: Int8Array, aOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 18 * b;
    const p = aOff + 34 * b;
    let isum = 0;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 2 + j];
      isum += ((byte & 15) - 8) * ai[p + 2 + j] + ((byte >>> 4) - 8) * ai[p + 18 + j];
    }
    sum += isum * kernelHalf[w[q] | (w[q + 1] << 8)] * kernelHalf[a[p] | (a[p + 1] << 8)];
  }
  return sum;
}

/** Through the nibble table of the activation row (see lut.ts): (Σ q·x − 8·Σ x)·d per block. */
function dotLut(w: Uint8Array, off: number, lut: Float32Array, xsum: Float64Array, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 18 * b;
    sum += (lutBlock(w, q + 2, lut, 4096 * b) - 8 * xsum[b]) * kernelHalf[w[q] | (w[q + 1] << 8)];
  }
  return sum;
}

/** Q4_0: |error| <= |d|/2 per element inside the block's range, d = max/-8 (the -max end clamps to 7d). */
export const q4_0: Codec = /* @__PURE__ */ defineCodec({
  name: 'q4_0',
  errorBound: '|error| <= amax/16 per element (amax/8 at -max)',
  importance: 'used',
  scaleOffsets: [0],
  kernels: { dot, dotQ, dotLut, lutValues: nibbleValues },
  quantizeRow(src, srcOff, n, dst, dstOff, row, importance) {
    if (importance) return quantizeRowImatrix(src, srcOff, n, dst, dstOff, row, importance);
    // The input as binary32 bits (a Float32Array is always 4-byte aligned).
    const bits = u32Of(src.buffer);
    const base = src.byteOffset >> 2;
    // Blocks start at even byte offsets from dstOff: with an even start, the quants go out as u16 words.
    const dstBase = dst.byteOffset;
    const w16 = (dstBase + dstOff) % 2 === 0 ? u16Of(dst.buffer) : undefined;
    const nb = n >> 5;
    for (let b = 0; b < nb; b++) {
      const o = srcOff + 32 * b;
      const q = dstOff + 18 * b;
      // The signed value of largest magnitude, the first one on ties; an all-zero block keeps C's initial
      // max = +0 (so d = -0) whatever the zeros' signs.
      const at = amaxIndex(bits, base + o, 32);
      if (at >= 0 && (bits[base + o + at] & 0x7fffffff) >= 0x7f800000) {
        throwNonFinite('q4_0', src, o, 32, srcOff, row);
      }
      const max = at < 0 ? 0 : src[o + at];
      const d = fround(max / -8);
      const id = d !== 0 ? fround(1 / d) : 0;
      const h = fp32ToFp16(d);
      dst[q] = h & 0xff;
      dst[q + 1] = h >>> 8;
      // (int8_t)(x*id + 8.5f): f32 multiply, f32 add, truncate. The sum is in (0, 17): | 0 truncates.
      if (w16 !== undefined) {
        const w = (dstBase + q + 2) >> 1;
        for (let j = 0; j < 16; j += 2) {
          let a = fround(fround(src[o + j] * id) + 8.5) | 0;
          let c = fround(fround(src[o + j + 16] * id) + 8.5) | 0;
          let e = fround(fround(src[o + j + 1] * id) + 8.5) | 0;
          let f = fround(fround(src[o + j + 17] * id) + 8.5) | 0;
          a = a < 15 ? a : 15;
          c = c < 15 ? c : 15;
          e = e < 15 ? e : 15;
          f = f < 15 ? f : 15;
          w16[w + (j >> 1)] = a | (c << 4) | (e << 8) | (f << 12);
        }
      } else {
        for (let j = 0; j < 16; j++) {
          const a = fround(fround(src[o + j] * id) + 8.5) | 0;
          const c = fround(fround(src[o + j + 16] * id) + 8.5) | 0;
          dst[q + 2 + j] = (a < 15 ? a : 15) | ((c < 15 ? c : 15) << 4);
        }
      }
    }
  },
  dequantizeBlocks(src, srcOff, dst, dstOff, nBlocks) {
    const half = fp16Table();
    if ((src.byteOffset + srcOff) % 2 === 0) {
      // Aligned: read the 16 quant bytes as 8 little-endian u16 words (bytes j, j+1 -> elements j, j+1 and
      // j+16, j+17), four words per step.
      const w16 = u16Of(src.buffer);
      const w0 = (src.byteOffset + srcOff) >> 1;
      for (let b = 0; b < nBlocks; b++) {
        let w = w0 + 9 * b;
        const d = half[w16[w++]];
        let k = dstOff + 32 * b;
        for (let step = 0; step < 2; step++, w += 4, k += 8) {
          const x = w16[w];
          const y = w16[w + 1];
          const z = w16[w + 2];
          const t = w16[w + 3];
          dst[k] = ((x & 15) - 8) * d;
          dst[k + 1] = (((x >> 8) & 15) - 8) * d;
          dst[k + 2] = ((y & 15) - 8) * d;
          dst[k + 3] = (((y >> 8) & 15) - 8) * d;
          dst[k + 4] = ((z & 15) - 8) * d;
          dst[k + 5] = (((z >> 8) & 15) - 8) * d;
          dst[k + 6] = ((t & 15) - 8) * d;
          dst[k + 7] = (((t >> 8) & 15) - 8) * d;
          dst[k + 16] = (((x >> 4) & 15) - 8) * d;
          dst[k + 17] = ((x >> 12) - 8) * d;
          dst[k + 18] = (((y >> 4) & 15) - 8) * d;
          dst[k + 19] = ((y >> 12) - 8) * d;
          dst[k + 20] = (((z >> 4) & 15) - 8) * d;
          dst[k + 21] = ((z >> 12) - 8) * d;
          dst[k + 22] = (((t >> 4) & 15) - 8) * d;
          dst[k + 23] = ((t >> 12) - 8) * d;
        }
      }
      return;
    }
    for (let b = 0; b < nBlocks; b++) {
      const q = srcOff + 18 * b;
      const d = half[src[q] | (src[q + 1] << 8)];
      const o = dstOff + 32 * b;
      for (let j = 0; j < 16; j++) {
        const byte = src[q + 2 + j];
        dst[o + j] = ((byte & 15) - 8) * d;
        dst[o + j + 16] = ((byte >>> 4) - 8) * d;
      }
    }
  },
});
