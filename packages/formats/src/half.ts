/**
 * Scalar conversions between binary32 and the 16-bit float formats, exactly as ggml does them (spec §1.2-§1.3):
 * round-to-nearest-even, overflow to ±Inf, subnormals kept, NaN made quiet.
 */

// One shared scratch word: reinterpreting a float's bits without allocating.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Bits of a binary32 value (after rounding the number to binary32). */
export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** The binary32 value with these bits. */
export function f32FromBits(bits: number): number {
  u32[0] = bits;
  return f32[0];
}

/**
 * Converts a number to IEEE binary16 bits with round-to-nearest-even, like `ggml_compute_fp32_to_fp16`.
 * NaN becomes `sign | 0x7E00`; magnitudes of 65520 and above become ±Inf.
 *
 * @example
 * ```ts
 * fp32ToFp16(1.0); // 0x3c00
 * ```
 */
export function fp32ToFp16(x: number): number {
  f32[0] = x;
  const w = u32[0];
  const sign = (w >>> 16) & 0x8000;
  const exp = (w >>> 23) & 0xff;
  let mant = w & 0x7fffff;
  if (exp === 0xff) return sign | (mant !== 0 ? 0x7e00 : 0x7c00);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): the unit is 2^-24.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) !== 0)) h++;
    return sign | h;
  }
  // Normal: a carry out of the mantissa correctly bumps the exponent, up to Inf.
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++;
  return sign | h;
}

let halfTable: Float32Array | undefined;
let halfBitsTable: Uint32Array | undefined;

/**
 * The 65,536 binary16 values as binary32, built on first use. Index it with the half's bits; the hot loops of the
 * block formats use it instead of a function call per scale.
 */
export function fp16Table(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  const bits = new Uint32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) {
      bits[h] = sign | 0x7f800000 | (mant << 13); // Inf, or NaN with its payload kept
    } else if (exp !== 0) {
      bits[h] = sign | ((exp + 112) << 23) | (mant << 13);
    } else {
      t[h] = (mant / 16777216) * (sign !== 0 ? -1 : 1); // subnormal: mant * 2^-24, exact in binary32
      if (mant === 0) bits[h] = sign;
    }
  }
  halfTable = t;
  return t;
}

/**
 * {@link fp16Table} as binary32 bit patterns: dequantizers whose every output is one of 16 or 65,536 values copy
 * these words, with no float conversion on the way (NaN payloads kept as ggml keeps them).
 *
 * @example
 * ```ts
 * fp16BitsTable()[0x3c00]; // 0x3f800000 (1.0)
 * ```
 */
export function fp16BitsTable(): Uint32Array {
  if (halfBitsTable) return halfBitsTable;
  const t = fp16Table();
  halfBitsTable = new Uint32Array(t.buffer, t.byteOffset, t.length);
  return halfBitsTable;
}

/** Converts binary16 bits to a number, exactly (`ggml_compute_fp16_to_fp32`). */
export function fp16ToFp32(h: number): number {
  return fp16Table()[h & 0xffff];
}

/**
 * Converts a number to bfloat16 bits like `ggml_compute_fp32_to_bf16`: round-to-nearest-even, NaN made quiet with
 * its sign and top payload kept, subnormals not flushed.
 */
export function fp32ToBf16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x0040) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Converts bfloat16 bits to a number, exactly. */
export function bf16ToFp32(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0];
}
