// The float formats: F16 and BF16 rows decoded to F32 (the inputs of a quantization), F32 rows encoded to F16 and
// BF16 (ggml_fp32_to_fp16_row / _bf16_row), and the scan for NaN and infinities that precedes every quantization.

import { fp32ToFp16 } from './common';

/** Index of the first NaN or infinity among `count` values of type `from` (0 f32, 1 f16, 30 bf16) at src, or -1. */
export function firstNonFinite(from: i32, src: usize, count: i32): i32 {
  // The all-ones exponent, per 16-bit or 32-bit lane.
  if (from == 0) {
    const e = i32x4.splat(0x7f800000);
    let i = 0;
    for (; i + 4 <= count; i += 4) {
      const v = v128.load(src + ((<usize>i) << 2));
      if (v128.any_true(i32x4.eq(v128.and(v, e), e))) break;
    }
    for (; i < count; i++) if ((load<u32>(src + ((<usize>i) << 2)) & 0x7f800000) == 0x7f800000) return i;
    return -1;
  }
  const mask: i32 = from == 1 ? 0x7c00 : 0x7f80;
  const e = i16x8.splat(<i16>mask);
  let i = 0;
  for (; i + 8 <= count; i += 8) {
    const v = v128.load(src + ((<usize>i) << 1));
    if (v128.any_true(i16x8.eq(v128.and(v, e), e))) break;
  }
  for (; i < count; i++) if ((<i32>load<u16>(src + ((<usize>i) << 1)) & mask) == mask) return i;
  return -1;
}

// ggml_compute_fp16_to_fp32 of four halves (zero-extended in i32 lanes).
@inline
function half4(h: v128): v128 {
  const w = i32x4.shl(h, 16);
  const sign = v128.and(w, i32x4.splat(0x80000000));
  const twoW = i32x4.add(w, w);
  const normalized = f32x4.mul(
    i32x4.add(i32x4.shr_u(twoW, 4), i32x4.splat(0xe0 << 23)),
    f32x4.splat(reinterpret<f32>(0x07800000)),
  );
  const denormalized = f32x4.sub(v128.or(i32x4.shr_u(twoW, 17), i32x4.splat(126 << 23)), f32x4.splat(0.5));
  const small = i32x4.lt_u(twoW, i32x4.splat(1 << 27));
  return v128.or(sign, v128.bitselect(denormalized, normalized, small));
}

/** Decodes `count` values of type `from` (1 f16, 30 bf16, 0 f32) at src into f32 at dst. */
export function decode(from: i32, src: usize, count: i32, dst: usize): void {
  if (from == 0) {
    memory.copy(dst, src, (<usize>count) << 2);
    return;
  }
  let i = 0;
  for (; i + 8 <= count; i += 8) {
    const v = v128.load(src + ((<usize>i) << 1));
    const lo = i32x4.extend_low_i16x8_u(v);
    const hi = i32x4.extend_high_i16x8_u(v);
    const p = dst + ((<usize>i) << 2);
    if (from == 1) {
      v128.store(p, half4(lo));
      v128.store(p + 16, half4(hi));
    } else {
      v128.store(p, i32x4.shl(lo, 16));
      v128.store(p + 16, i32x4.shl(hi, 16));
    }
  }
  for (; i < count; i++) {
    const h = <u32>load<u16>(src + ((<usize>i) << 1));
    const p = dst + ((<usize>i) << 2);
    if (from == 1) v128.store32_lane(p, half4(i32x4.splat(h)), 0);
    else store<u32>(p, h << 16);
  }
}

/** F32 to F16 (round to nearest even), n values. */
export function toF16(x: usize, n: i32, y: usize): void {
  const lo = i32x4.splat(0x38800000);
  const span = i32x4.splat(0x0efff000);
  const abs = i32x4.splat(0x7fffffff);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const w = v128.load(x + ((<usize>i) << 2));
    const a = v128.and(w, abs);
    // Normal halves: rebias and round on the bits; any other lane takes the general routine.
    if (i32x4.all_true(i32x4.lt_u(i32x4.sub(a, lo), span))) {
      const r = i32x4.shr_u(
        i32x4.add(i32x4.add(a, i32x4.splat(0x0fff - 0x38000000)), v128.and(i32x4.shr_u(a, 13), i32x4.splat(1))),
        13,
      );
      const h = v128.or(r, v128.and(i32x4.shr_u(w, 16), i32x4.splat(0x8000)));
      v128.store64_lane(y + ((<usize>i) << 1), i16x8.narrow_i32x4_u(h, h), 0);
    } else {
      for (let k = 0; k < 4; k++) {
        store<u16>(y + ((<usize>(i + k)) << 1), <u16>fp32ToFp16(load<f32>(x + ((<usize>(i + k)) << 2))));
      }
    }
  }
  for (; i < n; i++) store<u16>(y + ((<usize>i) << 1), <u16>fp32ToFp16(load<f32>(x + ((<usize>i) << 2))));
}

/** F32 to BF16 like ggml_compute_fp32_to_bf16 (round to nearest even; NaN quieted with its top payload). */
export function toBf16(x: usize, n: i32, y: usize): void {
  for (let i = 0; i < n; i++) {
    const u = load<u32>(x + ((<usize>i) << 2));
    const b = (u & 0x7fffffff) > 0x7f800000 ? (u >> 16) | 0x40 : (u + 0x7fff + ((u >> 16) & 1)) >> 16;
    store<u16>(y + ((<usize>i) << 1), <u16>b);
  }
}

/**
 * ggml_validate_row_data's test of fp16 scales: the first of `nBlocks` blocks of `bytesPerBlock` at p whose fp16
 * field at byte `off0` or `off1` is ±Inf or NaN (all-ones exponent), or -1.
 */
export function firstBadScale(p: usize, nBlocks: i32, bytesPerBlock: i32, off0: i32, off1: i32): i32 {
  for (let b = 0; b < nBlocks; b++) {
    const q = p + <usize>b * <usize>bytesPerBlock;
    if ((load<u16>(q + <usize>off0) & 0x7c00) == 0x7c00 || (load<u16>(q + <usize>off1) & 0x7c00) == 0x7c00) return b;
  }
  return -1;
}
