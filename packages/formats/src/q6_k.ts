/**
 * Q6_K (spec §3.14): `{ u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d }` = 210 bytes per 256 values. Sixteen
 * sub-blocks of 16 with int8 scales; value = d·scale·(L−32), L in [0, 63]. For half h and l < 32 (ql' = ql+64h,
 * qh' = qh+32h): elements 128h+l, +32, +64, +96 take their low nibbles from ql'[l] low, ql'[l+32] low,
 * ql'[l] high, ql'[l+32] high, and their top 2 bits from qh'[l] bits 0-1, 2-3, 4-5, 6-7.
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';
import { fp16Table, fp32ToFp16 } from './half.js';
import { checkImportance, GROUP_MAX_EPS, makeQxQuants, nint } from './search.js';

// The CPU kernels read the fp16 table through a module constant (faster in their loops than one fetched per call).
const kernelHalf = /* @__PURE__ */ fp16Table();

const fround = Math.fround;

const L = new Uint8Array(256);
const scales = new Float32Array(16);

function block(x: Float32Array, o: number, qw: Float32Array | undefined, qo: number, dst: Uint8Array, q: number): void {
  let maxScale = 0;
  let maxAbs = 0;
  for (let ib = 0; ib < 16; ib++) {
    // The imatrix path passes the raw importance as weights (spec §3.21).
    const s = makeQxQuants(16, 32, x, o + 16 * ib, L, 16 * ib, qw, qo + 16 * ib);
    scales[ib] = s;
    const a = Math.abs(s);
    if (a > maxAbs) {
      maxAbs = a;
      maxScale = s;
    }
  }
  if (maxAbs < GROUP_MAX_EPS) {
    for (let k = 0; k < 210; k++) dst[q + k] = 0;
    return;
  }
  const iscale = fround(-128 / maxScale);
  const h = fp32ToFp16(fround(1 / iscale));
  dst[q + 208] = h & 0xff;
  dst[q + 209] = h >>> 8;
  for (let ib = 0; ib < 16; ib++) {
    const v = nint(fround(iscale * scales[ib]));
    dst[q + 192 + ib] = (v < 127 ? v : 127) & 0xff;
  }
  const d = fp16Table()[h];
  for (let j = 0; j < 16; j++) {
    const dj = fround(d * ((dst[q + 192 + j] << 24) >> 24));
    if (dj === 0) continue;
    for (let i = 0; i < 16; i++) {
      const l = nint(fround(x[o + 16 * j + i] / dj));
      L[16 * j + i] = (l < -32 ? -32 : l > 31 ? 31 : l) + 32;
    }
  }
  for (let hh = 0; hh < 2; hh++) {
    const ql = q + 64 * hh;
    const qh = q + 128 + 32 * hh;
    const e = 128 * hh;
    for (let l = 0; l < 32; l++) {
      const a = L[e + l];
      const b = L[e + l + 32];
      const c = L[e + l + 64];
      const dd = L[e + l + 96];
      dst[ql + l] = (a & 15) | ((c & 15) << 4);
      dst[ql + l + 32] = (b & 15) | ((dd & 15) << 4);
      dst[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((dd >> 4) << 6);
    }
  }
}

/** Q6_K weights times f32 activations: d·Σ scale·Σ (q − 32)·x, in runs of 16 that share a scale. */
function dot(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 256; b++) {
    const q = off + 210 * b;
    let sb = 0;
    for (let h = 0; h < 2; h++) {
      const ql = q + 64 * h;
      const qh = q + 128 + 32 * h;
      const sc = q + 192 + 8 * h;
      const o = xOff + 256 * b + 128 * h;
      for (let is = 0; is < 2; is++) {
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let l = 16 * is; l < 16 * is + 16; l++) {
          const a = w[ql + l];
          const c = w[ql + l + 32];
          const hb = w[qh + l];
          s0 += (((a & 15) | ((hb & 3) << 4)) - 32) * x[o + l];
          s1 += (((c & 15) | (((hb >>> 2) & 3) << 4)) - 32) * x[o + l + 32];
          s2 += (((a >>> 4) | (((hb >>> 4) & 3) << 4)) - 32) * x[o + l + 64];
          s3 += (((c >>> 4) | (((hb >>> 6) & 3) << 4)) - 32) * x[o + l + 96];
        }
        sb +=
          ((w[sc + is] << 24) >> 24) * s0 +
          ((w[sc + is + 2] << 24) >> 24) * s1 +
          ((w[sc + is + 4] << 24) >> 24) * s2 +
          ((w[sc + is + 6] << 24) >> 24) * s3;
      }
    }
    sum += kernelHalf[w[q + 208] | (w[q + 209] << 8)] * sb;
  }
  return sum;
}

/**
 * Q6_K: |error| <= amax/32 of the 256-value block (typically |d·scale|/2, about amax/64 of the sub-block).
 *
 * @example
 * ```ts
 * import { q6_K } from '@nibble/formats/q6_k';
 * const bytes = q6_K.quantize(new Float32Array(256).fill(0.5)); // 210 bytes
 * const back = q6_K.dequantize(bytes);
 * ```
 */
export const q6_K: Codec = /* @__PURE__ */ defineCodec({
  name: 'q6_K',
  errorBound: '|error| <= amax/32 of its 256-value block (typically amax/64 of the 16-value sub-block)',
  importance: 'used',
  scaleOffsets: [208],
  kernels: { dot },
  quantizeRow(src, srcOff, n, dst, dstOff, row, importance) {
    if (importance && row === 0) checkImportance('q6_K', importance);
    for (let b = 0; b < n / 256; b++) {
      const o = srcOff + 256 * b;
      let sum = 0;
      for (let j = 0; j < 256; j++) sum += src[o + j];
      if (!Number.isFinite(sum)) throwNonFinite('q6_K', src, o, 256, srcOff, row);
      block(src, o, importance, 256 * b, dst, dstOff + 210 * b);
    }
  },
  dequantizeBlocks(src, srcOff, dst, dstOff, nBlocks) {
    const half = fp16Table();
    for (let b = 0; b < nBlocks; b++) {
      const q = srcOff + 210 * b;
      const d = half[src[q + 208] | (src[q + 209] << 8)];
      for (let hh = 0; hh < 2; hh++) {
        const ql = q + 64 * hh;
        const qh = q + 128 + 32 * hh;
        const sc = q + 192 + 8 * hh;
        const y = dstOff + 256 * b + 128 * hh;
        // Sixteen elements share each of the eight scales of this half: form d·scale once per run of 16.
        for (let is = 0; is < 2; is++) {
          const s1 = fround(d * ((src[sc + is] << 24) >> 24));
          const s2 = fround(d * ((src[sc + is + 2] << 24) >> 24));
          const s3 = fround(d * ((src[sc + is + 4] << 24) >> 24));
          const s4 = fround(d * ((src[sc + is + 6] << 24) >> 24));
          for (let l = 16 * is; l < 16 * is + 16; l++) {
            const h = src[qh + l];
            const lo = src[ql + l];
            const hi = src[ql + l + 32];
            dst[y + l] = s1 * (((lo & 15) | ((h & 3) << 4)) - 32);
            dst[y + l + 32] = s2 * (((hi & 15) | ((h & 12) << 2)) - 32);
            dst[y + l + 64] = s3 * (((lo >> 4) | (h & 48)) - 32);
            dst[y + l + 96] = s4 * (((hi >> 4) | ((h >> 2) & 48)) - 32);
          }
        }
      }
    }
  },
});
