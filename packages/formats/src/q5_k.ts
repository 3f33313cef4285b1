/**
 * Q5_K (spec §3.13): `{ f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] }` = 176 bytes per 256 values.
 * As Q4_K with q in [0, 31]: the low nibbles sit as in Q4_K, and element `64c + l` (`64c + 32 + l`) keeps its
 * fifth bit in `qh[l]` bit `2c` (`2c + 1`).
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';
import { fp16Table } from './half.js';
import { checkImportance, kBlockScales, scaleMinK4 } from './search.js';

const fround = Math.fround;
const L = new Uint8Array(256);

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
export const q5_K: Codec = /* @__PURE__ */ defineCodec(
  'q5_K',
  '|error| <= (max-min)/24 of its 256-value block (typically range/62 of the 32-value sub-block)',
  {
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
    dequantizeBlocks(src, srcOff, dst, dstOff, nBlocks) {
      const half = fp16Table();
      for (let b = 0; b < nBlocks; b++) {
        const q = srcOff + 176 * b;
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
          const qs = q + 48 + 32 * c;
          const yo = y + 64 * c;
          const b1 = 2 * c;
          const b2 = 2 * c + 1;
          for (let l = 0; l < 32; l++) {
            const h = src[q + 16 + l];
            // d·sc·q is exact in binary32 (<= 22 bits, spec §1.6): the store rounds the difference once.
            dst[yo + l] = d1 * ((src[qs + l] & 15) | (((h >> b1) & 1) << 4)) - m1;
            dst[yo + 32 + l] = d2 * ((src[qs + l] >> 4) | (((h >> b2) & 1) << 4)) - m2;
          }
        }
      }
    },
  },
);
