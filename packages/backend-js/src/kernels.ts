/**
 * Block kernels working on weight bytes where they lie: decode one row, and fused dot products of one weight row with
 * f32 activations (no decoded copy) or, in ggml mode, with activations quantized to the weight's vec_dot type.
 *
 * Offsets are in bytes for weights and in elements for f32 arrays. `n` is the row length (a block multiple).
 */
import { fp16Table, IQ4NL_VALUES } from '@nibble/formats';

const half = /* @__PURE__ */ fp16Table();
// bf16 bits -> f32 through a shared 4-byte view: exact and allocation-free.
const bfBits = new Uint32Array(1);
const bfVal = new Float32Array(bfBits.buffer);

/** Decodes `n` elements of one row starting at byte `off` into `dst[dstOff..]`. */
export type DecodeRow = (w: Uint8Array, off: number, dst: Float32Array, dstOff: number, n: number) => void;
/** Dot product of one weight row at byte `off` with `x[xOff .. xOff + n)`. */
export type DotF32 = (w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number) => number;
/**
 * ggml-mode dot product of one weight row at byte `off` with one activation row quantized to the vec_dot type
 * (`a`, `ai` = the same bytes as Int8Array, starting at byte `aOff`).
 */
export type DotQ = (w: Uint8Array, off: number, a: Uint8Array, ai: Int8Array, aOff: number, n: number) => number;

function decodeF16(w: Uint8Array, off: number, dst: Float32Array, dstOff: number, n: number): void {
  for (let i = 0; i < n; i++) dst[dstOff + i] = half[w[off + 2 * i] | (w[off + 2 * i + 1] << 8)];
}

function dotF16(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const p = off + 2 * i;
    s0 += half[w[p] | (w[p + 1] << 8)] * x[xOff + i];
    s1 += half[w[p + 2] | (w[p + 3] << 8)] * x[xOff + i + 1];
  }
  if (i < n) s0 += half[w[off + 2 * i] | (w[off + 2 * i + 1] << 8)] * x[xOff + i];
  return s0 + s1;
}

function decodeBf16(w: Uint8Array, off: number, dst: Float32Array, dstOff: number, n: number): void {
  for (let i = 0; i < n; i++) {
    bfBits[0] = (w[off + 2 * i] << 16) | (w[off + 2 * i + 1] << 24);
    dst[dstOff + i] = bfVal[0];
  }
}

function dotBf16(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) {
    bfBits[0] = (w[off + 2 * i] << 16) | (w[off + 2 * i + 1] << 24);
    s += bfVal[0] * x[xOff + i];
  }
  return s;
}

function decodeQ8_0(w: Uint8Array, off: number, dst: Float32Array, dstOff: number, n: number): void {
  for (let b = 0; b < n / 32; b++) {
    const q = off + 34 * b;
    const d = half[w[q] | (w[q + 1] << 8)];
    const o = dstOff + 32 * b;
    for (let j = 0; j < 32; j++) dst[o + j] = ((w[q + 2 + j] << 24) >> 24) * d;
  }
}

function dotQ8_0(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 34 * b + 2;
    const o = xOff + 32 * b;
    let s0 = 0;
    let s1 = 0;
    for (let j = 0; j < 32; j += 2) {
      s0 += ((w[q + j] << 24) >> 24) * x[o + j];
      s1 += ((w[q + j + 1] << 24) >> 24) * x[o + j + 1];
    }
    sum += (s0 + s1) * half[w[q - 2] | (w[q - 1] << 8)];
  }
  return sum;
}

function decodeQ4_0(w: Uint8Array, off: number, dst: Float32Array, dstOff: number, n: number): void {
  for (let b = 0; b < n / 32; b++) {
    const q = off + 18 * b;
    const d = half[w[q] | (w[q + 1] << 8)];
    const o = dstOff + 32 * b;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 2 + j];
      dst[o + j] = ((byte & 15) - 8) * d;
      dst[o + j + 16] = ((byte >>> 4) - 8) * d;
    }
  }
}

function dotQ4_0(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 18 * b + 2;
    const o = xOff + 32 * b;
    // Σ (q - 8) x = Σ q x - 8 Σ x, with the low and high nibbles in separate accumulators.
    let lo = 0;
    let hi = 0;
    let sx = 0;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + j];
      const a = x[o + j];
      const c = x[o + j + 16];
      lo += (byte & 15) * a;
      hi += (byte >>> 4) * c;
      sx += a + c;
    }
    sum += (lo + hi - 8 * sx) * half[w[q - 2] | (w[q - 1] << 8)];
  }
  return sum;
}

function decodeQ4_1(w: Uint8Array, off: number, dst: Float32Array, dstOff: number, n: number): void {
  for (let b = 0; b < n / 32; b++) {
    const q = off + 20 * b;
    const d = half[w[q] | (w[q + 1] << 8)];
    const m = half[w[q + 2] | (w[q + 3] << 8)];
    const o = dstOff + 32 * b;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 4 + j];
      dst[o + j] = (byte & 15) * d + m;
      dst[o + j + 16] = (byte >>> 4) * d + m;
    }
  }
}

