/**
 * The JS backend's kernels. The per-format ones (row decoders, fused dots with f32 or quantized activations, the
 * nibble-table dots) are the formats' own CPU kernels (`Codec.kernels` of `@nibble/formats`); what is left here is
 * f32 arithmetic on decoded rows.
 *
 * Offsets are in bytes for weights and in elements for f32 arrays. `n` is the row length (a block multiple).
 */
import { type CpuKernels, formats } from '@nibble/formats';

export type { DecodeRow, DotF32, DotLut, DotQ } from '@nibble/formats';
export { buildHighBitLut, buildNibbleLut, lutLength } from '@nibble/formats';

/** A format's CPU kernels (see `CpuKernels` of `@nibble/formats`). */
export type FusedKernels = CpuKernels;

function kernelTable(): Readonly<Record<string, FusedKernels>> {
  const t: Record<string, FusedKernels> = {};
  for (const codec of Object.values(formats)) if (codec.kernels !== undefined) t[codec.name] = codec.kernels;
  return Object.freeze(t);
}

/**
 * The formats with CPU kernels, by dtype name; the others are decoded through their codec a chunk of rows at a
 * time. f32 weights are handled on a Float32Array view instead.
 */
export const fused: Readonly<Record<string, FusedKernels>> = /* @__PURE__ */ kernelTable();

/** f32 dot product, four accumulators. */
export function dotF32(w: Float32Array, wOff: number, x: Float32Array, xOff: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += w[wOff + i] * x[xOff + i];
    s1 += w[wOff + i + 1] * x[xOff + i + 1];
    s2 += w[wOff + i + 2] * x[xOff + i + 2];
    s3 += w[wOff + i + 3] * x[xOff + i + 3];
  }
  for (; i < n; i++) s0 += w[wOff + i] * x[xOff + i];
  return s0 + s1 + (s2 + s3);
}

// ---- several activation rows ------------------------------------------------------------------------------------
// Prefill and perplexity multiply each weight row with many tokens. The weight row is decoded (or unpacked) once into
// scratch, and a register tile of 4 weight rows × 2 tokens keeps 8 accumulators, so each loaded value feeds 2 or 4
// multiply-adds instead of one (scalar JS is bound by loads and bounds checks, not by memory, at this point).

/**
 * y[r, o0 + k] = Σ_i W[k, i] x[r, i] for the 4 consecutive weight rows at `w[wOff + k·n ..]` (k < 4) and tokens
 * r in [0, tokens), y row-major with `outF` columns. Accumulates in double, one sum per output element.
 */
export function tileF32(
  w: Float32Array,
  wOff: number,
  x: Float32Array,
  tokens: number,
  n: number,
  y: Float32Array,
  outF: number,
  o0: number,
): void {
  const w0 = wOff;
  const w1 = w0 + n;
  const w2 = w1 + n;
  const w3 = w2 + n;
  let r = 0;
  for (; r + 1 < tokens; r += 2) {
    const a = r * n;
    const b = a + n;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let t0 = 0;
    let t1 = 0;
    let t2 = 0;
    let t3 = 0;
    for (let i = 0; i < n; i++) {
      const xa = x[a + i];
      const xb = x[b + i];
      const v0 = w[w0 + i];
      const v1 = w[w1 + i];
      const v2 = w[w2 + i];
      const v3 = w[w3 + i];
      s0 += v0 * xa;
      s1 += v1 * xa;
      s2 += v2 * xa;
      s3 += v3 * xa;
      t0 += v0 * xb;
      t1 += v1 * xb;
      t2 += v2 * xb;
      t3 += v3 * xb;
    }
    const ya = r * outF + o0;
    const yb = ya + outF;
    y[ya] = s0;
    y[ya + 1] = s1;
    y[ya + 2] = s2;
    y[ya + 3] = s3;
    y[yb] = t0;
    y[yb + 1] = t1;
    y[yb + 2] = t2;
    y[yb + 3] = t3;
  }
  if (r < tokens) {
    const a = r * n;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let i = 0; i < n; i++) {
      const xa = x[a + i];
      s0 += w[w0 + i] * xa;
      s1 += w[w1 + i] * xa;
      s2 += w[w2 + i] * xa;
      s3 += w[w3 + i] * xa;
    }
    const ya = r * outF + o0;
    y[ya] = s0;
    y[ya + 1] = s1;
    y[ya + 2] = s2;
    y[ya + 3] = s3;
  }
}
