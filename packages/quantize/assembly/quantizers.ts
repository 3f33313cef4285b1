// WebAssembly quantizers for the slow K-quant searches (Q4_K, Q5_K, Q6_K) (AssemblyScript). Each is ggml-quants.c's function, operation
// for operation in binary32: WebAssembly has no fused multiply-add and rounds every f32 operation once, which is the
// semantics of the ggml-base build llama-quantize runs (and of @nibble/formats, which tests compare these with).
//
// Memory is managed by the caller: it writes rows of f32 at `src`, importance weights at `imp` (0 for none) and
// reads the blocks at `dst`. Scratch lives in static data below the heap base.

const GROUP_MAX_EPS: f32 = 1e-15;

// Scratch (one 256-value block at a time).
const L = memory.data(256);
const Laux = memory.data(32);
const Ls = memory.data(8);
const Lm = memory.data(8);
const weights = memory.data(32 * 4);
const sw = memory.data(8 * 4);
const mins = memory.data(16 * 4);
const scales = memory.data(16 * 4);

/** Where the caller may place its buffers. */
export function heapBase(): usize {
  return __heap_base;
}

function ldf(p: usize, i: i32): f32 {
  return load<f32>(p + ((<usize>i) << 2));
}

function stf(p: usize, i: i32, v: f32): void {
  store<f32>(p + ((<usize>i) << 2), v);
}

function ldb(p: usize, i: i32): i32 {
  return <i32>load<u8>(p + <usize>i);
}

function stb(p: usize, i: i32, v: i32): void {
  store<u8>(p + <usize>i, <u8>v);
}

// ggml's nearest_int: add 1.5·2^23 in binary32 and read the low mantissa bits.
function nearestInt(fval: f32): i32 {
  const val: f32 = fval + <f32>12582912.0;
  return (reinterpret<i32>(val) & 0x007fffff) - 0x00400000;
}

function imax(a: i32, b: i32): i32 {
  return a > b ? a : b;
}

function imin(a: i32, b: i32): i32 {
  return a < b ? a : b;
}