function dotQ4_1(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 20 * b + 4;
    const o = xOff + 32 * b;
    let lo = 0;
    let hi = 0;
    let sx = 0;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + j];
      const a = x[o + j];
      const c = x[o + j + 16];
      lo += (byte & 15) * a;
      hi += (byte >>> 4) * c;
      sx += a + c;
    }
    sum += (lo + hi) * half[w[q - 4] | (w[q - 3] << 8)] + sx * half[w[q - 2] | (w[q - 1] << 8)];
  }
  return sum;
}

function qh32(w: Uint8Array, p: number): number {
  return w[p] | (w[p + 1] << 8) | (w[p + 2] << 16) | (w[p + 3] << 24);
}

function decodeQ5_0(w: Uint8Array, off: number, dst: Float32Array, dstOff: number, n: number): void {
  for (let b = 0; b < n / 32; b++) {
    const q = off + 22 * b;
    const d = half[w[q] | (w[q + 1] << 8)];
    const qh = qh32(w, q + 2);
    const o = dstOff + 32 * b;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 6 + j];
      dst[o + j] = (((byte & 15) | (((qh >>> j) & 1) << 4)) - 16) * d;
      dst[o + j + 16] = (((byte >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d;
    }
  }
}

function dotQ5_0(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 22 * b;
    const qh = qh32(w, q + 2);
    const o = xOff + 32 * b;
    let s = 0;
    let sx = 0;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 6 + j];
      const a = x[o + j];
      const c = x[o + j + 16];
      s += ((byte & 15) | (((qh >>> j) & 1) << 4)) * a + ((byte >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) * c;
      sx += a + c;
    }
    sum += (s - 16 * sx) * half[w[q] | (w[q + 1] << 8)];
  }
  return sum;
}

function decodeQ5_1(w: Uint8Array, off: number, dst: Float32Array, dstOff: number, n: number): void {
  for (let b = 0; b < n / 32; b++) {
    const q = off + 24 * b;
    const d = half[w[q] | (w[q + 1] << 8)];
    const m = half[w[q + 2] | (w[q + 3] << 8)];
    const qh = qh32(w, q + 4);
    const o = dstOff + 32 * b;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 8 + j];
      dst[o + j] = ((byte & 15) | (((qh >>> j) & 1) << 4)) * d + m;
      dst[o + j + 16] = ((byte >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) * d + m;
    }
  }
}

function dotQ5_1(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 24 * b;
    const qh = qh32(w, q + 4);
    const o = xOff + 32 * b;
    let s = 0;
    let sx = 0;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 8 + j];
      const a = x[o + j];
      const c = x[o + j + 16];
      s += ((byte & 15) | (((qh >>> j) & 1) << 4)) * a + ((byte >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) * c;
      sx += a + c;
    }
    sum += s * half[w[q] | (w[q + 1] << 8)] + sx * half[w[q + 2] | (w[q + 3] << 8)];
  }
  return sum;
}

// ggml mode: integer sums per block, then the block's scales (spec §5). Products of f16 scales are exact in double;
// ggml rounds them to float, which the tolerance of the comparison covers.

function dotQ8_0xQ8_0(w: Uint8Array, off: number, a: Uint8Array, ai: Int8Array, aOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 34 * b;
    const p = aOff + 34 * b;
    let isum = 0;
    for (let j = 0; j < 32; j++) isum += ((w[q + 2 + j] << 24) >> 24) * ai[p + 2 + j];
    sum += isum * (half[w[q] | (w[q + 1] << 8)] * half[a[p] | (a[p + 1] << 8)]);
  }
  return sum;
}

function dotQ4_0xQ8_0(w: Uint8Array, off: number, a: Uint8Array, ai: Int8Array, aOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 18 * b;
    const p = aOff + 34 * b;
    let isum = 0;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 2 + j];
      isum += ((byte & 15) - 8) * ai[p + 2 + j] + ((byte >>> 4) - 8) * ai[p + 18 + j];
    }
    sum += isum * half[w[q] | (w[q + 1] << 8)] * half[a[p] | (a[p + 1] << 8)];
  }
  return sum;
}

function dotQ5_0xQ8_0(w: Uint8Array, off: number, a: Uint8Array, ai: Int8Array, aOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 22 * b;
    const p = aOff + 34 * b;
    const qh = qh32(w, q + 2);
    let isum = 0;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 6 + j];
      isum +=
        (((byte & 15) | (((qh >>> j) & 1) << 4)) - 16) * ai[p + 2 + j] +
        (((byte >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * ai[p + 18 + j];
    }
    sum += isum * half[w[q] | (w[q + 1] << 8)] * half[a[p] | (a[p + 1] << 8)];
  }
  return sum;
}

