/**
 * Model sizes per preset for real llama shapes, computed from the format table and the per-tensor rules alone (no
 * weights): what `nibble sizes` prints beside llama.cpp's published figures.
 */
import type { GgufTensorInfo } from '@nibble/gguf';
import { dtypes } from '@nibble/tensor';
import { presets } from './presets.js';
import { planQuantization, type QuantizeModelOptions, type QuantizePlan } from './quantize.js';

/** A llama architecture's shape. */
export interface LlamaShape {
  readonly name: string;
  readonly nEmbd: number;
  readonly nFf: number;
  readonly nLayer: number;
  readonly nHead: number;
  readonly nHeadKv: number;
  readonly nVocab: number;
  /** Whether the output projection is the token embedding (no `output.weight`). */
  readonly tied: boolean;
  /** What llama.cpp published for it, where it did: F16 and 4-bit sizes (README, in GB as it wrote them). */
  readonly published?: { readonly f16: number; readonly q4: number; readonly source: string };
}

const readme = "llama.cpp's README (March 2023, Q4_0 with an f32 scale)";

/**
 * LLaMA 7B/13B/30B/65B, Llama-2 70B and Llama-3 1B/3B/8B (config.json of each).
 *
 * @example
 * ```ts
 * llamaShapes.find((s) => s.name === 'llama-7b')?.nLayer; // 32
 * ```
 */
export const llamaShapes: readonly LlamaShape[] = Object.freeze([
  {
    name: 'llama-7b',
    nEmbd: 4096,
    nFf: 11008,
    nLayer: 32,
    nHead: 32,
    nHeadKv: 32,
    nVocab: 32000,
    tied: false,
    published: { f16: 13, q4: 3.9, source: readme },
  },
  {
    name: 'llama-13b',
    nEmbd: 5120,
    nFf: 13824,
    nLayer: 40,
    nHead: 40,
    nHeadKv: 40,
    nVocab: 32000,
    tied: false,
    published: { f16: 24, q4: 7.8, source: readme },
  },
  {
    name: 'llama-30b',
    nEmbd: 6656,
    nFf: 17920,
    nLayer: 60,
    nHead: 52,
    nHeadKv: 52,
    nVocab: 32000,
    tied: false,
    published: { f16: 60, q4: 19.5, source: readme },
  },
  {
    name: 'llama-65b',
    nEmbd: 8192,
    nFf: 22016,
    nLayer: 80,
    nHead: 64,
    nHeadKv: 64,
    nVocab: 32000,
    tied: false,
    published: { f16: 120, q4: 38.5, source: readme },
  },
  { name: 'llama-2-70b', nEmbd: 8192, nFf: 28672, nLayer: 80, nHead: 64, nHeadKv: 8, nVocab: 32000, tied: false },
  { name: 'llama-3.2-1b', nEmbd: 2048, nFf: 8192, nLayer: 16, nHead: 32, nHeadKv: 8, nVocab: 128256, tied: true },
  { name: 'llama-3.2-3b', nEmbd: 3072, nFf: 8192, nLayer: 28, nHead: 24, nHeadKv: 8, nVocab: 128256, tied: true },
  { name: 'llama-3.1-8b', nEmbd: 4096, nFf: 14336, nLayer: 32, nHead: 32, nHeadKv: 8, nVocab: 128256, tied: false },
]);

/**
 * The tensor table of a shape as an F16 GGUF would hold it (norms F32), and its llama metadata: enough for
 * {@link planQuantization}.
 *
 * @example
 * ```ts
 * const file = shapeFile(llamaShapes[0]);
 * file.tensors.length; // 291
 * ```
 */
