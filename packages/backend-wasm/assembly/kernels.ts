// nibble's WebAssembly kernels (AssemblyScript, 128-bit SIMD). Everything works on raw pointers into the one memory
// the JS side manages: no allocation here (the stub runtime is never asked for memory). Every kernel takes a range of
// its output (rows or elements) so the threads of the pool can share a node; an output element is always computed by
// one call in one fixed order, so results do not depend on how many threads split the work.
//
// Weight formats (codes shared with src/formats.ts):
//   0 f32  1 f16  2 bf16  3 q8_0  4 q4_0  5 q4_1  6 q5_0  7 q5_1  8 q2_K  9 q3_K  10 q4_K  11 q5_K  12 q6_K
//   13 iq4_nl  14 iq4_xs  15 mxfp4
// q4_0, q4_1 and q8_0 are repacked at upload into groups of 8 rows (like ggml's q4_0_8x8): per 32-block, the 8
// rows' f16 scales (16 bytes; q4_1 then its 8 mins), then the quants interleaved so that one 16-byte load holds the
// same bytes of 4 rows (q4_0/q4_1: 4 bytes of each of rows 0-3, then of rows 4-7; q8_0: 2 bytes of each of the 8
// rows). A dot product then leaves each row's sum in its own i32 lane: no horizontal sums, one scale multiply per
// 4 rows, and the activations broadcast from memory (see quantQ8_0's layout 3).

const F32: i32 = 0;
const F16: i32 = 1;
const BF16: i32 = 2;
const Q8_0: i32 = 3;
const Q4_0: i32 = 4;
const Q4_1: i32 = 5;
const Q5_0: i32 = 6;
const Q5_1: i32 = 7;
const Q2_K: i32 = 8;
const Q3_K: i32 = 9;
const Q4_K: i32 = 10;
const Q5_K: i32 = 11;
const Q6_K: i32 = 12;
const IQ4_NL: i32 = 13;
const IQ4_XS: i32 = 14;
const MXFP4: i32 = 15;

/** Bytes of one 8-row group per 32-block in the repacked layouts. */
const G8_Q4_0: i32 = 144;
const G8_Q4_1: i32 = 160;
const G8_Q8_0: i32 = 272;

@inline function g8bytes(fmt: i32): i32 {
  return fmt == Q4_0 ? G8_Q4_0 : fmt == Q4_1 ? G8_Q4_1 : G8_Q8_0;
}

/** Offset of quant byte j of row r (0..7) inside its 8-row group block. */
@inline function g8at(fmt: i32, r: i32, j: i32): i32 {
  if (fmt == Q8_0) return 16 + ((j >> 1) << 4) + (r << 1) + (j & 1);
  return (fmt == Q4_1 ? 32 : 16) + ((j >> 2) << 5) + (r << 2) + (j & 3);
}

// The IQ4_NL grid and MXFP4's doubled E2M1 values, as bytes in a static table.
const IQ4NL: usize = memory.data<i8>([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]);
const FP4: usize = memory.data<i8>([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]);

/** First byte the JS allocator may use: everything below holds this module's static data. */
export function heapBase(): usize {
  return (__heap_base + 63) & ~63;
}

/** A byte as u32 (AssemblyScript keeps u8 arithmetic in u8 otherwise). */
@inline function u8at(p: usize): u32 {
  return <u32>load<u8>(p);
}

// ---- half precision ------------------------------------------------------------------------------------------------

const TWO112: f32 = reinterpret<f32>(0x77800000);

/** fp16 bits to f32, exact for every value (subnormals through the 2^112 product, Inf/NaN kept). */
@inline function h2f(h: u32): f32 {
  const em = h & 0x7fff;
  let f = reinterpret<f32>(em << 13) * TWO112;
  if (em >= 0x7c00) f = reinterpret<f32>((em << 13) | 0x70000000);
  return reinterpret<f32>(reinterpret<u32>(f) | ((h & 0x8000) << 16));
}

/** Four fp16 values, each in the top half of an i32 lane, to f32 (finite inputs: weights and cache rows). */
@inline function h2f4top(v: v128): v128 {
  // Shifting right arithmetically by 3 moves exponent and mantissa into f32 position and smears the sign over bits
  // 28..31; the mask keeps bit 31; the product rebiases the exponent (subnormals included).
  const t = v128.and(i32x4.shr_s(v, 3), i32x4.splat(0x8fffe000));
  return f32x4.mul(t, f32x4.splat(TWO112));
}

/** Low four u16 lanes of `v` into the top halves of i32 lanes. */
@inline function lo16top(v: v128): v128 {
  return i8x16.shuffle(i32x4.splat(0), v, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
}
@inline function hi16top(v: v128): v128 {
  return i8x16.shuffle(i32x4.splat(0), v, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
}

/** f32 to fp16 bits, round to nearest even (F. Giesen's float_to_half_fast3_rtne); NaN gives 0x7e00. */
export function f2h(f: f32): u32 {
  const x = reinterpret<u32>(f);
  const sign = (x >> 16) & 0x8000;
  let a = x & 0x7fffffff;
  let o: u32;
  if (a >= 0x47800000) o = a > 0x7f800000 ? 0x7e00 : 0x7c00;
  else if (a < 0x38800000) {
    o = reinterpret<u32>(reinterpret<f32>(a) + reinterpret<f32>(0x3f000000)) - 0x3f000000;
  } else {
    const odd = (a >> 13) & 1;
    a += 0xc8000fff; // ((15 - 127) << 23) + 0xfff
    a += odd;
    o = a >> 13;
  }
  return o | sign;
}

/** f32 to bf16 bits, round to nearest even; NaN stays a quiet NaN. */
@inline function f2bf(f: f32): u32 {
  const x = reinterpret<u32>(f);
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >> 16) | 64) & 0xffff;
  return ((x + 0x7fff + ((x >> 16) & 1)) >> 16) & 0xffff;
}

/** MXFP4's E8M0 scale halved: 2^(e-128), subnormal for e < 2. */
@inline function e8m0half(e: u32): f32 {
  return reinterpret<f32>(e < 2 ? 0x00200000 << e : (e - 1) << 23);
}

// ---- row decoders --------------------------------------------------------------------------------------------------

@inline function q4kScale(s: usize, j: i32): u32 {
  return j < 4 ? u8at(s + j) & 63 : (u8at(s + j + 4) & 15) | ((u8at(s + j - 4) >> 6) << 4);
}
@inline function q4kMin(s: usize, j: i32): u32 {
  return j < 4 ? u8at(s + j + 4) & 63 : (u8at(s + j + 4) >> 4) | ((u8at(s + j) >> 6) << 4);
}
@inline function q3kScale(sc: usize, j: i32): i32 {
  const lo = j < 8 ? u8at(sc + j) & 15 : u8at(sc + j - 8) >> 4;
  const hi = (u8at(sc + 8 + (j & 3)) >> (2 * (j >> 2))) & 3;
  return <i32>(lo | (hi << 4)) - 32;
}

/**
 * Decodes `n` values of row `r` of a weight at `w` (`rowBytes` per row in the file layout; `rows4` = the repacked
 * group stride in blocks for q4_0/q8_0) into f32 at `dst`.
 */
export function decodeRow(fmt: i32, w: usize, r: i32, rowBytes: i32, dst: usize, n: i32): void {
  const nb = n >> 5;
  if (fmt == F32) {
    memory.copy(dst, w + <usize>r * rowBytes, <usize>n << 2);
  } else if (fmt == F16) {
    const src = w + <usize>r * rowBytes;
    let i = 0;
    for (; i + 8 <= n; i += 8) {
      const v = v128.load(src + (i << 1));
      v128.store(dst + (i << 2), h2f4top(lo16top(v)));
      v128.store(dst + (i << 2), h2f4top(hi16top(v)), 16);
    }
    for (; i < n; i++) store<f32>(dst + (i << 2), h2f(load<u16>(src + (i << 1))));
  } else if (fmt == BF16) {
    const src = w + <usize>r * rowBytes;
    let i = 0;
    for (; i + 8 <= n; i += 8) {
      const v = v128.load(src + (i << 1));
      v128.store(dst + (i << 2), lo16top(v));
      v128.store(dst + (i << 2), hi16top(v), 16);
    }
    for (; i < n; i++) store<u32>(dst + (i << 2), (<u32>load<u16>(src + (i << 1))) << 16);
  } else if (fmt == Q8_0 || fmt == Q4_0 || fmt == Q4_1) {
    const gb = g8bytes(fmt);
    const g = w + <usize>(r >> 3) * nb * gb;
    const lane = r & 7;
    for (let b = 0; b < nb; b++) {
      const blk = g + b * gb;
      const d = h2f(load<u16>(blk + 2 * lane));
      const o = dst + (b << 7);
      if (fmt == Q8_0) {
        for (let j = 0; j < 32; j++) store<f32>(o + (j << 2), <f32>load<i8>(blk + g8at(fmt, lane, j)) * d);
      } else {
        const m: f32 = fmt == Q4_1 ? h2f(load<u16>(blk + 16 + 2 * lane)) : 0;
        const off: i32 = fmt == Q4_1 ? 0 : 8;
        for (let j = 0; j < 16; j++) {
          const byte = <i32>u8at(blk + g8at(fmt, lane, j));
          store<f32>(o + (j << 2), <f32>((byte & 15) - off) * d + m);
          store<f32>(o + ((j + 16) << 2), <f32>((byte >> 4) - off) * d + m);
        }
      }
    }
  } else if (fmt == Q4_K) {
    // Regrouped by repackQ4K: the file layout's decode of the same values, operation for operation.
    const lane = r & 7;
    const g = w + <usize>(r >> 3) * (n >> 8) * G8_Q4_K;
    for (let b = 0; b < n >> 8; b++) {
      const blk = g + b * G8_Q4_K;
      const d = h2f(load<u16>(blk + 2 * lane));
      const dmin = h2f(load<u16>(blk + 16 + 2 * lane));
      for (let c = 0; c < 4; c++) {
        const dl = d * <f32>u8at(blk + 32 + 16 * c + lane);
        const ml = dmin * <f32>load<u16>(blk + q4kMinAt(lane, 2 * c));
        const dh = d * <f32>u8at(blk + 40 + 16 * c + lane);
        const mh = dmin * <f32>load<u16>(blk + q4kMinAt(lane, 2 * c + 1));
        const o = dst + ((b * 256 + 64 * c) << 2);
        const qc = blk + q4kQuantAt(lane, c, 0);
        for (let l = 0; l < 32; l += 4) {
          // Bytes l..l+3 of this row sit together (rows 4 bytes apart, byte groups 32).
          const word = load<u32>(qc + (<usize>(l >> 2) << 5));
          const ol = o + (<usize>l << 2);
          store<f32>(ol, dl * <f32>(word & 15) - ml);
          store<f32>(ol, dl * <f32>((word >> 8) & 15) - ml, 4);
          store<f32>(ol, dl * <f32>((word >> 16) & 15) - ml, 8);
          store<f32>(ol, dl * <f32>((word >> 24) & 15) - ml, 12);
          store<f32>(ol, dh * <f32>((word >> 4) & 15) - mh, 128);
          store<f32>(ol, dh * <f32>((word >> 12) & 15) - mh, 132);
          store<f32>(ol, dh * <f32>((word >> 20) & 15) - mh, 136);
          store<f32>(ol, dh * <f32>(word >> 28) - mh, 140);
        }
      }
    }
  } else if (fmt == Q6_K) {
    // Regrouped by repackQ6K: the file layout's decode of the same values, operation for operation.
    const lane = r & 7;
    const g = w + <usize>(r >> 3) * (n >> 8) * G8_Q6_K;
    for (let b = 0; b < n >> 8; b++) {
      const blk = g + b * G8_Q6_K;
      const d = h2f(load<u16>(blk + 2 * lane));
      for (let h = 0; h < 2; h++) {
        const sc = blk + 16 + 64 * h + lane;
        const o = dst + ((b * 256 + 128 * h) << 2);
        for (let l = 0; l < 32; l++) {
          const is = l >> 4;
          const q = blk + q6kAt(lane, h, l >> 2, 0, l & 3);
          const a = <i32>u8at(q);
          const c = <i32>u8at(q + 16);
          const hb = <i32>u8at(q + 32);
          store<f32>(o + (l << 2), d * <f32>load<i8>(sc + 8 * is) * <f32>(((a & 15) | ((hb & 3) << 4)) - 32));
          store<f32>(o + ((l + 32) << 2), d * <f32>load<i8>(sc + 8 * (is + 2)) * <f32>(((c & 15) | (((hb >> 2) & 3) << 4)) - 32));
          store<f32>(o + ((l + 64) << 2), d * <f32>load<i8>(sc + 8 * (is + 4)) * <f32>(((a >> 4) | (((hb >> 4) & 3) << 4)) - 32));
          store<f32>(o + ((l + 96) << 2), d * <f32>load<i8>(sc + 8 * (is + 6)) * <f32>(((c >> 4) | (((hb >> 6) & 3) << 4)) - 32));
        }
      }
    }
  } else {
    decodeRowOther(fmt, w + <usize>r * rowBytes, dst, n);
  }
}

