// The K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K): ggml's quantize_row_qN_K_ref, and quantize_row_qN_K_impl when
// importance weights are given. The sub-block searches run four at a time in the lanes of lanes.ts; what follows them
// (the super-scales, packing) is scalar, as in C.

import {
  fp16ToFp32,
  fp32ToFp16,
  GROUP_MAX_EPS,
  imax,
  imin,
  ldb,
  ldf,
  makeQ3Quants,
  makeQpQuants,
  makeQxQuants,
  nearestInt,
  putHalf,
  stb,
  stf,
  sumSquares,
} from './common';
import {
  LANE_MIN,
  LANE_SCALE,
  laneSum,
  laneSumSquares,
  ldv,
  levelsOut,
  nearest4,
  qkxLanes,
  qxLanes,
  stv,
  TQ,
  TW,
  TX,
  transpose4,
} from './lanes';

// Scratch (one 256-value block at a time).
const L = memory.data(256, 16);
const Ls = memory.data(16);
const Lm = memory.data(16);
const sw = memory.data(16 * 4, 16);
const mins = memory.data(16 * 4, 16);
const scales = memory.data(16 * 4, 16);

// Four i32 lanes (each in 0..255) as four bytes at p.
@inline
function store4(p: usize, v: v128): void {
  const h = i16x8.narrow_i32x4_u(v, v);
  v128.store32_lane(p, i8x16.narrow_i16x8_u(h, h), 0);
}

// Vectors k of `len` floats at base + stride·(first + k), k = 0..3, transposed into dst.
@inline
function gather(dst: usize, base: usize, first: i32, len: i32): void {
  const stride = (<usize>len) << 2;
  const p = base + <usize>first * stride;
  transpose4(dst, p, p + stride, p + 2 * stride, p + 3 * stride, len);
}

// The lanes' scales and mins into scales[first..first+4) / mins[..], and their levels into L.
@inline
function lanesOut(first: i32, len: i32, withMin: bool): void {
  v128.store(scales + ((<usize>first) << 2), v128.load(LANE_SCALE));
  if (withMin) v128.store(mins + ((<usize>first) << 2), v128.load(LANE_MIN));
  const p = L + <usize>(first * len);
  levelsOut(p, p + <usize>len, p + <usize>(2 * len), p + <usize>(3 * len), len);
}

