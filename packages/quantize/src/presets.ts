/**
 * llama-quantize's presets (`QUANT_OPTIONS` in llama.cpp's tools/quantize): each is a `llama_ftype`, written to
 * `general.file_type`, and a default tensor type that llama.cpp's per-tensor rules start from.
 */
import type { DTypeName } from '@nibble/tensor';
import { QuantizeError } from './errors.js';

/** One llama-quantize preset. */
export interface Preset {
  /** llama-quantize's name, e.g. `Q4_K_M`. */
  readonly name: string;
  /** llama.cpp's `llama_ftype`, written to `general.file_type`. */
  readonly ftype: number;
  /** The type most tensors get; the rules move some tensors to others. */
  readonly defaultType: DTypeName;
  /** llama-quantize's own line for it (sizes and perplexity gains it published for Llama-3-8B where it has them). */
  readonly description: string;
}

function p(name: string, ftype: number, defaultType: DTypeName, description: string): Preset {
  return Object.freeze({ name, ftype, defaultType, description });
}

/**
 * Every llama-quantize preset nibble can write, in llama-quantize's order. (The IQ1/IQ2/IQ3 presets need codecs nibble
 * does not have; NVFP4, Q1_0 and Q2_0 likewise.)
 *
 * @example
 * ```ts
 * presets.map((p) => p.name); // ['Q4_0', 'Q4_1', 'MXFP4_MOE', 'Q5_0', ...]
 * ```
 */
export const presets: readonly Preset[] = Object.freeze([
  p('Q4_0', 2, 'q4_0', '4.34G, +0.4685 ppl @ Llama-3-8B'),
  p('Q4_1', 3, 'q4_1', '4.78G, +0.4511 ppl @ Llama-3-8B'),
  p('MXFP4_MOE', 38, 'mxfp4', 'MXFP4 MoE'),
  p('Q5_0', 8, 'q5_0', '5.21G, +0.1316 ppl @ Llama-3-8B'),
  p('Q5_1', 9, 'q5_1', '5.65G, +0.1062 ppl @ Llama-3-8B'),
  p('TQ1_0', 36, 'tq1_0', '1.69 bpw ternarization'),
  p('TQ2_0', 37, 'tq2_0', '2.06 bpw ternarization'),
  p('Q2_K', 10, 'q2_K', '2.96G, +3.5199 ppl @ Llama-3-8B'),
  p('Q2_K_S', 21, 'q2_K', '2.96G, +3.1836 ppl @ Llama-3-8B'),
  p('Q3_K_S', 11, 'q3_K', '3.41G, +1.6321 ppl @ Llama-3-8B'),
  p('Q3_K_M', 12, 'q3_K', '3.74G, +0.6569 ppl @ Llama-3-8B'),
  p('Q3_K_L', 13, 'q3_K', '4.03G, +0.5562 ppl @ Llama-3-8B'),
  p('IQ4_NL', 25, 'iq4_nl', '4.50 bpw non-linear quantization'),
  p('IQ4_XS', 30, 'iq4_xs', '4.25 bpw non-linear quantization'),
  p('Q4_K_S', 14, 'q4_K', '4.37G, +0.2689 ppl @ Llama-3-8B'),
  p('Q4_K_M', 15, 'q4_K', '4.58G, +0.1754 ppl @ Llama-3-8B'),
  p('Q5_K_S', 16, 'q5_K', '5.21G, +0.1049 ppl @ Llama-3-8B'),
  p('Q5_K_M', 17, 'q5_K', '5.33G, +0.0569 ppl @ Llama-3-8B'),
  p('Q6_K', 18, 'q6_K', '6.14G, +0.0217 ppl @ Llama-3-8B'),
  p('Q8_0', 7, 'q8_0', '7.96G, +0.0026 ppl @ Llama-3-8B'),
  p('F16', 1, 'f16', '14.00G, +0.0020 ppl @ Mistral-7B'),
  p('BF16', 32, 'bf16', '14.00G, -0.0050 ppl @ Mistral-7B'),
  p('F32', 0, 'f32', '26.00G @ 7B'),
]);

// llama-quantize's aliases.
const aliases: Readonly<Record<string, string>> = { Q3_K: 'Q3_K_M', Q4_K: 'Q4_K_M', Q5_K: 'Q5_K_M' };

/** The presets llama-quantize has and nibble has no codecs for: named in the error, so the user knows why. */
const withoutCodecs = ['IQ2_XXS', 'IQ2_XS', 'IQ2_S', 'IQ2_M', 'IQ1_S', 'IQ1_M', 'IQ3_XXS', 'IQ3_S', 'IQ3_M', 'IQ3_XS'];

/**
 * The preset of a name, case-insensitive, with llama-quantize's aliases (`Q4_K` is `Q4_K_M`); undefined when unknown.
 *
 * @example
 * ```ts
 * findPreset('q4_k_m')?.ftype; // 15
 * findPreset('Q5_K')?.name;    // 'Q5_K_M'
 * ```
 */
export function findPreset(name: string): Preset | undefined {
  const upper = name.toUpperCase();
  const canonical = aliases[upper] ?? upper;
  return presets.find((x) => x.name === canonical);
}

/**
 * The preset of a name, or a {@link QuantizeError} (`E_QUANT_PRESET`) that lists the known ones.
 *
 * @example
 * ```ts
 * requirePreset('Q4_K_M').defaultType; // 'q4_K'
 * ```
 */
export function requirePreset(name: string): Preset {
  const found = findPreset(name);
  if (found) return found;
  const known = presets.map((x) => x.name).join(', ');
  if (withoutCodecs.includes(name.toUpperCase())) {
    throw new QuantizeError('E_QUANT_PRESET', `preset ${name} needs a codec nibble does not have; presets: ${known}`);
  }
  throw new QuantizeError('E_QUANT_PRESET', `unknown preset '${name}'; presets: ${known}`);
}

/**
 * The `general.file_type` written for a plain type (`type` without a preset of its own): llama.cpp's ftype of the
 * preset with that default type, the _S one where there are several.
 */
export function ftypeOfType(type: DTypeName): number | undefined {
  const extra: Partial<Record<DTypeName, number>> = { q3_K: 11, q4_K: 14, q5_K: 16 };
  return extra[type] ?? presets.find((x) => x.defaultType === type)?.ftype;
}
