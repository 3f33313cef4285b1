/**
 * The nibble lookup table of the 4-bit CPU kernels (`Codec.kernels.dotLut`), shared by every format whose byte j of a
 * 32-block holds elements j (low nibble) and j + 16 (high nibble): Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS, MXFP4.
 *
 * For one activation row x, `lut[(32-block b, byte j), byte value v] = values[v & 15]·x[32b + j] +
 * values[v >> 4]·x[32b + j + 16]`. A matrix-vector product then costs one table load per weight byte instead of two
 * multiply-adds; the table (16 KiB per 32-block of the row) is built once per product and read by every weight row.
 * The 5-bit formats add a second table for their fifth bit ({@link buildHighBitLut}).
 */

/**
 * Floats of the lookup tables for a row of `n` activations (nibble table, then high-bit table).
 *
 * @example
 * ```ts
 * const lut = new Float32Array(lutLength(4096));
 * ```
 */
export function lutLength(n: number): number {
  return (n / 32) * (4096 + 1024);
}

/** Nibble values of the plain 4-bit formats (Q4_0 and Q5_0 subtract their offset afterwards, with the block sums). */
export const nibbleValues: Float64Array = /* @__PURE__ */ Float64Array.from({ length: 16 }, (_, i) => i);

/**
 * Builds the nibble table of one activation row `x[xOff .. xOff + n)` for a format's 16 nibble values
 * (`kernels.lutValues`), and the row's per-32-block sums in `xsum`.
 *
 * @example
 * ```ts
 * import { q4_0 } from '@nibble/formats/q4_0';
 * const k = q4_0.kernels!;
 * const lut = new Float32Array(lutLength(x.length));
 * const xsum = new Float64Array(x.length / 32);
 * buildNibbleLut(x, 0, x.length, k.lutValues!, lut, xsum);
 * const y0 = k.dotLut!(weights, 0, lut, xsum, x.length); // row 0 of the weight times x
 * ```
 */
export function buildNibbleLut(
  x: Float32Array,
  xOff: number,
  n: number,
  values: Float64Array,
  lut: Float32Array,
  xsum: Float64Array,
): void {
  for (let b = 0; b < n / 32; b++) {
    let s = 0;
    for (let j = 0; j < 32; j++) s += x[xOff + 32 * b + j];
    xsum[b] = s;
    for (let j = 0; j < 16; j++) {
      const a = x[xOff + 32 * b + j];
      const c = x[xOff + 32 * b + j + 16];
      const base = (16 * b + j) * 256;
      for (let hi = 0; hi < 16; hi++) {
        const hv = values[hi] * c;
        for (let lo = 0; lo < 16; lo++) lut[base + (hi << 4) + lo] = values[lo] * a + hv;
      }
    }
  }
}

/**
 * Adds the high-bit table of the 5-bit formats after the nibble table: for 32-block b and qh byte k,
 * `lut[hi(b, k), v] = Σ x[32b + 8k + i] over the set bits i of v`.
 *
 * @example
 * ```ts
 * buildNibbleLut(x, 0, n, q5_0.kernels!.lutValues!, lut, xsum);
 * if (q5_0.kernels!.lutHigh) buildHighBitLut(x, 0, n, lut);
 * ```
 */
export function buildHighBitLut(x: Float32Array, xOff: number, n: number, lut: Float32Array): void {
  const base = (n / 32) * 4096;
  for (let b = 0; b < n / 32; b++) {
    for (let k = 0; k < 4; k++) {
      const t = base + 1024 * b + 256 * k;
      const o = xOff + 32 * b + 8 * k;
      lut[t] = 0;
      for (let v = 1; v < 256; v++) lut[t + v] = lut[t + (v & (v - 1))] + x[o + 31 - Math.clz32(v & -v)];
    }
  }
}

/** Σ over a 32-block of value·x for the 16 nibble bytes at `q`, from the table at `t`. */
export function lutBlock(w: Uint8Array, q: number, lut: Float32Array, t: number): number {
  return (
    lut[t + w[q]] +
    lut[t + 256 + w[q + 1]] +
    lut[t + 512 + w[q + 2]] +
    lut[t + 768 + w[q + 3]] +
    lut[t + 1024 + w[q + 4]] +
    lut[t + 1280 + w[q + 5]] +
    lut[t + 1536 + w[q + 6]] +
    lut[t + 1792 + w[q + 7]] +
    (lut[t + 2048 + w[q + 8]] +
      lut[t + 2304 + w[q + 9]] +
      lut[t + 2560 + w[q + 10]] +
      lut[t + 2816 + w[q + 11]] +
      lut[t + 3072 + w[q + 12]] +
      lut[t + 3328 + w[q + 13]] +
      lut[t + 3584 + w[q + 14]] +
      lut[t + 3840 + w[q + 15]])
  );
}

/** Σ x over the elements whose fifth bit is set, for the 4 qh bytes at `p`, from the high-bit table at `t`. */
export function highBits(w: Uint8Array, p: number, lut: Float32Array, t: number): number {
  return lut[t + w[p]] + lut[t + 256 + w[p + 1]] + lut[t + 512 + w[p + 2]] + lut[t + 768 + w[p + 3]];
}
