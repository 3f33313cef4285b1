/**
 * MXFP4 (spec §3.19): `{ u8 e; u8 qs[16] }` = 17 bytes per 32 values, the OCP microscaling FP4 format: E2M1
 * elements (stored doubled in `kvalues_mxfp4`) times a shared E8M0 scale, value = kv[nibble]·2^(e−128).
 * Nibbles are packed as in Q4_0 (element j low, j+16 high). ggml ignores the imatrix for it, and so do we.
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';
import { lutBlock } from './lut.js';

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

/** The doubled E2M1 values and `e8m0_to_fp32_half` of every byte, as doubles for the CPU kernels. */
const gridValues = /* @__PURE__ */ Float64Array.from(KV);
const e8m0Table = /* @__PURE__ */ Float64Array.from({ length: 256 }, (_, e) => 2 ** (e - 128));

/** MXFP4 weights times f32 activations: 2^(e−128)·Σ kv[q]·x per block. */
function dot(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 17 * b;
    const o = xOff + 32 * b;
    let s = 0;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 1 + j];
      s += gridValues[byte & 15] * x[o + j] + gridValues[byte >>> 4] * x[o + j + 16];
    }
    sum += s * e8m0Table[w[q]];
  }
  return sum;
}

/** Through the nibble table of the activation row (built with the grid values, see lut.ts). */
function dotLut(w: Uint8Array, off: number, lut: Float32Array, _xsum: Float64Array, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 17 * b;
    sum += lutBlock(w, q + 1, lut, 4096 * b) * e8m0Table[w[q]];
  }
  return sum;
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
export const mxfp4: Codec = /* @__PURE__ */ defineCodec({
  name: 'mxfp4',
  errorBound: '|error| <= amax/4 per 32-value block (E2M1 grid gaps and clipping at 12·d)',
  importance: 'ignored',
  kernels: { dot, dotLut, lutValues: gridValues },
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
});