function dotQ4_1xQ8_1(w: Uint8Array, off: number, a: Uint8Array, ai: Int8Array, aOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 20 * b;
    const p = aOff + 36 * b;
    let isum = 0;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 4 + j];
      isum += (byte & 15) * ai[p + 4 + j] + (byte >>> 4) * ai[p + 20 + j];
    }
    const dw = half[w[q] | (w[q + 1] << 8)];
    const mw = half[w[q + 2] | (w[q + 3] << 8)];
    // The min term uses the activation block's stored s = d·Σqa (fp16), as ggml does.
    sum += dw * half[a[p] | (a[p + 1] << 8)] * isum + mw * half[a[p + 2] | (a[p + 3] << 8)];
  }
  return sum;
}

function dotQ5_1xQ8_1(w: Uint8Array, off: number, a: Uint8Array, ai: Int8Array, aOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 24 * b;
    const p = aOff + 36 * b;
    const qh = qh32(w, q + 4);
    let isum = 0;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 8 + j];
      isum +=
        ((byte & 15) | (((qh >>> j) & 1) << 4)) * ai[p + 4 + j] +
        ((byte >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) * ai[p + 20 + j];
    }
    const dw = half[w[q] | (w[q + 1] << 8)];
    const mw = half[w[q + 2] | (w[q + 3] << 8)];
    sum += dw * half[a[p] | (a[p + 1] << 8)] * isum + mw * half[a[p + 2] | (a[p + 3] << 8)];
  }
  return sum;
}

// K-quants (spec §3.12, §3.14): 256 values per super-block; work on the bytes directly, one sub-block at a time.

/** Q4_K 6-bit scale and min of sub-block j, packed by get_scale_min_k4. */
function q4kScale(w: Uint8Array, s: number, j: number): number {
  return j < 4 ? w[s + j] & 63 : (w[s + j + 4] & 15) | ((w[s + j - 4] >>> 6) << 4);
}
function q4kMin(w: Uint8Array, s: number, j: number): number {
  return j < 4 ? w[s + j + 4] & 63 : (w[s + j + 4] >>> 4) | ((w[s + j] >>> 6) << 4);
}

function decodeQ4_K(w: Uint8Array, off: number, dst: Float32Array, dstOff: number, n: number): void {
  for (let b = 0; b < n / 256; b++) {
    const q = off + 144 * b;
    const d = half[w[q] | (w[q + 1] << 8)];
    const dmin = half[w[q + 2] | (w[q + 3] << 8)];
    for (let c = 0; c < 4; c++) {
      const dl = d * q4kScale(w, q + 4, 2 * c);
      const ml = dmin * q4kMin(w, q + 4, 2 * c);
      const dh = d * q4kScale(w, q + 4, 2 * c + 1);
      const mh = dmin * q4kMin(w, q + 4, 2 * c + 1);
      const o = dstOff + 256 * b + 64 * c;
      const qs = q + 16 + 32 * c;
      for (let l = 0; l < 32; l++) {
        const byte = w[qs + l];
        dst[o + l] = dl * (byte & 15) - ml;
        dst[o + 32 + l] = dh * (byte >>> 4) - mh;
      }
    }
  }
}

function dotQ4_K(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 256; b++) {
    const q = off + 144 * b;
    const d = half[w[q] | (w[q + 1] << 8)];
    const dmin = half[w[q + 2] | (w[q + 3] << 8)];
    let sq = 0;
    let sm = 0;
    for (let c = 0; c < 4; c++) {
      const o = xOff + 256 * b + 64 * c;
      const qs = q + 16 + 32 * c;
      let lo = 0;
      let hi = 0;
      let sxl = 0;
      let sxh = 0;
      for (let l = 0; l < 32; l++) {
        const byte = w[qs + l];
        const a = x[o + l];
        const e = x[o + 32 + l];
        lo += (byte & 15) * a;
        hi += (byte >>> 4) * e;
        sxl += a;
        sxh += e;
      }
      sq += q4kScale(w, q + 4, 2 * c) * lo + q4kScale(w, q + 4, 2 * c + 1) * hi;
      sm += q4kMin(w, q + 4, 2 * c) * sxl + q4kMin(w, q + 4, 2 * c + 1) * sxh;
    }
    sum += d * sq - dmin * sm;
  }
  return sum;
}

function decodeQ6_K(w: Uint8Array, off: number, dst: Float32Array, dstOff: number, n: number): void {
  for (let b = 0; b < n / 256; b++) {
    const q = off + 210 * b;
    const d = half[w[q + 208] | (w[q + 209] << 8)];
    for (let h = 0; h < 2; h++) {
      const ql = q + 64 * h;
      const qh = q + 128 + 32 * h;
      const sc = q + 192 + 8 * h;
      const o = dstOff + 256 * b + 128 * h;
      for (let l = 0; l < 32; l++) {
        const is = l >>> 4;
        const a = w[ql + l];
        const c = w[ql + l + 32];
        const hb = w[qh + l];
        dst[o + l] = d * ((w[sc + is] << 24) >> 24) * (((a & 15) | ((hb & 3) << 4)) - 32);
        dst[o + l + 32] = d * ((w[sc + is + 2] << 24) >> 24) * (((c & 15) | (((hb >>> 2) & 3) << 4)) - 32);
        dst[o + l + 64] = d * ((w[sc + is + 4] << 24) >> 24) * (((a >>> 4) | (((hb >>> 4) & 3) << 4)) - 32);
        dst[o + l + 96] = d * ((w[sc + is + 6] << 24) >> 24) * (((c >>> 4) | (((hb >>> 6) & 3) << 4)) - 32);
      }
    }
  }
}

