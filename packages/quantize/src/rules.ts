/**
 * llama.cpp's per-tensor rules (src/llama-quant.cpp, release 80fb11a): which tensors are quantized, which type each
 * gets for a preset (`llama_tensor_get_type`), and the fallback for rows that do not fit a type's block.
 *
 * The rules read tensors in llama.cpp's order (by layer, then by name: see {@link llamaOrder}) because some of them
 * count: attn_v tensors are numbered as they are met, so "the first two attn_v" means the first two in that order.
 */
import { type DTypeName, dtypes } from '@nibble/tensor';
import { QuantizeError } from './errors.js';

/** The hyperparameters the rules look at. */
export interface ModelFacts {
  /** `general.architecture`. */
  readonly arch: string;
  /** `{arch}.block_count`. */
  readonly nLayer: number;
  /** `{arch}.attention.head_count` (of layer 0 when per layer). */
  readonly nHead: number;
  /** `{arch}.attention.head_count_kv` (of layer 0 when per layer; default: `nHead`). */
  readonly nHeadKv: number;
  /** `{arch}.expert_count` (0 without experts). */
  readonly nExpert: number;
}

/** A tensor as the rules see it. */
export interface RuleTensor {
  readonly name: string;
  /** ggml order: `ne[0]` is the row length. */
  readonly ne: readonly number[];
}

/** How the rules are steered: llama-quantize's options. */
export interface TypeRuleOptions {
  /** llama.cpp's `llama_ftype` of the preset. */
  readonly ftype: number;
  /** The preset's default type. */
  readonly defaultType: DTypeName;
  /** Every quantized tensor gets the default type (fallbacks aside): `--pure`. */
  readonly pure?: boolean;
  /** `--output-tensor-type`. */
  readonly outputType?: DTypeName;
  /** `--token-embedding-type`. */
  readonly tokenEmbeddingType?: DTypeName;
  /** `--tensor-type PATTERN=TYPE`, first match wins (a regular expression searched in the name). */
  readonly tensorTypes?: readonly (readonly [RegExp, DTypeName])[];
  /** False for `--leave-output-tensor`. Default true. */
  readonly quantizeOutput?: boolean;
  /** Whether an importance matrix is given (some rules differ with one). */
  readonly hasImatrix?: boolean;
}

/** Broad tensor roles, as llama.cpp's `tensor_get_category` names them. */
export type TensorCategory =
  | 'token_embd'
  | 'attn_q'
  | 'attn_k'
  | 'attn_v'
  | 'attn_qkv'
  | 'attn_kv_b'
  | 'attn_output'
  | 'ffn_up'
  | 'ffn_gate'
  | 'ffn_down'
  | 'output'
  | 'other';

// llama_ftype values the rules test.
const F = {
  Q4_0: 2,
  Q8_0: 7,
  Q5_0: 8,
  Q2_K: 10,
  Q3_K_S: 11,
  Q3_K_M: 12,
  Q3_K_L: 13,
  Q4_K_S: 14,
  Q4_K_M: 15,
  Q5_K_S: 16,
  Q5_K_M: 17,
  Q2_K_S: 21,
  IQ4_NL: 25,
  IQ4_XS: 30,
  TQ1_0: 36,
  TQ2_0: 37,
  MXFP4_MOE: 38,
  Q2_0: 41,
} as const;

/**
 * The category of a tensor name.
 *
 * @example
 * ```ts
 * tensorCategory('blk.3.attn_v.weight'); // 'attn_v'
 * tensorCategory('token_embd.weight');   // 'token_embd'
 * ```
 */
export function tensorCategory(name: string): TensorCategory {
  if (name === 'output.weight') return 'output';
  if (name === 'token_embd.weight' || name === 'per_layer_token_embd.weight') return 'token_embd';
  if (name.includes('attn_qkv.weight')) return 'attn_qkv';
  if (name.includes('attn_kv_b.weight')) return 'attn_kv_b';
  if (name.includes('attn_v.weight')) return 'attn_v';
  if (name.includes('attn_k.weight')) return 'attn_k';
  if (name.includes('attn_q.weight')) return 'attn_q';
  if (name.includes('attn_output.weight')) return 'attn_output';
  if (name.includes('ffn_up')) return 'ffn_up';
  if (name.includes('ffn_gate')) return 'ffn_gate';
  if (name.includes('ffn_down')) return 'ffn_down';
  return 'other';
}

const isAttnVLike = (c: TensorCategory) => c === 'attn_v' || c === 'attn_qkv' || c === 'attn_kv_b';

/** ggml_n_dims: dimensions up to the last one above 1. */
export function nDims(ne: readonly number[]): number {
  for (let i = ne.length - 1; i >= 1; i--) if (ne[i] > 1) return i + 1;
  return 1;
}