/** Formats in the file layout: decode one row starting at `q`. */
function decodeRowOther(fmt: i32, q: usize, dst: usize, n: i32): void {
  if (fmt == Q4_1 || fmt == Q5_0 || fmt == Q5_1) {
    const bpb: i32 = fmt == Q4_1 ? 20 : fmt == Q5_0 ? 22 : 24;
    for (let b = 0; b < n >> 5; b++) {
      const p = q + b * bpb;
      const d = h2f(load<u16>(p));
      const o = dst + (b << 7);
      if (fmt == Q4_1) {
        const m = h2f(load<u16>(p + 2));
        for (let j = 0; j < 16; j++) {
          const byte = u8at(p + 4 + j);
          store<f32>(o + (j << 2), <f32>(byte & 15) * d + m);
          store<f32>(o + ((j + 16) << 2), <f32>(byte >> 4) * d + m);
        }
      } else if (fmt == Q5_0) {
        const qh = load<u32>(p + 2);
        for (let j = 0; j < 16; j++) {
          const byte = <u32>u8at(p + 6 + j);
          store<f32>(o + (j << 2), <f32>(<i32>((byte & 15) | (((qh >> j) & 1) << 4)) - 16) * d);
          store<f32>(o + ((j + 16) << 2), <f32>(<i32>((byte >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16) * d);
        }
      } else {
        const m = h2f(load<u16>(p + 2));
        const qh = load<u32>(p + 4);
        for (let j = 0; j < 16; j++) {
          const byte = <u32>u8at(p + 8 + j);
          store<f32>(o + (j << 2), <f32>((byte & 15) | (((qh >> j) & 1) << 4)) * d + m);
          store<f32>(o + ((j + 16) << 2), <f32>((byte >> 4) | (((qh >> (j + 16)) & 1) << 4)) * d + m);
        }
      }
    }
  } else if (fmt == IQ4_NL || fmt == MXFP4) {
    const bpb: i32 = fmt == IQ4_NL ? 18 : 17;
    const grid = fmt == IQ4_NL ? IQ4NL : FP4;
    const head: i32 = fmt == IQ4_NL ? 2 : 1;
    for (let b = 0; b < n >> 5; b++) {
      const p = q + b * bpb;
      const d = fmt == IQ4_NL ? h2f(load<u16>(p)) : e8m0half(u8at(p));
      const o = dst + (b << 7);
      for (let j = 0; j < 16; j++) {
        const byte = u8at(p + head + j);
        store<f32>(o + (j << 2), <f32>load<i8>(grid + (byte & 15)) * d);
        store<f32>(o + ((j + 16) << 2), <f32>load<i8>(grid + (byte >> 4)) * d);
      }
    }
  } else if (fmt == Q5_K) {
    for (let b = 0; b < n >> 8; b++) {
      const p = q + b * 176;
      const d = h2f(load<u16>(p));
      const dmin = h2f(load<u16>(p + 2));
      for (let c = 0; c < 4; c++) {
        const dl = d * <f32>q4kScale(p + 4, 2 * c);
        const ml = dmin * <f32>q4kMin(p + 4, 2 * c);
        const dh = d * <f32>q4kScale(p + 4, 2 * c + 1);
        const mh = dmin * <f32>q4kMin(p + 4, 2 * c + 1);
        const o = dst + ((b * 256 + 64 * c) << 2);
        const qs = p + 48 + 32 * c;
        for (let l = 0; l < 32; l++) {
          const byte = <u32>u8at(qs + l);
          const qh = <u32>u8at(p + 16 + l);
          store<f32>(o + (l << 2), dl * <f32>((byte & 15) | (((qh >> (2 * c)) & 1) << 4)) - ml);
          store<f32>(o + ((32 + l) << 2), dh * <f32>((byte >> 4) | (((qh >> (2 * c + 1)) & 1) << 4)) - mh);
        }
      }
    }
  } else if (fmt == Q2_K) {
    for (let b = 0; b < n >> 8; b++) {
      const p = q + b * 84;
      const d = h2f(load<u16>(p + 80));
      const dmin = h2f(load<u16>(p + 82));
      for (let h = 0; h < 2; h++) {
        for (let s4 = 0; s4 < 4; s4++) {
          const shift = 2 * s4;
          for (let hf = 0; hf < 2; hf++) {
            const e0 = 128 * h + 32 * s4 + 16 * hf;
            const sc = <u32>u8at(p + (e0 >> 4));
            const dl = d * <f32>(sc & 15);
            const ml = dmin * <f32>(sc >> 4);
            const o = dst + ((b * 256 + e0) << 2);
            const qs = p + 16 + 32 * h + 16 * hf;
            for (let l = 0; l < 16; l++) store<f32>(o + (l << 2), dl * <f32>((u8at(qs + l) >> shift) & 3) - ml);
          }
        }
      }
    }
  } else if (fmt == Q3_K) {
    for (let b = 0; b < n >> 8; b++) {
      const p = q + b * 110;
      const d = h2f(load<u16>(p + 108));
      for (let h = 0; h < 2; h++) {
        for (let s4 = 0; s4 < 4; s4++) {
          const shift = 2 * s4;
          const hbit = 4 * h + s4;
          for (let hf = 0; hf < 2; hf++) {
            const e0 = 128 * h + 32 * s4 + 16 * hf;
            const dl = d * <f32>q3kScale(p + 96, e0 >> 4);
            const o = dst + ((b * 256 + e0) << 2);
            for (let i = 0; i < 16; i++) {
              const l = 16 * hf + i;
              const v = <i32>((u8at(p + 32 + 32 * h + l) >> shift) & 3) + 4 * <i32>((u8at(p + l) >> hbit) & 1) - 4;
              store<f32>(o + (i << 2), dl * <f32>v);
            }
          }
        }
      }
    }
  } else if (fmt == IQ4_XS) {
    for (let b = 0; b < n >> 8; b++) {
      const p = q + b * 136;
      const d = h2f(load<u16>(p));
      const sh = <u32>load<u16>(p + 2);
      for (let ib = 0; ib < 8; ib++) {
        const ls = ((<u32>u8at(p + 4 + (ib >> 1)) >> (4 * (ib & 1))) & 15) | (((sh >> (2 * ib)) & 3) << 4);
        const dl = d * <f32>(<i32>ls - 32);
        const qs = p + 8 + 16 * ib;
        const o = dst + ((b * 256 + 32 * ib) << 2);
        for (let j = 0; j < 16; j++) {
          const byte = u8at(qs + j);
          store<f32>(o + (j << 2), dl * <f32>load<i8>(IQ4NL + (byte & 15)));
          store<f32>(o + ((j + 16) << 2), dl * <f32>load<i8>(IQ4NL + (byte >> 4)));
        }
      }
    }
  }
}

// ---- repacking ----------------------------------------------------------------------------------------------------

/**
 * File layout (rows x rowBytes at `src`) to the 8-row group layout at `dst` (q4_0 / q4_1 / q8_0 here; q4_K and q6_K
 * by {@link repackQ4K}, {@link repackQ6K}), rows padded to a multiple of 8 with zero blocks; `back` != 0 goes the
 * other way.
 */
export function repack8(fmt: i32, src: usize, dst: usize, rows: i32, n: i32, back: i32): void {
  if (fmt == Q4_K) return repackQ4K(src, dst, rows, n, back);
  if (fmt == Q6_K) return repackQ6K(src, dst, rows, n, back);
  const nb = n >> 5;
  const bpb: i32 = fmt == Q4_0 ? 18 : fmt == Q4_1 ? 20 : 34;
  const head: i32 = fmt == Q4_1 ? 4 : 2;
  const qb: i32 = bpb - head;
  const gb = g8bytes(fmt);
  const unit: i32 = fmt == Q8_0 ? 2 : 4;
  const groups = (rows + 7) >> 3;
  for (let g = 0; g < groups; g++) {
    for (let lane = 0; lane < 8; lane++) {
      const r = 8 * g + lane;
      for (let b = 0; b < nb; b++) {
        const blk = (back ? src : dst) + (<usize>g * nb + b) * gb;
        const file = (back ? dst : src) + (<usize>r * nb + b) * bpb;
        if (back) {
          if (r >= rows) continue;
          store<u16>(file, load<u16>(blk + 2 * lane));
          if (fmt == Q4_1) store<u16>(file + 2, load<u16>(blk + 16 + 2 * lane));
          for (let j = 0; j < qb; j += unit) {
            if (unit == 4) store<u32>(file + head + j, load<u32>(blk + g8at(fmt, lane, j)));
            else store<u16>(file + head + j, load<u16>(blk + g8at(fmt, lane, j)));
          }
        } else if (r < rows) {
          store<u16>(blk + 2 * lane, load<u16>(file));
          if (fmt == Q4_1) store<u16>(blk + 16 + 2 * lane, load<u16>(file + 2));
          for (let j = 0; j < qb; j += unit) {
            if (unit == 4) store<u32>(blk + g8at(fmt, lane, j), load<u32>(file + head + j));
            else store<u16>(blk + g8at(fmt, lane, j), load<u16>(file + head + j));
          }
        } else {
          store<u16>(blk + 2 * lane, 0);
          if (fmt == Q4_1) store<u16>(blk + 16 + 2 * lane, 0);
          for (let j = 0; j < qb; j += unit) {
            if (unit == 4) store<u32>(blk + g8at(fmt, lane, j), 0);
            else store<u16>(blk + g8at(fmt, lane, j), 0);
          }
        }
      }
    }
  }
}

// ---- dot products --------------------------------------------------------------------------------------------------

@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/**
 * f32 dot product of `n` values: four f32x4 accumulators per 32-value chunk, each chunk's sum added in f64, so long
 * rows keep their accuracy (ggml's golden dots are matched within 2e-6 of Σ|w·x|).
 */
export function dotF32(a: usize, b: usize, n: i32): f64 {
  let total: f64 = 0;
  let i = 0;
  for (; i + 32 <= n; i += 32) {
    const p = a + (i << 2);
    const q = b + (i << 2);
    let s0 = f32x4.mul(v128.load(p), v128.load(q));
    let s1 = f32x4.mul(v128.load(p, 16), v128.load(q, 16));
    let s2 = f32x4.mul(v128.load(p, 32), v128.load(q, 32));
    let s3 = f32x4.mul(v128.load(p, 48), v128.load(q, 48));
    s0 = f32x4.add(s0, f32x4.mul(v128.load(p, 64), v128.load(q, 64)));
    s1 = f32x4.add(s1, f32x4.mul(v128.load(p, 80), v128.load(q, 80)));
    s2 = f32x4.add(s2, f32x4.mul(v128.load(p, 96), v128.load(q, 96)));
    s3 = f32x4.add(s3, f32x4.mul(v128.load(p, 112), v128.load(q, 112)));
    total += <f64>hsum(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3)));
  }
  let s = f32x4.splat(0);
  for (; i + 4 <= n; i += 4) s = f32x4.add(s, f32x4.mul(v128.load(a + (i << 2)), v128.load(b + (i << 2))));
  let t: f32 = hsum(s);
  for (; i < n; i++) t += load<f32>(a + (i << 2)) * load<f32>(b + (i << 2));
  return total + <f64>t;
}

// ---- matmul, f32 activations ---------------------------------------------------------------------------------------

/**
 * y[t, o] = Σ_i W[o, i] x[t, i] for o in [r0, r1) and every token t < nTok: one weight row decoded into `scratch`
 * (f32 rows are read in place), then dotted with each token's row. x [nTok, n], y [nTok, outF].
 */
export function matmulF32(
  fmt: i32,
  w: usize,
  rowBytes: i32,
  x: usize,
  y: usize,
  n: i32,
  outF: i32,
  nTok: i32,
  r0: i32,
  r1: i32,
  scratch: usize,
): void {
  if (fmt == F16) {
    matmulF16(w, rowBytes, x, y, n, outF, nTok, r0, r1);
    return;
  }
  if (fmt == BF16) {
    matmulBF16(w, rowBytes, x, y, n, outF, nTok, r0, r1);
    return;
  }
  for (let o = r0; o < r1; o++) {
    let row = scratch;
    if (fmt == F32) row = w + <usize>o * rowBytes;
    else decodeRow(fmt, w, o, rowBytes, scratch, n);
    for (let t = 0; t < nTok; t++) {
      store<f32>(y + ((<usize>t * outF + o) << 2), <f32>dotF32(row, x + ((<usize>t * n) << 2), n));
    }
  }
}

/** f16 weights: converted in registers (8 per load), f32 products, chunked like {@link dotF32}. */
function matmulF16(w: usize, rowBytes: i32, x: usize, y: usize, n: i32, outF: i32, nTok: i32, r0: i32, r1: i32): void {
  for (let o = r0; o < r1; o++) {
    const row = w + <usize>o * rowBytes;
    for (let t = 0; t < nTok; t++) {
      const xr = x + ((<usize>t * n) << 2);
      let total: f64 = 0;
      let i = 0;
      for (; i + 32 <= n; i += 32) {
        const p = row + (i << 1);
        const q = xr + (i << 2);
        const v0 = v128.load(p);
        const v1 = v128.load(p, 16);
        const v2 = v128.load(p, 32);
        const v3 = v128.load(p, 48);
        let s0 = f32x4.mul(h2f4top(lo16top(v0)), v128.load(q));
        let s1 = f32x4.mul(h2f4top(hi16top(v0)), v128.load(q, 16));
        s0 = f32x4.add(s0, f32x4.mul(h2f4top(lo16top(v1)), v128.load(q, 32)));
        s1 = f32x4.add(s1, f32x4.mul(h2f4top(hi16top(v1)), v128.load(q, 48)));
        s0 = f32x4.add(s0, f32x4.mul(h2f4top(lo16top(v2)), v128.load(q, 64)));
        s1 = f32x4.add(s1, f32x4.mul(h2f4top(hi16top(v2)), v128.load(q, 80)));
        s0 = f32x4.add(s0, f32x4.mul(h2f4top(lo16top(v3)), v128.load(q, 96)));
        s1 = f32x4.add(s1, f32x4.mul(h2f4top(hi16top(v3)), v128.load(q, 112)));
        total += <f64>hsum(f32x4.add(s0, s1));
      }
      let t2: f32 = 0;
      for (; i < n; i++) t2 += h2f(load<u16>(row + (i << 1))) * load<f32>(xr + (i << 2));
      store<f32>(y + ((<usize>t * outF + o) << 2), <f32>(total + <f64>t2));
    }
  }
}

// ---- activation quantization (ggml mode) ---------------------------------------------------------------------------

/** C roundf: half away from zero, exact through f64. */
@inline function roundAway(v: f32): i32 {
  const x = <f64>v;
  return <i32>(x < 0 ? x - 0.5 : x + 0.5);
}
/** ggml's nearest_int: ties to even. */
@inline function nearest(v: f32): i32 {
  return <i32>f32.nearest(v);
}

/**
 * Blocks [b0, b1) of x to ggml's q8_0 (`quantize_row_q8_0_ref`: d = amax/127 rounded to fp16, q = roundf(x/d)); the
 * rows of x [*, n] are contiguous, so block k is elements [32k, 32k + 32) whatever the row length. Writes i16 quants
 * at `q` (64 bytes per block), the fp16-rounded scale as f32 at `d` and the block sum of the quants at `sum` (i32,
 * 4 bytes per block each). `layout` 3 stores each block's quants permuted and scaled for the nibble kernels (see
 * {@link matmulG8Impl}); 0 keeps their order; 4 stores them as int8 in order in the block's first 32 bytes (the
 * relaxed-SIMD module's q4_0 and q4_1 decode paths, {@link g8DecodeQ4_0Relaxed}). `deq` != 0 also writes the
 * dequantized activations (d·q) there, for the formats whose dot product runs on decoded values; `s81` != 0 writes
 * q8_1's stored s = fp16(d·Σq) as f32.
 */
export function quantQ8_0(
  x: usize,
  b0: i32,
  b1: i32,
  q: usize,
  d: usize,
  sum: usize,
  layout: i32,
  deq: usize,
  s81: usize,
): void {
  for (let k = b0; k < b1; k++) {
    const src = x + (<usize>k << 7);
    let amax: f32 = 0;
    for (let j = 0; j < 32; j++) {
      const a = Mathf.abs(load<f32>(src + (j << 2)));
      if (a > amax) amax = a;
    }
    const dd: f32 = amax / 127;
    const id: f32 = dd != 0 ? <f32>1 / dd : 0;
    const dh = h2f(f2h(dd));
    const blk = q + (<usize>k << 6);
    let s: i32 = 0;
    for (let j = 0; j < 32; j++) {
      let v = roundAway(load<f32>(src + (j << 2)) * id);
      // C's (int8_t) cast of an out-of-range product (Inf scale): keep the low byte.
      v = <i32>(<i8>v);
      s += v;
      if (layout == 4) {
        // Natural order as int8 (relaxed-SIMD decode path): element j at byte j of the block's 64.
        store<i8>(blk + j, <i8>v);
      } else if (layout == 3) {
        // Element j sits in byte B = j & 15 of its row's block (low nibble for j < 16): in the 4-byte column
        // c = B >> 2 at position p = B & 3, i.e. i16 lane p >> 1 of a pair, at bits 8·(p & 1) + 4·(j >> 4). The
        // nibble kernels mask those bits out unshifted (x1, x16, x256, or shift the top one down), so each of
        // the 4 bit positions m gets its own word of 2 activations, scaled by 256 / 16 / 1 / 256.
        const B = j & 15;
        const p = B & 3;
        const m = ((p & 1) << 1) | (j >> 4);
        const scale: i32 = m == 2 ? 1 : m == 1 ? 16 : 256;
        store<i16>(blk + ((((B >> 2) << 2) + m) << 2) + ((p >> 1) << 1), <i16>(v * scale));
      } else store<i16>(blk + (j << 1), <i16>v);
      if (deq) store<f32>(deq + ((<usize>(k << 5) + j) << 2), <f32>v * dh);
    }
    store<f32>(d + (<usize>k << 2), dh);
    store<i32>(sum + (<usize>k << 2), s);
    if (s81) store<f32>(s81 + (<usize>k << 2), h2f(f2h(<f32>s * dd)));
  }
}

