// Four of ggml's scale searches at once, one per f32x4 lane. The K-quant searches run on many short, independent
// vectors (the sub-blocks of a block, or consecutive 32-value blocks): lane k holds vector k's element i at row i of
// the transposed scratch below, and every lane performs exactly the scalar function's binary32 operations in the
// scalar order (its sums stay sequential within the lane), so each lane's result is the scalar result. Branches of
// the C code become per-lane masks. Where the scalar search would skip work (a step that cannot win), the lanes
// compute it and discard it: the same values either way.

import { GROUP_MAX_EPS } from './common';

/** Rows of x, transposed: element i of lanes 0-3 at TX + 16·i (up to 32 rows). */
export const TX = memory.data(32 * 16, 16);
/** The weights, transposed like TX. */
export const TW = memory.data(32 * 16, 16);
/** Importance weights or other per-element input of the callers, transposed like TX. */
export const TQ = memory.data(32 * 16, 16);
/** The best levels found, as i32 lanes (make_qx_quants: the level + nmax). */
export const TL = memory.data(32 * 16, 16);
/** Per-lane results: the scale, and the min (make_qkx*: ggml's `*the_min`, i.e. the negated offset). */
export const LANE_SCALE = memory.data(16, 16);
export const LANE_MIN = memory.data(16, 16);

const TA = memory.data(32 * 16, 16);
const TAF = memory.data(32 * 16, 16);
const TWX = memory.data(32 * 16, 16);

@inline
export function ldv(p: usize, i: i32): v128 {
  return v128.load(p + ((<usize>i) << 4));
}

@inline
export function stv(p: usize, i: i32, v: v128): void {
  v128.store(p + ((<usize>i) << 4), v);
}

// nearest_int of every lane: the same bit trick, so the same wrap beyond ±2^22.
@inline
export function nearest4(v: v128): v128 {
  const t = f32x4.add(v, f32x4.splat(12582912.0));
  return i32x4.sub(v128.and(t, i32x4.splat(0x007fffff)), i32x4.splat(0x00400000));
}

/** Fills the transposed rows `dst` (n rows, n a multiple of 4) from four vectors of n f32 at p0..p3. */
export function transpose4(dst: usize, p0: usize, p1: usize, p2: usize, p3: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) {
    const o = (<usize>i) << 2;
    const a = v128.load(p0 + o);
    const b = v128.load(p1 + o);
    const c = v128.load(p2 + o);
    const d = v128.load(p3 + o);
    const t0 = i32x4.shuffle(a, b, 0, 4, 1, 5);
    const t1 = i32x4.shuffle(a, b, 2, 6, 3, 7);
    const t2 = i32x4.shuffle(c, d, 0, 4, 1, 5);
    const t3 = i32x4.shuffle(c, d, 2, 6, 3, 7);
    stv(dst, i, i32x4.shuffle(t0, t2, 0, 1, 4, 5));
    stv(dst, i + 1, i32x4.shuffle(t0, t2, 2, 3, 6, 7));
    stv(dst, i + 2, i32x4.shuffle(t1, t3, 0, 1, 4, 5));
    stv(dst, i + 3, i32x4.shuffle(t1, t3, 2, 3, 6, 7));
  }
}

/** Writes lane k of the n levels in TL as bytes at pk. */
export function levelsOut(p0: usize, p1: usize, p2: usize, p3: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const v = ldv(TL, i);
    store<u8>(p0 + <usize>i, <u8>i32x4.extract_lane(v, 0));
    store<u8>(p1 + <usize>i, <u8>i32x4.extract_lane(v, 1));
    store<u8>(p2 + <usize>i, <u8>i32x4.extract_lane(v, 2));
    store<u8>(p3 + <usize>i, <u8>i32x4.extract_lane(v, 3));
  }
}

/** Per-lane sequential sum of the n rows at p. */
export function laneSum(p: usize, n: i32): v128 {
  let s = f32x4.splat(0);
  for (let i = 0; i < n; i++) s = f32x4.add(s, ldv(p, i));
  return s;
}

/** Per-lane sequential sum of squares of the n rows at p. */
export function laneSumSquares(p: usize, n: i32): v128 {
  let s = f32x4.splat(0);
  for (let i = 0; i < n; i++) {
    const x = ldv(p, i);
    s = f32x4.add(s, f32x4.mul(x, x));
  }
  return s;
}

