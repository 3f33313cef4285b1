// IQ4_NL and IQ4_XS: ggml's quantize_row_iq4_nl_impl with ntry = 7 (the search ggml_quantize_chunk, and so
// llama-quantize, runs for both), per 32-value sub-block: each nibble indexes the grid kvalues_iq4nl.

import { GROUP_MAX_EPS, imax, imin, ldb, ldf, nearestInt, putHalf, stb, stf, sumSquares } from './common';

const KV = memory.data<i8>([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]);

// For x in [k, k+1), k an integer in [-127, 112], MU[k + 127] is the index of the first grid entry above k (the
// grid values are integers, so the two entries that bracket x are fixed by floor(x)).
const MU = memory.data(240);
let muReady = false;
function initMu(): void {
  for (let k = -127; k <= 112; k++) {
    let mu = 1;
    while (<i32>load<i8>(KV + <usize>mu) <= k) mu++;
    store<u8>(MU + <usize>(k + 127), <u8>mu);
  }
  muReady = true;
}

@inline
function kv(i: i32): f32 {
  return <f32>load<i8>(KV + <usize>i);
}

/**
 * best_index_int8 over the grid: the nearest entry, ties to the upper one, with binary32 differences. NaN (0·Inf,
 * when a fitted scale's inverse overflows) gives 15: every compare of C's binary search is false, which walks it to
 * the last entry.
 */
@inline
function bestIndex(x: f32): i32 {
  if (x <= -127) return 0;
  if (!(x < 113)) return 15;
  const mu = <i32>load<u8>(MU + <usize>(<i32>Mathf.floor(x) + 127));
  return x - kv(mu - 1) < kv(mu) - x ? mu - 1 : mu;
}

// Scratch.
const L = memory.data(256);
const weight = memory.data(32 * 4, 16);
const scales = memory.data(8 * 4, 16);

// The per-32 search: writes L[lo..lo+32) and returns the fitted scale, or NaN for an all-zero sub-block.
function searchSubBlock(x: usize, qw: usize, sigma2: f32, lo: i32, ntry: i32): f32 {
  let amax: f32 = 0;
  let max: f32 = 0;
  for (let j = 0; j < 32; j++) {
    const v = ldf(x, j);
    stf(weight, j, qw ? ldf(qw, j) * Mathf.sqrt(sigma2 + v * v) : v * v);
    const a = Mathf.abs(v);
    if (a > amax) {
      amax = a;
      max = v;
    }
  }
  if (amax < GROUP_MAX_EPS) return NaN;
  let d: f32 = ntry > 0 ? -max / <f32>-127 : max / <f32>-127;
  let id: f32 = <f32>1 / d;
  let sumqx: f32 = 0;
  let sumq2: f32 = 0;
  for (let j = 0; j < 32; j++) {
    const xj = ldf(x, j);
    const l = bestIndex(id * xj);
    stb(L, lo + j, l);
    const wq: f32 = ldf(weight, j) * kv(l);
    sumqx += wq * xj;
    sumq2 += wq * kv(l);
  }
  d = sumq2 > 0 ? sumqx / sumq2 : 0;
  let best: f32 = d * sumqx;
  for (let itry = -ntry; itry <= ntry; itry++) {
    id = <f32>(itry - 127) / max;
    sumqx = 0;
    sumq2 = 0;
    for (let j = 0; j < 32; j++) {
      const xj = ldf(x, j);
      const l = bestIndex(id * xj);
      const wq: f32 = ldf(weight, j) * kv(l);
      sumqx += wq * xj;
      sumq2 += wq * kv(l);
    }
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

function packNibbles(y: usize, lo: i32): void {
  for (let j = 0; j < 16; j++) stb(y, j, ldb(L, lo + j) | (ldb(L, lo + 16 + j) << 4));
}

/** IQ4_NL: { f16 d; u8 qs[16] } per 32 values, a row of n. */
export function iq4NlRow(x: usize, n: i32, y: usize, qw: usize): void {
  if (!muReady) initMu();
  const nb = n >> 5;
  for (let b = 0; b < nb; b++) {
    const xb = x + ((<usize>b) << 7);
    const yb = y + <usize>b * 18;
    const sigma2: f32 = sumSquares(xb, 32) * <f32>0.0625; // 2.f/32
    let d = searchSubBlock(xb, qw ? qw + ((<usize>b) << 7) : 0, sigma2, 0, 7);
    if (isNaN(d)) d = 0;
    putHalf(yb, d);
    const id: f32 = d != 0 ? <f32>1 / d : 0;
    for (let j = 0; j < 32; j++) stb(L, j, bestIndex(id * ldf(xb, j)));
    packNibbles(yb + 2, 0);
  }
}

/** IQ4_XS: { f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128] } per 256 values. */
export function iq4XsBlock(x: usize, y: usize, qw: usize): void {
  if (!muReady) initMu();
  const sigma2: f32 = sumSquares(x, 256) * <f32>0.0078125; // 2.f/256
  let maxScale: f32 = 0;
  let amaxScale: f32 = 0;
  for (let ib = 0; ib < 8; ib++) {
    const off = (<usize>(32 * ib)) << 2;
    let d = searchSubBlock(x + off, qw ? qw + off : 0, sigma2, 32 * ib, 7);
    if (isNaN(d)) d = 0;
    stf(scales, ib, d);
    const a = Mathf.abs(d);
    if (a > amaxScale) {
      amaxScale = a;
      maxScale = d;
    }
  }
  const d: f32 = -maxScale / <f32>32;
  putHalf(y, d);
  const id: f32 = d != 0 ? <f32>1 / d : 0;
  let scalesH = 0;
  for (let ib = 0; ib < 8; ib++) {
    let l = nearestInt(id * ldf(scales, ib));
    l = imax(-32, imin(31, l));
    const dl: f32 = d * <f32>l;
    const idl: f32 = dl != 0 ? <f32>1 / dl : 0;
    const xb = x + ((<usize>(32 * ib)) << 2);
    for (let j = 0; j < 32; j++) stb(L, 32 * ib + j, bestIndex(idl * ldf(xb, j)));
    l += 32;
    if ((ib & 1) == 0) stb(y + 4, ib >> 1, l & 15);
    else stb(y + 4, ib >> 1, ldb(y + 4, ib >> 1) | ((l & 15) << 4));
    scalesH |= (l >> 4) << (2 * ib);
  }
  store<u16>(y + 2, <u16>scalesH);
  for (let ib = 0; ib < 8; ib++) packNibbles(y + 8 + <usize>(16 * ib), 32 * ib);
}
