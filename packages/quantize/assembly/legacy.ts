// The 32-value formats Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0, one row of n values at a time: ggml's quantize_row_*_ref,
// and the imatrix paths of ggml_quantize_chunk (quantize_row_*_impl), whose per-block searches run four blocks at a
// time in the lanes of lanes.ts.

import { cvtt, imin, ldf, putHalf, roundf, stb, sumSquares } from './common';
import { LANE_MIN, LANE_SCALE, ldv, qkxLanes, qxLanes, stv, TL, TQ, TW, TX, transpose4 } from './lanes';

@inline
function hmax(m: v128): f32 {
  m = f32x4.max(m, f32x4.shuffle(m, m, 2, 3, 0, 1));
  m = f32x4.max(m, f32x4.shuffle(m, m, 1, 0, 3, 2));
  return f32x4.extract_lane(m, 0);
}

// Largest |x| of the 32 values at xb (x finite: f32x4.max is C's MAX there).
@inline
function amax32(xb: usize): f32 {
  let m = f32x4.abs(v128.load(xb));
  for (let i = 16; i < 128; i += 16) m = f32x4.max(m, f32x4.abs(v128.load(xb + <usize>i)));
  return hmax(m);
}

// The first value of largest magnitude of the 32 at xb (C's `if (amax < fabsf(v))` loop): +0 for an all-zero block,
// whatever the zeros' signs, as C's initial max = 0 stays.
function signedMax32(xb: usize): f32 {
  const amax = amax32(xb);
  if (amax == 0) return 0;
  const a = f32x4.splat(amax);
  for (let i = 0; i < 32; i += 4) {
    const bits = i32x4.bitmask(f32x4.eq(f32x4.abs(v128.load(xb + ((<usize>i) << 2))), a));
    if (bits) return ldf(xb, i + <i32>ctz(bits));
  }
  return 0;
}

// C's roundf of every lane (exact: the truncation and the half test are exact in binary32).
@inline
function round4(v: v128): v128 {
  const t = f32x4.trunc(v);
  const half = f32x4.ge(f32x4.abs(f32x4.sub(v, t)), f32x4.splat(0.5));
  const one = v128.or(v128.and(v, i32x4.splat(0x80000000)), f32x4.splat(1));
  return f32x4.add(t, v128.and(one, half));
}

/** Q8_0: { f16 d; i8 qs[32] } per 32 values. */
export function q8_0Row(x: usize, n: i32, y: usize): void {
  const nb = n >> 5;
  for (let b = 0; b < nb; b++) {
    const xb = x + ((<usize>b) << 7);
    const yb = y + <usize>b * 34;
    const amax = amax32(xb);
    const d: f32 = amax / <f32>127;
    const id: f32 = d != 0 ? <f32>1 / d : 0;
    putHalf(yb, d);
    if (id == Infinity) {
      // A tiny d whose inverse overflows: the products are ±Inf or NaN, which C's conversion stores as 0.
      for (let j = 0; j < 32; j++) stb(yb + 2, j, cvtt(roundf(ldf(xb, j) * id)));
      continue;
    }
    const vid = f32x4.splat(id);
    for (let j = 0; j < 32; j += 16) {
      const p = xb + ((<usize>j) << 2);
      const a = i32x4.trunc_sat_f32x4_s(round4(f32x4.mul(v128.load(p), vid)));
      const b2 = i32x4.trunc_sat_f32x4_s(round4(f32x4.mul(v128.load(p + 16), vid)));
      const c = i32x4.trunc_sat_f32x4_s(round4(f32x4.mul(v128.load(p + 32), vid)));
      const e = i32x4.trunc_sat_f32x4_s(round4(f32x4.mul(v128.load(p + 48), vid)));
      v128.store(yb + 2 + <usize>j, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b2), i16x8.narrow_i32x4_s(c, e)));
    }
  }
}