function dotQ6_K(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 256; b++) {
    const q = off + 210 * b;
    let sb = 0;
    for (let h = 0; h < 2; h++) {
      const ql = q + 64 * h;
      const qh = q + 128 + 32 * h;
      const sc = q + 192 + 8 * h;
      const o = xOff + 256 * b + 128 * h;
      // Two runs of 16 so that each of the four outputs keeps one scale.
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
    sum += half[w[q + 208] | (w[q + 209] << 8)] * sb;
  }
  return sum;
}

// Table lookup for 4-bit formats whose byte j of a 32-block holds elements j (low nibble) and j + 16 (high nibble):
// for one activation row, lut[(32-block b, byte j), byte value v] = (v & 15)·x[32b + j] + (v >> 4)·x[32b + j + 16].
// A matrix-vector product then costs one table load per weight byte instead of two multiply-adds (the table,
// 16 KiB per 32-block of the row, is built once per matmul and reused by every weight row).

/** Floats of the lookup table for a row of `n` activations. */
export function lutLength(n: number): number {
  return (n / 32) * (4096 + 1024);
}

/**
 * Adds the high-bit table of the 5-bit formats after the nibble table: for 32-block b and qh byte k,
 * `lut[hi(b, k), v] = Σ x[32b + 8k + i] over the set bits i of v`.
 */
export function buildHighBitLut(x: Float32Array, xOff: number, n: number, lut: Float32Array): void {
  const base = (n / 32) * 4096;
  for (let b = 0; b < n / 32; b++) {
    for (let k = 0; k < 4; k++) {
      const t = base + 1024 * b + 256 * k;
      const o = xOff + 32 * b + 8 * k;
      lut[t] = 0;
      for (let v = 1; v < 256; v++) lut[t + v] = lut[t + (v & (v - 1))] + x[o + 31 - Math.clz32(v & -v)];
    }
  }
}

/** Σ x over the elements whose 5th bit is set, for the 4 qh bytes at `p`. */
function highBits(w: Uint8Array, p: number, lut: Float32Array, t: number): number {
  return lut[t + w[p]] + lut[t + 256 + w[p + 1]] + lut[t + 512 + w[p + 2]] + lut[t + 768 + w[p + 3]];
}

/** Nibble values of the plain 4-bit formats (q4_0 and q4_1 subtract their offset afterwards). */
export const nibbleValues: Float64Array = /* @__PURE__ */ Float64Array.from({ length: 16 }, (_, i) => i);
/** IQ4_NL's non-linear grid (spec §3.15), as doubles for the lookup tables. */
const iq4nlValues = /* @__PURE__ */ Float64Array.from(IQ4NL_VALUES);
/** MXFP4's doubled E2M1 values (spec §3.19); the scale is 2^(e-128). */
const fp4Values = /* @__PURE__ */ Float64Array.of(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
/** e8m0_to_fp32_half(e) = 2^(e-128) for every byte (255, NaN in OCP, is not special in ggml's decoder either). */
const e8m0Half = /* @__PURE__ */ Float64Array.from({ length: 256 }, (_, e) => 2 ** (e - 128));

/**
 * Builds the nibble table of one activation row for a format's 16 nibble values, and the per-32-block sums of the
 * row.
 */
export function buildNibbleLut(
  x: Float32Array,
  xOff: number,
  n: number,
  values: Float64Array,
  lut: Float32Array,
  xsum: Float64Array,
): void {
  for (let b = 0; b < n / 32; b++) {
    let s = 0;
    for (let j = 0; j < 32; j++) s += x[xOff + 32 * b + j];
    xsum[b] = s;
    for (let j = 0; j < 16; j++) {
      const a = x[xOff + 32 * b + j];
      const c = x[xOff + 32 * b + j + 16];
      const base = (16 * b + j) * 256;
      for (let hi = 0; hi < 16; hi++) {
        const hv = values[hi] * c;
        for (let lo = 0; lo < 16; lo++) lut[base + (hi << 4) + lo] = values[lo] * a + hv;
      }
    }
  }
}

/** Σ over a 32-block of nibble·x for 16 bytes at `q`, from the table at `t`. */
function lutBlock(w: Uint8Array, q: number, lut: Float32Array, t: number): number {
  return (
    lut[t + w[q]] +
    lut[t + 256 + w[q + 1]] +
    lut[t + 512 + w[q + 2]] +
    lut[t + 768 + w[q + 3]] +
    lut[t + 1024 + w[q + 4]] +
    lut[t + 1280 + w[q + 5]] +
    lut[t + 1536 + w[q + 6]] +
    lut[t + 1792 + w[q + 7]] +
    (lut[t + 2048 + w[q + 8]] +
      lut[t + 2304 + w[q + 9]] +
      lut[t + 2560 + w[q + 10]] +
      lut[t + 2816 + w[q + 11]] +
      lut[t + 3072 + w[q + 12]] +
      lut[t + 3328 + w[q + 13]] +
      lut[t + 3584 + w[q + 14]] +
      lut[t + 3840 + w[q + 15]])
  );
}

/** Dot product of one weight row with the activation row a table was built from. */
export type DotLut = (w: Uint8Array, off: number, lut: Float32Array, xsum: Float64Array, n: number) => number;

function lutQ4_0(w: Uint8Array, off: number, lut: Float32Array, xsum: Float64Array, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 18 * b;
    sum += (lutBlock(w, q + 2, lut, 4096 * b) - 8 * xsum[b]) * half[w[q] | (w[q + 1] << 8)];
  }
  return sum;
}

