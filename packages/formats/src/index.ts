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
import { q4_0 } from './q4_0.js';
import { q4_1 } from './q4_1.js';
import { q5_0 } from './q5_0.js';
import { q5_1 } from './q5_1.js';
import { q8_0, q8_1 } from './q8_0.js';

export type { Codec, QuantizeOptions, BlockKernels } from './codec.js';
export { defineCodec } from './codec.js';
export { fp32ToFp16, fp16ToFp32, fp32ToBf16, bf16ToFp32, fp16Table } from './half.js';
export { nearestInt, roundAway } from './rounding.js';
export { f32, f16, bf16 } from './float.js';
export { q4_0 } from './q4_0.js';
export { q4_1 } from './q4_1.js';
export { q5_0 } from './q5_0.js';
export { q5_1 } from './q5_1.js';
export { q8_0, q8_1 } from './q8_0.js';
export type { Int8Options, Int8Granularity, Int8Layout } from './int8.js';
export { int8, int8Layout } from './int8.js';

/**
 * Every block and float codec, keyed by dtype name (as in `@nibble/tensor`'s `dtypes`). INT8 is separate
 * ({@link int8}) because its bytes carry a header.
 */
export const formats: Readonly<Record<string, Codec>> = Object.freeze({
  f32,
  f16,
  bf16,
  q8_0,
  q8_1,
  q4_0,
  q4_1,
  q5_0,
  q5_1,
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