/** Q4_0: { f16 d; u8 qs[16] } per 32 values; element j low nibble, j+16 high. */
export function q4_0Row(x: usize, n: i32, y: usize): void {
  const nb = n >> 5;
  for (let b = 0; b < nb; b++) {
    const xb = x + ((<usize>b) << 7);
    const yb = y + <usize>b * 18;
    const max = signedMax32(xb);
    const d: f32 = max / <f32>-8;
    const id: f32 = d != 0 ? <f32>1 / d : 0;
    putHalf(yb, d);
    if (Mathf.abs(id) == Infinity) {
      for (let j = 0; j < 16; j++) {
        const a = imin(15, <i8>cvtt(ldf(xb, j) * id + <f32>8.5));
        const c = imin(15, <i8>cvtt(ldf(xb, j + 16) * id + <f32>8.5));
        stb(yb + 2, j, a | (c << 4));
      }
      continue;
    }
    // x·id is in [-8, 8] (plus rounding): x·id + 8.5 is positive and the conversion truncates.
    const vid = f32x4.splat(id);
    const h = f32x4.splat(8.5);
    const top = i32x4.splat(15);
    for (let j = 0; j < 16; j += 4) {
      const p = xb + ((<usize>j) << 2);
      const a = i32x4.min_s(top, i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(v128.load(p), vid), h)));
      const c = i32x4.min_s(top, i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(v128.load(p + 64), vid), h)));
      store4(yb + 2 + <usize>j, v128.or(a, i32x4.shl(c, 4)));
    }
  }
}

// Four i32 lanes (each in 0..255) as four bytes at p.
@inline
function store4(p: usize, v: v128): void {
  const h = i16x8.narrow_i32x4_u(v, v);
  v128.store32_lane(p, i8x16.narrow_i16x8_u(h, h), 0);
}

// Bit 4 of four i32 lanes as four bits.
@inline
function bit4(v: v128): u32 {
  return <u32>i32x4.bitmask(i32x4.shl(v, 27));
}

/** Q5_0: { f16 d; u8 qh[4]; u8 qs[16] } per 32 values. */
export function q5_0Row(x: usize, n: i32, y: usize): void {
  const nb = n >> 5;
  const h = f32x4.splat(16.5);
  const top = i32x4.splat(31);
  const low4 = i32x4.splat(15);
  for (let b = 0; b < nb; b++) {
    const xb = x + ((<usize>b) << 7);
    const yb = y + <usize>b * 22;
    const max = signedMax32(xb);
    const d: f32 = max / <f32>-16;
    const id: f32 = d != 0 ? <f32>1 / d : 0;
    putHalf(yb, d);
    let qh: u32 = 0;
    if (Mathf.abs(id) == Infinity) {
      for (let j = 0; j < 16; j++) {
        const a = imin(31, <i8>cvtt(ldf(xb, j) * id + <f32>16.5));
        const c = imin(31, <i8>cvtt(ldf(xb, j + 16) * id + <f32>16.5));
        stb(yb + 6, j, (a & 15) | ((c & 15) << 4));
        qh |= (<u32>((a & 0x10) >> 4)) << j;
        qh |= (<u32>((c & 0x10) >> 4)) << (j + 16);
      }
    } else {
      // x·id + 16.5 is in (0, 33): the conversion truncates.
      const vid = f32x4.splat(id);
      for (let j = 0; j < 16; j += 4) {
        const p = xb + ((<usize>j) << 2);
        const a = i32x4.min_s(top, i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(v128.load(p), vid), h)));
        const c = i32x4.min_s(top, i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(v128.load(p + 64), vid), h)));
        store4(yb + 6 + <usize>j, v128.or(v128.and(a, low4), i32x4.shl(v128.and(c, low4), 4)));
        qh |= (bit4(a) << j) | (bit4(c) << (j + 16));
      }
    }
    store<u32>(yb + 2, qh);
  }
}