function lutQ4_1(w: Uint8Array, off: number, lut: Float32Array, xsum: Float64Array, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 20 * b;
    sum +=
      lutBlock(w, q + 4, lut, 4096 * b) * half[w[q] | (w[q + 1] << 8)] + xsum[b] * half[w[q + 2] | (w[q + 3] << 8)];
  }
  return sum;
}

function lutQ5_0(w: Uint8Array, off: number, lut: Float32Array, xsum: Float64Array, n: number): number {
  const hb = (n / 32) * 4096;
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 22 * b;
    const s = lutBlock(w, q + 6, lut, 4096 * b) + 16 * (highBits(w, q + 2, lut, hb + 1024 * b) - xsum[b]);
    sum += s * half[w[q] | (w[q + 1] << 8)];
  }
  return sum;
}

function lutQ5_1(w: Uint8Array, off: number, lut: Float32Array, xsum: Float64Array, n: number): number {
  const hb = (n / 32) * 4096;
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 24 * b;
    const s = lutBlock(w, q + 8, lut, 4096 * b) + 16 * highBits(w, q + 4, lut, hb + 1024 * b);
    sum += s * half[w[q] | (w[q + 1] << 8)] + xsum[b] * half[w[q + 2] | (w[q + 3] << 8)];
  }
  return sum;
}

function lutIq4nl(w: Uint8Array, off: number, lut: Float32Array, _xsum: Float64Array, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 18 * b;
    sum += lutBlock(w, q + 2, lut, 4096 * b) * half[w[q] | (w[q + 1] << 8)];
  }
  return sum;
}

function lutIq4xs(w: Uint8Array, off: number, lut: Float32Array, _xsum: Float64Array, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 256; b++) {
    const q = off + 136 * b;
    const sh = w[q + 2] | (w[q + 3] << 8);
    let sb = 0;
    // Each 32-element sub-block has the iq4_nl nibble layout, so the iq4_nl table serves it.
    for (let ib = 0; ib < 8; ib++) {
      const ls = ((w[q + 4 + (ib >>> 1)] >>> (4 * (ib & 1))) & 15) | (((sh >>> (2 * ib)) & 3) << 4);
      sb += (ls - 32) * lutBlock(w, q + 8 + 16 * ib, lut, 4096 * (8 * b + ib));
    }
    sum += half[w[q] | (w[q + 1] << 8)] * sb;
  }
  return sum;
}

function lutMxfp4(w: Uint8Array, off: number, lut: Float32Array, _xsum: Float64Array, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 17 * b;
    sum += lutBlock(w, q + 1, lut, 4096 * b) * e8m0Half[w[q]];
  }
  return sum;
}

/** Decoder and dot of 4-bit grid formats: `head` bytes of scale before 16 bytes of nibbles, value = scale·grid[q]. */
function gridKernels(
  head: number,
  values: Float64Array,
  scale: (w: Uint8Array, q: number) => number,
): { decode: DecodeRow; dot: DotF32 } {
  const bpb = head + 16;
  return {
    decode(w, off, dst, dstOff, n) {
      for (let b = 0; b < n / 32; b++) {
        const q = off + bpb * b;
        const d = scale(w, q);
        const o = dstOff + 32 * b;
        for (let j = 0; j < 16; j++) {
          const byte = w[q + head + j];
          dst[o + j] = d * values[byte & 15];
          dst[o + j + 16] = d * values[byte >>> 4];
        }
      }
    },
    dot(w, off, x, xOff, n) {
      let sum = 0;
      for (let b = 0; b < n / 32; b++) {
        const q = off + bpb * b;
        const o = xOff + 32 * b;
        let s = 0;
        for (let j = 0; j < 16; j++) {
          const byte = w[q + head + j];
          s += values[byte & 15] * x[o + j] + values[byte >>> 4] * x[o + j + 16];
        }
        sum += s * scale(w, q);
      }
      return sum;
    },
  };
}

const iq4nl = /* @__PURE__ */ gridKernels(2, iq4nlValues, (w, q) => half[w[q] | (w[q + 1] << 8)]);
const mxfp4 = /* @__PURE__ */ gridKernels(1, fp4Values, (w, q) => e8m0Half[w[q]]);