/**
 * make_qkx2_quants (`le` false: `max == min` is degenerate) or make_qkx3_quants (`le` true: `max <= min`), four at
 * once: n rows of TX with weights TW. Leaves the levels in TL (0..nmax), the scales in LANE_SCALE and `*the_min`
 * in LANE_MIN. `mad`: sum |diff| instead of diff² (make_qkx2_quants' use_mad).
 */
export function qkxLanes(n: i32, nmax: i32, rmin: f32, rdelta: f32, nstep: i32, mad: bool, le: bool): void {
  const zero = f32x4.splat(0);
  const izero = i32x4.splat(0);
  const inmax = i32x4.splat(nmax);
  let x = ldv(TX, 0);
  let min = x;
  let max = x;
  let sumW = ldv(TW, 0);
  let sumX = f32x4.mul(sumW, x);
  for (let i = 1; i < n; i++) {
    x = ldv(TX, i);
    min = v128.bitselect(x, min, f32x4.lt(x, min));
    max = v128.bitselect(x, max, f32x4.gt(x, max));
    const w = ldv(TW, i);
    sumW = f32x4.add(sumW, w);
    sumX = f32x4.add(sumX, f32x4.mul(w, x));
  }
  min = v128.bitselect(zero, min, f32x4.gt(min, zero));
  const degenerate = le ? f32x4.le(max, min) : f32x4.eq(max, min);
  const min0 = min;
  let iscale = f32x4.div(f32x4.splat(<f32>nmax), f32x4.sub(max, min));
  let scale = f32x4.div(f32x4.splat(1), iscale);
  let best = zero;
  for (let i = 0; i < n; i++) {
    x = ldv(TX, i);
    const l = i32x4.max_s(izero, i32x4.min_s(inmax, nearest4(f32x4.mul(iscale, f32x4.sub(x, min)))));
    stv(TL, i, l);
    let diff = f32x4.sub(f32x4.add(f32x4.mul(scale, f32x4.convert_i32x4_s(l)), min), x);
    diff = mad ? f32x4.abs(diff) : f32x4.mul(diff, diff);
    best = f32x4.add(best, f32x4.mul(ldv(TW, i), diff));
  }
  for (let is = 0; is <= nstep; is++) {
    // (rmin + rdelta·is + nmax) / (max - min), min being each lane's best so far.
    const c: f32 = rmin + rdelta * <f32>is + <f32>nmax;
    iscale = f32x4.div(f32x4.splat(c), f32x4.sub(max, min));
    let sumL = zero;
    let sumL2 = zero;
    let sumXL = zero;
    for (let i = 0; i < n; i++) {
      x = ldv(TX, i);
      const l = i32x4.max_s(izero, i32x4.min_s(inmax, nearest4(f32x4.mul(iscale, f32x4.sub(x, min)))));
      const lf = f32x4.convert_i32x4_s(l);
      stv(TA, i, l);
      stv(TAF, i, lf);
      const wl = f32x4.mul(ldv(TW, i), lf);
      sumL = f32x4.add(sumL, wl);
      sumL2 = f32x4.add(sumL2, f32x4.mul(wl, lf));
      sumXL = f32x4.add(sumXL, f32x4.mul(wl, x));
    }
    const D = f32x4.sub(f32x4.mul(sumW, sumL2), f32x4.mul(sumL, sumL));
    const dpos = f32x4.gt(D, zero);
    if (!v128.any_true(dpos)) continue;
    let ts = f32x4.div(f32x4.sub(f32x4.mul(sumW, sumXL), f32x4.mul(sumX, sumL)), D);
    let tm = f32x4.div(f32x4.sub(f32x4.mul(sumL2, sumX), f32x4.mul(sumL, sumXL)), D);
    const mpos = f32x4.gt(tm, zero);
    tm = v128.bitselect(zero, tm, mpos);
    ts = v128.bitselect(f32x4.div(sumXL, sumL2), ts, mpos);
    let err = zero;
    for (let i = 0; i < n; i++) {
      let diff = f32x4.sub(f32x4.add(f32x4.mul(ts, ldv(TAF, i)), tm), ldv(TX, i));
      diff = mad ? f32x4.abs(diff) : f32x4.mul(diff, diff);
      err = f32x4.add(err, f32x4.mul(ldv(TW, i), diff));
    }
    const upd = v128.and(dpos, f32x4.lt(err, best));
    if (!v128.any_true(upd)) continue;
    for (let i = 0; i < n; i++) stv(TL, i, v128.bitselect(ldv(TA, i), ldv(TL, i), upd));
    best = v128.bitselect(err, best, upd);
    scale = v128.bitselect(ts, scale, upd);
    min = v128.bitselect(tm, min, upd);
  }
  if (v128.any_true(degenerate)) {
    for (let i = 0; i < n; i++) stv(TL, i, v128.bitselect(izero, ldv(TL, i), degenerate));
    scale = v128.bitselect(zero, scale, degenerate);
    min = v128.bitselect(min0, min, degenerate);
  }
  v128.store(LANE_SCALE, scale);
  v128.store(LANE_MIN, f32x4.neg(min));
}

