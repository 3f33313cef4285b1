/**
 * The non-linear 4-bit formats (spec §3.15-§3.16): each nibble indexes the 16-entry grid `kvalues_iq4nl`.
 *
 * IQ4_NL: `{ f16 d; u8 qs[16] }` = 18 bytes per 32 values, value = d·kv[nibble].
 * IQ4_XS: `{ f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128] }` = 136 bytes per 256 values; eight sub-blocks of 32
 * with 6-bit scales `ls`, value = d·(ls−32)·kv[nibble].
 *
 * IQ4_NL has two quantizers in ggml. `ggml_quantize_chunk` (and so llama-quantize) runs the search with
 * `ntry = 7` and re-quantizes with the fitted scale: that is {@link iq4_nl}, the default. `quantize_row_iq4_nl_ref`
 * (`from_float_ref`) runs it with `ntry = -1`, no re-fit: that is {@link iq4_nlRef}. Their bytes differ.
 */
import { type Codec, defineCodec, throwNonFinite } from './codec.js';
import { fp16Table, fp32ToFp16 } from './half.js';
import { lutBlock } from './lut.js';
import { checkImportance, GROUP_MAX_EPS, nint, sumSquares } from './search.js';

// The CPU kernels read the fp16 table through a module constant (faster in their loops than one fetched per call).
const kernelHalf = /* @__PURE__ */ fp16Table();

const fround = Math.fround;

/**
 * `kvalues_iq4nl`, the IQ4 grid.
 *
 * @example
 * ```ts
 * IQ4NL_VALUES[8]; // 1
 * ```
 */
export const IQ4NL_VALUES: Int8Array = /* @__PURE__ */ Int8Array.of(
  -127,
  -104,
  -83,
  -65,
  -49,
  -35,
  -22,
  -10,
  1,
  13,
  25,
  38,
  53,
  69,
  89,
  113,
);
const KV = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

// For x in [k, k+1) with k an integer in [-127, 112], the grid entries that bracket x are fixed (the grid values
// are integers): MU[k + 127] is the index of the first entry above k.
const MU = /* @__PURE__ */ (() => {
  const t = new Uint8Array(240);
  for (let k = -127; k <= 112; k++) {
    let mu = 1;
    while (KV[mu] <= k) mu++;
    t[k + 127] = mu;
  }
  return t;
})();

/** `best_index_int8` over the IQ4 grid: nearest entry, ties to the upper one, with binary32 differences. */
function bestIndex(x: number): number {
  if (x <= -127) return 0;
  if (x >= 113) return 15;
  const mu = MU[Math.floor(x) + 127];
  return fround(x - KV[mu - 1]) < fround(KV[mu] - x) ? mu - 1 : mu;
}

// Scratch shared by all calls. L survives between blocks on purpose: see the ref path's zero blocks below.
const L = new Uint8Array(256);
const weight = new Float32Array(32);
const tryL = new Uint8Array(32);
const scales = new Float32Array(8);

/**
 * The per-32 search of `quantize_row_iq4_nl_impl`: writes `L[lo..lo+32)` and returns the fitted scale, or
 * NaN for an all-zero sub-block (ggml's `continue`, which leaves L alone).
 */
