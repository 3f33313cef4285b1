// Scalar helpers shared by the quantizers: memory access, ggml's roundings and fp16 conversions, and the searches
// that stay scalar (make_qx_quants on short vectors, make_qp_quants, make_q3_quants). Every function is ggml-quants.c's,
// operation for operation in binary32 (WebAssembly rounds each f32 operation once and has no fused multiply-add, as
// the ggml-base build llama-quantize runs).

export const GROUP_MAX_EPS: f32 = 1e-15;

@inline
export function ldf(p: usize, i: i32): f32 {
  return load<f32>(p + ((<usize>i) << 2));
}

@inline
export function stf(p: usize, i: i32, v: f32): void {
  store<f32>(p + ((<usize>i) << 2), v);
}

@inline
export function ldb(p: usize, i: i32): i32 {
  return <i32>load<u8>(p + <usize>i);
}

@inline
export function stb(p: usize, i: i32, v: i32): void {
  store<u8>(p + <usize>i, <u8>v);
}

@inline
export function st16(p: usize, v: i32): void {
  store<u16>(p, <u16>v);
}

@inline
export function imax(a: i32, b: i32): i32 {
  return a > b ? a : b;
}

@inline
export function imin(a: i32, b: i32): i32 {
  return a < b ? a : b;
}

/** ggml's nearest_int: add 1.5·2^23 in binary32 and read the low mantissa bits (wraps beyond ±2^22, as in C). */
@inline
export function nearestInt(fval: f32): i32 {
  const val: f32 = fval + <f32>12582912.0;
  return (reinterpret<i32>(val) & 0x007fffff) - 0x00400000;
}

/**
 * C's float-to-int conversion as x86-64 does it (cvttss2si): truncation, and 0x80000000 for NaN and values out of
 * range. Its low byte is what `(int8_t)` / `(uint8_t)` casts of ggml keep.
 */
@inline
export function cvtt(f: f32): i32 {
  return Mathf.abs(f) < <f32>2147483648.0 ? <i32>f : <i32>0x80000000;
}

/** C `roundf`: half away from zero (exact for binary32: the truncation and the half test are exact). */
@inline
export function roundf(x: f32): f32 {
  const t = Mathf.trunc(x);
  return Mathf.abs(x - t) >= <f32>0.5 ? t + copysign<f32>(1, x) : t;
}

/** ggml_compute_fp32_to_fp16 (round to nearest even, through binary32 scaling). */
export function fp32ToFp16(f: f32): i32 {
  const scaleToInf = reinterpret<f32>(0x77800000);
  const scaleToZero = reinterpret<f32>(0x08800000);
  let base: f32 = Mathf.abs(f) * scaleToInf * scaleToZero;
  const w = reinterpret<u32>(f);
  const shl1w: u32 = w + w;
  const sign: u32 = w & 0x80000000;
  let bias: u32 = shl1w & 0xff000000;
  if (bias < 0x71000000) bias = 0x71000000;
  base = reinterpret<f32>((bias >> 1) + 0x07800000) + base;
  const bits = reinterpret<u32>(base);
  const expBits: u32 = (bits >> 13) & 0x00007c00;
  const mantissaBits: u32 = bits & 0x00000fff;
  const nonsign: u32 = expBits + mantissaBits;
  return <i32>((sign >> 16) | (shl1w > 0xff000000 ? 0x7e00 : nonsign));
}

/** ggml_compute_fp16_to_fp32 (exact). */
export function fp16ToFp32(h: i32): f32 {
  const w: u32 = (<u32>h) << 16;
  const sign: u32 = w & 0x80000000;
  const twoW: u32 = w + w;
  const expOffset: u32 = 0xe0 << 23;
  const expScale = reinterpret<f32>(0x07800000);
  const normalized: f32 = reinterpret<f32>((twoW >> 4) + expOffset) * expScale;
  const magicMask: u32 = 126 << 23;
  const denormalized: f32 = reinterpret<f32>((twoW >> 17) | magicMask) - <f32>0.5;
  const cutoff: u32 = 1 << 27;
  return reinterpret<f32>(sign | (twoW < cutoff ? reinterpret<u32>(denormalized) : reinterpret<u32>(normalized)));
}

/** Stores fp16(v) at p (little-endian). */
@inline
export function putHalf(p: usize, v: f32): void {
  store<u16>(p, <u16>fp32ToFp16(v));
}

/** Sequential binary32 sum of squares of n values at x. */
export function sumSquares(x: usize, n: i32): f32 {
  let s: f32 = 0;
  for (let i = 0; i < n; i++) s += ldf(x, i) * ldf(x, i);
  return s;
}

