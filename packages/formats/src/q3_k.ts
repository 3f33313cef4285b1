/**
 * Q3_K (spec §3.11): `{ u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d }` = 110 bytes per 256 values. Sixteen
 * sub-blocks of 16 with signed 6-bit scales; value = d·(S−32)·(L−4), L in [0, 7]. The low 2 bits of L are packed
 * like Q2_K; bit 2 of element e is `hmask[e % 32]` bit `e / 32`.
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';
import { fp16Table, fp32ToFp16 } from './half.js';
import { checkImportance, imatrixWeights, makeQ3Quants, makeQxQuants, nint, sumSquares } from './search.js';

// The CPU kernels read the fp16 table through a module constant (faster in their loops than one fetched per call).
const kernelHalf = /* @__PURE__ */ fp16Table();

const fround = Math.fround;

const L = new Uint8Array(256);
const Ls = new Uint8Array(16);
const scales = new Float32Array(16);
const weights = new Float32Array(16);
const sw = new Float32Array(16);

/** Scale j's stored 6-bit value (0..63) from the 12 packed bytes at `q[o..)`. */
function scale6(q: Uint8Array, o: number, j: number): number {
  const lo = j < 8 ? q[o + j] & 15 : q[o + j - 8] >> 4;
  return lo | (((q[o + 8 + (j & 3)] >> (2 * (j >> 2))) & 3) << 4);
}

/** Packs sixteen 6-bit values `l` (0..63) into the 12 scale bytes at `dst[o..)`. */
function packScales(dst: Uint8Array, o: number, j: number, l: number): void {
  if (j < 8) dst[o + j] = l & 15;
  else dst[o + j - 8] |= (l & 15) << 4;
  dst[o + 8 + (j & 3)] |= (l >> 4) << (2 * (j >> 2));
}

/** Re-derives L from the stored scales, then writes hmask and qs (both ggml paths end this way). */
function requantizeAndPack(x: Float32Array, o: number, dst: Uint8Array, q: number): void {
  const d = fp16Table()[dst[q + 108] | (dst[q + 109] << 8)];
  for (let j = 0; j < 16; j++) {
    const dj = fround(d * (scale6(dst, q + 96, j) - 32));
    if (dj === 0) continue;
    for (let i = 0; i < 16; i++) {
      const l = nint(fround(x[o + 16 * j + i] / dj));
      L[16 * j + i] = (l < -4 ? -4 : l > 3 ? 3 : l) + 4;
    }
  }
  for (let m = 0; m < 32; m++) dst[q + m] = 0;
  for (let e = 0; e < 256; e++) {
    if (L[e] > 3) {
      dst[q + (e & 31)] |= 1 << (e >> 5);
      L[e] -= 4;
    }
  }
  for (let h = 0; h < 2; h++) {
    for (let l = 0; l < 32; l++) {
      const e = 128 * h + l;
      dst[q + 32 + 32 * h + l] = L[e] | (L[e + 32] << 2) | (L[e + 64] << 4) | (L[e + 96] << 6);
    }
  }
}

function blockRef(x: Float32Array, o: number, dst: Uint8Array, q: number): void {
  let maxScale = 0;
  let amax = 0;
  for (let j = 0; j < 16; j++) {
    scales[j] = makeQ3Quants(16, 4, x, o + 16 * j, L, 16 * j);
    const a = Math.abs(scales[j]);
    if (a > amax) {
      amax = a;
      maxScale = scales[j];
    }
  }
  for (let k = 0; k < 12; k++) dst[q + 96 + k] = 0;
  let h: number;
  if (maxScale !== 0) {
    const iscale = fround(-32 / maxScale);
    for (let j = 0; j < 16; j++) {
      let l = (nint(fround(iscale * scales[j])) << 24) >> 24; // int8_t
      l = (l < -32 ? -32 : l > 31 ? 31 : l) + 32;
      packScales(dst, q + 96, j, l);
    }
    h = fp32ToFp16(fround(1 / iscale));
  } else {
    h = fp32ToFp16(0);
  }
  dst[q + 108] = h & 0xff;
  dst[q + 109] = h >>> 8;
  requantizeAndPack(x, o, dst, q);
}

function blockImatrix(x: Float32Array, o: number, qw: Float32Array, qo: number, dst: Uint8Array, q: number): void {
  const sigma2 = fround(fround(2 * sumSquares(x, o, 256)) / 256);
  for (let j = 0; j < 16; j++) {
    imatrixWeights(16, x, o + 16 * j, qw, qo + 16 * j, sigma2, weights);
    let s = 0;
    for (let l = 0; l < 16; l++) s = fround(s + weights[l]);
    sw[j] = s;
    scales[j] = makeQxQuants(16, 4, x, o + 16 * j, L, 16 * j, weights, 0);
  }
  for (let k = 0; k < 12; k++) dst[q + 96 + k] = 0;
  const dBlock = makeQxQuants(16, 32, scales, 0, Ls, 0, sw, 0);
  for (let j = 0; j < 16; j++) packScales(dst, q + 96, j, Ls[j]);
  const h = fp32ToFp16(dBlock);
  dst[q + 108] = h & 0xff;
  dst[q + 109] = h >>> 8;
  requantizeAndPack(x, o, dst, q);
}

