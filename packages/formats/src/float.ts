/**
 * The plain float formats: F32 (copy), F16 and BF16 (ggml's rounding, spec §1.2-§1.3). They store NaN and ±Inf
 * as ggml does, so their quantizers never throw on values.
 */
import { type Codec, defineCodec } from './codec.js';
import { bf16ToFp32, fp16Table, fp32ToBf16, fp32ToFp16 } from './half.js';

/** IEEE binary32, stored little-endian. Lossless. */
export const f32: Codec = /* @__PURE__ */ defineCodec('f32', 'exact', {
  quantizeRow(src, srcOff, n, dst, dstOff) {
    const view = new DataView(dst.buffer, dst.byteOffset + dstOff, n * 4);
    for (let i = 0; i < n; i++) view.setFloat32(i * 4, src[srcOff + i], true);
  },
  dequantizeBlocks(src, srcOff, dst, dstOff, n) {
    const view = new DataView(src.buffer, src.byteOffset + srcOff, n * 4);
    for (let i = 0; i < n; i++) dst[dstOff + i] = view.getFloat32(i * 4, true);
  },
});

/** IEEE binary16, round-to-nearest-even. Relative error <= 2^-11 for normal halves; |x| >= 65520 becomes ±Inf. */
export const f16: Codec = /* @__PURE__ */ defineCodec(
  'f16',
  'relative error <= 2^-11 in the normal range (|x| >= 2^-14), absolute <= 2^-25 below; |x| >= 65520 becomes ±Inf',
  {
    quantizeRow(src, srcOff, n, dst, dstOff) {
      for (let i = 0; i < n; i++) {
        const h = fp32ToFp16(src[srcOff + i]);
        dst[dstOff + 2 * i] = h & 0xff;
        dst[dstOff + 2 * i + 1] = h >>> 8;
      }
    },
    dequantizeBlocks(src, srcOff, dst, dstOff, n) {
      const table = fp16Table();
      for (let i = 0; i < n; i++) dst[dstOff + i] = table[src[srcOff + 2 * i] | (src[srcOff + 2 * i + 1] << 8)];
    },
  },
);

/** bfloat16 (the top half of binary32), round-to-nearest-even. Relative error <= 2^-8. */
export const bf16: Codec = /* @__PURE__ */ defineCodec('bf16', 'relative error <= 2^-8 (2^-9 for normal values)', {
  quantizeRow(src, srcOff, n, dst, dstOff) {
    for (let i = 0; i < n; i++) {
      const b = fp32ToBf16(src[srcOff + i]);
      dst[dstOff + 2 * i] = b & 0xff;
      dst[dstOff + 2 * i + 1] = b >>> 8;
    }
  },
  dequantizeBlocks(src, srcOff, dst, dstOff, n) {
    for (let i = 0; i < n; i++) dst[dstOff + i] = bf16ToFp32(src[srcOff + 2 * i] | (src[srcOff + 2 * i + 1] << 8));
  },
});