/** make_qx_quants with rmse_type 1 (scalar; the lanes of lanes.ts do the many short ones); weights `qw` or x². */
export function makeQxQuants(n: i32, nmax: i32, x: usize, Lp: usize, qw: usize): f32 {
  let max: f32 = 0;
  let amax: f32 = 0;
  for (let i = 0; i < n; i++) {
    const ax = Mathf.abs(ldf(x, i));
    if (ax > amax) {
      amax = ax;
      max = ldf(x, i);
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) stb(Lp, i, 0);
    return 0;
  }
  let iscale: f32 = <f32>-nmax / max;
  let sumlx: f32 = 0;
  let suml2: f32 = 0;
  for (let i = 0; i < n; i++) {
    const xi = ldf(x, i);
    let l = nearestInt(iscale * xi);
    l = imax(-nmax, imin(nmax - 1, l));
    stb(Lp, i, l + nmax);
    const w: f32 = qw ? ldf(qw, i) : xi * xi;
    sumlx += w * xi * <f32>l;
    suml2 += w * <f32>l * <f32>l;
  }
  let scale: f32 = suml2 != 0 ? sumlx / suml2 : 0;
  let best: f32 = scale * sumlx;
  for (let is = -9; is <= 9; is++) {
    if (is == 0) continue;
    iscale = -(<f32>nmax + <f32>0.1 * <f32>is) / max;
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = ldf(x, i);
      let l = nearestInt(iscale * xi);
      l = imax(-nmax, imin(nmax - 1, l));
      const w: f32 = qw ? ldf(qw, i) : xi * xi;
      sumlx += w * xi * <f32>l;
      suml2 += w * <f32>l * <f32>l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (let i = 0; i < n; i++) {
        const l = nearestInt(iscale * ldf(x, i));
        stb(Lp, i, nmax + imax(-nmax, imin(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

/** make_qp_quants: non-negative super-scales; L is uint8 (negative levels wrap, as in C). */
export function makeQpQuants(n: i32, nmax: i32, x: usize, Lp: usize, qw: usize): f32 {
  let max: f32 = 0;
  for (let i = 0; i < n; i++) max = max > ldf(x, i) ? max : ldf(x, i);
  if (max < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) stb(Lp, i, 0);
    return 0;
  }
  let iscale: f32 = <f32>nmax / max;
  for (let i = 0; i < n; i++) stb(Lp, i, nearestInt(iscale * ldf(x, i)));
  const scale: f32 = <f32>1 / iscale;
  let bestMse: f32 = 0;
  for (let i = 0; i < n; i++) {
    const diff: f32 = ldf(x, i) - scale * <f32>ldb(Lp, i);
    bestMse += ldf(qw, i) * diff * diff;
  }
  for (let is = -4; is <= 4; is++) {
    if (is == 0) continue;
    const iscaleIs: f32 = (<f32>0.1 * <f32>is + <f32>nmax) / max;
    const scaleIs: f32 = <f32>1 / iscaleIs;
    let mse: f32 = 0;
    for (let i = 0; i < n; i++) {
      const l = imin(nmax, nearestInt(iscaleIs * ldf(x, i)));
      const diff: f32 = ldf(x, i) - scaleIs * <f32>l;
      mse += ldf(qw, i) * diff * diff;
    }
    if (mse < bestMse) {
      bestMse = mse;
      iscale = iscaleIs;
    }
  }
  let sumlx: f32 = 0;
  let suml2: f32 = 0;
  for (let i = 0; i < n; i++) {
    const l = imin(nmax, nearestInt(iscale * ldf(x, i)));
    stb(Lp, i, l);
    const w = ldf(qw, i);
    // The sums take the int level; the refinement below reads L back as C's uint8_t (wrapped).
    sumlx += w * ldf(x, i) * <f32>l;
    suml2 += w * <f32>l * <f32>l;
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const w = ldf(qw, i);
      const xi = ldf(x, i);
      const li = <f32>ldb(Lp, i);
      let slx: f32 = sumlx - w * xi * li;
      let sl2: f32 = suml2 - w * li * li;
      if (slx > 0 && sl2 > 0) {
        const nl = imin(nmax, nearestInt((xi * sl2) / slx));
        if (nl != ldb(Lp, i)) {
          slx += w * xi * <f32>nl;
          sl2 += w * <f32>nl * <f32>nl;
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            stb(Lp, i, nl);
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (changed == 0) break;
  }
  return suml2 > 0 ? sumlx / suml2 : 0;
}

// Signed working levels of makeQ3Quants.
const q3L = memory.data(16 * 4, 16);

/** make_q3_quants(n, nmax, x, L, do_rmse = true) of the Q3_K ref path; writes L in [0, 2·nmax-1]. */
export function makeQ3Quants(n: i32, nmax: i32, x: usize, Lp: usize): f32 {
  let max: f32 = 0;
  let amax: f32 = 0;
  for (let i = 0; i < n; i++) {
    const ax = Mathf.abs(ldf(x, i));
    if (ax > amax) {
      amax = ax;
      max = ldf(x, i);
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) stb(Lp, i, 0);
    return 0;
  }
  const iscale: f32 = <f32>-nmax / max;
  let sumlx: f32 = 0;
  let suml2: f32 = 0;
  for (let i = 0; i < n; i++) {
    const xi = ldf(x, i);
    let l = nearestInt(iscale * xi);
    l = imax(-nmax, imin(nmax - 1, l));
    store<i32>(q3L + ((<usize>i) << 2), l);
    const w: f32 = xi * xi;
    sumlx += w * xi * <f32>l;
    suml2 += w * <f32>l * <f32>l;
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const xi = ldf(x, i);
      const w: f32 = xi * xi;
      const li = load<i32>(q3L + ((<usize>i) << 2));
      let slx: f32 = sumlx - w * xi * <f32>li;
      if (slx > 0) {
        let sl2: f32 = suml2 - w * <f32>li * <f32>li;
        let nl = nearestInt((xi * sl2) / slx);
        nl = imax(-nmax, imin(nmax - 1, nl));
        if (nl != li) {
          slx += w * xi * <f32>nl;
          sl2 += w * <f32>nl * <f32>nl;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            store<i32>(q3L + ((<usize>i) << 2), nl);
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (changed == 0) break;
  }
  for (let i = 0; i < n; i++) stb(Lp, i, load<i32>(q3L + ((<usize>i) << 2)) + nmax);
  return suml2 > 0 ? sumlx / suml2 : 0;
}