/** Q3_K's signed 6-bit scale of sub-block j (stored as S + 32). */
function q3kScale(w: Uint8Array, sc: number, j: number): number {
  const lo = j < 8 ? w[sc + j] & 15 : w[sc + j - 8] >>> 4;
  const hi = (w[sc + 8 + (j & 3)] >>> (2 * (j >>> 2))) & 3;
  return (lo | (hi << 4)) - 32;
}

/**
 * Q3_K weights times f32 activations: element e = 128h + 32s + l has its low bits in qs[32h + l] at 2s and its high
 * bit in hmask[l] at 4h + s; d·Σ scale·Σ q·x over the sixteen sub-blocks.
 */
function dot(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 256; b++) {
    const q = off + 110 * b;
    let sb = 0;
    for (let h = 0; h < 2; h++) {
      for (let s4 = 0; s4 < 4; s4++) {
        const shift = 2 * s4;
        const hbit = 4 * h + s4;
        for (let half16 = 0; half16 < 2; half16++) {
          const e0 = 128 * h + 32 * s4 + 16 * half16;
          const o = xOff + 256 * b + e0;
          let acc = 0;
          for (let i = 0; i < 16; i++) {
            const l = 16 * half16 + i;
            acc += (((w[q + 32 + 32 * h + l] >>> shift) & 3) + 4 * ((w[q + l] >>> hbit) & 1) - 4) * x[o + i];
          }
          sb += q3kScale(w, q + 96, e0 >>> 4) * acc;
        }
      }
    }
    sum += kernelHalf[w[q + 108] | (w[q + 109] << 8)] * sb;
  }
  return sum;
}

/**
 * Q3_K: |error| <= amax/3 of the 256-value block (typically |d·(S−32)|/2 inside a sub-block).
 *
 * @example
 * ```ts
 * import { q3_K } from '@nibble/formats/q3_k';
 * const bytes = q3_K.quantize(new Float32Array(256).fill(0.5)); // 110 bytes
 * const back = q3_K.dequantize(bytes);
 * ```
 */
export const q3_K: Codec = /* @__PURE__ */ defineCodec({
  name: 'q3_K',
  errorBound: '|error| <= amax/3 of its 256-value block (typically amax/8 of the 16-value sub-block)',
  importance: 'used',
  scaleOffsets: [108],
  kernels: { dot },
  quantizeRow(src, srcOff, n, dst, dstOff, row, importance) {
    if (importance && row === 0) checkImportance('q3_K', importance);
    for (let b = 0; b < n / 256; b++) {
      const o = srcOff + 256 * b;
      let sum = 0;
      for (let j = 0; j < 256; j++) sum += src[o + j];
      if (!Number.isFinite(sum)) throwNonFinite('q3_K', src, o, 256, srcOff, row);
      if (importance) blockImatrix(src, o, importance, 256 * b, dst, dstOff + 110 * b);
      else blockRef(src, o, dst, dstOff + 110 * b);
    }
  },
  // Element e = 128h + 32s + l: low bits in qs[32h + l] at 2s, high bit in hmask[l] at 4h + s; one 16-element
  // sub-block at a time (measured a few percent faster than ggml's loop order; the same floats, dl·q is exact).
  dequantizeBlocks(src, srcOff, dst, dstOff, nBlocks) {
    const half = fp16Table();
    for (let b = 0; b < nBlocks; b++) {
      const q = srcOff + 110 * b;
      const d = half[src[q + 108] | (src[q + 109] << 8)];
      for (let h = 0; h < 2; h++) {
        for (let s4 = 0; s4 < 4; s4++) {
          const shift = 2 * s4;
          const hbit = 4 * h + s4;
          for (let half16 = 0; half16 < 2; half16++) {
            const e0 = 128 * h + 32 * s4 + 16 * half16;
            const dl = d * q3kScale(src, q + 96, e0 >>> 4);
            const o = dstOff + 256 * b + e0;
            for (let i = 0; i < 16; i++) {
              const l = 16 * half16 + i;
              dst[o + i] = dl * (((src[q + 32 + 32 * h + l] >>> shift) & 3) + 4 * ((src[q + l] >>> hbit) & 1) - 4);
            }
          }
        }
      }
    }
  },
});
