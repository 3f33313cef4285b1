/**
 * Q1_0 (spec §3.20, ggml type 41): `{ f16 d; u8 qs[16] }` = 18 bytes per 128 values, one sign bit per value and
 * the block's mean magnitude: value = +d where bit j (LSB first in byte j/8) is set, else −d, with d = mean |x|
 * (`quantize_row_q1_0_ref`; ggml ignores the imatrix for it).
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';
import { fp16Table, fp32ToFp16 } from './half.js';

const fround = Math.fround;

/**
 * Q1_0: |error| = | |x| − d | per element, d = mean |x| of its 128-value block (+ fp16 rounding of d).
 *
 * @example
 * ```ts
 * import { q1_0 } from '@nibble/formats/q1_0';
 * const bytes = q1_0.quantize(new Float32Array(128).fill(-0.5)); // 18 bytes: d = 0.5, every sign bit clear
 * const back = q1_0.dequantize(bytes);                            // 128 x -0.5
 * ```
 */
export const q1_0: Codec = /* @__PURE__ */ defineCodec({
  name: 'q1_0',
  errorBound: '|error| <= max(amax - d, d) per element, d = mean |x| of its 128-value block (+ fp16 rounding of d)',
  importance: 'ignored',
  scaleOffsets: [0],
  quantizeRow(src, srcOff, n, dst, dstOff, row) {
    for (let b = 0; b < n / 128; b++) {
      const o = srcOff + 128 * b;
      const q = dstOff + 18 * b;
      // C sums |x| in float, in index order, then divides by 128 in float.
      let sumAbs = 0;
      for (let j = 0; j < 128; j++) sumAbs = fround(sumAbs + Math.abs(src[o + j]));
      if (!Number.isFinite(sumAbs)) throwNonFinite('q1_0', src, o, 128, srcOff, row);
      const h = fp32ToFp16(fround(sumAbs / 128));
      dst[q] = h & 0xff;
      dst[q + 1] = h >>> 8;
      for (let k = 0; k < 16; k++) {
        let byte = 0;
        for (let i = 0; i < 8; i++) if (src[o + 8 * k + i] >= 0) byte |= 1 << i;
        dst[q + 2 + k] = byte;
      }
    }
  },
  dequantizeBlocks(src, srcOff, dst, dstOff, nBlocks) {
    const half = fp16Table();
    for (let b = 0; b < nBlocks; b++) {
      const q = srcOff + 18 * b;
      const d = half[src[q] | (src[q + 1] << 8)];
      const y = dstOff + 128 * b;
      for (let k = 0; k < 16; k++) {
        const byte = src[q + 2 + k];
        for (let i = 0; i < 8; i++) dst[y + 8 * k + i] = (byte >> i) & 1 ? d : -d;
      }
    }
  },
});