/**
 * Blocks [b0, b1) (of 256) of x to ggml's q8_K (`quantize_row_q8_K_ref`: iscale = -127/max of the signed largest
 * value, q = nearest_int(iscale·x) capped at 127, d = 1/iscale): i16 quants at `q` (512 bytes per block), d at `d`,
 * and the sums of each 16 quants at `bsum` (64 bytes per block). `layout` 5 is the Q4_K kernel's
 * ({@link matmulQ4_K}): per 64-value chunk c and 4-byte group i of a Q4_K row's quants (elements 64c + 4i..4i+3 in
 * the low nibbles, 64c + 32 + 4i.. in the high ones), four words of two i16 at 128c + 16i: elements (0, 2) times
 * 256, (32, 34) times 16, (1, 3) times 1, (33, 35) times 256, the factors that make every product of the nibble
 * masks q·a·256; and instead of the 16 sums of 16, the 8 sums of 32 as i16 (|sum| <= 32·127). `layout` 6 is the
 * Q6_K kernel's ({@link matmulQ6_K}): each 4 values in the order 0, 2, 1, 3, the sums of 16 times 32. `deq` as in
 * {@link quantQ8_0}.
 */
export function quantQ8_K(x: usize, b0: i32, b1: i32, q: usize, d: usize, bsum: usize, layout: i32, deq: usize): void {
  for (let k = b0; k < b1; k++) {
    const src = x + (<usize>k << 10);
    let amax: f32 = 0;
    let max: f32 = 0;
    for (let j = 0; j < 256; j++) {
      const v = load<f32>(src + (j << 2));
      const a = Mathf.abs(v);
      if (a > amax) {
        amax = a;
        max = v;
      }
    }
    const blk = q + (<usize>k << 9);
    const bs = bsum + (<usize>k << 6);
    if (amax == 0) {
      memory.fill(blk, 0, 512);
      memory.fill(bs, 0, 64);
      store<f32>(d + (<usize>k << 2), 0);
      if (deq) memory.fill(deq + (<usize>k << 10), 0, 1024);
      continue;
    }
    const iscale: f32 = <f32>-127 / max;
    const dd: f32 = <f32>1 / iscale;
    for (let g = 0; g < 16; g++) store<i32>(bs + (g << 2), 0);
    for (let j = 0; j < 256; j++) {
      let v = nearest(iscale * load<f32>(src + (j << 2)));
      if (v > 127) v = 127;
      store<i32>(bs + ((j >> 4) << 2), load<i32>(bs + ((j >> 4) << 2)) + v);
      if (layout == 6) {
        // Each 4 values as a0, a2, a1, a3: bytes 0, 2 and 1, 3 of a row's 4-byte group meet their words.
        const r = j & 3;
        store<i16>(blk + (<usize>((j & ~3) + (r == 1 ? 2 : r == 2 ? 1 : r)) << 1), <i16>v);
      } else if (layout == 5) {
        const e = j & 63;
        const l = e & 31;
        const bb = l & 3;
        const hi = e >> 5;
        const word = hi ? (bb & 1 ? 3 : 1) : bb & 1 ? 2 : 0;
        const scale: i32 = word == 2 ? 1 : word == 1 ? 16 : 256;
        store<i16>(blk + ((j >> 6) << 7) + ((l >> 2) << 4) + (word << 2) + ((bb >> 1) << 1), <i16>(v * scale));
      } else store<i16>(blk + (j << 1), <i16>v);
      if (deq) store<f32>(deq + ((<usize>(k << 8) + j) << 2), dd * <f32>v);
    }
    if (layout == 6) for (let j = 0; j < 16; j++) store<i32>(bs + (j << 2), load<i32>(bs + (j << 2)) << 5);
    // In place: sum j (i16 at byte 2j) is written after sums of 16 2j and 2j + 1 (bytes 8j..8j+7) were read.
    if (layout == 5) for (let j = 0; j < 8; j++) store<i16>(bs + (j << 1), <i16>(load<i32>(bs + (j << 3)) + load<i32>(bs + (j << 3) + 4)));
    store<f32>(d + (<usize>k << 2), dd);
  }
}

/** Elements [e0, e1) of x rounded to f16 (`bf` = 0) or bf16 (1) precision at `dst` (ggml's f16/bf16 vec_dot). */
export function roundRows(x: usize, dst: usize, e0: i32, e1: i32, bf: i32): void {
  for (let i = e0; i < e1; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    store<f32>(dst + (<usize>i << 2), bf ? reinterpret<f32>(f2bf(v) << 16) : h2f(f2h(v)));
  }
}

// ---- matmul, integer dot products (ggml mode) ----------------------------------------------------------------------

/** The four fp16 scales at `p` as f32 lanes. */
@inline function scales4(p: usize): v128 {
  return h2f4top(lo16top(v128.load64_zero(p)));
}

/**
 * One 16-byte load of the nibble layouts (4 bytes of each of 4 rows) against 4 broadcast words of layout-3
 * activations: as i16 lanes, `v & 0x000f`, `v & 0x00f0`, `v & 0x0f00` and `v >> 12` are the 4 nibbles times 1, 16,
 * 256 and 1, and the activations were stored times 256, 16, 1 and 256, so every product is q·a·256 (|q·a·256| <
 * 2^19, a block's sum < 2^24: exact in f32 too). Lane k: row k's sum over those 8 elements.
 */
@inline function nibdot(v: v128, x0: v128, x1: v128, x2: v128, x3: v128, m0: v128, m1: v128, m2: v128): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(v128.and(v, m0), x0), i32x4.dot_i16x8_s(v128.and(v, m1), x1)),
    i32x4.add(i32x4.dot_i16x8_s(v128.and(v, m2), x2), i32x4.dot_i16x8_s(i16x8.shr_u(v, 12), x3)),
  );
}

/** Stores rows [o0, o0 + 4) of one token's output (lanes of `v`), the rows at or past `outF` dropped. */
@inline function storeRows4(yt: usize, o0: i32, outF: i32, v: v128): void {
  if (o0 + 4 <= outF) v128.store(yt + (<usize>o0 << 2), v);
  else if (o0 < outF) {
    store<f32>(yt + (<usize>o0 << 2), f32x4.extract_lane(v, 0));
    if (o0 + 1 < outF) store<f32>(yt + (<usize>(o0 + 1) << 2), f32x4.extract_lane(v, 1));
    if (o0 + 2 < outF) store<f32>(yt + (<usize>(o0 + 2) << 2), f32x4.extract_lane(v, 2));
  }
}

/** Token t's outputs of 8-row group g: rows 0-3 in the lanes of `acc0`, rows 4-7 in `acc1`. */
@inline function storeGroup(y: usize, t: i32, outF: i32, g: i32, acc0: v128, acc1: v128): void {
  const yt = y + ((<usize>t * outF) << 2);
  storeRows4(yt, g << 3, outF, acc0);
  storeRows4(yt, (g << 3) + 4, outF, acc1);
}

/**
 * The integer sums `s` (rows 0-3 of a group) and `t` (rows 4-7) of one 32-block, scaled and added to the row sums:
 * q4_0 Σ (q - 8)·a = Σ q·a - 8 Σ a; q4_1 adds its min times the q8_1 sum s (ggml's d·Σ q·a + m·s); the nibble
 * sums carry the factor 256 of layout 3, folded into the activation scale (a power of two: exact).
 */
@inline function g8block(fmt: i32, blk: usize, sp: usize, dp: usize, s: v128, t: v128, acc: v128, lo: i32): v128 {
  const v = lo ? s : t;
  const h: usize = lo ? 0 : 8;
  if (fmt == Q8_0) {
    return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(v), f32x4.mul(scales4(blk + h), f32x4.splat(load<f32>(dp)))));
  }
  const da = f32x4.splat(load<f32>(dp) * (<f32>1 / 256));
  if (fmt == Q4_0) {
    const u = i32x4.sub(v, i32x4.splat(load<i32>(sp) << 11));
    return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(u), f32x4.mul(scales4(blk + h), da)));
  }
  const m = f32x4.mul(scales4(blk + 16 + h), f32x4.splat(load<f32>(sp)));
  return f32x4.add(acc, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(v), f32x4.mul(scales4(blk + h), da)), m));
}

/** Bytes per block of the expanded weights of {@link matmulG8}'s prompt path: scales (and mins), 16 slots. */
const E_BLOCK: i32 = 576;

/**
 * Integer matmul on the 8-row groups (q4_0 x q8_0, q4_1 x q8_1, q8_0 x q8_0 as ggml's vec_dot), rows [r0, r1) (r0 a
 * multiple of 8; a last partial group reads its zero padding). a [nTok, n] i16 quants (layout 3 for q4_0/q4_1, 0
 * for q8_0), ad [nTok, n/32] their scales, sp [nTok, n/32]: q4_0 the quant sums (i32), q4_1 q8_1's s (f32).
 * Four tokens or more take the prompt path: each group's weights are expanded once to i16 vectors in `scratch`
 * (n/32 · 576 bytes), and the tokens stream over them 4 at a time ({@link etile4}), so unpacking is paid once
 * per group and each weight load serves 4 tokens. Both paths do the same f32 operations per output, so a token's result does not depend on the path.
 */
@inline function matmulG8Impl(
  fmt: i32,
  w: usize,
  a: usize,
  ad: usize,
  sp0: usize,
  y: usize,
  n: i32,
  outF: i32,
  nTok: i32,
  r0: i32,
  r1: i32,
  scratch: usize,
): void {
  const nb = n >> 5;
  const gb = g8bytes(fmt);
  const hdr: i32 = fmt == Q4_1 ? 32 : 16;
  const stride = <usize>n << 1;
  if (nTok >= 4) {
    for (let g = r0 >> 3; g << 3 < r1; g++) {
      expandG8(fmt, w + <usize>g * nb * gb, nb, scratch);
      let t = 0;
      for (; t + 4 <= nTok; t += 4) etile4(fmt, scratch, a, ad, sp0, y, nb, outF, t, g);
      for (; t + 2 <= nTok; t += 2) etile2(fmt, scratch, a, ad, sp0, y, nb, outF, t, g);
      if (t < nTok) etile1(fmt, scratch, a, ad, sp0, y, nb, outF, t, g);
    }
    return;
  }
  if (fmt == Q4_0) {
    g8DecodeQ4_0(w, a, ad, sp0, y, n, outF, nTok, r0, r1);
    return;
  }
  for (let t = 0; t < nTok; t++) {
    for (let g = r0 >> 3; g << 3 < r1; g++) {
      const gw = w + <usize>g * nb * gb;
      const gend = gw + <usize>nb * gb;
      let ap = a + <usize>t * stride;
      let dp = ad + ((<usize>t * nb) << 2);
      let sp = sp0 + ((<usize>t * nb) << 2);
      let acc0 = f32x4.splat(0);
      let acc1 = f32x4.splat(0);
      for (let blk = gw; blk < gend; blk += gb) {
        let s = i32x4.splat(0);
        let u = i32x4.splat(0);
        const end = blk + gb;
        let p = ap;
        if (fmt == Q8_0) {
          for (let q = blk + 16; q < end; q += 32) {
            const v0 = v128.load(q);
            const x0 = v128.load32_splat(p);
            s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v0), x0));
            u = i32x4.add(u, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v0), x0));
            const v1 = v128.load(q, 16);
            const x1 = v128.load32_splat(p, 4);
            s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v1), x1));
            u = i32x4.add(u, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v1), x1));
            p += 8;
          }
        } else {
          for (let q = blk + hdr; q < end; q += 32) {
            const x0 = v128.load32_splat(p);
            const x1 = v128.load32_splat(p, 4);
            const x2 = v128.load32_splat(p, 8);
            const x3 = v128.load32_splat(p, 12);
            s = i32x4.add(s, nibdot(v128.load(q), x0, x1, x2, x3, i16x8.splat(0x000f), i16x8.splat(0x00f0), i16x8.splat(0x0f00)));
            u = i32x4.add(u, nibdot(v128.load(q, 16), x0, x1, x2, x3, i16x8.splat(0x000f), i16x8.splat(0x00f0), i16x8.splat(0x0f00)));
            p += 16;
          }
        }
        acc0 = g8block(fmt, blk, sp, dp, s, u, acc0, 1);
        acc1 = g8block(fmt, blk, sp, dp, s, u, acc1, 0);
        ap += 64;
        dp += 4;
        sp += 4;
      }
      storeGroup(y, t, outF, g, acc0, acc1);
    }
  }
}

// The constants of g8DecodeQ4_0: the three nibble masks (i16), the fp16 sign/exponent/mantissa mask, 2^112, 1/256,
// and the byte nibble mask of g8DecodeQ4_0Relaxed.
const G8K: usize = memory.data<u32>(
  [
    0x000f000f, 0x000f000f, 0x000f000f, 0x000f000f, 0x00f000f0, 0x00f000f0, 0x00f000f0, 0x00f000f0, 0x0f000f00,
    0x0f000f00, 0x0f000f00, 0x0f000f00, 0x8fffe000, 0x8fffe000, 0x8fffe000, 0x8fffe000, 0x77800000, 0x77800000,
    0x77800000, 0x77800000, 0x3b800000, 0x3b800000, 0x3b800000, 0x3b800000, 0x0f0f0f0f, 0x0f0f0f0f, 0x0f0f0f0f,
    0x0f0f0f0f,
  ],
  16,
);

/**
 * Rows 0-3 (`hi` 0) or 4-7 (1) of the 8 fp16 scales at the head of a q4_0 group block, as f32 lanes: each half
 * moved to the top of its lane, sign, exponent and mantissa shifted into f32 place and rescaled by 2^112 (exact).
 */
@inline function scalesF32(sc: v128, hi: i32, zero: v128, hm: v128, h112: v128): v128 {
  const v = hi
    ? i8x16.shuffle(zero, sc, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31)
    : i8x16.shuffle(zero, sc, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  return f32x4.mul(v128.and(i32x4.shr_s(v, 3), hm), h112);
}

/**
 * The decode path of {@link matmulG8Impl} for q4_0 with both halves' scales from one load and the constants in
 * locals. (Unrolling the block's four columns by hand makes V8 hoist every load and spill: slower.)
 * Same f32 operations in the same order as {@link g8block}: bit-identical results.
 */
function g8DecodeQ4_0(w: usize, a: usize, ad: usize, sp0: usize, y: usize, n: i32, outF: i32, nTok: i32, r0: i32, r1: i32): void {
  const nb = n >> 5;
  const stride = <usize>n << 1;
  // Loaded, not written as constants: the optimizer would fold those back into the loop, where V8 rebuilds each
  // vector constant with three instructions per block.
  const m0 = v128.load(G8K);
  const m1 = v128.load(G8K, 16);
  const m2 = v128.load(G8K, 32);
  const hm = v128.load(G8K, 48);
  const h112 = v128.load(G8K, 64);
  const inv256 = v128.load(G8K, 80);
  const zero = i32x4.splat(0);
  for (let t = 0; t < nTok; t++) {
    for (let g = r0 >> 3; g << 3 < r1; g++) {
      let blk = w + <usize>g * nb * G8_Q4_0;
      const gend = blk + <usize>nb * G8_Q4_0;
      let p = a + <usize>t * stride;
      let dp = ad + ((<usize>t * nb) << 2);
      let sp = sp0 + ((<usize>t * nb) << 2);
      let acc0 = f32x4.splat(0);
      let acc1 = f32x4.splat(0);
      for (; blk < gend; blk += G8_Q4_0) {
        let s = zero;
        let u = zero;
        const end = blk + G8_Q4_0;
        let pp = p;
        for (let q = blk + 16; q < end; q += 32) {
          const x0 = v128.load32_splat(pp);
          const x1 = v128.load32_splat(pp, 4);
          const x2 = v128.load32_splat(pp, 8);
          const x3 = v128.load32_splat(pp, 12);
          s = i32x4.add(s, nibdot(v128.load(q), x0, x1, x2, x3, m0, m1, m2));
          u = i32x4.add(u, nibdot(v128.load(q, 16), x0, x1, x2, x3, m0, m1, m2));
          pp += 16;
        }
        // g8block's q4_0 epilogue for both halves: Σ (q - 8)·a = Σ q·a - 8 Σ a, times d_w·d_a / 256.
        // Splat loads and vector ops: the same f32 product and shift as g8block's scalar ones, fewer instructions.
        const da = f32x4.mul(v128.load32_splat(dp), inv256);
        const off = i32x4.shl(v128.load32_splat(sp), 11);
        const sc = v128.load(blk);
        const d0 = scalesF32(sc, 0, zero, hm, h112);
        const d1 = scalesF32(sc, 1, zero, hm, h112);
        acc0 = f32x4.add(acc0, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(s, off)), f32x4.mul(d0, da)));
        acc1 = f32x4.add(acc1, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(u, off)), f32x4.mul(d1, da)));
        p += 64;
        dp += 4;
        sp += 4;
      }
      storeGroup(y, t, outF, g, acc0, acc1);
    }
  }
}

