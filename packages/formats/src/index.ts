/**
 * @nibble/formats: number formats bit-exact with ggml.
 *
 * Each format is also its own entry point (`@nibble/formats/q4_0`, ...) so a bundle carries only what it imports.
 * This barrel gathers them into one table.
 *
 * @example
 * ```ts
 * import { getFormat } from '@nibble/formats';
 * const q = getFormat('q4_0');
 * const bytes = q.quantize(weights, { rowLength: 4096 });
 * ```
 * @packageDocumentation
 */
import type { Codec } from './codec.js';
import { unknownFormat } from './codec.js';
import { bf16, f16, f32 } from './float.js';
import { iq4_nl, iq4_xs } from './iq4.js';
import { mxfp4 } from './mxfp4.js';
import { q2_K } from './q2_k.js';
import { q3_K } from './q3_k.js';
import { q4_0 } from './q4_0.js';
import { q4_1 } from './q4_1.js';
import { q4_K } from './q4_k.js';
import { q5_0 } from './q5_0.js';
import { q5_1 } from './q5_1.js';
import { q5_K } from './q5_k.js';
import { q6_K } from './q6_k.js';
import { q8_0, q8_1 } from './q8_0.js';
import { q8_K } from './q8_k.js';
import { tq1_0, tq2_0 } from './ternary.js';

export type { BlockKernels, Codec, QuantizeOptions } from './codec.js';
export { defineCodec } from './codec.js';
export { bf16, f16, f32 } from './float.js';
export { bf16ToFp32, fp16Table, fp16ToFp32, fp32ToBf16, fp32ToFp16 } from './half.js';
export type { Int8Granularity, Int8Layout, Int8Options } from './int8.js';
export { int8, int8Layout } from './int8.js';
export { IQ4NL_VALUES, iq4_nl, iq4_nlRef, iq4_xs } from './iq4.js';
export { mxfp4 } from './mxfp4.js';
export { q2_K } from './q2_k.js';
export { q3_K } from './q3_k.js';
export { q4_0 } from './q4_0.js';
export { q4_1 } from './q4_1.js';
export { q4_K } from './q4_k.js';
export { q5_0 } from './q5_0.js';
export { q5_1 } from './q5_1.js';
export { q5_K } from './q5_k.js';
export { q6_K } from './q6_k.js';
export { q8_0, q8_1 } from './q8_0.js';
export { q8_K } from './q8_k.js';
export { nearestInt, roundAway } from './rounding.js';
export { tq1_0, tq2_0 } from './ternary.js';

/**
 * Every block and float codec, keyed by dtype name (as in `@nibble/tensor`'s `dtypes`). INT8 is separate
 * ({@link int8}) because its bytes carry a header.
 */
export const formats: Readonly<Record<string, Codec>> = /* @__PURE__ */ Object.freeze({
  f32,
  f16,
  bf16,
  q8_0,
  q8_1,
  q4_0,
  q4_1,
  q5_0,
  q5_1,
  q2_K,
  q3_K,
  q4_K,
  q5_K,
  q6_K,
  q8_K,
  iq4_nl,
  iq4_xs,
  tq1_0,
  tq2_0,
  mxfp4,
});

/**
 * Looks up a codec by name (case-insensitive: `'Q4_0'` and `'q4_0'` both work; K-quants are spelled `q4_K`).
 * Throws a `DTypeError` listing the known names.
 *
 * @example
 * ```ts
 * getFormat('Q8_0').info.bitsPerWeight; // 8.5
 * ```
 */
export function getFormat(name: string): Codec {
  if (Object.hasOwn(formats, name)) return formats[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(formats)) if (key.toLowerCase() === lower) return formats[key];
  return unknownFormat(name, Object.keys(formats));
}

/**
 * The formats whose quantizer honours `QuantizeOptions.importance` (the imatrix path of `ggml_quantize_chunk`);
 * the others ignore it, as ggml does.
 *
 * @example
 * ```ts
 * usesImportance.includes('q4_K'); // true
 * usesImportance.includes('q8_0'); // false
 * ```
 */
export const usesImportance: readonly string[] = /* @__PURE__ */ Object.freeze([
  'q4_0',
  'q4_1',
  'q5_0',
  'q5_1',
  'q2_K',
  'q3_K',
  'q4_K',
  'q5_K',
  'q6_K',
  'iq4_nl',
  'iq4_xs',
]);