function searchSubBlock(
  x: Float32Array,
  o: number,
  qw: Float32Array | undefined,
  qo: number,
  sigma2: number,
  lo: number,
  ntry: number,
): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 32; j++) {
    const v = x[o + j];
    weight[j] = qw ? fround(qw[qo + j] * fround(Math.sqrt(fround(sigma2 + fround(v * v))))) : fround(v * v);
    const a = Math.abs(v);
    if (a > amax) {
      amax = a;
      max = v;
    }
  }
  if (amax < GROUP_MAX_EPS) return Number.NaN;
  let d = ntry > 0 ? fround(-max / -127) : fround(max / -127);
  let id = fround(1 / d);
  let sumqx = 0;
  let sumq2 = 0;
  for (let j = 0; j < 32; j++) {
    const xj = x[o + j];
    const l = bestIndex(fround(id * xj));
    L[lo + j] = l;
    const wq = fround(weight[j] * KV[l]);
    sumqx = fround(sumqx + fround(wq * xj));
    sumq2 = fround(sumq2 + fround(wq * KV[l]));
  }
  d = sumq2 > 0 ? fround(sumqx / sumq2) : 0;
  let best = fround(d * sumqx);
  // A try whose levels equal the previous try's has the same sums and cannot change d: skip its sums.
  let havePrev = false;
  for (let itry = -ntry; itry <= ntry; itry++) {
    id = fround((itry - 127) / max);
    let same = havePrev;
    for (let j = 0; j < 32; j++) {
      const l = bestIndex(fround(id * x[o + j]));
      if (l !== tryL[j]) {
        same = false;
        tryL[j] = l;
      }
    }
    havePrev = true;
    if (same) continue;
    sumqx = 0;
    sumq2 = 0;
    for (let j = 0; j < 32; j++) {
      const k = KV[tryL[j]];
      const wq = fround(weight[j] * k);
      sumqx = fround(sumqx + fround(wq * x[o + j]));
      sumq2 = fround(sumq2 + fround(wq * k));
    }
    if (sumq2 > 0 && fround(sumqx * sumqx) > fround(best * sumq2)) {
      d = fround(sumqx / sumq2);
      best = fround(d * sumqx);
    }
  }
  return d;
}

function packNibbles(dst: Uint8Array, q: number, lo: number): void {
  for (let j = 0; j < 16; j++) dst[q + j] = L[lo + j] | (L[lo + 16 + j] << 4);
}

function nlBlock(
  x: Float32Array,
  o: number,
  qw: Float32Array | undefined,
  qo: number,
  dst: Uint8Array,
  q: number,
  ntry: number,
): void {
  const sigma2 = fround(sumSquares(x, o, 32) * 0.0625); // 2.f/32
  let d = searchSubBlock(x, o, qw, qo, sigma2, 0, ntry);
  if (Number.isNaN(d)) d = 0;
  const h = fp32ToFp16(d);
  dst[q] = h & 0xff;
  dst[q + 1] = h >>> 8;
  if (ntry > 0) {
    const id = d !== 0 ? fround(1 / d) : 0;
    for (let j = 0; j < 32; j++) L[j] = bestIndex(fround(id * x[o + j]));
  }
  packNibbles(dst, q + 2, 0);
}

function dequantNl(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, nBlocks: number): void {
  const half = fp16Table();
  for (let b = 0; b < nBlocks; b++) {
    const q = srcOff + 18 * b;
    const d = half[src[q] | (src[q + 1] << 8)];
    const y = dstOff + 32 * b;
    for (let j = 0; j < 16; j++) {
      const byte = src[q + 2 + j];
      dst[y + j] = d * KV[byte & 15];
      dst[y + j + 16] = d * KV[byte >> 4];
    }
  }
}

function nlRow(
  name: string,
  ntry: number,
  src: Float32Array,
  srcOff: number,
  n: number,
  dst: Uint8Array,
  dstOff: number,
  row: number,
  importance: Float32Array | undefined,
): void {
  if (importance && row === 0) checkImportance(name, importance);
  for (let b = 0; b < n / 32; b++) {
    const o = srcOff + 32 * b;
    let sum = 0;
    for (let j = 0; j < 32; j++) sum += src[o + j];
    if (!Number.isFinite(sum)) throwNonFinite(name, src, o, 32, srcOff, row);
    nlBlock(src, o, importance, 32 * b, dst, dstOff + 18 * b, ntry);
  }
}

/** The IQ4 grid as doubles, for the CPU kernels. */
const gridValues = /* @__PURE__ */ Float64Array.from(KV);

/** IQ4_NL weights times f32 activations: d·Σ kv[q]·x per block. */
function dotNl(w: Uint8Array, off: number, x: Float32Array, xOff: number, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 18 * b;
    const o = xOff + 32 * b;
    let s = 0;
    for (let j = 0; j < 16; j++) {
      const byte = w[q + 2 + j];
      s += gridValues[byte & 15] * x[o + j] + gridValues[byte >>> 4] * x[o + j + 16];
    }
    sum += s * kernelHalf[w[q] | (w[q + 1] << 8)];
  }
  return sum;
}