/** The relaxed build's q4_0 and q4_1 matmuls take their relaxed decode paths (layout 4) below this many tokens. */
const RELAXED_DECODE_TOKENS: i32 = 4;

/**
 * Tokens below which q4_0 and q4_1 activations must be in layout 4 ({@link matmulQ4_0}, {@link matmulQ4_1} of the
 * relaxed build), 0 in the plain modules (layout 3 always).
 */
export function relaxedDecodeTokens(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 0x7fffffff : 0;
}

// Signed bytes (the i8 operand, -128 and 127 included) and nibbles (the i7 operand) for relaxedProbe.
const RPROBE: usize = memory.data<i8>([
  -128, 127, -1, 5, -77, 100, 3, -3, 64, -64, 1, 0, -100, 99, 50, -50, 15, 15, 1, 2, 7, 9, 0, 15, 14, 3, 8, 11, 5, 13,
  6, 10,
]);

/**
 * Whether this engine's `i16x8.relaxed_dot_i8x16_i7x16_s` is the standard one: 1 if all 8 pair sums of RPROBE's
 * bytes match the values worked out by hand (an early V8 draft gives other sums), else 0; 0 in the plain modules.
 * The JS side runs it before choosing the relaxed module.
 */
export function relaxedProbe(): i32 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const d = i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(RPROBE), v128.load(RPROBE, 16));
    // -128·15 + 127·15, -1·1 + 5·2, -77·7 + 100·9, 3·0 - 3·15, 64·14 - 64·3, 1·8 + 0·11, -100·5 + 99·13, 50·6 - 50·10
    const want = i16x8(-15, 9, 361, -45, 704, 8, 787, -200);
    return i8x16.all_true(i16x8.eq(d, want)) ? 1 : 0;
  } else {
    return 0;
  }
}

/**
 * {@link g8DecodeQ4_0} with relaxed SIMD (built only into the relaxed modules), for q4_0 (`fmt` Q4_0) and q4_1
 * (Q4_1, `sp0` then q8_1's s per block): activations in layout 4 (int8, in order). `i16x8.relaxed_dot_i8x16_i7x16_s` (one pmaddubsw on x86) multiplies 16 activation bytes by 16 nibbles
 * (0..15: the 7-bit operand, where every engine must agree) and adds neighbours: with the activation word of
 * elements 4c..4c+3 broadcast, i16 lanes 2k, 2k + 1 are row k's two pair sums. A pair sum is at most 2·15·128 =
 * 3840 in magnitude, so a block's 8 dots (4 columns, low and high nibbles) add up in i16 without overflow before
 * one widening. The block sum Σ q·a is then shifted by 8 to the plain kernel's Σ q·a·256 (exact), so the epilogue
 * does the same f32 operations on the same integers: bit-identical outputs.
 */
@inline function g8DecodeRelaxed(fmt: i32, w: usize, a: usize, ad: usize, sp0: usize, y: usize, n: i32, outF: i32, nTok: i32, r0: i32, r1: i32): void {
  const gb: i32 = fmt == Q4_0 ? G8_Q4_0 : G8_Q4_1;
  const hdr: usize = fmt == Q4_0 ? 16 : 32;
  const nb = n >> 5;
  const stride = <usize>n << 1;
  const m0 = v128.load(G8K, 96);
  const hm = v128.load(G8K, 48);
  const h112 = v128.load(G8K, 64);
  const inv256 = v128.load(G8K, 80);
  const zero = i32x4.splat(0);
  for (let t = 0; t < nTok; t++) {
    for (let g = r0 >> 3; g << 3 < r1; g++) {
      let blk = w + <usize>g * nb * gb;
      const gend = blk + <usize>nb * gb;
      let p = a + <usize>t * stride;
      let dp = ad + ((<usize>t * nb) << 2);
      let sp = sp0 + ((<usize>t * nb) << 2);
      let acc0 = f32x4.splat(0);
      let acc1 = f32x4.splat(0);
      for (; blk < gend; blk += gb) {
        let s = zero;
        let u = zero;
        const end = blk + gb;
        let pp = p;
        for (let q = blk + hdr; q < end; q += 32) {
          const xl = v128.load32_splat(pp);
          const xh = v128.load32_splat(pp, 16);
          const v0 = v128.load(q);
          const v1 = v128.load(q, 16);
          s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(xl, v128.and(v0, m0)));
          s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(xh, v128.and(i16x8.shr_u(v0, 4), m0)));
          u = i16x8.add(u, i16x8.relaxed_dot_i8x16_i7x16_s(xl, v128.and(v1, m0)));
          u = i16x8.add(u, i16x8.relaxed_dot_i8x16_i7x16_s(xh, v128.and(i16x8.shr_u(v1, 4), m0)));
          pp += 4;
        }
        if (fmt == Q4_0) {
          // From here on g8DecodeQ4_0's epilogue, operation for operation.
          const s32 = widen256(s);
          const u32 = widen256(u);
          const da = f32x4.mul(v128.load32_splat(dp), inv256);
          const off = i32x4.shl(v128.load32_splat(sp), 11);
          const sc = v128.load(blk);
          const d0 = scalesF32(sc, 0, zero, hm, h112);
          const d1 = scalesF32(sc, 1, zero, hm, h112);
          acc0 = f32x4.add(acc0, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(s32, off)), f32x4.mul(d0, da)));
          acc1 = f32x4.add(acc1, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(u32, off)), f32x4.mul(d1, da)));
        } else {
          // g8block's q4_1 epilogue, operation for operation.
          acc0 = g8block(Q4_1, blk, sp, dp, widen256(s), zero, acc0, 1);
          acc1 = g8block(Q4_1, blk, sp, dp, zero, widen256(u), acc1, 0);
        }
        p += 64;
        dp += 4;
        sp += 4;
      }
      storeGroup(y, t, outF, g, acc0, acc1);
    }
  }
}
/** {@link g8DecodeRelaxed} for q4_0 x q8_0. */
function g8DecodeQ4_0Relaxed(w: usize, a: usize, ad: usize, sp0: usize, y: usize, n: i32, outF: i32, nTok: i32, r0: i32, r1: i32): void {
  g8DecodeRelaxed(Q4_0, w, a, ad, sp0, y, n, outF, nTok, r0, r1);
}
/**
 * {@link g8DecodeRelaxed} for q4_1 x q8_1 (`s81` is q8_1's s per block): the same integer sums, then
 * {@link g8block}'s q4_1 epilogue (bit-identical to the plain build).
 */
function g8DecodeQ4_1Relaxed(w: usize, a: usize, ad: usize, s81: usize, y: usize, n: i32, outF: i32, nTok: i32, r0: i32, r1: i32): void {
  g8DecodeRelaxed(Q4_1, w, a, ad, s81, y, n, outF, nTok, r0, r1);
}

/** Row k's i16 pair sums (lanes 2k, 2k + 1) of {@link g8DecodeQ4_0Relaxed}'s dots as i32 lanes times 256. */
@inline function widen256(v: v128): v128 {
  return i32x4.shl(i32x4.extadd_pairwise_i16x8_s(v), 8);
}

/**
 * The relaxed build's prompt path for q4_0 (`fmt` Q4_0) and q4_1 (Q4_1), layout 4 activations: tokens [t, t + 4)
 * of 8-row group g, straight from the repacked weights (no expansion). Each column's two weight vectors are split
 * into low and high nibbles once and dotted with the broadcast activation words of the 4 tokens, 16 products per
 * `relaxed_dot` (twice the plain kernels' `dot_i16x8_s`), in i16 as in {@link g8DecodeQ4_0Relaxed} (a block's 8
 * dots per lane stay under 2^15). The integer sums are the decode path's, and each token's epilogue is the
 * decode path's operation for operation: a token's floats do not depend on its tile.
 * Rows 0-3 of the group are done for the 4 tokens, then rows 4-7, so that 4 accumulators, 2 nibble vectors and 2
 * activation words are live (all 8 accumulators at once make V8 spill on x64's 16 registers).
 */
@inline function rtile4(fmt: i32, w: usize, a: usize, ad: usize, sp0: usize, y: usize, nb: i32, outF: i32, t: i32, g: i32): void {
  const gb: i32 = fmt == Q4_0 ? G8_Q4_0 : G8_Q4_1;
  const hdr: usize = fmt == Q4_0 ? 16 : 32;
  const stride = <usize>nb << 6;
  const ss = <usize>nb << 2;
  const m0 = v128.load(G8K, 96);
  const hm = v128.load(G8K, 48);
  const h112 = v128.load(G8K, 64);
  const inv256 = v128.load(G8K, 80);
  const zero = i32x4.splat(0);
  const a0 = a + <usize>t * stride;
  const dp0 = ad + <usize>t * ss;
  const sq0 = sp0 + <usize>t * ss;
  const ys = <usize>outF << 2;
  const y0 = y + <usize>t * ys;
  for (let half: usize = 0; half < 32; half += 16) {
    let f0 = f32x4.splat(0);
    let f1 = f32x4.splat(0);
    let f2 = f32x4.splat(0);
    let f3 = f32x4.splat(0);
    let blk = w + <usize>g * nb * gb;
    let p = a0;
    let dp = dp0;
    let sp = sq0;
    for (let b = 0; b < nb; b++) {
      let s0 = zero;
      let s1 = zero;
      let s2 = zero;
      let s3 = zero;
      let pp = p;
      const end = blk + gb;
      for (let q = blk + hdr + half; q < end; q += 32) {
        const v = v128.load(q);
        const lo = v128.and(v, m0);
        const hi = v128.and(i16x8.shr_u(v, 4), m0);
        s0 = i16x8.add(s0, i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(pp), lo), i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(pp, 16), hi)));
        const p1 = pp + stride;
        s1 = i16x8.add(s1, i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(p1), lo), i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(p1, 16), hi)));
        const p2 = p1 + stride;
        s2 = i16x8.add(s2, i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(p2), lo), i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(p2, 16), hi)));
        const p3 = p2 + stride;
        s3 = i16x8.add(s3, i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(p3), lo), i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(p3, 16), hi)));
        pp += 4;
      }
      if (fmt == Q4_0) {
        // g8DecodeQ4_0Relaxed's epilogue for this half, token by token.
        const sc = v128.load(blk);
        const d = scalesF32(sc, half == 0 ? 0 : 1, zero, hm, h112);
        f0 = f32x4.add(f0, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(widen256(s0), i32x4.shl(v128.load32_splat(sp), 11))), f32x4.mul(d, f32x4.mul(v128.load32_splat(dp), inv256))));
        f1 = f32x4.add(f1, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(widen256(s1), i32x4.shl(v128.load32_splat(sp + ss), 11))), f32x4.mul(d, f32x4.mul(v128.load32_splat(dp + ss), inv256))));
        f2 = f32x4.add(f2, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(widen256(s2), i32x4.shl(v128.load32_splat(sp + 2 * ss), 11))), f32x4.mul(d, f32x4.mul(v128.load32_splat(dp + 2 * ss), inv256))));
        f3 = f32x4.add(f3, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(widen256(s3), i32x4.shl(v128.load32_splat(sp + 3 * ss), 11))), f32x4.mul(d, f32x4.mul(v128.load32_splat(dp + 3 * ss), inv256))));
      } else {
        // g8DecodeQ4_1Relaxed's epilogue (g8block's q4_1 one) for this half.
        const lo = half == 0 ? 1 : 0;
        f0 = g8block(Q4_1, blk, sp, dp, widen256(s0), widen256(s0), f0, lo);
        f1 = g8block(Q4_1, blk, sp + ss, dp + ss, widen256(s1), widen256(s1), f1, lo);
        f2 = g8block(Q4_1, blk, sp + 2 * ss, dp + 2 * ss, widen256(s2), widen256(s2), f2, lo);
        f3 = g8block(Q4_1, blk, sp + 3 * ss, dp + 3 * ss, widen256(s3), widen256(s3), f3, lo);
      }
      blk += gb;
      p += 64;
      dp += 4;
      sp += 4;
    }
    const o = (g << 3) + <i32>(half >> 2);
    storeRows4(y0, o, outF, f0);
    storeRows4(y0 + ys, o, outF, f1);
    storeRows4(y0 + 2 * ys, o, outF, f2);
    storeRows4(y0 + 3 * ys, o, outF, f3);
  }
}

/**
 * The relaxed build's q4_0/q4_1 matmul at 4 tokens or more: per 8-row group, tokens in tiles of 4
 * ({@link rtile4}), the last 1-3 tokens on the decode path (same integer sums, same epilogue).
 */
function relaxedPromptG8(fmt: i32, w: usize, a: usize, ad: usize, sp0: usize, y: usize, n: i32, outF: i32, nTok: i32, r0: i32, r1: i32): void {
  const nb = n >> 5;
  const t4 = nTok & ~3;
  for (let g = r0 >> 3; g << 3 < r1; g++) {
    for (let t = 0; t < t4; t += 4) rtile4(fmt, w, a, ad, sp0, y, nb, outF, t, g);
  }
  if (t4 == nTok) return;
  const ta = <usize>t4 * (<usize>n << 1);
  const ts = <usize>t4 * (<usize>nb << 2);
  const ty = <usize>t4 * (<usize>outF << 2);
  if (fmt == Q4_0) g8DecodeQ4_0Relaxed(w, a + ta, ad + ts, sp0 + ts, y + ty, n, outF, nTok - t4, r0, r1);
  else g8DecodeQ4_1Relaxed(w, a + ta, ad + ts, sp0 + ts, y + ty, n, outF, nTok - t4, r0, r1);
}

/**
 * The group's blocks expanded for the prompt path: per block at `e` (576 bytes), the 8 scales as f32 (32 bytes),
 * q4_1's 8 mins as f32 (32), then 16 slots of two i16 vectors (rows 0-3, rows 4-7) whose dot with broadcast
 * activation word j (slot j) is the decode path's: q4_0/q4_1 slot 4c + m holds column c's nibbles under mask m,
 * q8_0 slot k the sign-extended bytes 2k, 2k + 1.
 */
function expandG8(fmt: i32, gw: usize, nb: i32, e: usize): void {
  const gb = g8bytes(fmt);
  // The nibble masks loaded once (as constants V8 would rebuild each one at every use).
  const m0 = v128.load(G8K);
  const m1 = v128.load(G8K, 16);
  const m2 = v128.load(G8K, 32);
  for (let b = 0; b < nb; b++) {
    const blk = gw + <usize>b * gb;
    const o = e + <usize>b * E_BLOCK;
    v128.store(o, scales4(blk));
    v128.store(o, scales4(blk + 8), 16);
    if (fmt == Q4_1) {
      v128.store(o, scales4(blk + 16), 32);
      v128.store(o, scales4(blk + 24), 48);
    }
    if (fmt == Q8_0) {
      for (let k = 0; k < 16; k++) {
        const v = v128.load(blk + 16 + (k << 4));
        v128.store(o + 64 + (k << 5), i16x8.extend_low_i8x16_s(v));
        v128.store(o + 64 + (k << 5), i16x8.extend_high_i8x16_s(v), 16);
      }
    } else {
      const q = blk + (fmt == Q4_1 ? 32 : 16);
      for (let c = 0; c < 4; c++) {
        for (let hh = 0; hh < 2; hh++) {
          const v = v128.load(q + (c << 5) + (hh << 4));
          const so = o + 64 + (c << 7) + (hh << 4);
          v128.store(so, v128.and(v, m0));
          v128.store(so, v128.and(v, m1), 32);
          v128.store(so, v128.and(v, m2), 64);
          v128.store(so, i16x8.shr_u(v, 12), 96);
        }
      }
    }
  }
}