/**
 * make_qx_quants with rmse_type 1, four at once: n rows of TX with weights TW (the caller puts qw or x² there).
 * Leaves the levels + nmax in TL and the scales in LANE_SCALE.
 */
export function qxLanes(n: i32, nmax: i32): void {
  const zero = f32x4.splat(0);
  const lo = i32x4.splat(-nmax);
  const hi = i32x4.splat(nmax - 1);
  const off = i32x4.splat(nmax);
  let amax = zero;
  let max = zero;
  for (let i = 0; i < n; i++) {
    const x = ldv(TX, i);
    const ax = f32x4.abs(x);
    const gt = f32x4.gt(ax, amax);
    amax = v128.bitselect(ax, amax, gt);
    max = v128.bitselect(x, max, gt);
  }
  const allZero = f32x4.lt(amax, f32x4.splat(GROUP_MAX_EPS));
  let iscale = f32x4.div(f32x4.splat(<f32>-nmax), max);
  let sumlx = zero;
  let suml2 = zero;
  for (let i = 0; i < n; i++) {
    const x = ldv(TX, i);
    const w = ldv(TW, i);
    const wx = f32x4.mul(w, x);
    stv(TWX, i, wx);
    const l = i32x4.max_s(lo, i32x4.min_s(hi, nearest4(f32x4.mul(iscale, x))));
    stv(TL, i, i32x4.add(l, off));
    const lf = f32x4.convert_i32x4_s(l);
    sumlx = f32x4.add(sumlx, f32x4.mul(wx, lf));
    suml2 = f32x4.add(suml2, f32x4.mul(f32x4.mul(w, lf), lf));
  }
  let scale = v128.bitselect(f32x4.div(sumlx, suml2), zero, f32x4.ne(suml2, zero));
  let best = f32x4.mul(scale, sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is == 0) continue;
    const c: f32 = -(<f32>nmax + <f32>0.1 * <f32>is);
    iscale = f32x4.div(f32x4.splat(c), max);
    sumlx = zero;
    suml2 = zero;
    for (let i = 0; i < n; i++) {
      const l = i32x4.max_s(lo, i32x4.min_s(hi, nearest4(f32x4.mul(iscale, ldv(TX, i)))));
      stv(TA, i, l);
      const lf = f32x4.convert_i32x4_s(l);
      sumlx = f32x4.add(sumlx, f32x4.mul(ldv(TWX, i), lf));
      suml2 = f32x4.add(suml2, f32x4.mul(f32x4.mul(ldv(TW, i), lf), lf));
    }
    const upd = v128.and(
      f32x4.gt(suml2, zero),
      f32x4.gt(f32x4.mul(sumlx, sumlx), f32x4.mul(best, suml2)),
    );
    if (!v128.any_true(upd)) continue;
    for (let i = 0; i < n; i++) stv(TL, i, v128.bitselect(i32x4.add(ldv(TA, i), off), ldv(TL, i), upd));
    const ns = f32x4.div(sumlx, suml2);
    scale = v128.bitselect(ns, scale, upd);
    best = v128.bitselect(f32x4.mul(ns, sumlx), best, upd);
  }
  if (v128.any_true(allZero)) {
    for (let i = 0; i < n; i++) stv(TL, i, v128.bitselect(i32x4.splat(0), ldv(TL, i), allZero));
    scale = v128.bitselect(zero, scale, allZero);
  }
  v128.store(LANE_SCALE, scale);
}