// Substrings llama.cpp never quantizes (small or special tensors of various architectures).
const KEEP = [
  '_norm.weight',
  'ffn_gate_inp.weight',
  'ffn_gate_tid2eid.weight',
  'altup',
  'laurel',
  'per_layer_model_proj',
  'ssm_conv1d',
  'shortconv.conv.weight',
  'indexer.k_proj.weight',
  'indexer.q_proj.weight',
  'time_mix_first.weight',
  'time_mix_w0.weight',
  'time_mix_w1.weight',
  'time_mix_w2.weight',
  'time_mix_v0.weight',
  'time_mix_v1.weight',
  'time_mix_v2.weight',
  'time_mix_a0.weight',
  'time_mix_a1.weight',
  'time_mix_a2.weight',
  'time_mix_g1.weight',
  'time_mix_g2.weight',
  'time_mix_decay_w1.weight',
  'time_mix_decay_w2.weight',
  'time_mix_lerp_fused.weight',
  'attn_rel_b.weight',
  '.position_embd',
  'sam.pos_embd',
  'sam.neck.',
  'sam.net_',
  '.rel_pos',
  '.patch_embd',
  '.patch_merger',
  'a.rvq.codebook',
  'mm.a.code_embd',
];

/**
 * Whether llama-quantize quantizes a tensor at all (`tensor_allows_quantization`): a weight (name ending in `weight`)
 * of two or more dimensions that is not a norm, a router, a position or token-type embedding or one of a few small
 * architecture-specific tensors; `output.weight` only when `quantizeOutput` (default true).
 *
 * @example
 * ```ts
 * allowsQuantization('blk.0.attn_q.weight', [64, 64]);  // true
 * allowsQuantization('blk.0.attn_norm.weight', [64]);   // false
 * allowsQuantization('output.weight', [64, 512], false); // false (--leave-output-tensor)
 * ```
 */
export function allowsQuantization(name: string, ne: readonly number[], quantizeOutput = true): boolean {
  if (nDims(ne) < 2 || !name.endsWith('weight')) return false;
  if (!quantizeOutput && name === 'output.weight') return false;
  if (name === 'position_embd.weight' || name === 'token_types.weight') return false;
  return !KEEP.some((k) => name.includes(k));
}

/**
 * The type llama.cpp stores a tensor of rows `rowLength` in when the rules chose `target` (`tensor_type_fallback`):
 * the target when its block divides the row; else Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K/TQ1_0/TQ2_0 ->
 * Q4_0, IQ4_XS -> IQ4_NL; F16 when even that does not fit (or for a 32-block type that does not).
 *
 * @example
 * ```ts
 * fallbackType('q4_K', 64);  // 'q5_0'
 * fallbackType('q4_0', 172); // 'f16'
 * ```
 */
export function fallbackType(target: DTypeName, rowLength: number): DTypeName {
  const block = dtypes[target].blockSize;
  if (rowLength % block === 0) return target;
  let next: DTypeName;
  switch (target) {
    case 'iq1_s':
    case 'iq1_m':
    case 'iq2_xxs':
    case 'iq2_xs':
    case 'iq2_s':
    case 'iq3_xxs':
    case 'iq3_s':
    case 'iq4_xs':
      next = 'iq4_nl';
      break;
    case 'q2_0':
    case 'q2_K':
    case 'q3_K':
    case 'tq1_0':
    case 'tq2_0':
      next = 'q4_0';
      break;
    case 'q4_K':
      next = 'q5_0';
      break;
    case 'q5_K':
      next = 'q5_1';
      break;
    case 'q6_K':
      next = 'q8_0';
      break;
    default:
      if (block > 32) throw new QuantizeError('E_QUANT_TYPE', `no fallback type for ${target} (block ${block})`);
      next = target;
  }
  return rowLength % dtypes[next].blockSize === 0 ? next : 'f16';
}

/** One tensor's decision. */
export interface TypeChoice {
  /** The type it is stored in, or undefined when it is not quantized (kept as it is). */
  readonly type: DTypeName | undefined;
  /** Whether the row length forced a fallback from the rules' choice. */
  readonly fellBack: boolean;
  /** Whether llama.cpp refuses this choice without an importance matrix (Q2_K tensors of a Q2_K_S file). */
  readonly needsImatrix: boolean;
}

/**
 * The type of every tensor for a preset, in llama.cpp's order (`tensors` must already be in {@link llamaOrder}): the
 * per-tensor rules of `llama_tensor_get_type`, the overrides, then the row fallback.
 *
 * @example
 * ```ts
 * const choices = chooseTypes(tensors, facts, { ftype: 15, defaultType: 'q4_K' }); // Q4_K_M
 * ```
 */