/** IQ4_NL through the nibble table of the activation row (built with the grid values, see lut.ts). */
function dotLutNl(w: Uint8Array, off: number, lut: Float32Array, _xsum: Float64Array, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 32; b++) {
    const q = off + 18 * b;
    sum += lutBlock(w, q + 2, lut, 4096 * b) * kernelHalf[w[q] | (w[q + 1] << 8)];
  }
  return sum;
}

/** IQ4_XS through the IQ4_NL table: each 32-element sub-block has the IQ4_NL nibble layout. */
function dotLutXs(w: Uint8Array, off: number, lut: Float32Array, _xsum: Float64Array, n: number): number {
  let sum = 0;
  for (let b = 0; b < n / 256; b++) {
    const q = off + 136 * b;
    const sh = w[q + 2] | (w[q + 3] << 8);
    let sb = 0;
    for (let ib = 0; ib < 8; ib++) {
      const ls = ((w[q + 4 + (ib >>> 1)] >>> (4 * (ib & 1))) & 15) | (((sh >>> (2 * ib)) & 3) << 4);
      sb += (ls - 32) * lutBlock(w, q + 8 + 16 * ib, lut, 4096 * (8 * b + ib));
    }
    sum += kernelHalf[w[q] | (w[q + 1] << 8)] * sb;
  }
  return sum;
}

/** The CPU kernels of both IQ4_NL quantizers (they share the layout and the dequantizer). */
const nlKernels = { dot: dotNl, dotLut: dotLutNl, lutValues: gridValues };

/**
 * IQ4_NL as `ggml_quantize_chunk` and llama-quantize make it (`ntry = 7`, then re-quantized with the fitted
 * scale). With `importance`, the imatrix path of the same search.
 *
 * @example
 * ```ts
 * import { iq4_nl } from '@nibble/formats/iq4';
 * const bytes = iq4_nl.quantize(new Float32Array(32).fill(0.5)); // 18 bytes, as llama-quantize makes them
 * const back = iq4_nl.dequantize(bytes);
 * ```
 */
export const iq4_nl: Codec = /* @__PURE__ */ defineCodec({
  name: 'iq4_nl',
  errorBound: '|error| <= amax/8 of its 32-value block (grid gaps up to 24·|d|)',
  importance: 'used',
  scaleOffsets: [0],
  kernels: nlKernels,
  quantizeRow(src, srcOff, n, dst, dstOff, row, importance) {
    nlRow('iq4_nl', 7, src, srcOff, n, dst, dstOff, row, importance);
  },
  dequantizeBlocks: dequantNl,
});

/**
 * IQ4_NL as `quantize_row_iq4_nl_ref` (ggml's `from_float_ref`) makes it: `ntry = -1`, no re-fit. Same block
 * layout and dequantizer as {@link iq4_nl}. Its one artefact is kept: for an all-zero block ggml stores d = 0 and
 * leaves `qs` holding the previous block's levels, across rows too (C quantizes the whole tensor in one call). The
 * first block of a call gets uninitialised memory in C; we write zeros there.
 *
 * @example
 * ```ts
 * import { iq4_nlRef } from '@nibble/formats/iq4';
 * const bytes = iq4_nlRef.quantize(new Float32Array(32).fill(1));
 * ```
 */
export const iq4_nlRef: Codec = /* @__PURE__ */ defineCodec({
  name: 'iq4_nl',
  errorBound: '|error| <= amax/8 of its 32-value block (grid gaps up to 24·|d|)',
  importance: 'used',
  scaleOffsets: [0],
  kernels: nlKernels,
  quantizeRow(src, srcOff, n, dst, dstOff, row, importance) {
    if (row === 0) L.fill(0, 0, 32); // a new call: nothing from an earlier one leaks into the bytes
    nlRow('iq4_nl', -1, src, srcOff, n, dst, dstOff, row, importance);
  },
  dequantizeBlocks: dequantNl,
});

