/**
 * The scale searches shared by the K-quants, the IQ4 formats and the imatrix paths of the legacy formats
 * (spec §3.9), written to ggml's binary32, no-FMA semantics (spec §1.1): every C `float` operation is one
 * `Math.fround`, in C's left-to-right order. The helpers take arrays plus offsets so callers allocate nothing.
 *
 * Two results (a scale and a min) leave {@link makeQkx2Quants} / {@link makeQkx3Quants}: the scale is returned and
 * the min is left in {@link searchOut}.
 */

import { ValueError } from '@nibble/tensor';
import { fp16Table, fp32ToFp16 } from './half.js';

const fround = Math.fround;

/** `1e-15f`, ggml's GROUP_MAX_EPS: groups whose largest magnitude is below it are all-zero. */
export const GROUP_MAX_EPS = /* @__PURE__ */ fround(1e-15);
const F01 = /* @__PURE__ */ fround(0.1);
const F005 = /* @__PURE__ */ fround(0.05);
const FM09 = /* @__PURE__ */ fround(-0.9);

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);

/**
 * ggml's `nearest_int` of a binary32 value: the binary32 addition of 1.5·2^23 rounds half to even and the low
 * mantissa bits are the integer. In range (|x| < 4194303) we get the same integer without the memory round trip,
 * from adding and subtracting 1.5·2^52 in binary64 (also round half to even, and exact otherwise). Out of range
 * (huge ratios in the refinement passes) we read the bits as C does, to get its wrapped integer.
 *
 * @example
 * ```ts
 * nint(2.5); // 2
 * nint(-3.5); // -4
 * ```
 */
export function nint(x: number): number {
  if (x > -4194303 && x < 4194303) return (x + 6755399441055744 - 6755399441055744) | 0;
  f32[0] = x + 12582912;
  return (i32[0] & 0x007fffff) - 0x00400000;
}

const MAGIC = 6755399441055744; // 1.5·2^52

/**
 * `nint(v)` clamped to the integers `[lo, hi]` (lo <= 0 <= hi), as the searches' level loops need it. Inside
 * `[lo, hi]` one pair of compares does both jobs. Below `lo` or above `hi` (within nint's exact range) the result is
 * the bound, since nint is monotone and fixes integers. NaN and the huge values whose C rounding wraps take
 * {@link nint} itself.
 */
function nintClamp(v: number, lo: number, hi: number): number {
  if (v >= lo && v <= hi) return (v + MAGIC - MAGIC) | 0;
  if (v < lo && v > -4194303) return lo;
  if (v > hi && v < 4194303) return hi;
  const l = nint(v);
  return l < lo ? lo : l > hi ? hi : l;
}

// `x - min` rounded to binary32, for the current min of the asymmetric searches. The step loops read the
// scratch arrays below many times per call: binary64 arrays hold the binary32 values exactly and spare a
// conversion per read.
const xm = new Float64Array(32);

// Levels of the current step of make_qx_quants (signed, up to 32 of them), the block x, its weights w and the
// products w·x (all binary32 values).
const qxAux = new Int32Array(32);
const qxX = new Float64Array(32);
const qxW = new Float64Array(32);
const qxWX = new Float64Array(32);
// x and w of the asymmetric searches' block.
const kX = new Float64Array(32);
const kW = new Float64Array(32);

/** Second result of the asymmetric searches: ggml's `*the_min` (the negated offset, >= 0). */
export const searchOut = { min: 0 };

/**
 * `make_qx_quants` with `rmse_type = 1` (signed symmetric search, spec §3.9). Writes `L[lo..lo+n)` in
 * `[0, 2·nmax-1]` and returns the scale. Weights are `qw[qo+i]` when given, else `x²`.
 */