// ggml_compute_fp32_to_fp16 (round to nearest even, through binary32 scaling).
function fp32ToFp16(f: f32): i32 {
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

// ggml_compute_fp16_to_fp32 (exact).
function fp16ToFp32(h: i32): f32 {
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

// make_qx_quants with rmse_type 1; weights `qw` or x².
function makeQxQuants(n: i32, nmax: i32, x: usize, Lp: usize, qw: usize): f32 {
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
  let scale: f32 = suml2 !== 0 ? sumlx / suml2 : 0;
  let best: f32 = scale * sumlx;
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
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

// make_qkx2_quants (use_mad false); returns the scale and leaves the min at `minOut`.
function makeQkx2Quants(
  n: i32,
  nmax: i32,
  x: usize,
  w: usize,
  Lp: usize,
  minOut: usize,
  rmin: f32,
  rdelta: f32,
  nstep: i32,
): f32 {
  let min = ldf(x, 0);
  let max = ldf(x, 0);
  let sumW = ldf(w, 0);
  let sumX: f32 = sumW * ldf(x, 0);
  for (let i = 1; i < n; i++) {
    const xi = ldf(x, i);
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const wi = ldf(w, i);
    sumW += wi;
    sumX += wi * xi;
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) stb(Lp, i, 0);
    store<f32>(minOut, -min);
    return 0;
  }
  let iscale: f32 = <f32>nmax / (max - min);
  let scale: f32 = <f32>1 / iscale;
  let bestError: f32 = 0;
  for (let i = 0; i < n; i++) {
    const xi = ldf(x, i);
    const l = imax(0, imin(nmax, nearestInt(iscale * (xi - min))));
    stb(Lp, i, l);
    let diff: f32 = scale * <f32>l + min - xi;
    diff = diff * diff;
    bestError += ldf(w, i) * diff;
  }
  if (nstep < 1) {
    store<f32>(minOut, -min);
    return scale;
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = (rmin + rdelta * <f32>is + <f32>nmax) / (max - min);
    let sumL: f32 = 0;
    let sumL2: f32 = 0;
    let sumXL: f32 = 0;
    for (let i = 0; i < n; i++) {
      const xi = ldf(x, i);
      const l = imax(0, imin(nmax, nearestInt(iscale * (xi - min))));
      stb(Laux, i, l);
      const wi = ldf(w, i);
      sumL += wi * <f32>l;
      sumL2 += wi * <f32>l * <f32>l;
      sumXL += wi * <f32>l * xi;
    }
    const D: f32 = sumW * sumL2 - sumL * sumL;
    if (D > 0) {
      let thisScale: f32 = (sumW * sumXL - sumX * sumL) / D;
      let thisMin: f32 = (sumL2 * sumX - sumL * sumXL) / D;
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = sumXL / sumL2;
      }
      let err: f32 = 0;
      for (let i = 0; i < n; i++) {
        let diff: f32 = thisScale * <f32>ldb(Laux, i) + thisMin - ldf(x, i);
        diff = diff * diff;
        err += ldf(w, i) * diff;
      }
      if (err < bestError) {
        for (let i = 0; i < n; i++) stb(Lp, i, ldb(Laux, i));
        bestError = err;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  store<f32>(minOut, -min);
  return scale;
}

// make_qkx3_quants (weights given, use_mad false).
function makeQkx3Quants(
  n: i32,
  nmax: i32,
  x: usize,
  w: usize,
  Lp: usize,
  minOut: usize,
  rmin: f32,
  rdelta: f32,
  nstep: i32,
): f32 {
  let min = ldf(x, 0);
  let max = ldf(x, 0);
  let sumW = ldf(w, 0);
  let sumX: f32 = sumW * ldf(x, 0);
  for (let i = 1; i < n; i++) {
    const xi = ldf(x, i);
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const wi = ldf(w, i);
    sumW += wi;
    sumX += wi * xi;
  }
  if (min > 0) min = 0;
  if (max <= min) {
    for (let i = 0; i < n; i++) stb(Lp, i, 0);
    store<f32>(minOut, -min);
    return 0;
  }
  let iscale: f32 = <f32>nmax / (max - min);
  let scale: f32 = <f32>1 / iscale;
  let bestMad: f32 = 0;
  for (let i = 0; i < n; i++) {
    const xi = ldf(x, i);
    const l = imax(0, imin(nmax, nearestInt(iscale * (xi - min))));
    stb(Lp, i, l);
    let diff: f32 = scale * <f32>l + min - xi;
    diff = diff * diff;
    bestMad += ldf(w, i) * diff;
  }
  if (nstep < 1) {
    store<f32>(minOut, -min);
    return scale;
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = (rmin + rdelta * <f32>is + <f32>nmax) / (max - min);
    let sumL: f32 = 0;
    let sumL2: f32 = 0;
    let sumXL: f32 = 0;
    for (let i = 0; i < n; i++) {
      const xi = ldf(x, i);
      const l = imax(0, imin(nmax, nearestInt(iscale * (xi - min))));
      stb(Laux, i, l);
      const wi = ldf(w, i);
      sumL += wi * <f32>l;
      sumL2 += wi * <f32>l * <f32>l;
      sumXL += wi * <f32>l * xi;
    }
    const D: f32 = sumW * sumL2 - sumL * sumL;
    if (D > 0) {
      let thisScale: f32 = (sumW * sumXL - sumX * sumL) / D;
      let thisMin: f32 = (sumL2 * sumX - sumL * sumXL) / D;
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = sumXL / sumL2;
      }
      let mad: f32 = 0;
      for (let i = 0; i < n; i++) {
        let diff: f32 = thisScale * <f32>ldb(Laux, i) + thisMin - ldf(x, i);
        diff = diff * diff;
        mad += ldf(w, i) * diff;
      }
      if (mad < bestMad) {
        for (let i = 0; i < n; i++) stb(Lp, i, ldb(Laux, i));
        bestMad = mad;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  store<f32>(minOut, -min);
  return scale;
}

// make_qp_quants: non-negative super-scales; L is uint8 (negative levels wrap, as in C).
function makeQpQuants(n: i32, nmax: i32, x: usize, Lp: usize, qw: usize): f32 {
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
    if (is === 0) continue;
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
        if (nl !== ldb(Lp, i)) {
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
    if (changed === 0) break;
  }
  return suml2 > 0 ? sumlx / suml2 : 0;
}

// get_scale_min_k4: sc | m << 8.
function scaleMinK4(j: i32, q: usize): i32 {
  if (j < 4) return (ldb(q, j) & 63) | ((ldb(q, j + 4) & 63) << 8);
  const sc = (ldb(q, j + 4) & 0xf) | ((ldb(q, j - 4) >> 6) << 4);
  const m = (ldb(q, j + 4) >> 4) | ((ldb(q, j) >> 6) << 4);
  return sc | (m << 8);
}

function packScaleMin(j: i32, ls: i32, lm: i32, q: usize): void {
  if (j < 4) {
    stb(q, j, ls);
    stb(q, j + 4, lm);
  } else {
    stb(q, j + 4, (ls & 0xf) | ((lm & 0xf) << 4));
    stb(q, j - 4, ldb(q, j - 4) | ((ls >> 4) << 6));
    stb(q, j, ldb(q, j) | ((lm >> 4) << 6));
  }
}

// The scales of one Q4_K or Q5_K block (nmax 15 or 31): d, dmin and the 12 scale bytes at y, and the levels in L.
// quantize_row_qN_K_ref without importance, quantize_row_qN_K_impl with it.
function kScales(nmax: i32, x: usize, y: usize, qw: usize): void {
  for (let k = 0; k < 12; k++) stb(y + 4, k, 0);
  if (!qw) {
    let maxScale: f32 = 0;
    let maxMin: f32 = 0;
    const rmin: f32 = nmax === 15 ? -1 : -0.5;
    const nstep = nmax === 15 ? 20 : 15;
    for (let j = 0; j < 8; j++) {
      const xj = x + ((<usize>(32 * j)) << 2);
      let sumX2: f32 = 0;
      for (let l = 0; l < 32; l++) sumX2 += ldf(xj, l) * ldf(xj, l);
      const avX = Mathf.sqrt(sumX2 / <f32>32);
      for (let l = 0; l < 32; l++) stf(weights, l, avX + Mathf.abs(ldf(xj, l)));
      const s = makeQkx2Quants(32, nmax, xj, weights, L + <usize>(32 * j), mins + ((<usize>j) << 2), rmin, 0.1, nstep);
      stf(scales, j, s);
      if (s > maxScale) maxScale = s;
      const m = ldf(mins, j);
      if (m > maxMin) maxMin = m;
    }
    const invScale: f32 = maxScale > 0 ? <f32>63 / maxScale : 0;
    const invMin: f32 = maxMin > 0 ? <f32>63 / maxMin : 0;
    for (let j = 0; j < 8; j++) {
      const ls = imin(63, nearestInt(invScale * ldf(scales, j)) & 0xff);
      const lm = imin(63, nearestInt(invMin * ldf(mins, j)) & 0xff);
      packScaleMin(j, ls, lm, y + 4);
    }
    store<u16>(y, <u16>fp32ToFp16(maxScale / <f32>63));
    store<u16>(y + 2, <u16>fp32ToFp16(maxMin / <f32>63));
  } else {
    let sumX2: f32 = 0;
    for (let l = 0; l < 256; l++) sumX2 += ldf(x, l) * ldf(x, l);
    const sigma2: f32 = (<f32>2 * sumX2) / <f32>256;
    for (let j = 0; j < 8; j++) {
      const xj = x + ((<usize>(32 * j)) << 2);
      const qj = qw + ((<usize>(32 * j)) << 2);
      for (let l = 0; l < 32; l++) stf(weights, l, ldf(qj, l) * Mathf.sqrt(sigma2 + ldf(xj, l) * ldf(xj, l)));
      let sumw: f32 = 0;
      for (let l = 0; l < 32; l++) sumw += ldf(weights, l);
      stf(sw, j, sumw);
      stf(
        scales,
        j,
        makeQkx3Quants(32, nmax, xj, weights, L + <usize>(32 * j), mins + ((<usize>j) << 2), -0.9, 0.05, 36),
      );
    }
    const dBlock = makeQpQuants(8, 63, scales, Ls, sw);
    const mBlock = makeQpQuants(8, 63, mins, Lm, sw);
    // Q5_K caps the levels at 63; Q4_K stores them as they come (above 63 only when make_qp_quants wrapped).
    for (let j = 0; j < 8; j++) {
      const ls = nmax === 31 ? imin(63, ldb(Ls, j)) : ldb(Ls, j);
      const lm = nmax === 31 ? imin(63, ldb(Lm, j)) : ldb(Lm, j);
      packScaleMin(j, ls, lm, y + 4);
    }
    store<u16>(y, <u16>fp32ToFp16(dBlock));
    store<u16>(y + 2, <u16>fp32ToFp16(mBlock));
  }
  const d0 = fp16ToFp32(<i32>load<u16>(y));
  const m0 = fp16ToFp32(<i32>load<u16>(y + 2));
  for (let j = 0; j < 8; j++) {
    const sm = scaleMinK4(j, y + 4);
    const d: f32 = d0 * <f32>(sm & 0xff);
    if (d === 0) continue;
    const dm: f32 = m0 * <f32>(sm >> 8);
    for (let ii = 0; ii < 32; ii++) {
      const l = nearestInt((ldf(x, 32 * j + ii) + dm) / d);
      stb(L, 32 * j + ii, imax(0, imin(nmax, l)));
    }
  }
}

// One Q4_K block (144 bytes at y): d, dmin, scales[12], qs[128].
function q4KBlock(x: usize, y: usize, qw: usize): void {
  kScales(15, x, y, qw);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) stb(y + 16, 32 * c + l, ldb(L, 64 * c + l) | (ldb(L, 64 * c + 32 + l) << 4));
  }
}

// One Q5_K block (176 bytes at y): d, dmin, scales[12], qh[32], qs[128].
function q5KBlock(x: usize, y: usize, qw: usize): void {
  kScales(31, x, y, qw);
  const qh = y + 16;
  const ql = y + 48;
  memory.fill(qh, 0, 32);
  let m1 = 1;
  let m2 = 2;
  for (let c = 0; c < 4; c++) {
    for (let j = 0; j < 32; j++) {
      let l1 = ldb(L, 64 * c + j);
      if (l1 > 15) {
        l1 -= 16;
        stb(qh, j, ldb(qh, j) | m1);
      }
      let l2 = ldb(L, 64 * c + j + 32);
      if (l2 > 15) {
        l2 -= 16;
        stb(qh, j, ldb(qh, j) | m2);
      }
      stb(ql, 32 * c + j, l1 | (l2 << 4));
    }
    m1 <<= 2;
    m2 <<= 2;
  }
}

// One Q6_K block (210 bytes at y): quantize_row_q6_K_ref, or _impl with importance qw.
function q6KBlock(x: usize, y: usize, qw: usize): void {
  let maxScale: f32 = 0;
  let maxAbsScale: f32 = 0;
  for (let ib = 0; ib < 16; ib++) {
    const off = (<usize>(16 * ib)) << 2;
    const s = makeQxQuants(16, 32, x + off, L + <usize>(16 * ib), qw ? qw + off : 0);
    stf(scales, ib, s);
    const a = Mathf.abs(s);
    if (a > maxAbsScale) {
      maxAbsScale = a;
      maxScale = s;
    }
  }
  if (maxAbsScale < GROUP_MAX_EPS) {
    memory.fill(y, 0, 210);
    return;
  }
  const iscale: f32 = <f32>-128 / maxScale;
  const h = fp32ToFp16(<f32>1 / iscale);
  store<u16>(y + 208, <u16>h);
  for (let ib = 0; ib < 16; ib++) stb(y + 192, ib, imin(127, nearestInt(iscale * ldf(scales, ib))));
  const d0 = fp16ToFp32(h);
  for (let j = 0; j < 16; j++) {
    const d: f32 = d0 * <f32>load<i8>(y + 192 + <usize>j);
    if (d === 0) continue;
    for (let ii = 0; ii < 16; ii++) {
      const l = nearestInt(ldf(x, 16 * j + ii) / d);
      stb(L, 16 * j + ii, imax(-32, imin(31, l)) + 32);
    }
  }
  for (let hh = 0; hh < 2; hh++) {
    const ql = y + <usize>(64 * hh);
    const qh = y + 128 + <usize>(32 * hh);
    const e = 128 * hh;
    for (let l = 0; l < 32; l++) {
      const a = ldb(L, e + l);
      const b = ldb(L, e + l + 32);
      const c = ldb(L, e + l + 64);
      const dd = ldb(L, e + l + 96);
      stb(ql, l, (a & 15) | ((c & 15) << 4));
      stb(ql, l + 32, (b & 15) | ((dd & 15) << 4));
      stb(qh, l, (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((dd >> 4) << 6));
    }
  }
}

/** Type codes of {@link quantize}. */
export const Q4_K: i32 = 12;
export const Q5_K: i32 = 13;
export const Q6_K: i32 = 14;

/**
 * Quantizes `rows` rows of `n` f32 values at `src` into `dst`, with importance weights at `imp` (`n` of them, the
 * same for every row) or none (0). `type` is the ggml type id. Returns the bytes written, or -1 for a type this
 * module does not have.
 */
export function quantize(type: i32, src: usize, rows: i32, n: i32, imp: usize, dst: usize): i32 {
  const nb = n >> 8;
  let blockBytes = 0;
  if (type === Q4_K) blockBytes = 144;
  else if (type === Q5_K) blockBytes = 176;
  else if (type === Q6_K) blockBytes = 210;
  else return -1;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const x = src + ((<usize>r * <usize>n + <usize>(256 * b)) << 2);
      const y = dst + (<usize>r * <usize>nb + <usize>b) * <usize>blockBytes;
      const qw = imp ? imp + ((<usize>(256 * b)) << 2) : 0;
      if (type === Q4_K) q4KBlock(x, y, qw);
      else if (type === Q5_K) q5KBlock(x, y, qw);
      else q6KBlock(x, y, qw);
    }
  }
  return rows * nb * blockBytes;
}