/** {@link g8block} for the expanded layout (scales and mins already f32). */
@inline function eblock(fmt: i32, e: usize, sp: usize, dp: usize, v: v128, acc: v128, hi: i32): v128 {
  const h: usize = hi ? 16 : 0;
  if (fmt == Q8_0) {
    return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(v), f32x4.mul(v128.load(e + h), f32x4.splat(load<f32>(dp)))));
  }
  const da = f32x4.splat(load<f32>(dp) * (<f32>1 / 256));
  if (fmt == Q4_0) {
    const u = i32x4.sub(v, i32x4.splat(load<i32>(sp) << 11));
    return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(u), f32x4.mul(v128.load(e + h), da)));
  }
  const m = f32x4.mul(v128.load(e + 32 + h), f32x4.splat(load<f32>(sp)));
  return f32x4.add(acc, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(v), f32x4.mul(v128.load(e + h), da)), m));
}


// The prompt path's token tiles: each expanded weight vector is loaded once and dotted with the broadcast
// activation words of 1, 2 or 4 tokens, so weight loads and loop overhead are shared by the tile. The integer sums
// of a block are exact (any order gives the same i32), and each token's f32 epilogue is {@link eblock} in block
// order, as on the decode path: the result of a token does not depend on its tile.
// Measured under V8 (x64, 16 xmm registers): 4 tokens beat 2 by 5-9%; 5 tokens spill and lose 10-20%; unrolling the
// slot loop by 2 makes V8 hoist the loads and spill (about 15% slower); both weight vectors of a slot loaded before
// the tokens' splats (one splat live) ties with the four splats first and leaves registers to spare.

/** Tokens [t, t + 4) of group g against the expanded group at `e0`. */
@inline function etile4(fmt: i32, e0: usize, a: usize, ad: usize, sp0: usize, y: usize, nb: i32, outF: i32, t: i32, g: i32): void {
  const stride = <usize>nb << 6;
  const ss = <usize>nb << 2;
  let a0 = a + <usize>t * stride;
  let dp = ad + <usize>t * ss;
  let sp = sp0 + <usize>t * ss;
  let f0 = f32x4.splat(0);
  let f1 = f32x4.splat(0);
  let f2 = f32x4.splat(0);
  let f3 = f32x4.splat(0);
  let h0 = f32x4.splat(0);
  let h1 = f32x4.splat(0);
  let h2 = f32x4.splat(0);
  let h3 = f32x4.splat(0);
  let e = e0;
  for (let b = 0; b < nb; b++) {
    let s0 = i32x4.splat(0);
    let s1 = i32x4.splat(0);
    let s2 = i32x4.splat(0);
    let s3 = i32x4.splat(0);
    let u0 = i32x4.splat(0);
    let u1 = i32x4.splat(0);
    let u2 = i32x4.splat(0);
    let u3 = i32x4.splat(0);
    const a1 = a0 + stride;
    const a2 = a1 + stride;
    const a3 = a2 + stride;
    const q = e + 64;
    // Slot k (32 bytes: rows 0-3, rows 4-7) pairs with activation word k of each token.
    for (let i: usize = 0; i < 64; i += 4) {
      const wl = v128.load(q + (i << 3));
      const wh = v128.load(q + (i << 3), 16);
      let x = v128.load32_splat(a0 + i);
      s0 = i32x4.add(s0, i32x4.dot_i16x8_s(wl, x));
      u0 = i32x4.add(u0, i32x4.dot_i16x8_s(wh, x));
      x = v128.load32_splat(a1 + i);
      s1 = i32x4.add(s1, i32x4.dot_i16x8_s(wl, x));
      u1 = i32x4.add(u1, i32x4.dot_i16x8_s(wh, x));
      x = v128.load32_splat(a2 + i);
      s2 = i32x4.add(s2, i32x4.dot_i16x8_s(wl, x));
      u2 = i32x4.add(u2, i32x4.dot_i16x8_s(wh, x));
      x = v128.load32_splat(a3 + i);
      s3 = i32x4.add(s3, i32x4.dot_i16x8_s(wl, x));
      u3 = i32x4.add(u3, i32x4.dot_i16x8_s(wh, x));
    }
    f0 = eblock(fmt, e, sp, dp, s0, f0, 0);
    h0 = eblock(fmt, e, sp, dp, u0, h0, 1);
    f1 = eblock(fmt, e, sp + ss, dp + ss, s1, f1, 0);
    h1 = eblock(fmt, e, sp + ss, dp + ss, u1, h1, 1);
    f2 = eblock(fmt, e, sp + 2 * ss, dp + 2 * ss, s2, f2, 0);
    h2 = eblock(fmt, e, sp + 2 * ss, dp + 2 * ss, u2, h2, 1);
    f3 = eblock(fmt, e, sp + 3 * ss, dp + 3 * ss, s3, f3, 0);
    h3 = eblock(fmt, e, sp + 3 * ss, dp + 3 * ss, u3, h3, 1);
    e += E_BLOCK;
    a0 += 64;
    dp += 4;
    sp += 4;
  }
  const o = g << 3;
  const ys = <usize>outF << 2;
  const y0 = y + <usize>t * ys;
  storeRows4(y0, o, outF, f0);
  storeRows4(y0, o + 4, outF, h0);
  storeRows4(y0 + ys, o, outF, f1);
  storeRows4(y0 + ys, o + 4, outF, h1);
  storeRows4(y0 + 2 * ys, o, outF, f2);
  storeRows4(y0 + 2 * ys, o + 4, outF, h2);
  storeRows4(y0 + 3 * ys, o, outF, f3);
  storeRows4(y0 + 3 * ys, o + 4, outF, h3);
}

/** Tokens t and t + 1 of group g (see {@link etile4}). */
@inline function etile2(fmt: i32, e0: usize, a: usize, ad: usize, sp0: usize, y: usize, nb: i32, outF: i32, t: i32, g: i32): void {
  const stride = <usize>nb << 6;
  const ss = <usize>nb << 2;
  let a0 = a + <usize>t * stride;
  let dp = ad + <usize>t * ss;
  let sp = sp0 + <usize>t * ss;
  let f0 = f32x4.splat(0);
  let f1 = f32x4.splat(0);
  let h0 = f32x4.splat(0);
  let h1 = f32x4.splat(0);
  let e = e0;
  for (let b = 0; b < nb; b++) {
    let s0 = i32x4.splat(0);
    let s1 = i32x4.splat(0);
    let u0 = i32x4.splat(0);
    let u1 = i32x4.splat(0);
    const a1 = a0 + stride;
    const q = e + 64;
    for (let i: usize = 0; i < 64; i += 4) {
      const x0 = v128.load32_splat(a0 + i);
      const x1 = v128.load32_splat(a1 + i);
      const wl = v128.load(q + (i << 3));
      s0 = i32x4.add(s0, i32x4.dot_i16x8_s(wl, x0));
      s1 = i32x4.add(s1, i32x4.dot_i16x8_s(wl, x1));
      const wh = v128.load(q + (i << 3), 16);
      u0 = i32x4.add(u0, i32x4.dot_i16x8_s(wh, x0));
      u1 = i32x4.add(u1, i32x4.dot_i16x8_s(wh, x1));
    }
    f0 = eblock(fmt, e, sp, dp, s0, f0, 0);
    h0 = eblock(fmt, e, sp, dp, u0, h0, 1);
    f1 = eblock(fmt, e, sp + ss, dp + ss, s1, f1, 0);
    h1 = eblock(fmt, e, sp + ss, dp + ss, u1, h1, 1);
    e += E_BLOCK;
    a0 += 64;
    dp += 4;
    sp += 4;
  }
  const o = g << 3;
  const ys = <usize>outF << 2;
  const y0 = y + <usize>t * ys;
  storeRows4(y0, o, outF, f0);
  storeRows4(y0, o + 4, outF, h0);
  storeRows4(y0 + ys, o, outF, f1);
  storeRows4(y0 + ys, o + 4, outF, h1);
}

/** Token t of group g (see {@link etile4}). */
@inline function etile1(fmt: i32, e0: usize, a: usize, ad: usize, sp0: usize, y: usize, nb: i32, outF: i32, t: i32, g: i32): void {
  const stride = <usize>nb << 6;
  const ss = <usize>nb << 2;
  let a0 = a + <usize>t * stride;
  let dp = ad + <usize>t * ss;
  let sp = sp0 + <usize>t * ss;
  let f0 = f32x4.splat(0);
  let h0 = f32x4.splat(0);
  let e = e0;
  for (let b = 0; b < nb; b++) {
    let s0 = i32x4.splat(0);
    let u0 = i32x4.splat(0);
    const q = e + 64;
    for (let i: usize = 0; i < 64; i += 4) {
      const x0 = v128.load32_splat(a0 + i);
      s0 = i32x4.add(s0, i32x4.dot_i16x8_s(v128.load(q + (i << 3)), x0));
      u0 = i32x4.add(u0, i32x4.dot_i16x8_s(v128.load(q + (i << 3), 16), x0));
    }
    f0 = eblock(fmt, e, sp, dp, s0, f0, 0);
    h0 = eblock(fmt, e, sp, dp, u0, h0, 1);
    e += E_BLOCK;
    a0 += 64;
    dp += 4;
    sp += 4;
  }
  const y0 = y + <usize>t * (<usize>outF << 2);
  storeRows4(y0, g << 3, outF, f0);
  storeRows4(y0, (g << 3) + 4, outF, h0);
}

/**
 * q4_0 x q8_0 on 8-row groups (see {@link matmulG8Impl}); in the relaxed build, under
 * {@link RELAXED_DECODE_TOKENS} tokens, {@link g8DecodeQ4_0Relaxed} on layout 4 activations.
 */
export function matmulQ4_0(w: usize, a: usize, ad: usize, as: usize, y: usize, n: i32, outF: i32, nTok: i32, r0: i32, r1: i32, scratch: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (nTok < RELAXED_DECODE_TOKENS) g8DecodeQ4_0Relaxed(w, a, ad, as, y, n, outF, nTok, r0, r1);
    else relaxedPromptG8(Q4_0, w, a, ad, as, y, n, outF, nTok, r0, r1);
    return;
  }
  matmulG8Impl(Q4_0, w, a, ad, as, y, n, outF, nTok, r0, r1, scratch);
}
/**
 * q4_1 x q8_1 on 8-row groups; `s81` is q8_1's s per block (f32). In the relaxed build, under
 * {@link RELAXED_DECODE_TOKENS} tokens, {@link g8DecodeQ4_1Relaxed} on layout 4 activations.
 */
export function matmulQ4_1(w: usize, a: usize, ad: usize, s81: usize, y: usize, n: i32, outF: i32, nTok: i32, r0: i32, r1: i32, scratch: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (nTok < RELAXED_DECODE_TOKENS) g8DecodeQ4_1Relaxed(w, a, ad, s81, y, n, outF, nTok, r0, r1);
    else relaxedPromptG8(Q4_1, w, a, ad, s81, y, n, outF, nTok, r0, r1);
    return;
  }
  matmulG8Impl(Q4_1, w, a, ad, s81, y, n, outF, nTok, r0, r1, scratch);
}
/** q8_0 x q8_0 on 8-row groups (activations in layout 0). */
export function matmulQ8_0(w: usize, a: usize, ad: usize, y: usize, n: i32, outF: i32, nTok: i32, r0: i32, r1: i32, scratch: usize): void {
  matmulG8Impl(Q8_0, w, a, ad, 0, y, n, outF, nTok, r0, r1, scratch);
}

/** 32 int8 quants at `p` against 32 i16 activations. */
@inline function q8x32(p: usize, a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const v = v128.load(p);
  const u = v128.load(p, 16);
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v), a0), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v), a1)),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(u), a2), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(u), a3)),
  );
}

