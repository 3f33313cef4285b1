/**
 * The plain float formats: F32 (copy), F16 and BF16 (ggml's rounding, spec §1.2-§1.3). They store NaN and ±Inf
 * as ggml does, so their quantizers never throw on values.
 */
import { type Codec, defineCodec } from './codec.js';
import { bf16ToFp32, fp16BitsTable, fp16Table, fp32ToBf16, fp32ToFp16 } from './half.js';
import { u16Of, u32Of } from './views.js';

/** IEEE binary32, stored little-endian. Lossless. */
export const f32: Codec = /* @__PURE__ */ defineCodec({
  name: 'f32',
  errorBound: 'exact',
  importance: 'ignored',
  quantizeRow(src, srcOff, n, dst, dstOff) {
    if ((dst.byteOffset + dstOff) % 4 === 0) {
      new Float32Array(dst.buffer, dst.byteOffset + dstOff, n).set(src.subarray(srcOff, srcOff + n));
      return;
    }
    const view = new DataView(dst.buffer, dst.byteOffset + dstOff, n * 4);
    for (let i = 0; i < n; i++) view.setFloat32(i * 4, src[srcOff + i], true);
  },
  dequantizeBlocks(src, srcOff, dst, dstOff, n) {
    if ((src.byteOffset + srcOff) % 4 === 0) {
      dst.set(new Float32Array(src.buffer, src.byteOffset + srcOff, n), dstOff);
      return;
    }
    const view = new DataView(src.buffer, src.byteOffset + srcOff, n * 4);
    for (let i = 0; i < n; i++) dst[dstOff + i] = view.getFloat32(i * 4, true);
  },
});

/**
 * Rounds binary32 bits to binary16 bits, round-to-nearest-even, like ggml. The common cases (normal halves, Inf,
 * NaN) are integer arithmetic on the bits; halves in the subnormal range take the general routine.
 */
function halfBits(w: number): number {
  const sign = (w >>> 16) & 0x8000;
  const abs = w & 0x7fffffff;
  if (abs >= 0x38800000) {
    if (abs >= 0x477ff000) return sign | (abs > 0x7f800000 ? 0x7e00 : 0x7c00); // NaN, or >= 65520 -> Inf
    // Rebias the exponent and round the 13 dropped bits to nearest even; a carry bumps the exponent correctly.
    return sign | ((abs - 0x38000000 + 0x0fff + ((abs >>> 13) & 1)) >>> 13);
  }
  return fp32ToFp16(fromBits(w));
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);
function fromBits(w: number): number {
  scratchBits[0] = w;
  return scratch[0];
}

// The kernels read the fp16 table through a module constant: measured 15-20% faster in their loops than a table
// fetched per call (the JIT can then treat it as fixed).
const half = /* @__PURE__ */ fp16Table();

/**
 * f16 weights (as 16-bit words from `wOff`) times f32 activations: four accumulators (elements i mod 4), summed as
 * (s0 + s1) + (s2 + s3).
 */
function dotU16(w: Uint16Array, wOff: number, x: Float32Array, xOff: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += half[w[wOff + i]] * x[xOff + i];
    s1 += half[w[wOff + i + 1]] * x[xOff + i + 1];
    s2 += half[w[wOff + i + 2]] * x[xOff + i + 2];
    s3 += half[w[wOff + i + 3]] * x[xOff + i + 3];
  }
  for (; i < n; i++) s0 += half[w[wOff + i]] * x[xOff + i];
  return s0 + s1 + (s2 + s3);
}

/** {@link dotU16} on the row's bytes at any address: the same sums in the same order. */
function dotF16(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  const at = w.byteOffset + off;
  if (at % 2 === 0) return dotU16(u16Of(w.buffer), at >> 1, x, xOff, n);
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    const p = off + 2 * i;
    s0 += half[w[p] | (w[p + 1] << 8)] * x[xOff + i];
    s1 += half[w[p + 2] | (w[p + 3] << 8)] * x[xOff + i + 1];
    s2 += half[w[p + 4] | (w[p + 5] << 8)] * x[xOff + i + 2];
    s3 += half[w[p + 6] | (w[p + 7] << 8)] * x[xOff + i + 3];
  }
  for (; i < n; i++) s0 += half[w[off + 2 * i] | (w[off + 2 * i + 1] << 8)] * x[xOff + i];
  return s0 + s1 + (s2 + s3);
}

/** bf16 weights times f32 activations, one accumulator (bf16 bits -> f32 through a 4-byte view). */
function dotBf16(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) {
    scratchBits[0] = (w[off + 2 * i] << 16) | (w[off + 2 * i + 1] << 24);
    s += scratch[0] * x[xOff + i];
  }
  return s;
}