// Importance weights qw·sqrt(sigma2 + x²) of the transposed x (TX) and importance (TQ), into TW.
function imatrixWeights4(n: i32, sigma2: f32): void {
  const s = f32x4.splat(sigma2);
  for (let i = 0; i < n; i++) {
    const x = ldv(TX, i);
    stv(TW, i, f32x4.mul(ldv(TQ, i), f32x4.sqrt(f32x4.add(s, f32x4.mul(x, x)))));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Q4_K and Q5_K

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
function kScales(nmax: i32, x: usize, y: usize, qw: usize): void {
  for (let k = 0; k < 12; k++) stb(y + 4, k, 0);
  if (!qw) {
    const rmin: f32 = nmax == 15 ? -1 : -0.5;
    const nstep = nmax == 15 ? 20 : 15;
    for (let g = 0; g < 8; g += 4) {
      gather(TX, x, g, 32);
      const avx = f32x4.sqrt(f32x4.div(laneSumSquares(TX, 32), f32x4.splat(32)));
      for (let i = 0; i < 32; i++) stv(TW, i, f32x4.add(avx, f32x4.abs(ldv(TX, i))));
      qkxLanes(32, nmax, rmin, 0.1, nstep, false, false);
      lanesOut(g, 32, true);
    }
    let maxScale: f32 = 0;
    let maxMin: f32 = 0;
    for (let j = 0; j < 8; j++) {
      if (ldf(scales, j) > maxScale) maxScale = ldf(scales, j);
      if (ldf(mins, j) > maxMin) maxMin = ldf(mins, j);
    }
    const invScale: f32 = maxScale > 0 ? <f32>63 / maxScale : 0;
    const invMin: f32 = maxMin > 0 ? <f32>63 / maxMin : 0;
    for (let j = 0; j < 8; j++) {
      const ls = imin(63, nearestInt(invScale * ldf(scales, j)) & 0xff);
      const lm = imin(63, nearestInt(invMin * ldf(mins, j)) & 0xff);
      packScaleMin(j, ls, lm, y + 4);
    }
    putHalf(y, maxScale / <f32>63);
    putHalf(y + 2, maxMin / <f32>63);
  } else {
    const sigma2: f32 = (<f32>2 * sumSquares(x, 256)) / <f32>256;
    for (let g = 0; g < 8; g += 4) {
      gather(TX, x, g, 32);
      gather(TQ, qw, g, 32);
      imatrixWeights4(32, sigma2);
      v128.store(sw + ((<usize>g) << 2), laneSum(TW, 32));
      qkxLanes(32, nmax, -0.9, 0.05, 36, false, true);
      lanesOut(g, 32, true);
    }
    const dBlock = makeQpQuants(8, 63, scales, Ls, sw);
    const mBlock = makeQpQuants(8, 63, mins, Lm, sw);
    // Q5_K caps the levels at 63; Q4_K stores them as they come (above 63 only when make_qp_quants wrapped).
    for (let j = 0; j < 8; j++) {
      const ls = nmax == 31 ? imin(63, ldb(Ls, j)) : ldb(Ls, j);
      const lm = nmax == 31 ? imin(63, ldb(Lm, j)) : ldb(Lm, j);
      packScaleMin(j, ls, lm, y + 4);
    }
    putHalf(y, dBlock);
    putHalf(y + 2, mBlock);
  }
  const d0 = fp16ToFp32(<i32>load<u16>(y));
  const m0 = fp16ToFp32(<i32>load<u16>(y + 2));
  const zero = i32x4.splat(0);
  const top = i32x4.splat(nmax);
  for (let j = 0; j < 8; j++) {
    const sm = scaleMinK4(j, y + 4);
    const d: f32 = d0 * <f32>(sm & 0xff);
    if (d == 0) continue;
    const dm = f32x4.splat(m0 * <f32>(sm >> 8));
    const dv = f32x4.splat(d);
    const xj = x + ((<usize>(32 * j)) << 2);
    for (let i = 0; i < 32; i += 4) {
      const l = nearest4(f32x4.div(f32x4.add(v128.load(xj + ((<usize>i) << 2)), dm), dv));
      store4(L + <usize>(32 * j + i), i32x4.max_s(zero, i32x4.min_s(top, l)));
    }
  }
}

// One Q4_K block (144 bytes at y): d, dmin, scales[12], qs[128].
export function q4KBlock(x: usize, y: usize, qw: usize): void {
  kScales(15, x, y, qw);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) stb(y + 16, 32 * c + l, ldb(L, 64 * c + l) | (ldb(L, 64 * c + 32 + l) << 4));
  }
}