// Decoders of the other K-quants and grids (spec §3.10, §3.11, §3.13, §3.16, §3.18); their matmul decodes one row
// into scratch and takes an f32 dot.

function decodeQ2_K(w: Uint8Array, off: number, dst: Float32Array, dstOff: number, n: number): void {
  for (let b = 0; b < n / 256; b++) {
    const q = off + 84 * b;
    const d = half[w[q + 80] | (w[q + 81] << 8)];
    const dmin = half[w[q + 82] | (w[q + 83] << 8)];
    for (let h = 0; h < 2; h++) {
      for (let s4 = 0; s4 < 4; s4++) {
        const shift = 2 * s4;
        for (let half16 = 0; half16 < 2; half16++) {
          const e0 = 128 * h + 32 * s4 + 16 * half16; // first element of this 16-element sub-block
          const sc = w[q + (e0 >>> 4)];
          const dl = d * (sc & 15);
          const ml = dmin * (sc >>> 4);
          const o = dstOff + 256 * b + e0;
          const qs = q + 16 + 32 * h + 16 * half16;
          for (let l = 0; l < 16; l++) dst[o + l] = dl * ((w[qs + l] >>> shift) & 3) - ml;
        }
      }
    }
  }
}

/** Q3_K's signed 6-bit scale of sub-block j (stored as S + 32). */
function q3kScale(w: Uint8Array, sc: number, j: number): number {
  const lo = j < 8 ? w[sc + j] & 15 : w[sc + j - 8] >>> 4;
  const hi = (w[sc + 8 + (j & 3)] >>> (2 * (j >>> 2))) & 3;
  return (lo | (hi << 4)) - 32;
}

function decodeQ3_K(w: Uint8Array, off: number, dst: Float32Array, dstOff: number, n: number): void {
  for (let b = 0; b < n / 256; b++) {
    const q = off + 110 * b;
    const d = half[w[q + 108] | (w[q + 109] << 8)];
    // Element e = 128h + 32s + l: low bits in qs[32h + l] at 2s, high bit in hmask[l] at 4h + s.
    for (let h = 0; h < 2; h++) {
      for (let s4 = 0; s4 < 4; s4++) {
        const shift = 2 * s4;
        const hbit = 4 * h + s4;
        for (let half16 = 0; half16 < 2; half16++) {
          const e0 = 128 * h + 32 * s4 + 16 * half16;
          const dl = d * q3kScale(w, q + 96, e0 >>> 4);
          const o = dstOff + 256 * b + e0;
          for (let i = 0; i < 16; i++) {
            const l = 16 * half16 + i;
            const v = ((w[q + 32 + 32 * h + l] >>> shift) & 3) + 4 * ((w[q + l] >>> hbit) & 1) - 4;
            dst[o + i] = dl * v;
          }
        }
      }
    }
  }
}

function dotQ3_K(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
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
    sum += half[w[q + 108] | (w[q + 109] << 8)] * sb;
  }
  return sum;
}

function dotQ2_K(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 256; b++) {
    const q = off + 84 * b;
    let sq = 0;
    let sm = 0;
    for (let h = 0; h < 2; h++) {
      for (let s4 = 0; s4 < 4; s4++) {
        const shift = 2 * s4;
        for (let half16 = 0; half16 < 2; half16++) {
          const e0 = 128 * h + 32 * s4 + 16 * half16;
          const sc = w[q + (e0 >>> 4)];
          const o = xOff + 256 * b + e0;
          const qs = q + 16 + 32 * h + 16 * half16;
          let acc = 0;
          let sx = 0;
          for (let l = 0; l < 16; l++) {
            const a = x[o + l];
            acc += ((w[qs + l] >>> shift) & 3) * a;
            sx += a;
          }
          sq += (sc & 15) * acc;
          sm += (sc >>> 4) * sx;
        }
      }
    }
    sum += half[w[q + 80] | (w[q + 81] << 8)] * sq - half[w[q + 82] | (w[q + 83] << 8)] * sm;
  }
  return sum;
}

function decodeQ5_K(w: Uint8Array, off: number, dst: Float32Array, dstOff: number, n: number): void {
  for (let b = 0; b < n / 256; b++) {
    const q = off + 176 * b;
    const d = half[w[q] | (w[q + 1] << 8)];
    const dmin = half[w[q + 2] | (w[q + 3] << 8)];
    for (let c = 0; c < 4; c++) {
      const dl = d * q4kScale(w, q + 4, 2 * c);
      const ml = dmin * q4kMin(w, q + 4, 2 * c);
      const dh = d * q4kScale(w, q + 4, 2 * c + 1);
      const mh = dmin * q4kMin(w, q + 4, 2 * c + 1);
      const o = dstOff + 256 * b + 64 * c;
      const qs = q + 48 + 32 * c;
      for (let l = 0; l < 32; l++) {
        const byte = w[qs + l];
        const qh = w[q + 16 + l];
        dst[o + l] = dl * ((byte & 15) | (((qh >>> (2 * c)) & 1) << 4)) - ml;
        dst[o + 32 + l] = dh * ((byte >>> 4) | (((qh >>> (2 * c + 1)) & 1) << 4)) - mh;
      }
    }
  }
}

