/**
 * Q5_K (spec §3.13): `{ f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] }` = 176 bytes per 256 values.
 * As Q4_K with q in [0, 31]: the low nibbles sit as in Q4_K, and element `64c + l` (`64c + 32 + l`) keeps its
 * fifth bit in `qh[l]` bit `2c` (`2c + 1`).
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';
import { fp16Table } from './half.js';
import { checkImportance, kBlockScales } from './search.js';

// The CPU kernels read the fp16 table through a module constant (faster in their loops than one fetched per call).
const kernelHalf = /* @__PURE__ */ fp16Table();

const L = new Uint8Array(256);

/** Q4_K/Q5_K 6-bit scale of sub-block j, packed as `get_scale_min_k4` reads it. */
function kScale(w: Uint8Array, s: number, j: number): number {
  return j < 4 ? w[s + j] & 63 : (w[s + j + 4] & 15) | ((w[s + j - 4] >>> 6) << 4);
}
/** Q4_K/Q5_K 6-bit min of sub-block j. */
function kMin(w: Uint8Array, s: number, j: number): number {
  return j < 4 ? w[s + j + 4] & 63 : (w[s + j + 4] >>> 4) | ((w[s + j] >>> 6) << 4);
}

/** Q5_K weights times f32 activations: as Q4_K, with each quant's fifth bit from qh. */
function dot(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 256; b++) {
    const q = off + 176 * b;
    const d = kernelHalf[w[q] | (w[q + 1] << 8)];
    const dmin = kernelHalf[w[q + 2] | (w[q + 3] << 8)];
    let sq = 0;
    let sm = 0;
    for (let c = 0; c < 4; c++) {
      const o = xOff + 256 * b + 64 * c;
      const qs = q + 48 + 32 * c;
      const bl = 2 * c;
      let lo = 0;
      let hi = 0;
      let sxl = 0;
      let sxh = 0;
      for (let l = 0; l < 32; l++) {
        const byte = w[qs + l];
        const qh = w[q + 16 + l] >>> bl;
        const a = x[o + l];
        const e = x[o + 32 + l];
        lo += ((byte & 15) | ((qh & 1) << 4)) * a;
        hi += ((byte >>> 4) | ((qh & 2) << 3)) * e;
        sxl += a;
        sxh += e;
      }
      sq += kScale(w, q + 4, 2 * c) * lo + kScale(w, q + 4, 2 * c + 1) * hi;
      sm += kMin(w, q + 4, 2 * c) * sxl + kMin(w, q + 4, 2 * c + 1) * sxh;
    }
    sum += d * sq - dmin * sm;
  }
  return sum;
}

/**
 * Q5_K: |error| <= (max-min)/24 of the 256-value block (typically range/62 of the 32-value sub-block).
 *
 * @example
 * ```ts
 * import { q5_K } from '@nibble/formats/q5_k';
 * const bytes = q5_K.quantize(new Float32Array(256).fill(0.5)); // 176 bytes
 * const back = q5_K.dequantize(bytes);
 * ```
 */
export const q5_K: Codec = /* @__PURE__ */ defineCodec({
  name: 'q5_K',
  errorBound: '|error| <= (max-min)/24 of its 256-value block (typically range/62 of the 32-value sub-block)',
  importance: 'used',
  scaleOffsets: [0, 2],
  kernels: { dot },
  quantizeRow(src, srcOff, n, dst, dstOff, row, importance) {
    if (importance && row === 0) checkImportance('q5_K', importance);
    for (let b = 0; b < n / 256; b++) {
      const o = srcOff + 256 * b;
      const q = dstOff + 176 * b;
      let sum = 0;
      for (let j = 0; j < 256; j++) sum += src[o + j];
      if (!Number.isFinite(sum)) throwNonFinite('q5_K', src, o, 256, srcOff, row);
      kBlockScales(31, src, o, importance, 256 * b, dst, q, L);
      for (let l = 0; l < 32; l++) dst[q + 16 + l] = 0;
      for (let c = 0; c < 4; c++) {
        for (let l = 0; l < 32; l++) {
          let l1 = L[64 * c + l];
          let l2 = L[64 * c + 32 + l];
          if (l1 > 15) {
            l1 -= 16;
            dst[q + 16 + l] |= 1 << (2 * c);
          }
          if (l2 > 15) {
            l2 -= 16;
            dst[q + 16 + l] |= 2 << (2 * c);
          }
          dst[q + 48 + 32 * c + l] = l1 | (l2 << 4);
        }
      }
    }
  },
  // d·sc·q is exact in binary32 (<= 22 bits, spec §1.6), and so in binary64: the store rounds d·sc·q − dmin·m once,
  // as ggml's float arithmetic does. (This order measured 15-20% faster than forming d·sc in binary32 first.)
  dequantizeBlocks(src, srcOff, dst, dstOff, nBlocks) {
    const half = fp16Table();
    for (let b = 0; b < nBlocks; b++) {
      const q = srcOff + 176 * b;
      const d = half[src[q] | (src[q + 1] << 8)];
      const dmin = half[src[q + 2] | (src[q + 3] << 8)];
      for (let c = 0; c < 4; c++) {
        const dl = d * kScale(src, q + 4, 2 * c);
        const ml = dmin * kMin(src, q + 4, 2 * c);
        const dh = d * kScale(src, q + 4, 2 * c + 1);
        const mh = dmin * kMin(src, q + 4, 2 * c + 1);
        const o = dstOff + 256 * b + 64 * c;
        const qs = q + 48 + 32 * c;
        for (let l = 0; l < 32; l++) {
          const byte = src[qs + l];
          const qh = src[q + 16 + l];
          dst[o + l] = dl * ((byte & 15) | (((qh >>> (2 * c)) & 1) << 4)) - ml;
          dst[o + 32 + l] = dh * ((byte >>> 4) | (((qh >>> (2 * c + 1)) & 1) << 4)) - mh;
        }
      }
    }
  },
});