@inline function hsumI(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

// ---- Q4_K in 8-row groups ------------------------------------------------------------------------------------------

/** Bytes of one 8-row group's super-block (256 columns) of Q4_K, regrouped by {@link repackQ4K}. */
const G8_Q4_K: i32 = 1248;

/** Offset, in a {@link repackQ4K} super-block, of the i16 min of sub-block j of row `lane` (0..7). */
@inline function q4kMinAt(lane: i32, j: i32): i32 {
  return 96 + ((lane >> 2) << 6) + ((j >> 1) << 4) + ((lane & 3) << 2) + ((j & 1) << 1);
}
/** Offset, in a {@link repackQ4K} super-block, of quant byte l (0..31) of 64-value chunk c of row `lane`. */
@inline function q4kQuantAt(lane: i32, c: i32, l: i32): i32 {
  return 224 + (c << 8) + ((l >> 2) << 5) + ((lane >> 2) << 4) + ((lane & 3) << 2) + (l & 3);
}

/**
 * Q4_K regrouped by 8 rows (`back` 0: `src` in the file layout, `dst` regrouped) or back (1), per super-block of 256
 * columns in 1248 bytes: [0, 16) the 8 rows' d (f16), [16, 32) their dmin, [32, 96) the 6-bit scales as bytes
 * (sub-block j: rows 0-7 at 32 + 8j), [96, 224) the mins as i16 for pair dots ({@link q4kMinAt}: per half of 4 rows
 * and pair of sub-blocks, row by row), [224, 1248) the quant bytes ({@link q4kQuantAt}: chunk c of 64 values, bytes
 * 4i..4i+3 of rows 0-3, then of rows 4-7: {@link nibdot}'s 16-byte loads). Rows past `rows` are zero. The 12 bytes
 * of packed scales hold exactly the 16 6-bit values, so `back` restores the file's bytes.
 */
function repackQ4K(src: usize, dst: usize, rows: i32, n: i32, back: i32): void {
  const nb = n >> 8;
  const groups = (rows + 7) >> 3;
  for (let g = 0; g < groups; g++) {
    for (let b = 0; b < nb; b++) {
      const blk = (back ? src : dst) + (<usize>g * nb + b) * G8_Q4_K;
      if (!back) memory.fill(blk, 0, G8_Q4_K);
      for (let lane = 0; lane < 8; lane++) {
        const r = 8 * g + lane;
        if (r >= rows) continue;
        const file = (back ? dst : src) + (<usize>r * nb + b) * 144;
        if (back) {
          store<u16>(file, load<u16>(blk + 2 * lane));
          store<u16>(file + 2, load<u16>(blk + 16 + 2 * lane));
          // ggml's get_scale_min_k4, inverted: bytes 0-3 scales 0-3, 4-7 mins 0-3, each with 2 high bits of the
          // scale (min) j + 4 on top; bytes 8-11 the low 4 bits of scale and min j + 4.
          for (let j = 0; j < 4; j++) {
            const sc = <u32>u8at(blk + 32 + 8 * j + lane);
            const sc4 = <u32>u8at(blk + 32 + 8 * (j + 4) + lane);
            const mn = <u32>load<u16>(blk + q4kMinAt(lane, j));
            const mn4 = <u32>load<u16>(blk + q4kMinAt(lane, j + 4));
            store<u8>(file + 4 + j, <u8>(sc | ((sc4 >> 4) << 6)));
            store<u8>(file + 8 + j, <u8>(mn | ((mn4 >> 4) << 6)));
            store<u8>(file + 12 + j, <u8>((sc4 & 15) | ((mn4 & 15) << 4)));
          }
          for (let c = 0; c < 4; c++)
            for (let l = 0; l < 32; l += 4) store<u32>(file + 16 + 32 * c + l, load<u32>(blk + q4kQuantAt(lane, c, l)));
        } else {
          store<u16>(blk + 2 * lane, load<u16>(file));
          store<u16>(blk + 16 + 2 * lane, load<u16>(file + 2));
          for (let j = 0; j < 8; j++) {
            store<u8>(blk + 32 + 8 * j + lane, <u8>q4kScale(file + 4, j));
            store<u16>(blk + q4kMinAt(lane, j), <u16>q4kMin(file + 4, j));
          }
          for (let c = 0; c < 4; c++)
            for (let l = 0; l < 32; l += 4) store<u32>(blk + q4kQuantAt(lane, c, l), load<u32>(file + 16 + 32 * c + l));
        }
      }
    }
  }
}

/**
 * Q4_K x Q8_K (ggml's vec_dot_q4_K_q8_K) on the 8-row groups of {@link repackQ4K}, rows [r0, r1) (r0 a multiple of
 * 8), activations in layout 5 of {@link quantQ8_K}. Per super-block and row: d·Σ_j sc_j Σ q·a − dmin·Σ_j m_j Σ a,
 * the sums in integers, d and dmin times the activation's d. Each 16-byte load holds 4 bytes of 4 rows: the masks of
 * {@link nibdot} give the low nibbles (sub-block 2c) and the high ones (2c + 1) as separate sums, times 256 (exact;
 * shifted back before the scales, so a super-block's Σ sc·Σ q·a < 2^25). A group's weights stay in cache over the
 * tokens. Rows past `outF` are computed on the zero rows and dropped.
 */
export function matmulQ4_K(w: usize, a: usize, ad: usize, bs: usize, y: usize, n: i32, outF: i32, nTok: i32, r0: i32, r1: i32): void {
  const nb = n >> 8;
  const m0 = v128.load(G8K);
  const m1 = v128.load(G8K, 16);
  const m2 = v128.load(G8K, 32);
  const hm = v128.load(G8K, 48);
  const h112 = v128.load(G8K, 64);
  const zero = i32x4.splat(0);
  for (let g = r0 >> 3; g << 3 < r1; g++) {
    const gw = w + <usize>g * nb * G8_Q4_K;
    for (let t = 0; t < nTok; t++) {
      let acc0 = f32x4.splat(0);
      let acc1 = f32x4.splat(0);
      let blk = gw;
      let ab = a + ((<usize>t * n) << 1);
      let bsb = bs + ((<usize>t * (n >> 4)) << 2);
      let dp = ad + ((<usize>t * nb) << 2);
      for (let b = 0; b < nb; b++) {
        let is0 = zero;
        let is1 = zero;
        for (let c = 0; c < 4; c++) {
          let lo0 = zero;
          let hi0 = zero;
          let lo1 = zero;
          let hi1 = zero;
          let q = blk + 224 + (<usize>c << 8);
          let px = ab + (<usize>c << 7);
          const qend = q + 256;
          for (; q < qend; q += 32) {
            const x0 = v128.load32_splat(px);
            const x1 = v128.load32_splat(px, 4);
            const x2 = v128.load32_splat(px, 8);
            const x3 = v128.load32_splat(px, 12);
            const v = v128.load(q);
            const u = v128.load(q, 16);
            lo0 = i32x4.add(lo0, i32x4.add(i32x4.dot_i16x8_s(v128.and(v, m0), x0), i32x4.dot_i16x8_s(v128.and(v, m2), x2)));
            hi0 = i32x4.add(hi0, i32x4.add(i32x4.dot_i16x8_s(v128.and(v, m1), x1), i32x4.dot_i16x8_s(i16x8.shr_u(v, 12), x3)));
            lo1 = i32x4.add(lo1, i32x4.add(i32x4.dot_i16x8_s(v128.and(u, m0), x0), i32x4.dot_i16x8_s(v128.and(u, m2), x2)));
            hi1 = i32x4.add(hi1, i32x4.add(i32x4.dot_i16x8_s(v128.and(u, m1), x1), i32x4.dot_i16x8_s(i16x8.shr_u(u, 12), x3)));
            px += 16;
          }
          // The scales of sub-blocks 2c (bytes 0-7: rows 0-7) and 2c + 1 (bytes 8-15).
          const sc = v128.load(blk + 32 + (<usize>c << 4));
          const sl = i16x8.extend_low_i8x16_u(sc);
          const sh = i16x8.extend_high_i8x16_u(sc);
          is0 = i32x4.add(
            is0,
            i32x4.add(
              i32x4.mul(i32x4.shr_s(lo0, 8), i32x4.extend_low_i16x8_u(sl)),
              i32x4.mul(i32x4.shr_s(hi0, 8), i32x4.extend_low_i16x8_u(sh)),
            ),
          );
          is1 = i32x4.add(
            is1,
            i32x4.add(
              i32x4.mul(i32x4.shr_s(lo1, 8), i32x4.extend_high_i16x8_u(sl)),
              i32x4.mul(i32x4.shr_s(hi1, 8), i32x4.extend_high_i16x8_u(sh)),
            ),
          );
        }
        // Σ_j m_j Σ a: the sums of 32 (i16, layout 5) in pairs against each row's pair of mins.
        const bv = v128.load(bsb);
        const b0 = i8x16.shuffle(bv, bv, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);
        const b1 = i8x16.shuffle(bv, bv, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7);
        const b2 = i8x16.shuffle(bv, bv, 8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11);
        const b3 = i8x16.shuffle(bv, bv, 12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15);
        const mn0 = i32x4.add(
          i32x4.add(i32x4.dot_i16x8_s(v128.load(blk, 96), b0), i32x4.dot_i16x8_s(v128.load(blk, 112), b1)),
          i32x4.add(i32x4.dot_i16x8_s(v128.load(blk, 128), b2), i32x4.dot_i16x8_s(v128.load(blk, 144), b3)),
        );
        const mn1 = i32x4.add(
          i32x4.add(i32x4.dot_i16x8_s(v128.load(blk, 160), b0), i32x4.dot_i16x8_s(v128.load(blk, 176), b1)),
          i32x4.add(i32x4.dot_i16x8_s(v128.load(blk, 192), b2), i32x4.dot_i16x8_s(v128.load(blk, 208), b3)),
        );
        // sum += (d·d_a)·Σ sc·Σ q·a − (dmin·d_a)·Σ m·Σ a per row, in f32 as a scalar loop over the rows would.
        const da = v128.load32_splat(dp);
        const dd = v128.load(blk);
        const dm = v128.load(blk, 16);
        acc0 = f32x4.add(
          acc0,
          f32x4.sub(
            f32x4.mul(f32x4.mul(scalesF32(dd, 0, zero, hm, h112), da), f32x4.convert_i32x4_s(is0)),
            f32x4.mul(f32x4.mul(scalesF32(dm, 0, zero, hm, h112), da), f32x4.convert_i32x4_s(mn0)),
          ),
        );
        acc1 = f32x4.add(
          acc1,
          f32x4.sub(
            f32x4.mul(f32x4.mul(scalesF32(dd, 1, zero, hm, h112), da), f32x4.convert_i32x4_s(is1)),
            f32x4.mul(f32x4.mul(scalesF32(dm, 1, zero, hm, h112), da), f32x4.convert_i32x4_s(mn1)),
          ),
        );
        blk += G8_Q4_K;
        ab += 512;
        bsb += 64;
        dp += 4;
      }
      storeGroup(y, t, outF, g, acc0, acc1);
    }
  }
}

// ---- Q6_K in 8-row groups ------------------------------------------------------------------------------------------

/** Bytes of one 8-row group's super-block (256 columns) of Q6_K, regrouped by {@link repackQ6K}: 8 file blocks. */
const G8_Q6_K: i32 = 1680;

/**
 * Offset, in a {@link repackQ6K} super-block, of byte j (0..3) of 4-byte group i (0..7) of half n of row `lane`:
 * `vec` 0 the low quants ql[64n + 4i + j], 1 ql[64n + 32 + 4i + j], 2 the high bits qh[32n + 4i + j].
 */
@inline function q6kAt(lane: i32, n: i32, i: i32, vec: i32, j: i32): i32 {
  return 144 + ((((n << 3) + i) << 1) + (lane >> 2)) * 48 + (vec << 4) + ((lane & 3) << 2) + j;
}

/**
 * Q6_K regrouped by 8 rows (`back` 0: `src` in the file layout, `dst` regrouped) or back (1), per super-block of 256
 * columns in 1680 bytes (the file's 8 blocks, reordered): [0, 16) the 8 rows' d (f16), [16, 144) the int8 scales
 * (sub-block g: rows 0-7 at 16 + 8g), [144, 1680) the quant bytes ({@link q6kAt}): per half, 4-byte group and 4 rows,
 * three 16-byte vectors (ql low, ql high, qh), so that one load holds 4 bytes of 4 rows. Rows past `rows` are zero.
 */
function repackQ6K(src: usize, dst: usize, rows: i32, n: i32, back: i32): void {
  const nb = n >> 8;
  const groups = (rows + 7) >> 3;
  for (let g = 0; g < groups; g++) {
    for (let b = 0; b < nb; b++) {
      const blk = (back ? src : dst) + (<usize>g * nb + b) * G8_Q6_K;
      if (!back) memory.fill(blk, 0, G8_Q6_K);
      for (let lane = 0; lane < 8; lane++) {
        const r = 8 * g + lane;
        if (r >= rows) continue;
        const file = (back ? dst : src) + (<usize>r * nb + b) * 210;
        if (back) {
          store<u16>(file + 208, load<u16>(blk + 2 * lane));
          for (let s = 0; s < 16; s++) store<u8>(file + 192 + s, load<u8>(blk + 16 + 8 * s + lane));
        } else {
          store<u16>(blk + 2 * lane, load<u16>(file + 208));
          for (let s = 0; s < 16; s++) store<u8>(blk + 16 + 8 * s + lane, load<u8>(file + 192 + s));
        }
        for (let h = 0; h < 2; h++) {
          for (let i = 0; i < 8; i++) {
            const f0 = file + 64 * h + 4 * i;
            const f1 = f0 + 32;
            const f2 = file + 128 + 32 * h + 4 * i;
            const g0 = blk + q6kAt(lane, h, i, 0, 0);
            if (back) {
              store<u32>(f0, load<u32>(g0));
              store<u32>(f1, load<u32>(g0 + 16));
              store<u32>(f2, load<u32>(g0 + 32));
            } else {
              store<u32>(g0, load<u32>(f0));
              store<u32>(g0 + 16, load<u32>(f1));
              store<u32>(g0 + 32, load<u32>(f2));
            }
          }
        }
      }
    }
  }
}

/** Sub-block g's int8 scales of rows 0-3 (`hi` 0) or 4-7 (1) at `p` (8 bytes, rows 0-7) as i32 lanes. */
@inline function scales8to32(p: usize): v128 {
  return i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v128.load32_zero(p)));
}

/**
 * Q6_K x Q8_K (ggml's vec_dot_q6_K_q8_K) on the 8-row groups of {@link repackQ6K}, rows [r0, r1) (r0 a multiple of
 * 8), activations in layout 6 of {@link quantQ8_K} (each 4 values as a0, a2, a1, a3; sums of 16 times 32). Per 4 rows
 * and 4-byte group: the 6-bit quants of 4 sub-blocks built from ql and qh in bytes as the file decode does, bytes
 * 0, 2 and 1, 3 of each row as i16 lanes against the two activation words. Per super-block and row:
 * d_w·d_a·Σ_g sc_g (Σ q·a − 32 Σ a), the integer sum exact: the previous row kernel's value bit for bit.
 */
export function matmulQ6_K(w: usize, a: usize, ad: usize, bs: usize, y: usize, n: i32, outF: i32, nTok: i32, r0: i32, r1: i32): void {
  const nb = n >> 8;
  const m0f = i8x16.splat(0x0f);
  const m30 = i8x16.splat(0x30);
  const mlo = i16x8.splat(0x00ff);
  const hm = v128.load(G8K, 48);
  const h112 = v128.load(G8K, 64);
  const zero = i32x4.splat(0);
  for (let g = r0 >> 3; g << 3 < r1; g++) {
    const gw = w + <usize>g * nb * G8_Q6_K;
    for (let t = 0; t < nTok; t++) {
      let acc0 = f32x4.splat(0);
      let acc1 = f32x4.splat(0);
      let blk = gw;
      let ab = a + ((<usize>t * n) << 1);
      let bsb = bs + ((<usize>t * (n >> 4)) << 2);
      let dp = ad + ((<usize>t * nb) << 2);
      for (let b = 0; b < nb; b++) {
        let is0 = zero;
        let is1 = zero;
        for (let h = 0; h < 2; h++) {
          for (let ih = 0; ih < 2; ih++) {
            // Sub-blocks g1 + 0, 2, 4, 6 (values 128h + 16ih + 32k ..+15); 4-byte groups i = 4ih .. 4ih + 3.
            const g1 = (h << 3) + ih;
            for (let rh = 0; rh < 2; rh++) {
              let s1 = zero;
              let s2 = zero;
              let s3 = zero;
              let s4 = zero;
              let q = blk + 144 + ((((h << 3) + (ih << 2)) << 1) + rh) * 48;
              let px = ab + (<usize>((h << 7) + (ih << 4)) << 1);
              const qend = q + 4 * 96;
              for (; q < qend; q += 96) {
                const la = v128.load(q);
                const lb = v128.load(q, 16);
                const hb = v128.load(q, 32);
                const q1 = v128.or(v128.and(la, m0f), v128.and(i16x8.shl(hb, 4), m30));
                const q2 = v128.or(v128.and(lb, m0f), v128.and(i16x8.shl(hb, 2), m30));
                const q3 = v128.or(v128.and(i16x8.shr_u(la, 4), m0f), v128.and(hb, m30));
                const q4 = v128.or(v128.and(i16x8.shr_u(lb, 4), m0f), v128.and(i16x8.shr_u(hb, 2), m30));
                s1 = i32x4.add(s1, i32x4.add(i32x4.dot_i16x8_s(v128.and(q1, mlo), v128.load32_splat(px)), i32x4.dot_i16x8_s(i16x8.shr_u(q1, 8), v128.load32_splat(px, 4))));
                s2 = i32x4.add(s2, i32x4.add(i32x4.dot_i16x8_s(v128.and(q2, mlo), v128.load32_splat(px, 64)), i32x4.dot_i16x8_s(i16x8.shr_u(q2, 8), v128.load32_splat(px, 68))));
                s3 = i32x4.add(s3, i32x4.add(i32x4.dot_i16x8_s(v128.and(q3, mlo), v128.load32_splat(px, 128)), i32x4.dot_i16x8_s(i16x8.shr_u(q3, 8), v128.load32_splat(px, 132))));
                s4 = i32x4.add(s4, i32x4.add(i32x4.dot_i16x8_s(v128.and(q4, mlo), v128.load32_splat(px, 192)), i32x4.dot_i16x8_s(i16x8.shr_u(q4, 8), v128.load32_splat(px, 196))));
                px += 8;
              }
              // Σ_g sc_g (Σ q·a − 32 Σ a), the 32 Σ a of layout 6's sums.
              const sc = blk + 16 + (<usize>g1 << 3) + (<usize>rh << 2);
              const bg = bsb + (<usize>g1 << 2);
              let v = i32x4.add(
                i32x4.add(
                  i32x4.mul(i32x4.sub(s1, v128.load32_splat(bg)), scales8to32(sc)),
                  i32x4.mul(i32x4.sub(s2, v128.load32_splat(bg, 8)), scales8to32(sc + 16)),
                ),
                i32x4.add(
                  i32x4.mul(i32x4.sub(s3, v128.load32_splat(bg, 16)), scales8to32(sc + 32)),
                  i32x4.mul(i32x4.sub(s4, v128.load32_splat(bg, 24)), scales8to32(sc + 48)),
                ),
              );
              if (rh) is1 = i32x4.add(is1, v);
              else is0 = i32x4.add(is0, v);
            }
          }
        }
        const da = v128.load32_splat(dp);
        const dd = v128.load(blk);
        acc0 = f32x4.add(acc0, f32x4.mul(f32x4.mul(scalesF32(dd, 0, zero, hm, h112), da), f32x4.convert_i32x4_s(is0)));
        acc1 = f32x4.add(acc1, f32x4.mul(f32x4.mul(scalesF32(dd, 1, zero, hm, h112), da), f32x4.convert_i32x4_s(is1)));
        blk += G8_Q6_K;
        ab += 512;
        bsb += 64;
        dp += 4;
      }
      storeGroup(y, t, outF, g, acc0, acc1);
    }
  }
}

