/**
 * MXFP4 (spec §3.19): `{ u8 e; u8 qs[16] }` = 17 bytes per 32 values, the OCP microscaling FP4 format: E2M1
 * elements (stored doubled in `kvalues_mxfp4`) times a shared E8M0 scale, value = kv[nibble]·2^(e−128).
 * Nibbles are packed as in Q4_0 (element j low, j+16 high). ggml ignores the imatrix for it, and so do we.
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';

const fround = Math.fround;

/** `kvalues_mxfp4`: the E2M1 values doubled (index 8 is −0, which reads as 0). */
const KV = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** `GGML_E8M0_TO_FP32_HALF(e)` = 2^(e−128), subnormal for e < 2. */
function e8m0Half(e: number): number {
  u32[0] = e < 2 ? 0x00200000 << e : (e - 1) << 23;
  return f32[0];
}

/** Nearest of the 16 grid values to x, first minimum wins (`best_index_mxfp4`). */
function bestIndex(x: number, d: number): number {
  let best = 0;
  let bestErr = Math.abs(fround(KV[0] * d - x));
  for (let i = 1; i < 16; i++) {
    const err = Math.abs(fround(fround(KV[i] * d) - x));
    if (err < bestErr) {
      best = i;
      bestErr = err;
    }
  }
  return best;
}

/**
 * MXFP4: |error| <= half the E2M1 grid gap at the element's magnitude, at most amax/4 (clipping above 12·d).
 *
 * @example
 * ```ts
 * import { mxfp4 } from '@nibble/formats/mxfp4';
 * const bytes = mxfp4.quantize(new Float32Array(32).fill(3)); // 17 bytes: E8M0 exponent + 16 nibble bytes
 * const back = mxfp4.dequantize(bytes);
 * ```
 */
export const mxfp4: Codec = /* @__PURE__ */ defineCodec(
  'mxfp4',
  '|error| <= amax/4 per 32-value block (E2M1 grid gaps and clipping at 12·d)',
  {
    quantizeRow(src, srcOff, n, dst, dstOff, row) {
      for (let b = 0; b < n / 32; b++) {
        const o = srcOff + 32 * b;
        const q = dstOff + 17 * b;
        let amax = 0;
        let sum = 0;
        for (let j = 0; j < 32; j++) {
          const v = src[o + j];
          sum += v;
          if (amax < Math.abs(v)) amax = Math.abs(v);
        }
        if (!Number.isFinite(sum)) throwNonFinite('mxfp4', src, o, 32, srcOff, row);
        // log2f is single precision: just below a power of two it rounds up to the integer (spec §3.19).
        const e = amax > 0 ? (Math.floor(fround(Math.log2(amax))) - 2 + 127) & 0xff : 0;
        const d = e8m0Half(e);
        dst[q] = e;
        for (let j = 0; j < 16; j++) dst[q + 1 + j] = bestIndex(src[o + j], d) | (bestIndex(src[o + j + 16], d) << 4);
      }
    },
    dequantizeBlocks(src, srcOff, dst, dstOff, nBlocks) {
      for (let b = 0; b < nBlocks; b++) {
        const q = srcOff + 17 * b;
        const d = e8m0Half(src[q]);
        const y = dstOff + 32 * b;
        for (let j = 0; j < 16; j++) {
          const byte = src[q + 1 + j];
          dst[y + j] = KV[byte & 15] * d;
          dst[y + j + 16] = KV[byte >> 4] * d;
        }
      }
    },
  },
);