/** IEEE binary16, round-to-nearest-even. Relative error <= 2^-11 for normal halves; |x| >= 65520 becomes ±Inf. */
export const f16: Codec = /* @__PURE__ */ defineCodec({
  name: 'f16',
  errorBound:
    'relative error <= 2^-11 in the normal range (|x| >= 2^-14), absolute <= 2^-25 below; |x| >= 65520 becomes ±Inf',
  importance: 'ignored',
  kernels: { dot: dotF16, dotU16 },
  quantizeRow(src, srcOff, n, dst, dstOff) {
    const bits = u32Of(src.buffer);
    const s = (src.byteOffset >> 2) + srcOff;
    const at = dst.byteOffset + dstOff;
    if (at % 2 === 0) {
      const out = u16Of(dst.buffer);
      const o = at >> 1;
      let i = 0;
      for (; i + 2 <= n; i += 2) {
        const w0 = bits[s + i];
        const w1 = bits[s + i + 1];
        const a0 = w0 & 0x7fffffff;
        const a1 = w1 & 0x7fffffff;
        // Both normal halves (the usual case): rebias and round inline (see halfBits); else the general routine.
        if ((a0 - 0x38800000) >>> 0 < 0x0efff000 && (a1 - 0x38800000) >>> 0 < 0x0efff000) {
          out[o + i] = ((w0 >>> 16) & 0x8000) | ((a0 - 0x38000000 + 0x0fff + ((a0 >>> 13) & 1)) >>> 13);
          out[o + i + 1] = ((w1 >>> 16) & 0x8000) | ((a1 - 0x38000000 + 0x0fff + ((a1 >>> 13) & 1)) >>> 13);
        } else {
          out[o + i] = halfBits(w0);
          out[o + i + 1] = halfBits(w1);
        }
      }
      for (; i < n; i++) out[o + i] = halfBits(bits[s + i]);
      return;
    }
    for (let i = 0; i < n; i++) {
      const h = halfBits(bits[s + i]);
      dst[dstOff + 2 * i] = h & 0xff;
      dst[dstOff + 2 * i + 1] = h >>> 8;
    }
  },
  dequantizeBlocks(src, srcOff, dst, dstOff, n) {
    const table = fp16Table();
    const at = src.byteOffset + srcOff;
    if (at % 2 === 0) {
      // Copy each half's binary32 bits: no float conversion on the way.
      const bitsTable = fp16BitsTable();
      const h = u16Of(src.buffer);
      const out = u32Of(dst.buffer);
      const o = at >> 1;
      const d = (dst.byteOffset >> 2) + dstOff;
      let i = 0;
      for (; i + 4 <= n; i += 4) {
        out[d + i] = bitsTable[h[o + i]];
        out[d + i + 1] = bitsTable[h[o + i + 1]];
        out[d + i + 2] = bitsTable[h[o + i + 2]];
        out[d + i + 3] = bitsTable[h[o + i + 3]];
      }
      for (; i < n; i++) out[d + i] = bitsTable[h[o + i]];
      return;
    }
    for (let i = 0; i < n; i++) dst[dstOff + i] = table[src[srcOff + 2 * i] | (src[srcOff + 2 * i + 1] << 8)];
  },
});

/** bfloat16 (the top half of binary32), round-to-nearest-even. Relative error <= 2^-8. */
export const bf16: Codec = /* @__PURE__ */ defineCodec({
  name: 'bf16',
  errorBound: 'relative error <= 2^-8 (2^-9 for normal values)',
  importance: 'ignored',
  kernels: { dot: dotBf16 },
  quantizeRow(src, srcOff, n, dst, dstOff) {
    const bits = u32Of(src.buffer);
    const s = (src.byteOffset >> 2) + srcOff;
    const at = dst.byteOffset + dstOff;
    if (at % 2 === 0) {
      const out = u16Of(dst.buffer);
      const o = at >> 1;
      for (let i = 0; i < n; i++) {
        const u = bits[s + i];
        // NaN keeps its sign and top payload with the quiet bit forced; the rest rounds to nearest even.
        out[o + i] = (u & 0x7fffffff) > 0x7f800000 ? (u >>> 16) | 0x40 : (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
      }
      return;
    }
    for (let i = 0; i < n; i++) {
      const b = fp32ToBf16(src[srcOff + i]);
      dst[dstOff + 2 * i] = b & 0xff;
      dst[dstOff + 2 * i + 1] = b >>> 8;
    }
  },
  dequantizeBlocks(src, srcOff, dst, dstOff, n) {
    const at = src.byteOffset + srcOff;
    if (at % 2 === 0) {
      const h = u16Of(src.buffer);
      const out = u32Of(dst.buffer);
      const o = at >> 1;
      const d = (dst.byteOffset >> 2) + dstOff;
      for (let i = 0; i < n; i++) out[d + i] = h[o + i] << 16;
      return;
    }
    for (let i = 0; i < n; i++) dst[dstOff + i] = bf16ToFp32(src[srcOff + 2 * i] | (src[srcOff + 2 * i + 1] << 8));
  },
});
