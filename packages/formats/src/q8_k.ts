/**
 * Q8_K (spec §3.8): `{ f32 d; i8 qs[256]; i16 bsums[16] }` = 292 bytes per 256 values, the activation format
 * of the K-quant dot products. value = d·q; `bsums[g]` is the sum of the 16 quants of group g. The scale is a
 * binary32 `1/iscale` with `iscale = -127/max`, so the signed largest element becomes -127.
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';
import { nint } from './search.js';

const fround = Math.fround;
const f32 = new Float32Array(1);
const u8 = new Uint8Array(f32.buffer);

/**
 * Q8_K: |error| <= amax/250 per block of 256 (d/2 = amax/254 plus binary32 rounding of the scale).
 *
 * @example
 * ```ts
 * import { q8_K } from '@nibble/formats/q8_k';
 * const bytes = q8_K.quantize(new Float32Array(256).fill(0.5)); // 292 bytes: f32 d, 256 int8, 16 int16 sums
 * const back = q8_K.dequantize(bytes);
 * ```
 */
export const q8_K: Codec = /* @__PURE__ */ defineCodec({
  name: 'q8_K',
  errorBound: '|error| <= amax/250 per 256-value block',
  importance: 'ignored',
  quantizeRow(src, srcOff, n, dst, dstOff, row) {
    for (let b = 0; b < n / 256; b++) {
      const o = srcOff + 256 * b;
      const q = dstOff + 292 * b;
      let max = 0;
      let amax = 0;
      let sum = 0;
      for (let j = 0; j < 256; j++) {
        const v = src[o + j];
        sum += v;
        const a = Math.abs(v);
        if (a > amax) {
          amax = a;
          max = v;
        }
      }
      if (!Number.isFinite(sum)) throwNonFinite('q8_K', src, o, 256, srcOff, row);
      if (amax === 0) {
        // ggml leaves bsums unwritten here; we write zeros.
        for (let k = 0; k < 292; k++) dst[q + k] = 0;
        continue;
      }
      const iscale = fround(-127 / max);
      for (let j = 0; j < 256; j++) {
        const v = nint(fround(iscale * src[o + j]));
        dst[q + 4 + j] = (v < 127 ? v : 127) & 0xff;
      }
      for (let g = 0; g < 16; g++) {
        let s = 0;
        for (let i = 0; i < 16; i++) s += (dst[q + 4 + 16 * g + i] << 24) >> 24;
        dst[q + 260 + 2 * g] = s & 0xff;
        dst[q + 261 + 2 * g] = (s >> 8) & 0xff;
      }
      f32[0] = 1 / iscale;
      dst[q] = u8[0];
      dst[q + 1] = u8[1];
      dst[q + 2] = u8[2];
      dst[q + 3] = u8[3];
    }
  },
  dequantizeBlocks(src, srcOff, dst, dstOff, nBlocks) {
    for (let b = 0; b < nBlocks; b++) {
      const q = srcOff + 292 * b;
      u8[0] = src[q];
      u8[1] = src[q + 1];
      u8[2] = src[q + 2];
      u8[3] = src[q + 3];
      const d = f32[0];
      const y = dstOff + 256 * b;
      for (let j = 0; j < 256; j++) dst[y + j] = d * ((src[q + 4 + j] << 24) >> 24);
    }
  },
});