// min and max of the 32 values at xb with C's strict compares (init FLT_MAX / -FLT_MAX), four lanes then across:
// values that compare equal are the same bits, but for a zero's sign, where the first in C's order wins, so a zero
// min or max is redone in C's order.
const minmax = memory.data(8, 8);
function minMax32(xb: usize): void {
  let mn = f32x4.splat(f32.MAX_VALUE);
  let mx = f32x4.splat(-f32.MAX_VALUE);
  for (let i = 0; i < 128; i += 16) {
    const v = v128.load(xb + <usize>i);
    mn = v128.bitselect(v, mn, f32x4.lt(v, mn));
    mx = v128.bitselect(v, mx, f32x4.gt(v, mx));
  }
  let min = f32x4.extract_lane(mn, 0);
  let max = f32x4.extract_lane(mx, 0);
  for (let k = 1; k < 4; k++) {
    const a = k == 1 ? f32x4.extract_lane(mn, 1) : k == 2 ? f32x4.extract_lane(mn, 2) : f32x4.extract_lane(mn, 3);
    const c = k == 1 ? f32x4.extract_lane(mx, 1) : k == 2 ? f32x4.extract_lane(mx, 2) : f32x4.extract_lane(mx, 3);
    if (a < min) min = a;
    if (c > max) max = c;
  }
  if (min == 0 || max == 0) {
    min = f32.MAX_VALUE;
    max = -f32.MAX_VALUE;
    for (let j = 0; j < 32; j++) {
      const v = ldf(xb, j);
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  store<f32>(minmax, min);
  store<f32>(minmax + 4, max);
}

/** Q4_1: { f16 d; f16 m; u8 qs[16] } per 32 values. */
export function q4_1Row(x: usize, n: i32, y: usize): void {
  const nb = n >> 5;
  const top = i32x4.splat(15);
  const h = f32x4.splat(0.5);
  for (let b = 0; b < nb; b++) {
    const xb = x + ((<usize>b) << 7);
    const yb = y + <usize>b * 20;
    minMax32(xb);
    const min = load<f32>(minmax);
    const d: f32 = (load<f32>(minmax + 4) - min) / <f32>15;
    const id: f32 = d != 0 ? <f32>1 / d : 0;
    putHalf(yb, d);
    putHalf(yb + 2, min);
    if (id == Infinity) {
      for (let j = 0; j < 16; j++) {
        const a = imin(15, <i8>cvtt((ldf(xb, j) - min) * id + <f32>0.5));
        const c = imin(15, <i8>cvtt((ldf(xb, j + 16) - min) * id + <f32>0.5));
        stb(yb + 4, j, a | (c << 4));
      }
      continue;
    }
    // (x - min)·id + 0.5 is in [0.5, 16) or NaN (an overflowing range, id = 0): the conversion truncates, NaN is 0.
    const vid = f32x4.splat(id);
    const vmin = f32x4.splat(min);
    for (let j = 0; j < 16; j += 4) {
      const p = xb + ((<usize>j) << 2);
      const a = i32x4.min_s(top, i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(f32x4.sub(v128.load(p), vmin), vid), h)));
      const c = i32x4.min_s(top, i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(f32x4.sub(v128.load(p + 64), vmin), vid), h)));
      store4(yb + 4 + <usize>j, v128.or(a, i32x4.shl(c, 4)));
    }
  }
}

/** Q5_1: { f16 d; f16 m; u8 qh[4]; u8 qs[16] } per 32 values. */
export function q5_1Row(x: usize, n: i32, y: usize): void {
  const nb = n >> 5;
  const h = f32x4.splat(0.5);
  const low4 = i32x4.splat(15);
  for (let b = 0; b < nb; b++) {
    const xb = x + ((<usize>b) << 7);
    const yb = y + <usize>b * 24;
    minMax32(xb);
    const min = load<f32>(minmax);
    const d: f32 = (load<f32>(minmax + 4) - min) / <f32>31;
    const id: f32 = d != 0 ? <f32>1 / d : 0;
    putHalf(yb, d);
    putHalf(yb + 2, min);
    let qh: u32 = 0;
    if (id == Infinity) {
      for (let j = 0; j < 16; j++) {
        // (uint8_t)(x + 0.5f): no clamp in ggml.
        const a = cvtt((ldf(xb, j) - min) * id + <f32>0.5) & 0xff;
        const c = cvtt((ldf(xb, j + 16) - min) * id + <f32>0.5) & 0xff;
        stb(yb + 8, j, (a & 15) | ((c & 15) << 4));
        qh |= (<u32>((a & 0x10) >> 4)) << j;
        qh |= (<u32>((c & 0x10) >> 4)) << (j + 16);
      }
    } else {
      const vid = f32x4.splat(id);
      const vmin = f32x4.splat(min);
      for (let j = 0; j < 16; j += 4) {
        const p = xb + ((<usize>j) << 2);
        const a = i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(f32x4.sub(v128.load(p), vmin), vid), h));
        const c = i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(f32x4.sub(v128.load(p + 64), vmin), vid), h));
        store4(yb + 8 + <usize>j, v128.or(v128.and(a, low4), i32x4.shl(v128.and(c, low4), 4)));
        qh |= (bit4(a) << j) | (bit4(c) << (j + 16));
      }
    }
    store<u32>(yb + 4, qh);
  }
}

// Levels of four 32-value blocks (bytes), out of the lanes.
const L = memory.data(4 * 32, 16);

