/**
 * @nibble/formats: number formats bit-exact with ggml.
 *
 * Each format is one traits object (a {@link Codec}) in its own file, and its own entry point
 * (`@nibble/formats/q4_0`, ...) so a bundle carries only what it imports. This barrel re-exports them all
 * (`./codecs.ts`, one line per format) and builds the {@link formats} table from them.
 *
 * @example
 * ```ts
 * import { getFormat } from '@nibble/formats';
 * const q = getFormat('q4_0');
 * const bytes = q.quantize(weights, { rowLength: 4096 });
 * ```
 * @packageDocumentation
 */
import { dtypes } from '@nibble/tensor';
import type { Codec } from './codec.js';
import { unknownFormat } from './codec.js';
import * as all from './codecs.js';

export type {
  BlockKernels,
  Codec,
  CpuKernels,
  DecodeRow,
  DequantizeOptions,
  DotF32,
  DotLut,
  DotQ,
  FormatSpec,
  ImportanceMode,
  OverflowPolicy,
  QuantizeOptions,
  QuantizeRowsOptions,
  ScaleOverflow,
} from './codec.js';
export { defineCodec, ScaleOverflowError } from './codec.js';
export * from './codecs.js';
export { bf16ToFp32, fp16Table, fp16ToFp32, fp32ToBf16, fp32ToFp16 } from './half.js';
export type { Int8Granularity, Int8Layout, Int8Options } from './int8.js';
export { buildHighBitLut, buildNibbleLut, lutLength, nibbleValues } from './lut.js';
export { nearestInt, roundAway } from './rounding.js';

function isCodec(v: unknown): v is Codec {
  return typeof v === 'object' && v !== null && 'layout' in v && typeof (v as Codec).dequantizeRows === 'function';
}

/**
 * The codecs that `./codecs.ts` exports under their own dtype name (a variant such as `iq4_nlRef` is not one), in
 * the order of the dtype table.
 */
function table(ns: Readonly<Record<string, unknown>>): Readonly<Record<string, Codec>> {
  const t: Record<string, Codec> = {};
  for (const name of Object.keys(dtypes)) {
    const v = Object.hasOwn(ns, name) ? ns[name] : undefined;
    if (isCodec(v) && v.name === name) t[name] = v;
  }
  return Object.freeze(t);
}

function importanceUsers(table: Readonly<Record<string, Codec>>): readonly string[] {
  return Object.freeze(
    Object.values(table)
      .filter((c) => c.importance !== 'ignored')
      .map((c) => c.name),
  );
}

/**
 * Every block and float codec, keyed by dtype name (as in `@nibble/tensor`'s `dtypes`), built from the barrel.
 * INT8 is separate ({@link int8}) because its bytes carry a header.
 *
 * @example
 * ```ts
 * Object.keys(formats).includes('q4_K'); // true
 * ```
 */
export const formats: Readonly<Record<string, Codec>> = /* @__PURE__ */ table(all);

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
 * The formats whose quantizer honours `QuantizeOptions.importance` (the imatrix path of `ggml_quantize_chunk`),
 * read from each codec's `importance`; the others ignore it, as ggml does.
 *
 * @example
 * ```ts
 * usesImportance.includes('q4_K'); // true
 * usesImportance.includes('q8_0'); // false
 * ```
 */
export const usesImportance: readonly string[] = /* @__PURE__ */ importanceUsers(formats);
