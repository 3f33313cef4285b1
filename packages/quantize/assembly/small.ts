// MXFP4 and the ternary formats TQ1_0 / TQ2_0: ggml's quantize_row_*_ref.

import { putHalf, stb } from './common';

// The host's Math.log2, so that MXFP4's exponent is the TypeScript codec's (and glibc's log2f) exactly; called only
// for the rare amax whose mantissa is so close to 2 that log2f may round up to the next integer.
@external("env", "log2")
declare function hostLog2(x: f64): f64;

/** `kvalues_mxfp4`: the E2M1 values doubled. */
const KV = memory.data<i8>([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]);

// floor(log2f(a)) for a > 0: the binary exponent, unless a is subnormal or its mantissa is within 2^-10 of 2 (then
// log2f(a) = E + log2(m) may round to E + 1; below that its distance to E + 1 is above 6e-4, far more than half
// an ulp of any |E + 1| <= 128).
function floorLog2(a: f32): i32 {
  const bits = reinterpret<u32>(a);
  const ex = <i32>((bits >> 23) & 0xff);
  if (ex != 0 && (bits & 0x7fffff) < 0x7fe000) return ex - 127;
  return <i32>Math.floor(<f64>(<f32>hostLog2(<f64>a)));
}

// GGML_E8M0_TO_FP32_HALF(e) = 2^(e-128), subnormal for e < 2.
function e8m0Half(e: i32): f32 {
  return reinterpret<f32>(e < 2 ? <u32>0x00200000 << e : (<u32>(e - 1)) << 23);
}

// The grid's magnitudes 0, 1, 2, 3, 4, 6, 8, 12 times d, one splat each, for the block being quantized.
const KD = memory.data(8 * 16, 16);

// best_index_mxfp4 of four values at once. For x >= 0 (or -0) the nearest entry is among indices 0-7, for x < 0
// among 0 and 9-15: an entry of the other sign is never nearer (|kd + |x|| >= |kd - |x||, and rounding keeps the
// order) and never wins a tie (it comes later, and d > 0, so the two signs tie only at 0, which index 0 holds).
// |kd - |x|| is the float C computes, |kv·d - x|, with both signs flipped: the first minimum over the magnitudes,
// plus 8 for a negative x off index 0, is ggml's index.
@inline
function bestIndex4(x: v128): v128 {
  const a = f32x4.abs(x);
  let best = i32x4.splat(0);
  let bestErr = f32x4.abs(f32x4.sub(v128.load(KD), a));
  for (let i = 1; i < 8; i++) {
    const err = f32x4.abs(f32x4.sub(v128.load(KD + ((<usize>i) << 4)), a));
    const lt = f32x4.lt(err, bestErr);
    best = v128.bitselect(i32x4.splat(i), best, lt);
    bestErr = v128.bitselect(err, bestErr, lt);
  }
  const neg = v128.and(f32x4.lt(x, f32x4.splat(0)), i32x4.ne(best, i32x4.splat(0)));
  return v128.or(best, v128.and(neg, i32x4.splat(8)));
}