export function chooseTypes(tensors: readonly RuleTensor[], facts: ModelFacts, options: TypeRuleOptions): TypeChoice[] {
  const { ftype, defaultType } = options;
  const quantizeOutput = options.quantizeOutput ?? true;
  const hasImatrix = options.hasImatrix ?? false;
  const nGqa = facts.nHeadKv === 0 ? 0 : Math.floor(facts.nHead / facts.nHeadKv);
  const nExpert = facts.nExpert;
  const is70B = isType70B(facts);
  const falcon = facts.arch === 'falcon';
  const categories = tensors.map((t) => tensorCategory(t.name));
  // Counters, as quantize_state_impl keeps them.
  const nAttnV = categories.filter(isAttnVLike).length;
  const hasTied = !categories.includes('output');
  const nLayerFfn = facts.nLayer;
  let iAttnV = 0;
  let iFfnDown = 0;
  let iFfnGate = 0;
  let iFfnUp = 0;

  const moreBits = (i: number, n: number) =>
    i < Math.trunc(n / 8) || i >= Math.trunc((7 * n) / 8) || (i - Math.trunc(n / 8)) % 3 === 2;
  // The layer of an FFN tensor: the running count, or (with experts, which are not met in order) the name's.
  const layerOf = (counter: number, name: string): number => {
    if (Math.max(1, nExpert) <= 1) return counter;
    const m = /^blk\.([+-]?\d+)/.exec(name);
    if (!m) throw new QuantizeError('E_QUANT_TYPE', 'cannot tell the layer of this tensor', name);
    const layer = Number(m[1]);
    if (layer < 0 || layer >= nLayerFfn) {
      throw new QuantizeError('E_QUANT_TYPE', `layer ${layer} is outside 0..${nLayerFfn - 1}`, name);
    }
    return layer;
  };
  const div = (a: number, b: number) => Math.trunc(a / b);

  // llama_tensor_get_type_impl: the mix.
  const mix = (t: RuleTensor, cat: TensorCategory, start: DTypeName): DTypeName => {
    let type = start;
    if (cat === 'output' || (hasTied && cat === 'token_embd')) {
      if (options.outputType !== undefined) return options.outputType;
      const nx = t.ne[0];
      if (ftype === F.MXFP4_MOE) type = 'q8_0';
      else if (falcon || nx % dtypes[type].blockSize !== 0) type = 'q8_0';
      else if (type !== 'q8_0') type = 'q6_K';
      return type;
    }
    if (ftype === F.MXFP4_MOE) {
      const expert = cat === 'ffn_up' || cat === 'ffn_gate' || cat === 'ffn_down';
      return (t.ne[2] ?? 1) > 1 && (facts.arch !== 'bailingmoe3' || expert) ? 'mxfp4' : 'q8_0';
    }
    if (cat === 'token_embd') {
      if (options.tokenEmbeddingType !== undefined) return options.tokenEmbeddingType;
      if (ftype === F.TQ1_0 || ftype === F.TQ2_0 || ftype === F.Q2_0) return 'q4_K';
      return type;
    }
    if (isAttnVLike(cat)) {
      if (ftype === F.Q2_K) type = nGqa >= 4 ? 'q4_K' : 'q3_K';
      else if (ftype === F.Q2_K_S && nGqa >= 4) type = 'q4_K';
      else if (ftype === F.Q3_K_M) type = iAttnV < 2 ? 'q5_K' : 'q4_K';
      else if (ftype === F.Q3_K_L) type = 'q5_K';
      else if ((ftype === F.IQ4_NL || ftype === F.IQ4_XS) && nGqa >= 4) type = 'q5_K';
      else if ((ftype === F.Q4_K_M || ftype === F.Q5_K_M) && moreBits(iAttnV, nAttnV)) type = 'q6_K';
      else if (ftype === F.Q4_K_S && iAttnV < 4) type = 'q5_K';
      // 70B: 8 heads share each attn_v, so it is 8x smaller than attn_q and more bits cost little.
      if (is70B && (type === 'q3_K' || type === 'q4_K')) type = 'q5_K';
      if (nExpert === 8) type = 'q8_0';
      iAttnV++;
      return type;
    }
    if (cat === 'attn_k') return nExpert === 8 ? 'q8_0' : type;
    if (cat === 'ffn_down') {
      const i = layerOf(iFfnDown, t.name);
      const n = nLayerFfn;
      if (ftype === F.Q2_K) type = 'q3_K';
      else if (ftype === F.Q2_K_S) {
        if (i < div(n, 8)) type = 'q4_K';
      } else if (ftype === F.Q3_K_M) {
        type = i < div(n, 16) ? 'q5_K' : !falcon || moreBits(i, n) ? 'q4_K' : 'q3_K';
      } else if (ftype === F.Q3_K_L) type = falcon ? 'q4_K' : 'q5_K';
      else if (ftype === F.Q4_K_M) {
        if (falcon) type = i < div(n, 16) ? 'q6_K' : moreBits(i, n) ? 'q5_K' : 'q4_K';
        else if (moreBits(i, n)) type = 'q6_K';
      } else if (i < div(n, 8) && (ftype === F.IQ4_NL || ftype === F.IQ4_XS) && !hasImatrix) type = 'q5_K';
      else if (ftype === F.Q5_K_M && moreBits(i, n)) type = 'q6_K';
      else if (ftype === F.Q4_K_S && !falcon && i < div(n, 8)) type = 'q5_K';
      else if ((ftype === F.Q4_0 || ftype === F.Q5_0) && hasImatrix && i < div(n, 8)) {
        // With an imatrix the first ffn_down layers of Q4_0/Q5_0 still go wrong; Q4_1/Q5_1 hold them.
        type = ftype === F.Q4_0 ? 'q4_1' : 'q5_1';
      }
      iFfnDown++;
      return type;
    }
    if (cat === 'attn_output') {
      const eightExperts = [F.Q2_K, F.Q3_K_S, F.Q3_K_M, F.IQ4_NL, F.Q4_K_S, F.Q4_K_M, F.IQ4_XS] as number[];
      if (!falcon) {
        if (nExpert === 8) {
          if (eightExperts.includes(ftype)) type = 'q5_K';
        } else if (ftype === F.Q2_K) type = 'q3_K';
        else if (ftype === F.Q3_K_M) type = 'q4_K';
        else if (ftype === F.Q3_K_L) type = 'q5_K';
      } else if (ftype === F.Q3_K_L) type = 'q4_K';
      return type;
    }
    if (cat === 'ffn_gate') {
      layerOf(iFfnGate, t.name);
      iFfnGate++;
      return type;
    }
    if (cat === 'ffn_up') {
      layerOf(iFfnUp, t.name);
      iFfnUp++;
      return type;
    }
    return type;
  };

  const quantizedDefault = dtypes[defaultType].quantized;
  return tensors.map((t, k): TypeChoice => {
    const cat = categories[k];
    if (!allowsQuantization(t.name, t.ne, quantizeOutput))
      return { type: undefined, fellBack: false, needsImatrix: false };
    let type: DTypeName;
    let fellBack = false;
    if (options.tokenEmbeddingType !== undefined && cat === 'token_embd' && !namedByPattern(t.name, options)) {
      type = options.tokenEmbeddingType;
    } else if (options.outputType !== undefined && cat === 'output') {
      type = options.outputType;
    } else {
      type = defaultType;
      if (quantizedDefault) {
        let manual = false;
        for (const [re, override] of options.tensorTypes ?? []) {
          if (re.test(t.name)) {
            type = override;
            manual = true;
            break;
          }
        }
        if (!manual && !options.pure) type = mix(t, cat, type);
        const fitted = fallbackType(type, t.ne[0]);
        fellBack = fitted !== type;
        type = fitted;
      }
    }
    const needsImatrix = cat !== 'token_embd' && cat !== 'output' && type === 'q2_K' && ftype === F.Q2_K_S;
    return { type, fellBack, needsImatrix };
  });
}

