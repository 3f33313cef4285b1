/**
 * Q4_0 (spec §3.2): `{ f16 d; u8 qs[16] }` = 18 bytes per 32 values, value = (q - 8) * d, q in [0, 15].
 * qs[j] holds element j in its low nibble and element j + 16 in its high nibble.
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';
import { fp16Table, fp32ToFp16 } from './half.js';
import { checkImportance, imatrixWeights, makeQxQuants, sumSquares } from './search.js';

const fround = Math.fround;

// Scratch of the imatrix path (one block at a time).
const L = new Uint8Array(32);
const weight = new Float32Array(32);

/**
 * The imatrix path of `ggml_quantize_chunk` (spec §3.21): `make_qx_quants(32, 8, x, L, 1, w)` per block with
 * `w = importance · sqrtf(sigma2 + x²)` and `sigma2` the mean square of the whole row.
 */
function quantizeRowImatrix(
  src: Float32Array,
  srcOff: number,
  n: number,
  dst: Uint8Array,
  dstOff: number,
  row: number,
  qw: Float32Array,
): void {
  if (row === 0) checkImportance('q4_0', qw);
  const sigma2 = fround(sumSquares(src, srcOff, n) / n);
  for (let b = 0; b < n / 32; b++) {
    const o = srcOff + 32 * b;
    const q = dstOff + 18 * b;
    let sum = 0;
    for (let j = 0; j < 32; j++) sum += src[o + j];
    if (!Number.isFinite(sum)) throwNonFinite('q4_0', src, o, 32, srcOff, row);
    imatrixWeights(32, src, o, qw, 32 * b, sigma2, weight);
    const h = fp32ToFp16(makeQxQuants(32, 8, src, o, L, 0, weight, 0));
    dst[q] = h & 0xff;
    dst[q + 1] = h >>> 8;
    for (let j = 0; j < 16; j++) dst[q + 2 + j] = L[j] | (L[j + 16] << 4);
  }
}

/** Q4_0: |error| <= |d|/2 per element inside the block's range, d = max/-8 (the -max end clamps to 7d). */
export const q4_0: Codec = /* @__PURE__ */ defineCodec('q4_0', '|error| <= amax/16 per element (amax/8 at -max)', {
  quantizeRow(src, srcOff, n, dst, dstOff, row, importance) {
    if (importance) return quantizeRowImatrix(src, srcOff, n, dst, dstOff, row, importance);
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
