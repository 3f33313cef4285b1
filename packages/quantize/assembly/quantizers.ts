// WebAssembly quantizers (AssemblyScript): every type llama-quantize writes that @nibble/formats has a codec for,
// each ggml-quants.c's function operation for operation in binary32. WebAssembly has no fused multiply-add and
// rounds every f32 operation once, which is the semantics of the ggml-base build llama-quantize runs (and of
// @nibble/formats, which the tests compare these with, and with ggml's own bytes).
//
// Memory is managed by the caller: it writes the input rows (f32, f16 or bf16) at `src`, importance weights at
// `imp` (0 for none), a scratch row of n f32 at `row`, and reads the output at `dst`. Scratch of the kernels lives
// in static data below the heap base.

import { decode, firstBadScale as badScale, firstNonFinite as scan, toBf16, toF16 } from './floats';
import { iq4NlRow, iq4XsBlock } from './iq4';
import { q2KBlock, q3KBlock, q4KBlock, q5KBlock, q6KBlock } from './kquants';
import { legacyImatrixRow, q4_0Row, q4_1Row, q5_0Row, q5_1Row, q8_0Row } from './legacy';
import { mxfp4Row, tq1Block, tq2Block } from './small';

/** Where the caller may place its buffers. */
export function heapBase(): usize {
  return __heap_base;
}

/** Index of the first NaN or infinity among `count` values of type `from` (ggml ids 0, 1, 30) at src, or -1. */
export function firstNonFinite(from: i32, src: usize, count: i32): i32 {
  return scan(from, src, count);
}

/** The first block at p whose fp16 scale (at byte off0 or off1 of the block) is not finite, or -1. */
export function firstBadScale(p: usize, nBlocks: i32, bytesPerBlock: i32, off0: i32, off1: i32): i32 {
  return badScale(p, nBlocks, bytesPerBlock, off0, off1);
}

/** Bytes of one row of n values of `type` (ggml id), or -1 for a type this module does not write. */
export function rowBytes(type: i32, n: i32): i32 {
  switch (type) {
    case 0:
      return 4 * n;
    case 1:
    case 30:
      return 2 * n;
    case 2:
      return (n >> 5) * 18;
    case 3:
      return (n >> 5) * 20;
    case 6:
      return (n >> 5) * 22;
    case 7:
      return (n >> 5) * 24;
    case 8:
      return (n >> 5) * 34;
    case 10:
      return (n >> 8) * 84;
    case 11:
      return (n >> 8) * 110;
    case 12:
      return (n >> 8) * 144;
    case 13:
      return (n >> 8) * 176;
    case 14:
      return (n >> 8) * 210;
    case 20:
      return (n >> 5) * 18;
    case 23:
      return (n >> 8) * 136;
    case 34:
      return (n >> 8) * 54;
    case 35:
      return (n >> 8) * 66;
    case 39:
      return (n >> 5) * 17;
    default:
      return -1;
  }
}

// One row of n f32 at x into `type` at y, with importance imp (0 for none).
function quantizeRow(type: i32, x: usize, n: i32, imp: usize, y: usize): void {
  if (type == 0) memory.copy(y, x, (<usize>n) << 2);
  else if (type == 1) toF16(x, n, y);
  else if (type == 30) toBf16(x, n, y);
  else if (type == 8) q8_0Row(x, n, y);
  else if (type == 39) mxfp4Row(x, n, y);
  else if (type == 20) iq4NlRow(x, n, y, imp);
  else if (imp && (type == 2 || type == 3 || type == 6 || type == 7)) legacyImatrixRow(type, x, n, y, imp);
  else if (type == 2) q4_0Row(x, n, y);
  else if (type == 3) q4_1Row(x, n, y);
  else if (type == 6) q5_0Row(x, n, y);
  else if (type == 7) q5_1Row(x, n, y);
  else {
    const bytes = rowBytes(type, 256);
    for (let b = 0; b < n >> 8; b++) {
      const xb = x + ((<usize>b) << 10);
      const yb = y + <usize>b * <usize>bytes;
      const qb = imp ? imp + ((<usize>b) << 10) : 0;
      if (type == 12) q4KBlock(xb, yb, qb);
      else if (type == 14) q6KBlock(xb, yb, qb);
      else if (type == 13) q5KBlock(xb, yb, qb);
      else if (type == 10) q2KBlock(xb, yb, qb);
      else if (type == 11) q3KBlock(xb, yb, qb);
      else if (type == 23) iq4XsBlock(xb, yb, qb);
      else if (type == 34) tq1Block(xb, yb);
      else tq2Block(xb, yb);
    }
  }
}

/**
 * Quantizes `rows` rows of `n` values stored as `from` (ggml id 0 f32, 1 f16, 30 bf16) at `src` into `type` at
 * `dst`, with importance weights at `imp` (n of them, the same for every row) or none (0). F16 and BF16 rows are
 * decoded one at a time into the scratch row at `row` (n f32). The values must be finite (see firstNonFinite).
 * Returns the bytes written, or -1 for a type this module does not have.
 */
export function quantize(from: i32, type: i32, src: usize, rows: i32, n: i32, imp: usize, row: usize, dst: usize): i32 {
  const out = rowBytes(type, n);
  if (out < 0) return -1;
  const inRow: usize = from == 0 ? (<usize>n) << 2 : (<usize>n) << 1;
  for (let r = 0; r < rows; r++) {
    const s = src + <usize>r * inRow;
    let x = s;
    if (from != 0) {
      decode(from, s, n, row);
      x = row;
    }
    quantizeRow(type, x, n, imp, dst + <usize>r * <usize>out);
  }
  return rows * out;
}