function dotQ5_K(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 256; b++) {
    const q = off + 176 * b;
    const d = half[w[q] | (w[q + 1] << 8)];
    const dmin = half[w[q + 2] | (w[q + 3] << 8)];
    let sq = 0;
    let sm = 0;
    for (let c = 0; c < 4; c++) {
      const o = xOff + 256 * b + 64 * c;
      const qs = q + 48 + 32 * c;
      const bl = 2 * c;
      let lo = 0;
      let hi = 0;
      let sxl = 0;
      let sxh = 0;
      for (let l = 0; l < 32; l++) {
        const byte = w[qs + l];
        const qh = w[q + 16 + l] >>> bl;
        const a = x[o + l];
        const e = x[o + 32 + l];
        lo += ((byte & 15) | ((qh & 1) << 4)) * a;
        hi += ((byte >>> 4) | ((qh & 2) << 3)) * e;
        sxl += a;
        sxh += e;
      }
      sq += q4kScale(w, q + 4, 2 * c) * lo + q4kScale(w, q + 4, 2 * c + 1) * hi;
      sm += q4kMin(w, q + 4, 2 * c) * sxl + q4kMin(w, q + 4, 2 * c + 1) * sxh;
    }
    sum += d * sq - dmin * sm;
  }
  return sum;
}

function decodeIq4xs(w: Uint8Array, off: number, dst: Float32Array, dstOff: number, n: number): void {
  for (let b = 0; b < n / 256; b++) {
    const q = off + 136 * b;
    const d = half[w[q] | (w[q + 1] << 8)];
    const sh = w[q + 2] | (w[q + 3] << 8);
    for (let ib = 0; ib < 8; ib++) {
      const ls = ((w[q + 4 + (ib >>> 1)] >>> (4 * (ib & 1))) & 15) | (((sh >>> (2 * ib)) & 3) << 4);
      const dl = d * (ls - 32);
      const qs = q + 8 + 16 * ib;
      const o = dstOff + 256 * b + 32 * ib;
      for (let j = 0; j < 16; j++) {
        const byte = w[qs + j];
        dst[o + j] = dl * iq4nlValues[byte & 15];
        dst[o + j + 16] = dl * iq4nlValues[byte >>> 4];
      }
    }
  }
}

function decodeTq2_0(w: Uint8Array, off: number, dst: Float32Array, dstOff: number, n: number): void {
  for (let b = 0; b < n / 256; b++) {
    const q = off + 66 * b;
    const d = half[w[q + 64] | (w[q + 65] << 8)];
    for (let jj = 0; jj < 2; jj++) {
      for (let m = 0; m < 32; m++) {
        const byte = w[q + 32 * jj + m];
        const o = dstOff + 256 * b + 128 * jj + m;
        for (let k = 0; k < 4; k++) dst[o + 32 * k] = (((byte >>> (2 * k)) & 3) - 1) * d;
      }
    }
  }
}

/** Hand-written kernels per dtype; formats without an entry use the codec of `@nibble/formats` row by row. */
export interface FusedKernels {
  readonly decode: DecodeRow;
  /** Fused dot with f32 activations; absent: decode the row into scratch, then an f32 dot. */
  readonly dot?: DotF32;
  /** ggml-mode dot with the vec_dot type's bytes; absent: dot with the dequantized vec_dot activations instead. */
  readonly dotQ?: DotQ;
  /** Table-lookup dot for one activation row (see {@link buildNibbleLut}). */
  readonly dotLut?: DotLut;
  /** The 16 nibble values the table is built with (with `dotLut`). */
  readonly lutValues?: Float64Array;
  /** Whether `dotLut` also reads the high-bit table ({@link buildHighBitLut}). */
  readonly lutHigh?: boolean;
}

/** The fused kernels, by dtype name. f32 weights are handled on a Float32Array view instead. */
export const fused: Readonly<Record<string, FusedKernels>> = Object.freeze({
  f16: { decode: decodeF16, dot: dotF16 },
  bf16: { decode: decodeBf16, dot: dotBf16 },
  q8_0: { decode: decodeQ8_0, dot: dotQ8_0, dotQ: dotQ8_0xQ8_0 },
  q4_0: { decode: decodeQ4_0, dot: dotQ4_0, dotQ: dotQ4_0xQ8_0, dotLut: lutQ4_0, lutValues: nibbleValues },
  q4_1: { decode: decodeQ4_1, dot: dotQ4_1, dotQ: dotQ4_1xQ8_1, dotLut: lutQ4_1, lutValues: nibbleValues },
  iq4_nl: { ...iq4nl, dotLut: lutIq4nl, lutValues: iq4nlValues },
  mxfp4: { ...mxfp4, dotLut: lutMxfp4, lutValues: fp4Values },
  q2_K: { decode: decodeQ2_K, dot: dotQ2_K },
  q3_K: { decode: decodeQ3_K, dot: dotQ3_K },
  q5_K: { decode: decodeQ5_K, dot: dotQ5_K },
  iq4_xs: { decode: decodeIq4xs, dotLut: lutIq4xs, lutValues: iq4nlValues },
  tq2_0: { decode: decodeTq2_0 },
  q5_0: {
    decode: decodeQ5_0,
    dot: dotQ5_0,
    dotQ: dotQ5_0xQ8_0,
    dotLut: lutQ5_0,
    lutValues: nibbleValues,
    lutHigh: true,
  },
  q5_1: {
    decode: decodeQ5_1,
    dot: dotQ5_1,
    dotQ: dotQ5_1xQ8_1,
    dotLut: lutQ5_1,
    lutValues: nibbleValues,
    lutHigh: true,
  },
  q4_K: { decode: decodeQ4_K, dot: dotQ4_K },
  q6_K: { decode: decodeQ6_K, dot: dotQ6_K },
});