// ---- integer kernels on the file layout (the other formats) -------------------------------------------------------
//
// One row at a time, each 32 (or 16) weights turned into i8 values in two vectors and dotted with the natural-order
// i16 activations (layout 0). The integer sums of a block (super-block for the K-quants) are exact; they are
// scaled as ggml's vec_dot scales them and summed in f32 lanes, flushed into an f64 total every 8 blocks so long rows
// keep the accuracy of ggml's own sums.

/** 16 i8 values against 16 i16 activations at `p`: partial sums in 4 lanes. */
@inline function dot16(v: v128, p: usize): v128 {
  return i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v), v128.load(p)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v), v128.load(p, 16)),
  );
}

/** Low and high nibbles of 16 bytes, as bytes (0..15). */
@inline function lowNib(v: v128): v128 {
  return v128.and(v, i8x16.splat(0x0f));
}
@inline function highNib(v: v128): v128 {
  return v128.and(i16x8.shr_u(v, 4), i8x16.splat(0x0f));
}

/** Byte j = 0xff where bit j (< 16) of `w` is set (`w`: the bits splatted into every i32 lane). */
@inline function bits16lo(w: v128): v128 {
  const b = i8x16.shuffle(w, w, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const m = i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  return i8x16.eq(v128.and(b, m), m);
}
/** The same for bits 16..31. */
@inline function bits16hi(w: v128): v128 {
  const b = i8x16.shuffle(w, w, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const m = i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  return i8x16.eq(v128.and(b, m), m);
}

/** Adds the lanes of `v` to the f64 running total (the flush of the f32 lane sums). */
@inline function flush(total: f64, v: v128): f64 {
  return total + <f64>hsum(v);
}

/**
 * ggml-mode matmul of the formats kept in the file layout (q5_0, q5_1, iq4_nl, mxfp4 against q8_0/q8_1; q2_K,
 * q3_K, q5_K, iq4_xs against q8_K) for rows [r0, r1) and every token. a: layout-0 quants; ad: their scales;
 * `as`: q8_0's quant sums per 32 (i32), q8_1's s (f32), or q8_K's sums per 16 (i32).
 */
export function matmulRows(
  fmt: i32,
  w: usize,
  rowBytes: i32,
  a: usize,
  ad: usize,
  as: usize,
  y: usize,
  n: i32,
  outF: i32,
  nTok: i32,
  r0: i32,
  r1: i32,
): void {
  for (let o = r0; o < r1; o++) {
    const row = w + <usize>o * rowBytes;
    for (let t = 0; t < nTok; t++) {
      let v: f64 = 0;
      if (fmt == Q5_0 || fmt == Q5_1) v = rowQ5(fmt, row, a, ad, as, n, t);
      else if (fmt == IQ4_NL || fmt == MXFP4) v = rowNL(fmt, row, a, ad, n, t);
      else if (fmt == IQ4_XS) v = rowIQ4XS(row, a, ad, n, t);
      else if (fmt == Q5_K) v = rowQ5K(row, a, ad, as, n, t);
      else if (fmt == Q2_K) v = rowQ2K(row, a, ad, as, n, t);
      else if (fmt == Q3_K) v = rowQ3K(row, a, ad, as, n, t);
      store<f32>(y + ((<usize>t * outF + o) << 2), <f32>v);
    }
  }
}

/** q5_0 x q8_0: Σ (q - 16)·a = Σ q·a - 16 Σ a; q5_1 x q8_1: d·Σ q·a + m·s (vec_dot_q5_0/q5_1). */
@inline function rowQ5(fmt: i32, row: usize, a: usize, ad: usize, as: usize, n: i32, t: i32): f64 {
  const nb = n >> 5;
  const bpb: i32 = fmt == Q5_0 ? 22 : 24;
  const head: i32 = fmt == Q5_0 ? 2 : 4;
  const hb = i8x16.splat(0x10);
  let total: f64 = 0;
  let acc = f32x4.splat(0);
  let mins: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const p = row + b * bpb;
    const ap = a + ((<usize>t * n + (b << 5)) << 1);
    const k = (<usize>t * nb + b) << 2;
    const qh = i32x4.splat(load<i32>(p + head));
    const v = v128.load(p + head + 4);
    const lo = v128.or(lowNib(v), v128.and(bits16lo(qh), hb));
    const hi = v128.or(highNib(v), v128.and(bits16hi(qh), hb));
    let s = i32x4.add(dot16(lo, ap), dot16(hi, ap + 32));
    if (fmt == Q5_0) s = i32x4.sub(s, i32x4.replace_lane(i32x4.splat(0), 0, load<i32>(as + k) << 4));
    else mins += h2f(load<u16>(p + 2)) * load<f32>(as + k);
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(h2f(load<u16>(p)) * load<f32>(ad + k))));
    if ((b & 7) == 7) {
      total = flush(total, acc) + <f64>mins;
      acc = f32x4.splat(0);
      mins = 0;
    }
  }
  return flush(total, acc) + <f64>mins;
}

/** iq4_nl / mxfp4 x q8_0: 4-bit indices into the value table, times the block scale (vec_dot_iq4_nl/mxfp4). */
@inline function rowNL(fmt: i32, row: usize, a: usize, ad: usize, n: i32, t: i32): f64 {
  const nb = n >> 5;
  const bpb: i32 = fmt == IQ4_NL ? 18 : 17;
  const head: i32 = fmt == IQ4_NL ? 2 : 1;
  const tbl = v128.load(fmt == IQ4_NL ? IQ4NL : FP4);
  let total: f64 = 0;
  let acc = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const p = row + b * bpb;
    const ap = a + ((<usize>t * n + (b << 5)) << 1);
    const v = v128.load(p + head);
    const s = i32x4.add(dot16(i8x16.swizzle(tbl, lowNib(v)), ap), dot16(i8x16.swizzle(tbl, highNib(v)), ap + 32));
    const dw: f32 = fmt == IQ4_NL ? h2f(load<u16>(p)) : e8m0half(u8at(p));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(dw * load<f32>(ad + ((<usize>t * nb + b) << 2)))));
    if ((b & 7) == 7) {
      total = flush(total, acc);
      acc = f32x4.splat(0);
    }
  }
  return flush(total, acc);
}

/** iq4_xs x q8_K: per super-block d·d8·Σ_ib (ls_ib - 32)·Σ table[q]·a, the sum over sub-blocks in integers. */
@inline function rowIQ4XS(row: usize, a: usize, ad: usize, n: i32, t: i32): f64 {
  const nb = n >> 8;
  const tbl = v128.load(IQ4NL);
  let total: f64 = 0;
  for (let b = 0; b < nb; b++) {
    const p = row + b * 136;
    const ap = a + ((<usize>t * n + (b << 8)) << 1);
    const sh = <u32>load<u16>(p + 2);
    let isum = i32x4.splat(0);
    for (let ib = 0; ib < 8; ib++) {
      const ls = ((<u32>u8at(p + 4 + (ib >> 1)) >> (4 * (ib & 1))) & 15) | (((sh >> (2 * ib)) & 3) << 4);
      const v = v128.load(p + 8 + 16 * ib);
      const q = ap + (ib << 6);
      const s = i32x4.add(dot16(i8x16.swizzle(tbl, lowNib(v)), q), dot16(i8x16.swizzle(tbl, highNib(v)), q + 32));
      isum = i32x4.add(isum, i32x4.mul(s, i32x4.splat(<i32>ls - 32)));
    }
    total += <f64>(h2f(load<u16>(p)) * load<f32>(ad + ((<usize>t * nb + b) << 2)) * <f32>hsumI(isum));
  }
  return total;
}

/**
 * q5_K x q8_K: Q4_K's 6-bit scales and mins with a fifth bit per weight (qh: bit 2c for chunk c's low nibbles,
 * 2c + 1 for its high ones): d·Σ_j sc_j Σ q·a - dmin·Σ_j m_j Σ a per super-block (vec_dot_q5_K).
 */
@inline function rowQ5K(row: usize, a: usize, ad: usize, bs: usize, n: i32, t: i32): f64 {
  const nb = n >> 8;
  let total: f64 = 0;
  for (let b = 0; b < nb; b++) {
    const p = row + b * 176;
    const ap = a + ((<usize>t * n + (b << 8)) << 1);
    const bsb = bs + ((<usize>t * (n >> 4) + (b << 4)) << 2);
    const h0 = v128.load(p + 16);
    const h1 = v128.load(p + 32);
    let isum = i32x4.splat(0);
    let msum: i32 = 0;
    for (let c = 0; c < 4; c++) {
      const v0 = v128.load(p + 48 + 32 * c);
      const v1 = v128.load(p + 64 + 32 * c);
      const bl = i8x16.splat(<i8>(<i32>1 << (2 * c)));
      const bh = i8x16.splat(<i8>(<i32>2 << (2 * c)));
      const hb = i8x16.splat(0x10);
      const l0 = v128.or(lowNib(v0), v128.and(i8x16.eq(v128.and(h0, bl), bl), hb));
      const l1 = v128.or(lowNib(v1), v128.and(i8x16.eq(v128.and(h1, bl), bl), hb));
      const u0 = v128.or(highNib(v0), v128.and(i8x16.eq(v128.and(h0, bh), bh), hb));
      const u1 = v128.or(highNib(v1), v128.and(i8x16.eq(v128.and(h1, bh), bh), hb));
      const q = ap + (c << 7);
      const sl = i32x4.add(dot16(l0, q), dot16(l1, q + 32));
      const su = i32x4.add(dot16(u0, q + 64), dot16(u1, q + 96));
      const j = 2 * c;
      const scl = <i32>q4kScale(p + 4, j);
      const sch = <i32>q4kScale(p + 4, j + 1);
      isum = i32x4.add(isum, i32x4.add(i32x4.mul(sl, i32x4.splat(scl)), i32x4.mul(su, i32x4.splat(sch))));
      const g = j << 1;
      msum +=
        <i32>q4kMin(p + 4, j) * (load<i32>(bsb + (g << 2)) + load<i32>(bsb + ((g + 1) << 2))) +
        <i32>q4kMin(p + 4, j + 1) * (load<i32>(bsb + ((g + 2) << 2)) + load<i32>(bsb + ((g + 3) << 2)));
    }
    const da = load<f32>(ad + ((<usize>t * nb + b) << 2));
    total += <f64>(h2f(load<u16>(p)) * da * <f32>hsumI(isum) - h2f(load<u16>(p + 2)) * da * <f32>msum);
  }
  return total;
}

/** q2_K x q8_K: 2-bit weights, a 4-bit scale and min per 16 (vec_dot_q2_K): dall·Σ sc·Σ q·a - dmin·Σ m·Σ a. */
@inline function rowQ2K(row: usize, a: usize, ad: usize, bs: usize, n: i32, t: i32): f64 {
  const nb = n >> 8;
  const m3 = i8x16.splat(3);
  let total: f64 = 0;
  for (let b = 0; b < nb; b++) {
    const p = row + b * 84;
    const ap = a + ((<usize>t * n + (b << 8)) << 1);
    const bsb = bs + ((<usize>t * (n >> 4) + (b << 4)) << 2);
    let isum = i32x4.splat(0);
    let msum: i32 = 0;
    for (let h = 0; h < 2; h++) {
      const v0 = v128.load(p + 16 + 32 * h);
      const v1 = v128.load(p + 32 + 32 * h);
      for (let s4 = 0; s4 < 4; s4++) {
        const is = 8 * h + 2 * s4;
        const q0 = v128.and(i16x8.shr_u(v0, 2 * s4), m3);
        const q1 = v128.and(i16x8.shr_u(v1, 2 * s4), m3);
        const q = ap + ((128 * h + 32 * s4) << 1);
        const sc0 = u8at(p + is);
        const sc1 = u8at(p + is + 1);
        isum = i32x4.add(
          isum,
          i32x4.add(i32x4.mul(dot16(q0, q), i32x4.splat(sc0 & 15)), i32x4.mul(dot16(q1, q + 32), i32x4.splat(sc1 & 15))),
        );
        msum += <i32>(sc0 >> 4) * load<i32>(bsb + (is << 2)) + <i32>(sc1 >> 4) * load<i32>(bsb + ((is + 1) << 2));
      }
    }
    const da = load<f32>(ad + ((<usize>t * nb + b) << 2));
    total += <f64>(da * h2f(load<u16>(p + 80)) * <f32>hsumI(isum) - da * h2f(load<u16>(p + 82)) * <f32>msum);
  }
  return total;
}

/**
 * q3_K x q8_K: 2 low bits plus a high bit that, when clear, subtracts 4 (vec_dot_q3_K): with v = q + 4·h in 0..7,
 * Σ (v - 4)·a = Σ v·a - 4 Σ a per 16; 6-bit signed scales; d·d8·Σ sc·(...).
 */
@inline function rowQ3K(row: usize, a: usize, ad: usize, bs: usize, n: i32, t: i32): f64 {
  const nb = n >> 8;
  const m3 = i8x16.splat(3);
  const four = i8x16.splat(4);
  let total: f64 = 0;
  for (let b = 0; b < nb; b++) {
    const p = row + b * 110;
    const ap = a + ((<usize>t * n + (b << 8)) << 1);
    const bsb = bs + ((<usize>t * (n >> 4) + (b << 4)) << 2);
    const hm0 = v128.load(p);
    const hm1 = v128.load(p + 16);
    let isum = i32x4.splat(0);
    let corr: i32 = 0;
    for (let h = 0; h < 2; h++) {
      const v0 = v128.load(p + 32 + 32 * h);
      const v1 = v128.load(p + 48 + 32 * h);
      for (let s4 = 0; s4 < 4; s4++) {
        const bit = i8x16.splat(<i8>(<i32>1 << (4 * h + s4)));
        const q0 = v128.or(v128.and(i16x8.shr_u(v0, 2 * s4), m3), v128.and(i8x16.eq(v128.and(hm0, bit), bit), four));
        const q1 = v128.or(v128.and(i16x8.shr_u(v1, 2 * s4), m3), v128.and(i8x16.eq(v128.and(hm1, bit), bit), four));
        const e0 = 128 * h + 32 * s4;
        const q = ap + (e0 << 1);
        const sc0 = q3kScale(p + 96, e0 >> 4);
        const sc1 = q3kScale(p + 96, (e0 >> 4) + 1);
        isum = i32x4.add(
          isum,
          i32x4.add(i32x4.mul(dot16(q0, q), i32x4.splat(sc0)), i32x4.mul(dot16(q1, q + 32), i32x4.splat(sc1))),
        );
        corr += sc0 * load<i32>(bsb + ((e0 >> 4) << 2)) + sc1 * load<i32>(bsb + (((e0 >> 4) + 1) << 2));
      }
    }
    const d = h2f(load<u16>(p + 108)) * load<f32>(ad + ((<usize>t * nb + b) << 2));
    total += <f64>(d * <f32>(hsumI(isum) - 4 * corr));
  }
  return total;
}