export function shapeFile(shape: LlamaShape): { metadata: Map<string, unknown>; tensors: GgufTensorInfo[] } {
  const kv = (shape.nEmbd / shape.nHead) * shape.nHeadKv;
  const list: [string, number[]][] = [
    ['token_embd.weight', [shape.nEmbd, shape.nVocab]],
    ['output_norm.weight', [shape.nEmbd]],
  ];
  if (!shape.tied) list.push(['output.weight', [shape.nEmbd, shape.nVocab]]);
  for (let l = 0; l < shape.nLayer; l++) {
    const p = `blk.${l}.`;
    list.push(
      [`${p}attn_norm.weight`, [shape.nEmbd]],
      [`${p}attn_q.weight`, [shape.nEmbd, shape.nEmbd]],
      [`${p}attn_k.weight`, [shape.nEmbd, kv]],
      [`${p}attn_v.weight`, [shape.nEmbd, kv]],
      [`${p}attn_output.weight`, [shape.nEmbd, shape.nEmbd]],
      [`${p}ffn_norm.weight`, [shape.nEmbd]],
      [`${p}ffn_gate.weight`, [shape.nEmbd, shape.nFf]],
      [`${p}ffn_up.weight`, [shape.nEmbd, shape.nFf]],
      [`${p}ffn_down.weight`, [shape.nFf, shape.nEmbd]],
    );
  }
  let offset = 0;
  const tensors = list.map(([name, ne]): GgufTensorInfo => {
    const type = ne.length === 1 ? dtypes.f32 : dtypes.f16;
    const elementCount = ne.reduce((a, b) => a * b, 1);
    const byteLength = elementCount * type.bytesPerBlock;
    const info = {
      name,
      dtype: type.name,
      typeName: type.name,
      ggmlType: type.ggmlType,
      shape: [...ne].reverse(),
      ne,
      byteOffset: offset,
      byteLength,
      relativeOffset: offset,
      elementCount,
    };
    offset += byteLength;
    return info;
  });
  const metadata = new Map<string, unknown>([
    ['general.architecture', 'llama'],
    ['llama.block_count', shape.nLayer],
    ['llama.embedding_length', shape.nEmbd],
    ['llama.feed_forward_length', shape.nFf],
    ['llama.attention.head_count', shape.nHead],
    ['llama.attention.head_count_kv', shape.nHeadKv],
  ]);
  return { metadata, tensors };
}

/** One line of {@link presetSizes}. */
export interface PresetSize {
  readonly preset: string;
  /** Tensor data bytes. */
  readonly bytes: number;
  readonly bitsPerWeight: number;
  /** Tensor count and bytes per stored type. */
  readonly types: ReadonlyMap<string, { readonly tensors: number; readonly bytes: number }>;
  readonly plan: QuantizePlan;
}

/**
 * The size of a shape under every preset (or those given): tensor data only, which is within a few MB of the file.
 *
 * @example
 * ```ts
 * const q4 = presetSizes(llamaShapes[0], ['Q4_0'])[0];
 * (q4.bytes / 2 ** 30).toFixed(2); // '3.56' GiB for LLaMA 7B
 * ```
 */
export function presetSizes(
  shape: LlamaShape,
  names: readonly string[] = presets.map((p) => p.name).filter((n) => n !== 'MXFP4_MOE'),
  options: Omit<QuantizeModelOptions, 'preset' | 'type'> = {},
): PresetSize[] {
  const file = shapeFile(shape) as unknown as Parameters<typeof planQuantization>[0];
  return names.map((preset) => {
    // Q2_K_S needs an imatrix to run, not to be sized.
    const plan = planQuantization(file, { ...options, preset, imatrix: undefined, dryRun: true });
    const types = new Map<string, { tensors: number; bytes: number }>();
    for (const t of plan.tensors) {
      const e = types.get(t.to) ?? { tensors: 0, bytes: 0 };
      types.set(t.to, { tensors: e.tensors + 1, bytes: e.bytes + t.bytesOut });
    }
    return { preset, bytes: plan.bytesOut, bitsPerWeight: (8 * plan.bytesOut) / plan.elements, types, plan };
  });
}