/** f16 dot product on a Uint16Array view of the weight (element offset `wOff`). */
export function dotF16u(w: Uint16Array, wOff: number, x: Float32Array, xOff: number, n: number): number {
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

/** q8_0 dot product reading the quants through an Int8Array view of the same bytes (no sign extension). */
export function dotQ8_0i(w: Uint8Array, wi: Int8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 34 * b + 2;
    const o = xOff + 32 * b;
    let s0 = 0;
    let s1 = 0;
    for (let j = 0; j < 32; j += 4) {
      s0 += wi[q + j] * x[o + j] + wi[q + j + 2] * x[o + j + 2];
      s1 += wi[q + j + 1] * x[o + j + 1] + wi[q + j + 3] * x[o + j + 3];
    }
    sum += (s0 + s1) * half[w[q - 2] | (w[q - 1] << 8)];
  }
  return sum;
}

/** f32 dot product, four accumulators. */
export function dotF32(w: Float32Array, wOff: number, x: Float32Array, xOff: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += w[wOff + i] * x[xOff + i];
    s1 += w[wOff + i + 1] * x[xOff + i + 1];
    s2 += w[wOff + i + 2] * x[xOff + i + 2];
    s3 += w[wOff + i + 3] * x[xOff + i + 3];
  }
  for (; i < n; i++) s0 += w[wOff + i] * x[xOff + i];
  return s0 + s1 + (s2 + s3);
}

// ---- several activation rows ------------------------------------------------------------------------------------
// Prefill and perplexity multiply each weight row with many tokens. The weight row is decoded (or unpacked) once into
// scratch, and a register tile of 4 weight rows × 2 tokens keeps 8 accumulators, so each loaded value feeds 2 or 4
// multiply-adds instead of one (scalar JS is bound by loads and bounds checks, not by memory, at this point).

/**
 * y[r, o0 + k] = Σ_i W[k, i] x[r, i] for the 4 consecutive weight rows at `w[wOff + k·n ..]` (k < 4) and tokens
 * r in [0, tokens), y row-major with `outF` columns. Accumulates in double, one sum per output element.
 */
export function tileF32(
  w: Float32Array,
  wOff: number,
  x: Float32Array,
  tokens: number,
  n: number,
  y: Float32Array,
  outF: number,
  o0: number,
): void {
  const w0 = wOff;
  const w1 = w0 + n;
  const w2 = w1 + n;
  const w3 = w2 + n;
  let r = 0;
  for (; r + 1 < tokens; r += 2) {
    const a = r * n;
    const b = a + n;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let t0 = 0;
    let t1 = 0;
    let t2 = 0;
    let t3 = 0;
    for (let i = 0; i < n; i++) {
      const xa = x[a + i];
      const xb = x[b + i];
      const v0 = w[w0 + i];
      const v1 = w[w1 + i];
      const v2 = w[w2 + i];
      const v3 = w[w3 + i];
      s0 += v0 * xa;
      s1 += v1 * xa;
      s2 += v2 * xa;
      s3 += v3 * xa;
      t0 += v0 * xb;
      t1 += v1 * xb;
      t2 += v2 * xb;
      t3 += v3 * xb;
    }
    const ya = r * outF + o0;
    const yb = ya + outF;
    y[ya] = s0;
    y[ya + 1] = s1;
    y[ya + 2] = s2;
    y[ya + 3] = s3;
    y[yb] = t0;
    y[yb + 1] = t1;
    y[yb + 2] = t2;
    y[yb + 3] = t3;
  }
  if (r < tokens) {
    const a = r * n;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let i = 0; i < n; i++) {
      const xa = x[a + i];
      s0 += w[w0 + i] * xa;
      s1 += w[w1 + i] * xa;
      s2 += w[w2 + i] * xa;
      s3 += w[w3 + i] * xa;
    }
    const ya = r * outF + o0;
    y[ya] = s0;
    y[ya + 1] = s1;
    y[ya + 2] = s2;
    y[ya + 3] = s3;
  }
}