// per_layer_token_embd follows --token-embedding-type unless a --tensor-type names it.
function namedByPattern(name: string, options: TypeRuleOptions): boolean {
  if (name !== 'per_layer_token_embd.weight') return false;
  return (options.tensorTypes ?? []).some(([re]) => re.test(name));
}

// llama.cpp's LLM_TYPE_70B (only this model type changes a rule), per architecture as its load_hparams sets it.
function isType70B(f: ModelFacts): boolean {
  if (f.arch === 'llama') return f.nLayer === 80 && f.nHead !== f.nHeadKv;
  if (f.arch === 'deci' || f.arch === 'olmo' || f.arch === 'qwen2') return f.nLayer === 80;
  if (f.arch === 'jais2') return f.nLayer === 68;
  return false;
}

/**
 * llama.cpp's tensor order for quantization (`weight_name_comparer`): tensors outside layers first, then by layer
 * number, each group by name. llama-quantize writes its output in this order, and its counting rules walk it.
 *
 * @example
 * ```ts
 * ['blk.10.a', 'blk.2.a', 'output.weight'].sort(llamaOrder); // ['output.weight', 'blk.2.a', 'blk.10.a']
 * ```
 */
export function llamaOrder(a: string, b: string): number {
  const la = layerNumber(a);
  const lb = layerNumber(b);
  if (la !== lb) return la - lb;
  return a < b ? -1 : a > b ? 1 : 0;
}

function layerNumber(name: string): number {
  // sscanf("blk.%d."): the number after "blk.", whatever follows it; -1 without one.
  const m = /^blk\.[ \t\n\r\f\v]*([+-]?\d+)/.exec(name);
  if (!m) return -1;
  const v = Number(m[1]);
  return Number.isSafeInteger(v) ? v : -1;
}