// One Q5_K block (176 bytes at y): d, dmin, scales[12], qh[32], qs[128].
export function q5KBlock(x: usize, y: usize, qw: usize): void {
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

// ---------------------------------------------------------------------------------------------------------------
// Q6_K: quantize_row_q6_K_ref, or _impl with importance qw (used as the weights directly).

export function q6KBlock(x: usize, y: usize, qw: usize): void {
  for (let g = 0; g < 16; g += 4) {
    gather(TX, x, g, 16);
    if (qw) gather(TW, qw, g, 16);
    else
      for (let i = 0; i < 16; i++) {
        const v = ldv(TX, i);
        stv(TW, i, f32x4.mul(v, v));
      }
    qxLanes(16, 32);
    lanesOut(g, 16, false);
  }
  let maxScale: f32 = 0;
  let maxAbsScale: f32 = 0;
  for (let ib = 0; ib < 16; ib++) {
    const s = ldf(scales, ib);
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
  const lo = i32x4.splat(-32);
  const hi = i32x4.splat(31);
  const off = i32x4.splat(32);
  for (let j = 0; j < 16; j++) {
    const d: f32 = d0 * <f32>load<i8>(y + 192 + <usize>j);
    if (d == 0) continue;
    const dv = f32x4.splat(d);
    const xj = x + ((<usize>(16 * j)) << 2);
    for (let i = 0; i < 16; i += 4) {
      const l = nearest4(f32x4.div(v128.load(xj + ((<usize>i) << 2)), dv));
      store4(L + <usize>(16 * j + i), i32x4.add(i32x4.max_s(lo, i32x4.min_s(hi, l)), off));
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

// ---------------------------------------------------------------------------------------------------------------
// Q2_K: { u8 scales[16]; u8 qs[64]; f16 d; f16 dmin } = 84 bytes.

// Re-derives the 2-bit levels from the stored scales (both ggml paths end this way), then packs them.
function q2Pack(x: usize, y: usize): void {
  const d = fp16ToFp32(<i32>load<u16>(y + 80));
  const dmin = fp16ToFp32(<i32>load<u16>(y + 82));
  const zero = i32x4.splat(0);
  const three = i32x4.splat(3);
  for (let j = 0; j < 16; j++) {
    const sc = ldb(y, j);
    const dj: f32 = d * <f32>(sc & 15);
    if (dj == 0) continue; // keep the search's levels
    const mj = f32x4.splat(dmin * <f32>(sc >> 4));
    const dv = f32x4.splat(dj);
    const xj = x + ((<usize>(16 * j)) << 2);
    for (let i = 0; i < 16; i += 4) {
      const l = nearest4(f32x4.div(f32x4.add(v128.load(xj + ((<usize>i) << 2)), mj), dv));
      store4(L + <usize>(16 * j + i), i32x4.max_s(zero, i32x4.min_s(three, l)));
    }
  }
  for (let h = 0; h < 2; h++) {
    for (let l = 0; l < 32; l++) {
      const e = 128 * h + l;
      stb(y + 16, 32 * h + l, ldb(L, e) | (ldb(L, e + 32) << 2) | (ldb(L, e + 64) << 4) | (ldb(L, e + 96) << 6));
    }
  }
}

export function q2KBlock(x: usize, y: usize, qw: usize): void {
  if (!qw) {
    for (let g = 0; g < 16; g += 4) {
      gather(TX, x, g, 16);
      for (let i = 0; i < 16; i++) stv(TW, i, f32x4.abs(ldv(TX, i)));
      qkxLanes(16, 3, -0.5, 0.1, 15, true, false);
      lanesOut(g, 16, true);
    }
    let maxScale: f32 = 0;
    let maxMin: f32 = 0;
    for (let j = 0; j < 16; j++) {
      if (ldf(scales, j) > maxScale) maxScale = ldf(scales, j);
      if (ldf(mins, j) > maxMin) maxMin = ldf(mins, j);
    }
    if (maxScale > 0) {
      const iscale: f32 = <f32>15 / maxScale;
      for (let j = 0; j < 16; j++) stb(y, j, nearestInt(iscale * ldf(scales, j)));
      putHalf(y + 80, maxScale / <f32>15);
    } else {
      for (let j = 0; j < 16; j++) stb(y, j, 0);
      putHalf(y + 80, 0);
    }
    if (maxMin > 0) {
      const iscale: f32 = <f32>15 / maxMin;
      for (let j = 0; j < 16; j++) stb(y, j, ldb(y, j) | (nearestInt(iscale * ldf(mins, j)) << 4));
      putHalf(y + 82, maxMin / <f32>15);
    } else {
      putHalf(y + 82, 0);
    }
  } else {
    const sigma2: f32 = sumSquares(x, 256) / <f32>256;
    for (let g = 0; g < 16; g += 4) {
      gather(TX, x, g, 16);
      gather(TQ, qw, g, 16);
      imatrixWeights4(16, sigma2);
      v128.store(sw + ((<usize>g) << 2), laneSum(TW, 16));
      qkxLanes(16, 3, -0.9, 0.05, 36, false, true);
      lanesOut(g, 16, true);
    }
    const dm = makeQpQuants(16, 15, scales, Ls, sw);
    const mm = makeQpQuants(16, 15, mins, Lm, sw);
    putHalf(y + 80, dm);
    putHalf(y + 82, mm);
    for (let j = 0; j < 16; j++) stb(y, j, ldb(Ls, j) | (ldb(Lm, j) << 4));
  }
  q2Pack(x, y);
}

// ---------------------------------------------------------------------------------------------------------------
// Q3_K: { u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d } = 110 bytes.

function scale6(q: usize, j: i32): i32 {
  const lo = j < 8 ? ldb(q, j) & 15 : ldb(q, j - 8) >> 4;
  return lo | (((ldb(q, 8 + (j & 3)) >> (2 * (j >> 2))) & 3) << 4);
}

function packScales6(q: usize, j: i32, l: i32): void {
  if (j < 8) stb(q, j, l & 15);
  else stb(q, j - 8, ldb(q, j - 8) | ((l & 15) << 4));
  stb(q, 8 + (j & 3), ldb(q, 8 + (j & 3)) | ((l >> 4) << (2 * (j >> 2))));
}

function q3Pack(x: usize, y: usize): void {
  const d = fp16ToFp32(<i32>load<u16>(y + 108));
  const lo = i32x4.splat(-4);
  const hi = i32x4.splat(3);
  const off = i32x4.splat(4);
  for (let j = 0; j < 16; j++) {
    const dj: f32 = d * <f32>(scale6(y + 96, j) - 32);
    if (dj == 0) continue;
    const dv = f32x4.splat(dj);
    const xj = x + ((<usize>(16 * j)) << 2);
    for (let i = 0; i < 16; i += 4) {
      const l = nearest4(f32x4.div(v128.load(xj + ((<usize>i) << 2)), dv));
      store4(L + <usize>(16 * j + i), i32x4.add(i32x4.max_s(lo, i32x4.min_s(hi, l)), off));
    }
  }
  memory.fill(y, 0, 32);
  for (let e = 0; e < 256; e++) {
    const l = ldb(L, e);
    if (l > 3) {
      stb(y, e & 31, ldb(y, e & 31) | (1 << (e >> 5)));
      stb(L, e, l - 4);
    }
  }
  for (let h = 0; h < 2; h++) {
    for (let l = 0; l < 32; l++) {
      const e = 128 * h + l;
      stb(y + 32, 32 * h + l, ldb(L, e) | (ldb(L, e + 32) << 2) | (ldb(L, e + 64) << 4) | (ldb(L, e + 96) << 6));
    }
  }
}

export function q3KBlock(x: usize, y: usize, qw: usize): void {
  for (let k = 0; k < 12; k++) stb(y + 96, k, 0);
  if (!qw) {
    let maxScale: f32 = 0;
    let amax: f32 = 0;
    for (let j = 0; j < 16; j++) {
      const s = makeQ3Quants(16, 4, x + ((<usize>(16 * j)) << 2), L + <usize>(16 * j));
      stf(scales, j, s);
      const a = Mathf.abs(s);
      if (a > amax) {
        amax = a;
        maxScale = s;
      }
    }
    if (maxScale != 0) {
      const iscale: f32 = <f32>-32 / maxScale;
      for (let j = 0; j < 16; j++) {
        // (int8_t)nearest_int(...), clamped to [-32, 31].
        const l = <i32>(<i8>nearestInt(iscale * ldf(scales, j)));
        packScales6(y + 96, j, imax(-32, imin(31, l)) + 32);
      }
      putHalf(y + 108, <f32>1 / iscale);
    } else {
      putHalf(y + 108, 0);
    }
  } else {
    const sigma2: f32 = (<f32>2 * sumSquares(x, 256)) / <f32>256;
    for (let g = 0; g < 16; g += 4) {
      gather(TX, x, g, 16);
      gather(TQ, qw, g, 16);
      imatrixWeights4(16, sigma2);
      v128.store(sw + ((<usize>g) << 2), laneSum(TW, 16));
      qxLanes(16, 4);
      lanesOut(g, 16, false);
    }
    const dBlock = makeQxQuants(16, 32, scales, Ls, sw);
    for (let j = 0; j < 16; j++) packScales6(y + 96, j, ldb(Ls, j));
    putHalf(y + 108, dBlock);
  }
  q3Pack(x, y);
}
