/**
 * Q4_0 (spec §3.2): `{ f16 d; u8 qs[16] }` = 18 bytes per 32 values, value = (q - 8) * d, q in [0, 15].
 * qs[j] holds element j in its low nibble and element j + 16 in its high nibble.
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';
import { fp16Table, fp32ToFp16 } from './half.js';

const fround = Math.fround;

/** Q4_0: |error| <= |d|/2 per element inside the block's range, d = max/-8 (the -max end clamps to 7d). */
export const q4_0: Codec = /* @__PURE__ */ defineCodec('q4_0', '|error| <= amax/16 per element (amax/8 at -max)', {
  quantizeRow(src, srcOff, n, dst, dstOff, row) {
    for (let b = 0; b < n / 32; b++) {
      const o = srcOff + 32 * b;
      const q = dstOff + 18 * b;
      // The signed value of largest magnitude; strict > keeps the first.
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
      if (!Number.isFinite(sum)) throwNonFinite('q4_0', src, o, 32, srcOff, row);
      const d = fround(max / -8);
      const id = d !== 0 ? fround(1 / d) : 0;
      const h = fp32ToFp16(d);
      dst[q] = h & 0xff;
      dst[q + 1] = h >>> 8;
      for (let j = 0; j < 16; j++) {
        // (int8_t)(x*id + 8.5f): f32 multiply, f32 add, truncate. NaN/Inf truncate to 0 as on x86.
        const a = fround(fround(src[o + j] * id) + 8.5) | 0;
        const c = fround(fround(src[o + j + 16] * id) + 8.5) | 0;
        dst[q + 2 + j] = (a < 15 ? a : 15) | ((c < 15 ? c : 15) << 4);
      }
    }
  },
  dequantizeBlocks(src, srcOff, dst, dstOff, nBlocks) {
    const half = fp16Table();
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
