/**
 * ggml's integer rounding helpers (spec §1.4). `Math.round` rounds ties toward +Inf and is wrong for all of them.
 */

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);

/**
 * `nearest_int` of ggml-quants.c: round half to even through the 1.5·2^23 trick, valid for |x| <= 4194303.
 * The addition is a binary32 operation, as in C.
 */
export function nearestInt(x: number): number {
  f32[0] = x + 12582912;
  return (i32[0] & 0x007fffff) - 0x00400000;
}

/** C `roundf`/`lroundf`: round half away from zero. Exact for binary32 inputs. */
export function roundAway(x: number): number {
  return Math.trunc(x + (x < 0 ? -0.5 : 0.5));
}