// Largest |x| of the n (a multiple of 4) values at x.
@inline
function amaxOf(x: usize, n: i32): f32 {
  let m = f32x4.abs(v128.load(x));
  for (let i = 4; i < n; i += 4) m = f32x4.max(m, f32x4.abs(v128.load(x + ((<usize>i) << 2))));
  m = f32x4.max(m, f32x4.shuffle(m, m, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.max(m, f32x4.shuffle(m, m, 1, 0, 3, 2)), 0);
}

// Four i32 lanes (each in 0..255) as four bytes at p.
@inline
function store4(p: usize, v: v128): void {
  const h = i16x8.narrow_i32x4_u(v, v);
  v128.store32_lane(p, i8x16.narrow_i16x8_u(h, h), 0);
}

/** MXFP4: { u8 e; u8 qs[16] } per 32 values. */
export function mxfp4Row(x: usize, n: i32, y: usize): void {
  const nb = n >> 5;
  for (let b = 0; b < nb; b++) {
    const xb = x + ((<usize>b) << 7);
    const yb = y + <usize>b * 17;
    const amax = amaxOf(xb, 32);
    const e = amax > 0 ? (floorLog2(amax) - 2 + 127) & 0xff : 0;
    const d = e8m0Half(e);
    for (let i = 0; i < 8; i++) v128.store(KD + ((<usize>i) << 4), f32x4.splat(<f32>load<i8>(KV + <usize>i) * d));
    stb(yb, 0, e);
    for (let j = 0; j < 16; j += 4) {
      const lo = bestIndex4(v128.load(xb + ((<usize>j) << 2)));
      const hi = bestIndex4(v128.load(xb + ((<usize>(j + 16)) << 2)));
      store4(yb + 1 + <usize>j, v128.or(lo, i32x4.shl(hi, 4)));
    }
  }
}

// The fp16 scale of a 256 block (its largest |x|) at `at`; returns 1/amax (0 for an all-zero block).
function scale256(x: usize, at: usize): f32 {
  const amax = amaxOf(x, 256);
  putHalf(at, amax);
  return amax != 0 ? <f32>1 / amax : 0;
}

// lroundf(x·id) + 1 in {0, 1, 2}, four at once (id finite: |x·id| <= 1 plus rounding).
@inline
function trit4(x: usize, i: i32, id: v128): v128 {
  const v = f32x4.mul(v128.load(x + ((<usize>i) << 2)), id);
  const t = f32x4.trunc(v);
  const half = f32x4.ge(f32x4.abs(f32x4.sub(v, t)), f32x4.splat(0.5));
  const one = v128.or(v128.and(v, i32x4.splat(0x80000000)), f32x4.splat(1));
  return i32x4.add(i32x4.trunc_sat_f32x4_s(f32x4.add(t, v128.and(one, half))), i32x4.splat(1));
}

// A block of float32 subnormals has id = 1/amax = Inf, so every product is ±Inf or NaN: x86-64's lroundf returns
// LONG_MIN for those, and ggml's `(int)(lroundf(v) + 1)` keeps the low word, 1. Every trit is 1.
@inline
function allOnes(id: f32): bool {
  return id == Infinity;
}

// ceil(v·256/243) of base-3 values v (0..242) in lanes, as bytes: (v·256 + 242)/243 through binary32, exact (the
// quotient's fraction is at least 1/243 from the next integer, far above the rounding).
@inline
function ceilDiv243(v: v128): v128 {
  const a = f32x4.convert_i32x4_s(i32x4.add(i32x4.mul(v, i32x4.splat(256)), i32x4.splat(242)));
  return i32x4.trunc_sat_f32x4_s(f32x4.div(a, f32x4.splat(243)));
}

/** TQ1_0: { u8 qs[48]; u8 qh[4]; f16 d } per 256 values, five trits per byte. */
export function tq1Block(x: usize, y: usize): void {
  const s = scale256(x, y + 52);
  const ones = allOnes(s);
  const id = f32x4.splat(s);
  const three = i32x4.splat(3);
  const one = i32x4.splat(1);
  for (let m = 0; m < 32; m += 4) {
    let v = i32x4.splat(0);
    for (let k = 0; k < 5; k++) v = i32x4.add(i32x4.mul(v, three), ones ? one : trit4(x, m + 32 * k, id));
    store4(y + <usize>m, ceilDiv243(v));
  }
  for (let m = 0; m < 16; m += 4) {
    let v = i32x4.splat(0);
    for (let k = 0; k < 5; k++) v = i32x4.add(i32x4.mul(v, three), ones ? one : trit4(x, 160 + m + 16 * k, id));
    store4(y + 32 + <usize>m, ceilDiv243(v));
  }
  // qh: element 240 + j + 4k is trit k of byte j.
  let v = i32x4.splat(0);
  for (let k = 0; k < 4; k++) v = i32x4.add(i32x4.mul(v, three), ones ? one : trit4(x, 240 + 4 * k, id));
  store4(y + 48, ceilDiv243(i32x4.mul(v, three)));
}

/** TQ2_0: { u8 qs[64]; f16 d } per 256 values, four 2-bit trits per byte. */
export function tq2Block(x: usize, y: usize): void {
  const s = scale256(x, y + 64);
  if (allOnes(s)) {
    memory.fill(y, 0x55, 64);
    return;
  }
  const id = f32x4.splat(s);
  for (let j = 0; j < 2; j++) {
    for (let m = 0; m < 32; m += 4) {
      const e = 128 * j + m;
      const v = v128.or(
        v128.or(trit4(x, e, id), i32x4.shl(trit4(x, e + 32, id), 2)),
        v128.or(i32x4.shl(trit4(x, e + 64, id), 4), i32x4.shl(trit4(x, e + 96, id), 6)),
      );
      store4(y + <usize>(32 * j + m), v);
    }
  }
}