/**
 * The imatrix paths (spec §3.21): per block, the weights qw·sqrt(sigma2 + x²) with sigma2 the row's mean square,
 * and make_qx_quants (Q4_0 nmax 8, Q5_0 nmax 16) or make_qkx3_quants(…, -0.9f, 0.05f, 36) (Q4_1 nmax 15, Q5_1 nmax
 * 31), four blocks per pass (a short last pass repeats its last block in the spare lanes).
 */
export function legacyImatrixRow(type: i32, x: usize, n: i32, y: usize, qw: usize): void {
  const sigma2: f32 = sumSquares(x, n) / <f32>n;
  const nb = n >> 5;
  const s = f32x4.splat(sigma2);
  for (let b0 = 0; b0 < nb; b0 += 4) {
    const b1 = imin(b0 + 1, nb - 1);
    const b2 = imin(b0 + 2, nb - 1);
    const b3 = imin(b0 + 3, nb - 1);
    transpose4(TX, x + ((<usize>b0) << 7), x + ((<usize>b1) << 7), x + ((<usize>b2) << 7), x + ((<usize>b3) << 7), 32);
    transpose4(TQ, qw + ((<usize>b0) << 7), qw + ((<usize>b1) << 7), qw + ((<usize>b2) << 7), qw + ((<usize>b3) << 7), 32);
    for (let i = 0; i < 32; i++) {
      const v = ldv(TX, i);
      stv(TW, i, f32x4.mul(ldv(TQ, i), f32x4.sqrt(f32x4.add(s, f32x4.mul(v, v)))));
    }
    if (type == 2) qxLanes(32, 8);
    else if (type == 6) qxLanes(32, 16);
    else qkxLanes(32, type == 3 ? 15 : 31, -0.9, 0.05, 36, false, true);
    for (let i = 0; i < 32; i++) {
      const v = ldv(TL, i);
      store<u8>(L + <usize>i, <u8>i32x4.extract_lane(v, 0));
      store<u8>(L + 32 + <usize>i, <u8>i32x4.extract_lane(v, 1));
      store<u8>(L + 64 + <usize>i, <u8>i32x4.extract_lane(v, 2));
      store<u8>(L + 96 + <usize>i, <u8>i32x4.extract_lane(v, 3));
    }
    const count = imin(4, nb - b0);
    for (let k = 0; k < count; k++) {
      const Lk = L + <usize>(32 * k);
      const scale = load<f32>(LANE_SCALE + ((<usize>k) << 2));
      const b = b0 + k;
      if (type == 2) {
        const yb = y + <usize>b * 18;
        putHalf(yb, scale);
        for (let j = 0; j < 16; j++) stb(yb + 2, j, load<u8>(Lk + <usize>j) | (load<u8>(Lk + 16 + <usize>j) << 4));
      } else if (type == 6) {
        const yb = y + <usize>b * 22;
        putHalf(yb, scale);
        let qh: u32 = 0;
        for (let j = 0; j < 16; j++) {
          const a = <i32>load<u8>(Lk + <usize>j);
          const c = <i32>load<u8>(Lk + 16 + <usize>j);
          stb(yb + 6, j, (a & 15) | ((c & 15) << 4));
          qh |= (<u32>((a >> 4) & 1)) << j;
          qh |= (<u32>((c >> 4) & 1)) << (j + 16);
        }
        store<u32>(yb + 2, qh);
      } else {
        const minv = load<f32>(LANE_MIN + ((<usize>k) << 2));
        const q = type == 3 ? y + <usize>b * 20 : y + <usize>b * 24;
        putHalf(q, scale);
        putHalf(q + 2, -minv);
        if (type == 3) {
          for (let j = 0; j < 16; j++) stb(q + 4, j, load<u8>(Lk + <usize>j) | (load<u8>(Lk + 16 + <usize>j) << 4));
        } else {
          let qh: u32 = 0;
          for (let j = 0; j < 16; j++) {
            const a = <i32>load<u8>(Lk + <usize>j);
            const c = <i32>load<u8>(Lk + 16 + <usize>j);
            stb(q + 8, j, (a & 15) | ((c & 15) << 4));
            qh |= (<u32>((a >> 4) & 1)) << j;
            qh |= (<u32>((c >> 4) & 1)) << (j + 16);
          }
          store<u32>(q + 4, qh);
        }
      }
    }
  }
}