export function makeQxQuants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  L: Uint8Array,
  lo: number,
  qw: Float32Array | undefined,
  qo: number,
): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return 0;
  }
  let iscale = fround(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    let l = nint(fround(iscale * xi));
    l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
    L[lo + i] = l + nmax;
    const w = qw ? qw[qo + i] : fround(xi * xi);
    // w and w·x do not depend on the level: keep them for the search steps.
    qxX[i] = xi;
    qxW[i] = w;
    qxWX[i] = fround(w * xi);
    sumlx = fround(sumlx + fround(qxWX[i] * l));
    suml2 = fround(suml2 + fround(fround(w * l) * l));
  }
  let scale = suml2 !== 0 ? fround(sumlx / suml2) : 0;
  let best = fround(scale * sumlx);
  // Steps whose levels equal the previous step's have the same sums and cannot change the result: skip them.
  let havePrev = false;
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fround(-fround(nmax + fround(F01 * is)) / max);
    // Any level differing from the previous step's shows in the OR of the XORs (no branch per element).
    let change = 0;
    for (let i = 0; i < n; i++) {
      // |x| <= |max|, so |iscale·x| <= nmax + 1 (rounding included): in nint's exact range, where clamping first
      // equals clamping after (nint is monotone and fixes the integer bounds).
      let v = fround(iscale * qxX[i]);
      v = v < -nmax ? -nmax : v > nmax - 1 ? nmax - 1 : v;
      const l = (v + MAGIC - MAGIC) | 0;
      change |= l ^ qxAux[i];
      qxAux[i] = l;
    }
    if (havePrev && change === 0) continue;
    havePrev = true;
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const l = qxAux[i];
      sumlx = fround(sumlx + fround(qxWX[i] * l));
      suml2 = fround(suml2 + fround(fround(qxW[i] * l) * l));
    }
    if (suml2 > 0 && fround(sumlx * sumlx) > fround(best * suml2)) {
      for (let i = 0; i < n; i++) L[lo + i] = nmax + qxAux[i];
      scale = fround(sumlx / suml2);
      best = fround(scale * sumlx);
    }
  }
  return scale;
}

// Signed working copy of L for make_q3_quants (values in [-nmax, nmax-1] until the final shift).
const q3L = new Int32Array(16);

