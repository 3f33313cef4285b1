/**
 * The seeded random number generator of llama2.c's `run.c`: xorshift64* with 64-bit state, kept here as two 32-bit
 * halves so that a draw allocates nothing (a BigInt would allocate on every step).
 */

// The xorshift64* multiplier 0x2545F4914F6CDD1D, split into 32-bit halves.
const M_HI = 0x2545f491;
const M_LO = 0x4f6cdd1d;

/**
 * A deterministic random source: the same seed gives the same sequence as llama2.c's `random_u32`/`random_f32`
 * seeded with the same value.
 *
 * @example
 * ```ts
 * const rng = new Xorshift64Star(133742);
 * const coin = rng.nextF32(); // in [0, 1), a multiple of 2^-24
 * ```
 */
export class Xorshift64Star {
  private hi = 0;
  private lo = 0;

  /** `seed` is a non-negative safe integer; 0 (which would stall xorshift forever) is replaced by a fixed constant. */
  constructor(seed: number) {
    this.reseed(seed);
  }

  /** Restarts the sequence from `seed`. */
  reseed(seed: number): void {
    if (!Number.isSafeInteger(seed) || seed < 0)
      throw new RangeError(`seed must be a non-negative safe integer, got ${seed}`);
    let hi = Math.floor(seed / 0x1_0000_0000) >>> 0;
    let lo = seed >>> 0;
    if (hi === 0 && lo === 0) {
      // Any fixed non-zero state works; this is the golden-ratio constant.
      hi = 0x9e3779b9;
      lo = 0x7f4a7c15;
    }
    this.hi = hi;
    this.lo = lo;
  }

  /** The next 32-bit draw: run.c's `random_u32`. */
  nextU32(): number {
    let hi = this.hi;
    let lo = this.lo;
    // state ^= state >> 12
    lo = (lo ^ ((lo >>> 12) | (hi << 20))) >>> 0;
    hi = (hi ^ (hi >>> 12)) >>> 0;
    // state ^= state << 25
    hi = (hi ^ ((hi << 25) | (lo >>> 7))) >>> 0;
    lo = (lo ^ (lo << 25)) >>> 0;
    // state ^= state >> 27
    lo = (lo ^ ((lo >>> 27) | (hi << 5))) >>> 0;
    hi = (hi ^ (hi >>> 27)) >>> 0;
    this.hi = hi;
    this.lo = lo;
    // (state * M) >> 32, modulo 2^64: the high word of lo*M_LO plus the low words of the cross products.
    return (mulHigh32(lo, M_LO) + Math.imul(hi, M_LO) + Math.imul(lo, M_HI)) >>> 0;
  }

  /** A float in [0, 1) with 24 random bits: run.c's `random_f32`. */
  nextF32(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }
}

/** The high 32 bits of the 64-bit product of two unsigned 32-bit integers, exactly, in 16-bit limbs. */
function mulHigh32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p00 = a0 * b0;
  const p10 = a1 * b0;
  const p01 = a0 * b1;
  const mid = (p00 >>> 16) + (p10 & 0xffff) + (p01 & 0xffff);
  return (a1 * b1 + (p10 >>> 16) + (p01 >>> 16) + Math.floor(mid / 0x10000)) >>> 0;
}
