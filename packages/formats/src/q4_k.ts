/**
 * Q4_K (spec §3.12): `{ f16 d; f16 dmin; u8 scales[12]; u8 qs[128] }` = 144 bytes per 256 values. Eight
 * sub-blocks of 32 with 6-bit scales and mins; value = d·sc·q − dmin·m, q in [0, 15]. Element e sits in
 * `qs[32·(e/64) + e%32]`, low nibble when `e%64 < 32`.
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';
import { fp16Table } from './half.js';
import { checkImportance, kBlockScales, scaleMinK4 } from './search.js';
import { u32Of } from './views.js';

// The CPU kernels read the fp16 table through a module constant (faster in their loops than one fetched per call).
const kernelHalf = /* @__PURE__ */ fp16Table();

const fround = Math.fround;

const L = new Uint8Array(256);

/** Q4_K/Q5_K 6-bit scale of sub-block j, packed as `get_scale_min_k4` reads it. */
function kScale(w: Uint8Array, s: number, j: number): number {
  return j < 4 ? w[s + j] & 63 : (w[s + j + 4] & 15) | ((w[s + j - 4] >>> 6) << 4);
}
/** Q4_K/Q5_K 6-bit min of sub-block j. */
function kMin(w: Uint8Array, s: number, j: number): number {
  return j < 4 ? w[s + j + 4] & 63 : (w[s + j + 4] >>> 4) | ((w[s + j] >>> 6) << 4);
}

/** Q4_K weights times f32 activations: d·Σ sc·Σ q·x − dmin·Σ m·Σ x over the eight 32-element sub-blocks. */
function dot(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 256; b++) {
    const q = off + 144 * b;
    const d = kernelHalf[w[q] | (w[q + 1] << 8)];
    const dmin = kernelHalf[w[q + 2] | (w[q + 3] << 8)];
    let sq = 0;
    let sm = 0;
    for (let c = 0; c < 4; c++) {
      const o = xOff + 256 * b + 64 * c;
      const qs = q + 16 + 32 * c;
      let lo = 0;
      let hi = 0;
      let sxl = 0;
      let sxh = 0;
      for (let l = 0; l < 32; l++) {
        const byte = w[qs + l];
        const a = x[o + l];
        const e = x[o + 32 + l];
        lo += (byte & 15) * a;
        hi += (byte >>> 4) * e;
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
 * Q4_K: |error| <= (max-min)/15 of the 256-value block (typically range/30 of the 32-value sub-block).
 *
 * @example
 * ```ts
 * import { q4_K } from '@nibble/formats/q4_k';
 * const bytes = q4_K.quantize(new Float32Array(512).fill(0.5), { rowLength: 256 }); // 2 rows x 144 bytes
 * const back = q4_K.dequantize(bytes);
 * ```
 */
export const q4_K: Codec = /* @__PURE__ */ defineCodec({
  name: 'q4_K',
  errorBound: '|error| <= (max-min)/15 of its 256-value block (typically range/30 of the 32-value sub-block)',
  importance: 'used',
  scaleOffsets: [0, 2],
  kernels: { dot },
  quantizeRow(src, srcOff, n, dst, dstOff, row, importance) {
    if (importance && row === 0) checkImportance('q4_K', importance);
    for (let b = 0; b < n / 256; b++) {
      const o = srcOff + 256 * b;
      const q = dstOff + 144 * b;
      let sum = 0;
      for (let j = 0; j < 256; j++) sum += src[o + j];
      if (!Number.isFinite(sum)) throwNonFinite('q4_K', src, o, 256, srcOff, row);
      kBlockScales(15, src, o, importance, 256 * b, dst, q, L);
      for (let c = 0; c < 4; c++) {
        for (let l = 0; l < 32; l++) dst[q + 16 + 32 * c + l] = L[64 * c + l] | (L[64 * c + 32 + l] << 4);
      }
    }
  },
  dequantizeBlocks(src, srcOff, dst, dstOff, nBlocks) {
    const half = fp16Table();
    // Blocks are 144 bytes and the quants start 16 bytes in: with a 4-aligned start they are u32 words.
    const srcBase = src.byteOffset;
    const w32 = (srcBase + srcOff) % 4 === 0 ? u32Of(src.buffer) : undefined;
    for (let b = 0; b < nBlocks; b++) {
      const q = srcOff + 144 * b;
      const d = half[src[q] | (src[q + 1] << 8)];
      const dmin = half[src[q + 2] | (src[q + 3] << 8)];
      const y = dstOff + 256 * b;
      for (let c = 0; c < 4; c++) {
        const s1 = scaleMinK4(2 * c, src, q + 4);
        const s2 = scaleMinK4(2 * c + 1, src, q + 4);
        const d1 = fround(d * (s1 & 0xff));
        const m1 = fround(dmin * (s1 >> 8));
        const d2 = fround(d * (s2 & 0xff));
        const m2 = fround(dmin * (s2 >> 8));
        const qs = q + 16 + 32 * c;
        const yo = y + 64 * c;
        // d·sc·q is exact in binary32 (<= 21 bits, spec §1.6): the store rounds the difference once.
        if (w32 !== undefined) {
          const w = (srcBase + qs) >> 2;
          for (let l = 0; l < 32; l += 4) {
            const x = w32[w + (l >> 2)];
            dst[yo + l] = d1 * (x & 15) - m1;
            dst[yo + l + 1] = d1 * ((x >>> 8) & 15) - m1;
            dst[yo + l + 2] = d1 * ((x >>> 16) & 15) - m1;
            dst[yo + l + 3] = d1 * ((x >>> 24) & 15) - m1;
            dst[yo + 32 + l] = d2 * ((x >>> 4) & 15) - m2;
            dst[yo + 33 + l] = d2 * ((x >>> 12) & 15) - m2;
            dst[yo + 34 + l] = d2 * ((x >>> 20) & 15) - m2;
            dst[yo + 35 + l] = d2 * (x >>> 28) - m2;
          }
        } else {
          for (let l = 0; l < 32; l++) {
            dst[yo + l] = d1 * (src[qs + l] & 15) - m1;
            dst[yo + 32 + l] = d2 * (src[qs + l] >> 4) - m2;
          }
        }
      }
    }
  },
});