/** `make_q3_quants(n, nmax, x, L, do_rmse = true)` of the Q3_K ref path. Writes `L` in `[0, 2·nmax-1]`. */
export function makeQ3Quants(n: number, nmax: number, x: Float32Array, xo: number, L: Uint8Array, lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return 0;
  }
  const iscale = fround(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    let l = nint(fround(iscale * xi));
    l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
    q3L[i] = l;
    const w = fround(xi * xi);
    sumlx = fround(sumlx + fround(fround(w * xi) * l));
    suml2 = fround(suml2 + fround(fround(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      const w = fround(xi * xi);
      const li = q3L[i];
      let slx = fround(sumlx - fround(fround(w * xi) * li));
      if (slx > 0) {
        let sl2 = fround(suml2 - fround(fround(w * li) * li));
        let nl = nint(fround(fround(xi * sl2) / slx));
        nl = nl < -nmax ? -nmax : nl > nmax - 1 ? nmax - 1 : nl;
        if (nl !== li) {
          slx = fround(slx + fround(fround(w * xi) * nl));
          sl2 = fround(sl2 + fround(fround(w * nl) * nl));
          if (sl2 > 0 && fround(fround(slx * slx) * suml2) > fround(fround(sumlx * sumlx) * sl2)) {
            q3L[i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (changed === 0) break;
  }
  for (let i = 0; i < n; i++) L[lo + i] = q3L[i] + nmax;
  return suml2 > 0 ? fround(sumlx / suml2) : 0;
}

/**
 * `make_qkx2_quants` (asymmetric search of the Q2_K/Q4_K/Q5_K ref paths, spec §3.9). Weights `w[wo+i]` are
 * required; `Laux` is scratch of at least `n`. Returns the scale; the min is left in `searchOut.min`.
 */
export function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  w: Float32Array,
  wo: number,
  L: Uint8Array,
  lo: number,
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
): number {
  let min = x[xo];
  let max = x[xo];
  let sumW = w[wo];
  let sumX = fround(sumW * x[xo]);
  let nonNegative = sumW >= 0;
  for (let i = 0; i < n; i++) {
    kX[i] = x[xo + i];
    kW[i] = w[wo + i];
  }
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i];
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const wi = w[wo + i];
    if (!(wi >= 0)) nonNegative = false;
    sumW = fround(sumW + wi);
    sumX = fround(sumX + fround(wi * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    searchOut.min = -min;
    return 0;
  }
  let iscale = fround(nmax / fround(max - min));
  let scale = fround(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    let l = nint(fround(iscale * fround(xi - min)));
    l = l < 0 ? 0 : l > nmax ? nmax : l;
    L[lo + i] = l;
    let diff = fround(fround(fround(scale * l) + min) - xi);
    diff = useMad ? Math.abs(diff) : fround(diff * diff);
    bestError = fround(bestError + fround(w[wo + i] * diff));
  }
  if (nstep < 1) {
    searchOut.min = -min;
    return scale;
  }
  let xmMin = Number.NaN;
  // A step whose levels equal the previous step's has the same sums, fit and error, so it cannot win: skip its
  // sums. The error only grows while summing non-negative weights, so a step can stop once it reaches the best.
  let havePrev = false;
  for (let is = 0; is <= nstep; is++) {
    // `min` is the best fit so far: later steps measure from it, as the C loop does.
    iscale = fround(fround(fround(rmin + fround(rdelta * is)) + nmax) / fround(max - min));
    if (xmMin !== min) {
      for (let i = 0; i < n; i++) xm[i] = fround(kX[i] - min);
      xmMin = min;
    }
    let change = 0;
    for (let i = 0; i < n; i++) {
      const l = nintClamp(fround(iscale * xm[i]), 0, nmax);
      change |= l ^ Laux[i];
      Laux[i] = l;
    }
    if (havePrev && change === 0) continue;
    havePrev = true;
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Laux[i];
      const wl = fround(kW[i] * l);
      sumL = fround(sumL + wl);
      sumL2 = fround(sumL2 + fround(wl * l));
      sumXL = fround(sumXL + fround(wl * kX[i]));
    }
    const D = fround(fround(sumW * sumL2) - fround(sumL * sumL));
    if (D > 0) {
      let thisScale = fround(fround(fround(sumW * sumXL) - fround(sumX * sumL)) / D);
      let thisMin = fround(fround(fround(sumL2 * sumX) - fround(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fround(sumXL / sumL2);
      }
      let err = 0;
      for (let i = 0; i < n; i++) {
        let diff = fround(fround(fround(thisScale * Laux[i]) + thisMin) - kX[i]);
        diff = useMad ? Math.abs(diff) : fround(diff * diff);
        err = fround(err + fround(kW[i] * diff));
        if (nonNegative && err >= bestError) break;
      }
      if (err < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = Laux[i];
        bestError = err;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  searchOut.min = -min;
  return scale;
}

/**
 * `make_qkx3_quants` (imatrix paths of Q2_K/Q4_K/Q5_K and Q4_1/Q5_1): {@link makeQkx2Quants} with `max <= min`
 * as the degenerate test. `w` is required here (ggml's `x²` default
 * is never used on these paths).
 */
export function makeQkx3Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  w: Float32Array,
  wo: number,
  L: Uint8Array,
  lo: number,
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
): number {
  let min = x[xo];
  let max = x[xo];
  let sumW = w[wo];
  let sumX = fround(sumW * x[xo]);
  let nonNegative = sumW >= 0;
  for (let i = 0; i < n; i++) {
    kX[i] = x[xo + i];
    kW[i] = w[wo + i];
  }
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i];
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const wi = w[wo + i];
    if (!(wi >= 0)) nonNegative = false;
    sumW = fround(sumW + wi);
    sumX = fround(sumX + fround(wi * xi));
  }
  if (min > 0) min = 0;
  if (max <= min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    searchOut.min = -min;
    return 0;
  }
  let iscale = fround(nmax / fround(max - min));
  let scale = fround(1 / iscale);
  let bestMad = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    let l = nint(fround(iscale * fround(xi - min)));
    l = l < 0 ? 0 : l > nmax ? nmax : l;
    L[lo + i] = l;
    const diff = fround(fround(fround(scale * l) + min) - xi);
    bestMad = fround(bestMad + fround(w[wo + i] * fround(diff * diff)));
  }
  if (nstep < 1) {
    searchOut.min = -min;
    return scale;
  }
  let havePrev = false;
  let xmMin = Number.NaN;
  for (let is = 0; is <= nstep; is++) {
    // `min` is the best fit so far: later steps measure from it, as the C loop does.
    iscale = fround(fround(fround(rmin + fround(rdelta * is)) + nmax) / fround(max - min));
    if (xmMin !== min) {
      for (let i = 0; i < n; i++) xm[i] = fround(kX[i] - min);
      xmMin = min;
    }
    let change = 0;
    for (let i = 0; i < n; i++) {
      // The current min may sit near max, so v can be huge, infinite or NaN: ggml rounds first (nearest_int,
      // whose bit trick wraps beyond ±2^22) and clamps after, as nintClamp does.
      const l = nintClamp(fround(iscale * xm[i]), 0, nmax);
      change |= l ^ Laux[i];
      Laux[i] = l;
    }
    if (havePrev && change === 0) continue;
    havePrev = true;
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Laux[i];
      const wl = fround(kW[i] * l);
      sumL = fround(sumL + wl);
      sumL2 = fround(sumL2 + fround(wl * l));
      sumXL = fround(sumXL + fround(wl * kX[i]));
    }
    const D = fround(fround(sumW * sumL2) - fround(sumL * sumL));
    if (D > 0) {
      let thisScale = fround(fround(fround(sumW * sumXL) - fround(sumX * sumL)) / D);
      let thisMin = fround(fround(fround(sumL2 * sumX) - fround(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fround(sumXL / sumL2);
      }
      let mad = 0;
      for (let i = 0; i < n; i++) {
        const diff = fround(fround(fround(thisScale * Laux[i]) + thisMin) - kX[i]);
        mad = fround(mad + fround(kW[i] * fround(diff * diff)));
        if (nonNegative && mad >= bestMad) break;
      }
      if (mad < bestMad) {
        for (let i = 0; i < n; i++) L[lo + i] = Laux[i];
        bestMad = mad;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  searchOut.min = -min;
  return scale;
}

/**
 * `make_qp_quants` (non-negative super-scales of the K-quant imatrix paths). `L` is ggml's `uint8_t` array:
 * negative levels wrap as in C.
 */
export function makeQpQuants(n: number, nmax: number, x: Float32Array, L: Uint8Array, qw: Float32Array): number {
  let max = 0;
  for (let i = 0; i < n; i++) max = max > x[i] ? max : x[i];
  if (max < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[i] = 0;
    return 0;
  }
  let iscale = fround(nmax / max);
  for (let i = 0; i < n; i++) L[i] = nint(fround(iscale * x[i])) & 0xff;
  const scale = fround(1 / iscale);
  let bestMse = 0;
  for (let i = 0; i < n; i++) {
    const diff = fround(x[i] - fround(scale * L[i]));
    bestMse = fround(bestMse + fround(fround(qw[i] * diff) * diff));
  }
  for (let is = -4; is <= 4; is++) {
    if (is === 0) continue;
    const iscaleIs = fround(fround(fround(F01 * is) + nmax) / max);
    const scaleIs = fround(1 / iscaleIs);
    let mse = 0;
    for (let i = 0; i < n; i++) {
      let l = nint(fround(iscaleIs * x[i]));
      if (l > nmax) l = nmax;
      const diff = fround(x[i] - fround(scaleIs * l));
      mse = fround(mse + fround(fround(qw[i] * diff) * diff));
    }
    if (mse < bestMse) {
      bestMse = mse;
      iscale = iscaleIs;
    }
  }
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    let l = nint(fround(iscale * x[i]));
    if (l > nmax) l = nmax;
    L[i] = l & 0xff;
    const w = qw[i];
    sumlx = fround(sumlx + fround(fround(w * x[i]) * l));
    suml2 = fround(suml2 + fround(fround(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const w = qw[i];
      const xi = x[i];
      const li = L[i];
      let slx = fround(sumlx - fround(fround(w * xi) * li));
      let sl2 = fround(suml2 - fround(fround(w * li) * li));
      if (slx > 0 && sl2 > 0) {
        let nl = nint(fround(fround(xi * sl2) / slx));
        if (nl > nmax) nl = nmax;
        if (nl !== li) {
          slx = fround(slx + fround(fround(w * xi) * nl));
          sl2 = fround(sl2 + fround(fround(w * nl) * nl));
          if (fround(fround(slx * slx) * suml2) > fround(fround(sumlx * sumlx) * sl2)) {
            L[i] = nl & 0xff;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (changed === 0) break;
  }
  return suml2 > 0 ? fround(sumlx / suml2) : 0;
}

/**
 * Per-block imatrix weights of the legacy and K-quant imatrix paths: `w[i] = qw[i] * sqrtf(sigma2 + x[i]²)`.
 */
export function imatrixWeights(
  n: number,
  x: Float32Array,
  xo: number,
  qw: Float32Array,
  qo: number,
  sigma2: number,
  w: Float32Array,
): void {
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    w[i] = fround(qw[qo + i] * fround(Math.sqrt(fround(sigma2 + fround(xi * xi)))));
  }
}

/** Sequential binary32 sum of squares of `x[xo..xo+n)`, as ggml's loops accumulate it. */
export function sumSquares(x: Float32Array, xo: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s = fround(s + fround(x[xo + i] * x[xo + i]));
  return s;
}

/**
 * The K-quants' 6-bit scale/min pair `j` (0..7) from the 12 packed bytes at `q[o..o+12)` (`get_scale_min_k4`).
 * Returns `sc | m << 8`.
 */
export function scaleMinK4(j: number, q: Uint8Array, o: number): number {
  if (j < 4) return (q[o + j] & 63) | ((q[o + j + 4] & 63) << 8);
  const sc = (q[o + j + 4] & 0xf) | ((q[o + j - 4] >> 6) << 4);
  const m = (q[o + j + 4] >> 4) | ((q[o + j] >> 6) << 4);
  return sc | (m << 8);
}

/** Packs 6-bit scale `ls` and min `lm` of sub-block `j` (0..7) into the 12 bytes at `q[o..)` (zeroed first). */
export function packScaleMinK4(j: number, ls: number, lm: number, q: Uint8Array, o: number): void {
  if (j < 4) {
    q[o + j] = ls;
    q[o + j + 4] = lm;
  } else {
    q[o + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
    q[o + j - 4] |= (ls >> 4) << 6;
    q[o + j] |= (lm >> 4) << 6;
  }
}

// Scratch of kBlockScales (one 256-value block at a time).
const kLaux = new Uint8Array(32);
const kWeights = new Float32Array(32);
const kScales = new Float32Array(8);
const kMins = new Float32Array(8);
const kSw = new Float32Array(8);
const kLs = new Uint8Array(8);
const kLm = new Uint8Array(8);

/**
 * The search of one 256-value block shared by Q4_K and Q5_K (`nmax` 15 or 31): fills `scales`, `mins`, the
 * 12 scale bytes at `dst[q+4..)`, d and dmin at `dst[q..q+4)`, and re-derives `L` from them.
 */
export function kBlockScales(
  nmax: number,
  x: Float32Array,
  o: number,
  qw: Float32Array | undefined,
  qo: number,
  dst: Uint8Array,
  q: number,
  Lout: Uint8Array,
): void {
  let dh: number;
  let mh: number;
  for (let k = 0; k < 12; k++) dst[q + 4 + k] = 0;
  if (!qw) {
    let maxScale = 0;
    let maxMin = 0;
    const rmin = nmax === 15 ? -1 : -0.5;
    const nstep = nmax === 15 ? 20 : 15;
    for (let j = 0; j < 8; j++) {
      const avx = fround(Math.sqrt(fround(sumSquares(x, o + 32 * j, 32) / 32)));
      for (let l = 0; l < 32; l++) kWeights[l] = fround(avx + Math.abs(x[o + 32 * j + l]));
      kScales[j] = makeQkx2Quants(32, nmax, x, o + 32 * j, kWeights, 0, Lout, 32 * j, kLaux, rmin, F01, nstep, false);
      kMins[j] = searchOut.min;
      if (kScales[j] > maxScale) maxScale = kScales[j];
      if (kMins[j] > maxMin) maxMin = kMins[j];
    }
    const invScale = maxScale > 0 ? fround(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? fround(63 / maxMin) : 0;
    for (let j = 0; j < 8; j++) {
      let ls = nint(fround(invScale * kScales[j])) & 0xff;
      let lm = nint(fround(invMin * kMins[j])) & 0xff;
      if (ls > 63) ls = 63;
      if (lm > 63) lm = 63;
      packScaleMinK4(j, ls, lm, dst, q + 4);
    }
    dh = fp32ToFp16(fround(maxScale / 63));
    mh = fp32ToFp16(fround(maxMin / 63));
  } else {
    const sigma2 = fround(fround(2 * sumSquares(x, o, 256)) / 256);
    for (let j = 0; j < 8; j++) {
      imatrixWeights(32, x, o + 32 * j, qw, qo + 32 * j, sigma2, kWeights);
      let s = 0;
      for (let l = 0; l < 32; l++) s = fround(s + kWeights[l]);
      kSw[j] = s;
      kScales[j] = makeQkx3Quants(32, nmax, x, o + 32 * j, kWeights, 0, Lout, 32 * j, kLaux, FM09, F005, 36);
      kMins[j] = searchOut.min;
    }
    const dBlock = makeQpQuants(8, 63, kScales, kLs, kSw);
    const mBlock = makeQpQuants(8, 63, kMins, kLm, kSw);
    // Q5_K caps the levels at 63, Q4_K stores them as they come (they only exceed 63 if make_qp_quants wrapped).
    for (let j = 0; j < 8; j++) {
      const ls = nmax === 31 && kLs[j] > 63 ? 63 : kLs[j];
      const lm = nmax === 31 && kLm[j] > 63 ? 63 : kLm[j];
      packScaleMinK4(j, ls, lm, dst, q + 4);
    }
    dh = fp32ToFp16(dBlock);
    mh = fp32ToFp16(mBlock);
  }
  dst[q] = dh & 0xff;
  dst[q + 1] = dh >>> 8;
  dst[q + 2] = mh & 0xff;
  dst[q + 3] = mh >>> 8;
  const half = fp16Table();
  const d = half[dh];
  const dmin = half[mh];
  for (let j = 0; j < 8; j++) {
    const sm = scaleMinK4(j, dst, q + 4);
    const dj = fround(d * (sm & 0xff));
    if (dj === 0) continue;
    const dm = fround(dmin * (sm >> 8));
    for (let i = 0; i < 32; i++) {
      const l = nint(fround(fround(x[o + 32 * j + i] + dm) / dj));
      Lout[32 * j + i] = l < 0 ? 0 : l > nmax ? nmax : l;
    }
  }
}

/**
 * Rejects importance weights that are not finite and non-negative (an imatrix holds mean squared activations).
 * The formats call it once per call, on row 0.
 */
export function checkImportance(name: string, w: Float32Array): void {
  for (let j = 0; j < w.length; j++) {
    const v = w[j];
    if (!(v >= 0 && v < Number.POSITIVE_INFINITY)) {
      throw new ValueError(`${name}: importance weight ${v} at column ${j} is not a finite non-negative number`, 0, j);
    }
  }
}