/**
 * IQ4_XS: `quantize_row_iq4_nl_impl(256, 32, ..., ntry = 7)`, the same for ref and chunk.
 *
 * @example
 * ```ts
 * import { iq4_xs } from '@nibble/formats/iq4';
 * const bytes = iq4_xs.quantize(new Float32Array(256).fill(0.5)); // 136 bytes
 * const back = iq4_xs.dequantize(bytes);
 * ```
 */
export const iq4_xs: Codec = /* @__PURE__ */ defineCodec({
  name: 'iq4_xs',
  errorBound: '|error| <= amax/6 of its 256-value block (typically amax/10 of the 32-value sub-block)',
  importance: 'used',
  scaleOffsets: [0],
  kernels: { dotLut: dotLutXs, lutValues: gridValues },
  quantizeRow(src, srcOff, n, dst, dstOff, row, importance) {
    if (importance && row === 0) checkImportance('iq4_xs', importance);
    for (let b = 0; b < n / 256; b++) {
      const o = srcOff + 256 * b;
      const q = dstOff + 136 * b;
      let sum = 0;
      for (let j = 0; j < 256; j++) sum += src[o + j];
      if (!Number.isFinite(sum)) throwNonFinite('iq4_xs', src, o, 256, srcOff, row);
      const sigma2 = fround(sumSquares(src, o, 256) * 0.0078125); // 2.f/256
      let maxScale = 0;
      let amaxScale = 0;
      for (let ib = 0; ib < 8; ib++) {
        let d = searchSubBlock(src, o + 32 * ib, importance, 256 * b + 32 * ib, sigma2, 32 * ib, 7);
        if (Number.isNaN(d)) d = 0;
        scales[ib] = d;
        const a = Math.abs(d);
        if (a > amaxScale) {
          amaxScale = a;
          maxScale = d;
        }
      }
      const d = fround(-maxScale / 32);
      const h = fp32ToFp16(d);
      dst[q] = h & 0xff;
      dst[q + 1] = h >>> 8;
      const id = d !== 0 ? fround(1 / d) : 0;
      let scalesH = 0;
      for (let ib = 0; ib < 8; ib++) {
        let l = nint(fround(id * scales[ib]));
        l = l < -32 ? -32 : l > 31 ? 31 : l;
        const dl = fround(d * l);
        const idl = dl !== 0 ? fround(1 / dl) : 0;
        for (let j = 0; j < 32; j++) L[32 * ib + j] = bestIndex(fround(idl * src[o + 32 * ib + j]));
        l += 32;
        if ((ib & 1) === 0) dst[q + 4 + (ib >> 1)] = l & 15;
        else dst[q + 4 + (ib >> 1)] |= (l & 15) << 4;
        scalesH |= (l >> 4) << (2 * ib);
      }
      dst[q + 2] = scalesH & 0xff;
      dst[q + 3] = scalesH >>> 8;
      for (let ib = 0; ib < 8; ib++) packNibbles(dst, q + 8 + 16 * ib, 32 * ib);
    }
  },
  // dl·kv is exact in binary64 and binary32 (<= 24 bits): the same floats as ggml. The grid as doubles measured
  // 10-30% faster here than the plain array.
  dequantizeBlocks(src, srcOff, dst, dstOff, nBlocks) {
    const half = fp16Table();
    for (let b = 0; b < nBlocks; b++) {
      const q = srcOff + 136 * b;
      const d = half[src[q] | (src[q + 1] << 8)];
      const sh = src[q + 2] | (src[q + 3] << 8);
      for (let ib = 0; ib < 8; ib++) {
        const ls = ((src[q + 4 + (ib >>> 1)] >>> (4 * (ib & 1))) & 15) | (((sh >>> (2 * ib)) & 3) << 4);
        const dl = d * (ls - 32);
        const qs = q + 8 + 16 * ib;
        const o = dstOff + 256 * b + 32 * ib;
        for (let j = 0; j < 16; j++) {
          const byte = src[qs + j];
          dst[o + j] = dl * gridValues[byte & 15];
          dst[o + j + 16] = dl * gridValues[byte >>> 4];
        }
      }
    }
  },
});