/** bf16 weights: widened in registers (8 per load), f32 products, chunked like {@link dotF32}. */
function matmulBF16(w: usize, rowBytes: i32, x: usize, y: usize, n: i32, outF: i32, nTok: i32, r0: i32, r1: i32): void {
  for (let o = r0; o < r1; o++) {
    const row = w + <usize>o * rowBytes;
    for (let t = 0; t < nTok; t++) {
      const xr = x + ((<usize>t * n) << 2);
      let total: f64 = 0;
      let i = 0;
      for (; i + 32 <= n; i += 32) {
        const p = row + (i << 1);
        const q = xr + (i << 2);
        const v0 = v128.load(p);
        const v1 = v128.load(p, 16);
        const v2 = v128.load(p, 32);
        const v3 = v128.load(p, 48);
        let s0 = f32x4.mul(lo16top(v0), v128.load(q));
        let s1 = f32x4.mul(hi16top(v0), v128.load(q, 16));
        s0 = f32x4.add(s0, f32x4.mul(lo16top(v1), v128.load(q, 32)));
        s1 = f32x4.add(s1, f32x4.mul(hi16top(v1), v128.load(q, 48)));
        s0 = f32x4.add(s0, f32x4.mul(lo16top(v2), v128.load(q, 64)));
        s1 = f32x4.add(s1, f32x4.mul(hi16top(v2), v128.load(q, 80)));
        s0 = f32x4.add(s0, f32x4.mul(lo16top(v3), v128.load(q, 96)));
        s1 = f32x4.add(s1, f32x4.mul(hi16top(v3), v128.load(q, 112)));
        total += <f64>hsum(f32x4.add(s0, s1));
      }
      let t2: f32 = 0;
      for (; i < n; i++) t2 += reinterpret<f32>((<u32>load<u16>(row + (i << 1))) << 16) * load<f32>(xr + (i << 2));
      store<f32>(y + ((<usize>t * outF + o) << 2), <f32>(total + <f64>t2));
    }
  }
}

/**
 * q4_1 / q5_1 weights in ggml mode run on the decoded q8_1 activations; ggml's min term is m·s with the block's
 * stored s = fp16(d·Σq), not m·d·Σq: add Σ_b m_b·(s_b - d_b·Σq_b) to rows [r0, r1).
 */
export function fixQ8_1(
  fmt: i32,
  w: usize,
  rowBytes: i32,
  ad: usize,
  as: usize,
  s81: usize,
  y: usize,
  n: i32,
  outF: i32,
  nTok: i32,
  r0: i32,
  r1: i32,
): void {
  const nb = n >> 5;
  const bpb: i32 = fmt == Q4_1 ? 20 : 24;
  for (let o = r0; o < r1; o++) {
    const row = w + <usize>o * rowBytes;
    for (let t = 0; t < nTok; t++) {
      let fix: f64 = 0;
      for (let b = 0; b < nb; b++) {
        const k = (<usize>t * nb + b) << 2;
        const diff = <f64>load<f32>(s81 + k) - <f64>load<f32>(ad + k) * <f64>load<i32>(as + k);
        fix += <f64>h2f(load<u16>(row + b * bpb + 2)) * diff;
      }
      const yp = y + ((<usize>t * outF + o) << 2);
      store<f32>(yp, <f32>(<f64>load<f32>(yp) + fix));
    }
  }
}

/** Epilogue of a fused matmul: y += bias (per column) and then y += residual, for columns [r0, r1). */
export function addBiasResidual(y: usize, bias: usize, res: usize, outF: i32, nTok: i32, r0: i32, r1: i32): void {
  for (let t = 0; t < nTok; t++) {
    const yt = y + ((<usize>t * outF) << 2);
    for (let o = r0; o < r1; o++) {
      let v = load<f32>(yt + (<usize>o << 2));
      if (bias) v += load<f32>(bias + (<usize>o << 2));
      if (res) v += load<f32>(res + ((<usize>t * outF + o) << 2));
      store<f32>(yt + (<usize>o << 2), v);
    }
  }
}

// ---- other ops -----------------------------------------------------------------------------------------------------

/** Rows [r0, r1) of the table at `ids` decoded into out [*, n]. */
export function getRows(fmt: i32, w: usize, rowBytes: i32, ids: usize, out: usize, n: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) decodeRow(fmt, w, load<i32>(ids + (r << 2)), rowBytes, out + ((<usize>r * n) << 2), n);
}

/**
 * Rows [r0, r1) of rms_norm (`layer` = 0) or layer_norm (1): f32((x - mean) / sqrt(var + eps)) · weight + bias,
 * sums in f64; `w` and `b` may be 0 (none).
 */
export function norm(x: usize, out: usize, w: usize, bias: usize, n: i32, eps: f64, layer: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const xr = x + ((<usize>r * n) << 2);
    const yr = out + ((<usize>r * n) << 2);
    let mean: f64 = 0;
    if (layer) {
      for (let i = 0; i < n; i++) mean += <f64>load<f32>(xr + (i << 2));
      mean /= n;
    }
    let ss: f64 = 0;
    for (let i = 0; i < n; i++) {
      const v = <f64>load<f32>(xr + (i << 2)) - mean;
      ss += v * v;
    }
    const s = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) {
      let v = <f32>((<f64>load<f32>(xr + (i << 2)) - mean) * s);
      if (w) v *= load<f32>(w + (i << 2));
      if (bias) v += load<f32>(bias + (i << 2));
      store<f32>(yr + (i << 2), v);
    }
  }
}

/** Softmax of rows [r0, r1) of x [*, n], exp and sum in f64. */
export function softmax(x: usize, out: usize, n: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const xr = x + ((<usize>r * n) << 2);
    const yr = out + ((<usize>r * n) << 2);
    let max: f32 = -Infinity;
    for (let i = 0; i < n; i++) max = Mathf.max(max, load<f32>(xr + (i << 2)));
    let sum: f64 = 0;
    for (let i = 0; i < n; i++) {
      const e = Math.exp(<f64>load<f32>(xr + (i << 2)) - <f64>max);
      store<f32>(yr + (i << 2), <f32>e);
      sum += e;
    }
    const inv = 1 / sum;
    for (let i = 0; i < n; i++) store<f32>(yr + (i << 2), <f32>(<f64>load<f32>(yr + (i << 2)) * inv));
  }
}

@inline function siluF(v: f64): f64 {
  return v / (1 + Math.exp(-v));
}
@inline function geluF(v: f64): f64 {
  return 0.5 * v * (1 + Math.tanh(0.7978845608028654 * v * (1 + 0.044715 * v * v)));
}

/**
 * Element-wise ops on elements [e0, e1): 0 silu, 1 gelu, 2 scale (by `f`), 3 softcap (cap `f`), 4 add, 5 mul (b
 * broadcast when it has `bn` < total elements), 6 glu-silu, 7 glu-gelu (gate `a`, up `b`; `bn` = row length when
 * the gate row holds [g | u], else 0).
 */
export function eltwise(op: i32, a: usize, b: usize, out: usize, f: f64, bn: i32, e0: i32, e1: i32): void {
  if (op == 4 || op == 5) {
    for (let i = e0; i < e1; i++) {
      const x = load<f32>(a + (<usize>i << 2));
      const y = load<f32>(b + (<usize>(bn > 0 ? i % bn : i) << 2));
      store<f32>(out + (<usize>i << 2), op == 4 ? x + y : x * y);
    }
    return;
  }
  for (let i = e0; i < e1; i++) {
    let g: f64;
    let u: f64 = 1;
    if (op >= 6 && bn > 0) {
      // fused [g | u] rows: output element i is row r = i / bn, column c; gate at 2·bn·r + c, up bn after
      const r = i / bn;
      const c = i - r * bn;
      g = <f64>load<f32>(a + ((<usize>(2 * bn * r + c)) << 2));
      u = <f64>load<f32>(a + ((<usize>(2 * bn * r + c + bn)) << 2));
    } else {
      g = <f64>load<f32>(a + (<usize>i << 2));
      if (op >= 6) u = <f64>load<f32>(b + (<usize>i << 2));
    }
    let v: f64;
    if (op == 0) v = siluF(g);
    else if (op == 1) v = geluF(g);
    else if (op == 2) v = g * f;
    else if (op == 3) v = f * Math.tanh(g / f);
    else if (op == 6) v = <f64>(<f32>siluF(g)) * u;
    else v = <f64>(<f32>geluF(g)) * u;
    store<f32>(out + (<usize>i << 2), <f32>v);
  }
}

/**
 * Rope of rows [r0, r1) of x [*, nHeads·headDim]: pair j of a row at position p turns by p·theta[j] (f64 table),
 * cos and sin times mscale; `pos` (i32 per row) or `start` + row. `cs` is 2·nRot/2 f64 of scratch.
 */
export function rope(
  x: usize,
  out: usize,
  nHeads: i32,
  headDim: i32,
  nRot: i32,
  neox: i32,
  theta: usize,
  mscale: f64,
  pos: usize,
  start: i32,
  cs: usize,
  r0: i32,
  r1: i32,
): void {
  const pairs = nRot >> 1;
  const cols = nHeads * headDim;
  for (let r = r0; r < r1; r++) {
    const p = <f64>(pos ? load<i32>(pos + (r << 2)) : start + r);
    for (let j = 0; j < pairs; j++) {
      const ang = p * load<f64>(theta + (j << 3));
      store<f64>(cs + (j << 4), Math.cos(ang) * mscale);
      store<f64>(cs + (j << 4) + 8, Math.sin(ang) * mscale);
    }
    for (let h = 0; h < nHeads; h++) {
      const o = x + ((<usize>r * cols + h * headDim) << 2);
      const q = out + ((<usize>r * cols + h * headDim) << 2);
      for (let j = 0; j < pairs; j++) {
        const i0 = neox ? j : 2 * j;
        const i1 = neox ? j + pairs : 2 * j + 1;
        const x0 = <f64>load<f32>(o + (i0 << 2));
        const x1 = <f64>load<f32>(o + (i1 << 2));
        const c = load<f64>(cs + (j << 4));
        const s = load<f64>(cs + (j << 4) + 8);
        store<f32>(q + (i0 << 2), <f32>(x0 * c - x1 * s));
        store<f32>(q + (i1 << 2), <f32>(x0 * s + x1 * c));
      }
      if (o != q) for (let i = nRot; i < headDim; i++) store<f32>(q + (i << 2), load<f32>(o + (i << 2)));
    }
  }
}

/**
 * Writes rows [r0, r1) of src [*, n] into the cache `dst` of format f32/f16/bf16/q8_0 (file layout) at row `pos[r]`
 * (or start + r). q8_0 follows quantize_row_q8_0_ref exactly, as the codec does.
 */
export function copyRows(fmt: i32, src: usize, dst: usize, n: i32, pos: usize, start: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const p = <usize>(pos ? load<i32>(pos + (r << 2)) : start + r);
    const s = src + ((<usize>r * n) << 2);
    if (fmt == F32) memory.copy(dst + ((p * n) << 2), s, <usize>n << 2);
    else if (fmt == F16 || fmt == BF16) {
      const d = dst + ((p * n) << 1);
      for (let i = 0; i < n; i++) {
        const v = load<f32>(s + (i << 2));
        store<u16>(d + (i << 1), <u16>(fmt == F16 ? f2h(v) : f2bf(v)));
      }
    } else {
      const nb = n >> 5;
      const d = dst + p * nb * 34;
      for (let b = 0; b < nb; b++) {
        const x = s + (b << 7);
        let amax: f32 = 0;
        for (let j = 0; j < 32; j++) amax = Mathf.max(amax, Mathf.abs(load<f32>(x + (j << 2))));
        const dd: f32 = amax / 127;
        const id: f32 = dd != 0 ? <f32>1 / dd : 0;
        const q = d + b * 34;
        store<u16>(q, <u16>f2h(dd));
        for (let j = 0; j < 32; j++) store<i8>(q + 2 + j, <i8>roundAway(load<f32>(x + (j << 2)) * id));
      }
    }
  }
}

/** One cache row (f32/f16/bf16/q8_0) of `n` values at `src` decoded into f32 at `dst`. */
@inline function cacheRow(fmt: i32, src: usize, dst: usize, n: i32): void {
  if (fmt == Q8_0) {
    for (let b = 0; b < n >> 5; b++) {
      const q = src + b * 34;
      const d = h2f(load<u16>(q));
      for (let j = 0; j < 32; j++) store<f32>(dst + ((b * 32 + j) << 2), <f32>load<i8>(q + 2 + j) * d);
    }
  } else if (fmt == F16) {
    for (let i = 0; i < n; i++) store<f32>(dst + (i << 2), h2f(load<u16>(src + (i << 1))));
  } else {
    for (let i = 0; i < n; i++) store<u32>(dst + (i << 2), (<u32>load<u16>(src + (i << 1))) << 16);
  }
}

/**
 * Causal grouped-query attention for work items [i0, i1) of (row, head) pairs, item = row·nHeads + head. Query row
 * r at position p reads cache rows t in (p - window, p] (all of [0, p] when window = 0). k, v: caches
 * [ctx, nKv·hd] of format `fmt`; `sc` holds ctx f32 scores and `tmp` hd f32 (per thread).
 */
export function attention(
  q: usize,
  k: usize,
  v: usize,
  fmt: i32,
  out: usize,
  nHeads: i32,
  nKv: i32,
  hd: i32,
  scale: f32,
  softcap: f32,
  window: i32,
  pos: usize,
  start: i32,
  sc: usize,
  tmp: usize,
  i0: i32,
  i1: i32,
): void {
  const kvDim = nKv * hd;
  const group = nHeads / nKv;
  const rowBytes: i32 = fmt == F32 ? kvDim << 2 : fmt == Q8_0 ? (kvDim >> 5) * 34 : kvDim << 1;
  for (let it = i0; it < i1; it++) {
    const r = it / nHeads;
    const h = it - r * nHeads;
    const p = pos ? load<i32>(pos + (r << 2)) : start + r;
    const t0 = window > 0 ? max(0, p - window + 1) : 0;
    const qr = q + ((<usize>r * nHeads * hd + h * hd) << 2);
    const ko = (h / group) * hd;
    let mx: f32 = -Infinity;
    for (let t = t0; t <= p; t++) {
      let kr: usize;
      if (fmt == F32) kr = k + <usize>t * rowBytes + (ko << 2);
      else {
        // decode the head's slice (q8_0: its blocks; ko is a block multiple or within one block)
        if (fmt == Q8_0) {
          const nbh = ((ko & 31) + hd + 31) >> 5;
          cacheRow(fmt, k + <usize>t * rowBytes + (ko >> 5) * 34, tmp, nbh << 5);
          kr = tmp + ((ko & 31) << 2);
        } else {
          cacheRow(fmt, k + <usize>t * rowBytes + (ko << 1), tmp, hd);
          kr = tmp;
        }
      }
      let d = <f32>dotF32(qr, kr, hd) * scale;
      if (softcap > 0) d = softcap * Mathf.tanh(d / softcap);
      store<f32>(sc + (t << 2), d);
      if (d > mx) mx = d;
    }
    let sum: f64 = 0;
    for (let t = t0; t <= p; t++) {
      const e = Math.exp(<f64>load<f32>(sc + (t << 2)) - <f64>mx);
      store<f32>(sc + (t << 2), <f32>e);
      sum += e;
    }
    const inv = <f32>(1 / sum);
    const orow = out + ((<usize>r * nHeads * hd + h * hd) << 2);
    memory.fill(orow, 0, <usize>hd << 2);
    for (let t = t0; t <= p; t++) {
      const wt = f32x4.splat(load<f32>(sc + (t << 2)) * inv);
      let vr: usize;
      if (fmt == F32) vr = v + <usize>t * rowBytes + (ko << 2);
      else if (fmt == Q8_0) {
        const nbh = ((ko & 31) + hd + 31) >> 5;
        cacheRow(fmt, v + <usize>t * rowBytes + (ko >> 5) * 34, tmp, nbh << 5);
        vr = tmp + ((ko & 31) << 2);
      } else {
        cacheRow(fmt, v + <usize>t * rowBytes + (ko << 1), tmp, hd);
        vr = tmp;
      }
      let i = 0;
      for (; i + 4 <= hd; i += 4) {
        v128.store(orow + (i << 2), f32x4.add(v128.load(orow + (i << 2)), f32x4.mul(wt, v128.load(vr + (i << 2)))));
      }
      const ws = f32x4.extract_lane(wt, 0);
      for (; i < hd; i++) store<f32>(orow + (i << 2), load<f32>(orow + (i << 2)) + ws * load<f32>(vr + (i << 2)));
    }
  }
}
