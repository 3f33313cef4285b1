/**
 * Small synthetic GGUF models with random weights, laid out exactly as llama.cpp's converter writes each
 * architecture (tensor names and shapes from llama.cpp's `src/llama-arch.cpp` and `src/models/*.cpp`, metadata keys
 * from `convert_hf_to_gguf.py`), with a real tokenizer inside: the stories260K SentencePiece vocabulary for the
 * SentencePiece families, and the first tokens and merges of the Llama 3 or Qwen2 byte-level BPE vocabularies for
 * those (plus the chat special tokens each family uses). Deterministic: the same spec gives the same bytes.
 *
 * Run as a script to rewrite the committed files of `fixtures/models/synthetic/`:
 *
 *   node --conditions=source --import tsx packages/runner/src/test/synthetic.ts
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { q8_0 } from '@nibble/formats';
import { blobSink, GgufWriter, parseGguf } from '@nibble/gguf';
import { fixturePath } from './fixtures.js';

/** Which tokenizer a synthetic model carries. */
export type SyntheticVocab = 'spm' | 'llama-bpe' | 'qwen2';

/** The shape and options of one synthetic model. */
export interface SyntheticSpec {
  /** File name without extension. */
  readonly name: string;
  readonly arch: 'llama' | 'qwen2' | 'qwen3' | 'gemma2' | 'gemma3' | 'phi3';
  readonly vocab: SyntheticVocab;
  readonly dim: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  /** `attention.key_length` / `value_length` when given (a head width other than dim / heads). */
  readonly headDim?: number;
  readonly hidden: number;
  readonly contextLength: number;
  /** Written as `rope.dimension_count` (default: the head width). */
  readonly ropeDims?: number;
  readonly ropeBase?: number;
  /** `rope.scaling.*`: linear or YaRN, with the trained context. */
  readonly ropeScaling?: { readonly type: 'linear' | 'yarn'; readonly factor: number; readonly origCtx: number };
  /** Llama 3.1's `rope_freqs.weight` (per-pair divisors, the converter's formula). */
  readonly ropeFreqs?: boolean;
  /** Phi 3's LongRoPE: short/long factors, the trained context and the attention factor. */
  readonly longRope?: { readonly origCtx: number };
  /** No `output.weight`: the output is the token embedding. */
  readonly tied?: boolean;
  /** q/k/v biases (Qwen 2). */
  readonly qkvBias?: boolean;
  /** One `attn_qkv` instead of q, k, v (Phi 3). */
  readonly fusedQkv?: boolean;
  /** Sliding-window attention: window and pattern period (Gemma). */
  readonly slidingWindow?: { readonly window: number; readonly pattern?: number };
  /** Gemma 2's soft-caps. */
  readonly softcap?: { readonly attn?: number; readonly final?: number };
  /** Gemma 3: local RoPE base, and linear scaling of the global layers. */
  readonly ropeBaseSwa?: number;
  /** A template of fixtures/templates written as `tokenizer.chat_template`. */
  readonly chatTemplate?: string;
  /** Weight type of every 2-D tensor. */
  readonly dtype: 'f32' | 'q8_0';
  readonly seed: number;
  /** The architecture whose vocabulary a twin file keeps (see {@link phi3Twin}). */
  readonly twinOf?: string;
}

/** xorshift32 floats in [-1, 1): the same numbers on every machine. */
class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0 || 1;
  }
  next(): number {
    let x = this.#s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.#s = x;
    return x / 2 ** 31 - 1;
  }
  /** Uniform with standard deviation `std`. */
  fill(n: number, std: number, mean = 0): Float32Array {
    const a = std * Math.sqrt(3);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = mean + a * this.next();
    return out;
  }
}

interface Vocab {
  tokens: string[];
  types: Int32Array;
  scores?: Float32Array;
  merges?: string[];
  pre?: string;
  model: 'llama' | 'gpt2';
  bos: number;
  eos: number;
  addBos?: boolean;
}

const SPECIALS: Record<string, string[]> = {
  llama: [],
  gemma2: ['<start_of_turn>', '<end_of_turn>'],
  gemma3: ['<start_of_turn>', '<end_of_turn>'],
  phi3: ['<|endoftext|>', '<|system|>', '<|user|>', '<|assistant|>', '<|end|>'],
  'llama-bpe': ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
  qwen2: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
};

/** Keeps the first `keep` tokens of a byte-level BPE vocabulary and the merges that stay within them. */
function truncatedBpe(name: 'llama-bpe' | 'qwen2', keep: number): Vocab {
  const f = parseGguf(readFileSync(fixturePath('vocab', `ggml-vocab-${name}.gguf`)));
  const all = f.metadata.get('tokenizer.ggml.tokens') as string[];
  const tokens = all.slice(0, keep);
  const kept = new Set(tokens);
  const merges = (f.metadata.get('tokenizer.ggml.merges') as string[]).filter((m) => {
    const [a, b] = m.split(' ');
    return kept.has(a) && kept.has(b) && kept.has(a + b);
  });
  const specials = SPECIALS[name];
  const types = new Int32Array(keep + specials.length).fill(1);
  types.fill(3, keep);
  const id = (t: string) => keep + specials.indexOf(t);
  return {
    tokens: [...tokens, ...specials],
    types,
    merges,
    pre: name,
    model: 'gpt2',
    bos: name === 'qwen2' ? id('<|endoftext|>') : id('<|begin_of_text|>'),
    eos: name === 'qwen2' ? id('<|im_end|>') : id('<|end_of_text|>'),
    addBos: name !== 'qwen2',
  };
}

/** stories260K's 512-token SentencePiece vocabulary, plus the family's chat tokens as control tokens. */
function spmVocab(arch: string): Vocab {
  const f = parseGguf(readFileSync(fixturePath('models', 'stories260K.gguf')));
  const specials = SPECIALS[arch] ?? [];
  const base = f.metadata.get('tokenizer.ggml.tokens') as string[];
  const types = new Int32Array(base.length + specials.length);
  types.set(f.metadata.get('tokenizer.ggml.token_type') as Int32Array);
  types.fill(3, base.length);
  const scores = new Float32Array(base.length + specials.length);
  scores.set(f.metadata.get('tokenizer.ggml.scores') as Float32Array);
  return { tokens: [...base, ...specials], types, scores, model: 'llama', bos: 1, eos: 2 };
}

/** Llama 3.1's rope_freqs (convert_hf_to_gguf's formula with factor 8, low 1, high 4, original context 8192). */
function llama3RopeFreqs(ropeDims: number, base: number): Float32Array {
  const [factor, low, high, orig] = [8, 1, 4, 8192];
  const lowWavelen = orig / low;
  const highWavelen = orig / high;
  const out = new Float32Array(ropeDims / 2);
  for (let i = 0; i < ropeDims / 2; i++) {
    const freq = 1 / base ** ((2 * i) / ropeDims);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = factor;
    else {
      const smooth = (orig / wavelen - low) / (high - low);
      out[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}

/** One tensor of a synthetic model: name, shape (outermost first) and f32 values. */
export type SyntheticTensor = [name: string, shape: number[], values: Float32Array];

/**
 * The tensors of a synthetic model in the file's order, as f32 values (2-D ones are quantized when written).
 *
 * @example
 * ```ts
 * const [name, shape] = syntheticTensors(syntheticSpecs.llama)[0]; // 'token_embd.weight', [512, 64]
 * ```
 */
export function syntheticTensors(spec: SyntheticSpec): SyntheticTensor[] {
  const { arch, dim, layers, heads, kvHeads, hidden } = spec;
  const headDim = spec.headDim ?? dim / heads;
  const ropeDims = spec.ropeDims ?? headDim;
  const qDim = heads * headDim;
  const kvDim = kvHeads * headDim;
  const nVocab = vocabOf(spec).tokens.length;
  const rng = new Rng(spec.seed);
  const tensors: SyntheticTensor[] = [];
  const mat = (name: string, rows: number, cols: number, std = 1 / Math.sqrt(cols)) =>
    tensors.push([name, [rows, cols], rng.fill(rows * cols, std)]);
  const vec = (name: string, n: number, std: number, mean = 0) => tensors.push([name, [n], rng.fill(n, std, mean)]);

  // Embedding and output rows with a spread that makes the next token clear (logits of a few units, as a trained
  // model's are); matrices with unit-variance outputs; norm weights near 1.
  mat('token_embd.weight', nVocab, dim, 0.5);
  if (spec.ropeFreqs)
    tensors.push(['rope_freqs.weight', [ropeDims / 2], llama3RopeFreqs(ropeDims, spec.ropeBase ?? 10000)]);
  if (spec.longRope) {
    const n = ropeDims / 2;
    tensors.push(['rope_factors_long.weight', [n], Float32Array.from({ length: n }, (_, i) => 1 + (i * 7) / n)]);
    tensors.push(['rope_factors_short.weight', [n], Float32Array.from({ length: n }, (_, i) => 1 + (i * 0.5) / n)]);
  }
  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`;
    vec(`${p}attn_norm.weight`, dim, 0.1, 1);
    if (spec.fusedQkv) mat(`${p}attn_qkv.weight`, qDim + 2 * kvDim, dim);
    else {
      mat(`${p}attn_q.weight`, qDim, dim);
      mat(`${p}attn_k.weight`, kvDim, dim);
      mat(`${p}attn_v.weight`, kvDim, dim);
    }
    if (spec.qkvBias) {
      vec(`${p}attn_q.bias`, qDim, 0.3);
      vec(`${p}attn_k.bias`, kvDim, 0.3);
      vec(`${p}attn_v.bias`, kvDim, 0.3);
    }
    if (arch === 'qwen3' || arch === 'gemma3') {
      vec(`${p}attn_q_norm.weight`, headDim, 0.1, 1);
      vec(`${p}attn_k_norm.weight`, headDim, 0.1, 1);
    }
    mat(`${p}attn_output.weight`, dim, qDim);
    if (arch.startsWith('gemma')) vec(`${p}post_attention_norm.weight`, dim, 0.1, 1);
    vec(`${p}ffn_norm.weight`, dim, 0.1, 1);
    if (arch === 'phi3') mat(`${p}ffn_up.weight`, 2 * hidden, dim);
    else {
      mat(`${p}ffn_gate.weight`, hidden, dim);
      mat(`${p}ffn_up.weight`, hidden, dim);
    }
    mat(`${p}ffn_down.weight`, dim, hidden);
    if (arch.startsWith('gemma')) vec(`${p}post_ffw_norm.weight`, dim, 0.1, 1);
  }
  vec('output_norm.weight', dim, 0.1, 1);
  if (!spec.tied) mat('output.weight', nVocab, dim, 0.5);
  return tensors;
}

function vocabOf(spec: SyntheticSpec): Vocab {
  return spec.vocab === 'spm' ? spmVocab(spec.twinOf ?? spec.arch) : truncatedBpe(spec.vocab, 768);
}

/**
 * The bytes of a synthetic model file.
 *
 * @example
 * ```ts
 * const bytes = await syntheticModel(syntheticSpecs.qwen2);
 * ```
 */
export async function syntheticModel(
  spec: SyntheticSpec,
  tensors: readonly SyntheticTensor[] = syntheticTensors(spec),
): Promise<Uint8Array> {
  const { arch, dim, layers, heads, kvHeads, hidden, dtype } = spec;
  const headDim = spec.headDim ?? dim / heads;
  const ropeDims = spec.ropeDims ?? headDim;
  const vocab = vocabOf(spec);
  const nVocab = vocab.tokens.length;

  const sink = blobSink();
  const w = new GgufWriter(sink);
  const m = w.metadata;
  const k = (key: string) => `${arch}.${key}`;
  m.setString('general.architecture', arch);
  m.setString('general.name', `nibble-synthetic-${spec.name}`);
  m.setU32('general.file_type', dtype === 'f32' ? 0 : 7);
  if (dtype !== 'f32') m.setU32('general.quantization_version', 2);
  m.setU32(k('context_length'), spec.contextLength);
  m.setU32(k('embedding_length'), dim);
  m.setU32(k('block_count'), layers);
  m.setU32(k('feed_forward_length'), hidden);
  m.setU32(k('attention.head_count'), heads);
  m.setU32(k('attention.head_count_kv'), kvHeads);
  m.setF32(k('attention.layer_norm_rms_epsilon'), 1e-6);
  if (spec.headDim !== undefined) {
    m.setU32(k('attention.key_length'), headDim);
    m.setU32(k('attention.value_length'), headDim);
  }
  if (spec.ropeBase !== undefined) m.setF32(k('rope.freq_base'), spec.ropeBase);
  if (arch === 'llama' || arch === 'phi3' || spec.ropeDims !== undefined) m.setU32(k('rope.dimension_count'), ropeDims);
  if (spec.ropeScaling) {
    m.setString(k('rope.scaling.type'), spec.ropeScaling.type);
    m.setF32(k('rope.scaling.factor'), spec.ropeScaling.factor);
    m.setU32(k('rope.scaling.original_context_length'), spec.ropeScaling.origCtx);
  }
  if (spec.longRope) {
    // convert_hf_to_gguf (Phi3MiniModel): no scaling type, the trained context and LongRoPE's attention factor.
    const scale = spec.contextLength / spec.longRope.origCtx;
    m.setU32(k('rope.scaling.original_context_length'), spec.longRope.origCtx);
    if (scale > 1) {
      m.setF32(k('rope.scaling.attn_factor'), Math.sqrt(1 + Math.log(scale) / Math.log(spec.longRope.origCtx)));
    }
  }
  if (spec.slidingWindow) {
    m.setU32(k('attention.sliding_window'), spec.slidingWindow.window);
    if (spec.slidingWindow.pattern !== undefined) {
      m.setU32(k('attention.sliding_window_pattern'), spec.slidingWindow.pattern);
    }
  } else if (arch === 'phi3') {
    m.setU32(k('attention.sliding_window'), 0); // the converter writes 0 for models without one
  }
  if (spec.ropeBaseSwa !== undefined) m.setF32(k('rope.freq_base_swa'), spec.ropeBaseSwa);
  if (spec.softcap?.attn !== undefined) m.setF32(k('attn_logit_softcapping'), spec.softcap.attn);
  if (spec.softcap?.final !== undefined) m.setF32(k('final_logit_softcapping'), spec.softcap.final);
  if (arch === 'llama') m.setU32(k('vocab_size'), nVocab);

  m.setString('tokenizer.ggml.model', vocab.model);
  if (vocab.pre !== undefined) m.setString('tokenizer.ggml.pre', vocab.pre);
  m.set('tokenizer.ggml.tokens', vocab.tokens);
  if (vocab.scores) m.set('tokenizer.ggml.scores', vocab.scores, { array: 'f32' });
  m.set('tokenizer.ggml.token_type', vocab.types, { array: 'i32' });
  if (vocab.merges) m.set('tokenizer.ggml.merges', vocab.merges);
  m.setU32('tokenizer.ggml.bos_token_id', vocab.bos);
  m.setU32('tokenizer.ggml.eos_token_id', vocab.eos);
  if (vocab.model === 'llama') m.setU32('tokenizer.ggml.unknown_token_id', 0);
  if (vocab.addBos !== undefined) m.setBool('tokenizer.ggml.add_bos_token', vocab.addBos);
  if (arch === 'gemma2' || arch === 'gemma3') m.setBool('tokenizer.ggml.add_space_prefix', false);
  if (spec.chatTemplate) {
    m.setString(
      'tokenizer.chat_template',
      readFileSync(fixturePath('templates', `${spec.chatTemplate}.jinja`), 'utf8'),
    );
  }

  // 2-D tensors take the file's dtype, 1-D ones stay f32 as in llama.cpp's files.
  const stored = tensors.map(([name, shape, values]) => {
    const quantize = dtype === 'q8_0' && shape.length === 2 && shape[1] % 32 === 0;
    return {
      name,
      shape,
      dtype: quantize ? ('q8_0' as const) : ('f32' as const),
      bytes: quantize ? q8_0.quantize(values) : values,
    };
  });
  for (const t of stored) w.addTensor({ name: t.name, dtype: t.dtype, shape: t.shape });
  for (const t of stored) await w.writeTensor(t.name, t.bytes);
  await w.finish();
  return new Uint8Array(await sink.blob().arrayBuffer());
}

/**
 * A `phi3` file that computes exactly what a `llama` spec computes, for llama.cpp to score llama files it refuses
 * (RoPE over fewer dimensions than a head: "invalid n_rot"). The q and k rows of every head are permuted from llama's
 * RoPE pairs (2i, 2i+1) to NeoX's (i, i + nRot/2), which leaves every q·k unchanged; gate and up become the fused
 * `[gate | up]` ffn_up; rope_freqs become the short LongRoPE factors (the context stays within the trained one).
 *
 * @example
 * ```ts
 * const twin = await phi3Twin(syntheticSpecs.llamaPartial); // bytes llama.cpp loads
 * ```
 */
export async function phi3Twin(spec: SyntheticSpec): Promise<Uint8Array> {
  if (spec.arch !== 'llama' || spec.qkvBias || spec.ropeScaling || spec.fusedQkv) {
    throw new Error(`phi3Twin: ${spec.name} is not a plain llama spec`);
  }
  const headDim = spec.headDim ?? spec.dim / spec.heads;
  const nRot = spec.ropeDims ?? headDim;
  // NeoX position of llama's head dimension d.
  const perm = (d: number) => (d >= nRot ? d : d % 2 === 0 ? d / 2 : (d - 1) / 2 + nRot / 2);
  const permuteHeads = (values: Float32Array, cols: number) => {
    const out = new Float32Array(values.length);
    const rows = values.length / cols;
    for (let r = 0; r < rows; r++) {
      const head = Math.floor(r / headDim);
      const to = head * headDim + perm(r % headDim);
      out.set(values.subarray(r * cols, (r + 1) * cols), to * cols);
    }
    return out;
  };
  const byName = new Map(syntheticTensors(spec).map((t) => [t[0], t]));
  const out: SyntheticTensor[] = [];
  for (const [name, shape, values] of byName.values()) {
    if (name === 'rope_freqs.weight') {
      out.push(['rope_factors_long.weight', shape, values], ['rope_factors_short.weight', shape, values]);
    } else if (/attn_[qk]\.weight$/.test(name)) out.push([name, shape, permuteHeads(values, shape[1])]);
    else if (name.endsWith('ffn_gate.weight')) continue;
    else if (name.endsWith('ffn_up.weight')) {
      const gate = byName.get(name.replace('ffn_up', 'ffn_gate')) as SyntheticTensor;
      const fused = new Float32Array(values.length * 2);
      fused.set(gate[2]);
      fused.set(values, gate[2].length);
      out.push([name, [shape[0] * 2, shape[1]], fused]);
    } else out.push([name, shape, values]);
  }
  const twin: SyntheticSpec = {
    ...spec,
    name: `${spec.name}-twin`, // not 'phi3': llama.cpp gives files named so Phi-3's special-token attributes
    arch: 'phi3',
    twinOf: 'llama',
    ropeFreqs: false,
    longRope: { origCtx: spec.contextLength },
  };
  return syntheticModel(twin, out);
}

const small = { dim: 64, layers: 2, heads: 4, kvHeads: 2, hidden: 128, contextLength: 256, dtype: 'f32' } as const;

/**
 * The synthetic models the parity tests use. Those in {@link committedSynthetic} are also in
 * `fixtures/models/synthetic/` for the CLI and for trying the runner by hand.
 */
export const syntheticSpecs = {
  /** Llama 2 / Mistral / SmolLM layout: separate output, SentencePiece vocabulary. */
  llama: { ...small, name: 'llama', arch: 'llama', vocab: 'spm', seed: 11 },
  /** Tied output. */
  llamaTied: { ...small, name: 'llama-tied', arch: 'llama', vocab: 'spm', tied: true, seed: 12 },
  /** Llama 3.2 shape: Llama 3 BPE vocabulary, rope_freqs, base 500000, tied output, Llama 3.2's chat template. */
  llama3: {
    ...small,
    name: 'llama3',
    arch: 'llama',
    vocab: 'llama-bpe',
    ropeBase: 500000,
    ropeFreqs: true,
    tied: true,
    chatTemplate: 'meta-llama-Llama-3.2-3B-Instruct',
    seed: 13,
  },
  /** Linear RoPE scaling by 4. */
  llamaLinear: {
    ...small,
    name: 'llama-linear',
    arch: 'llama',
    vocab: 'spm',
    ropeScaling: { type: 'linear', factor: 4, origCtx: 64 },
    seed: 14,
  },
  /** YaRN by 4 over a trained context of 32. */
  llamaYarn: {
    ...small,
    name: 'llama-yarn',
    arch: 'llama',
    vocab: 'spm',
    ropeScaling: { type: 'yarn', factor: 4, origCtx: 32 },
    seed: 15,
  },
  /** RoPE over 8 of 16 head dimensions, with rope_freqs (llama.cpp refuses this for `llama`: see the test). */
  llamaPartial: {
    ...small,
    name: 'llama-partial-rope',
    arch: 'llama',
    vocab: 'spm',
    ropeDims: 8,
    ropeFreqs: true,
    seed: 16,
  },
  /** Qwen 2.5 shape: q/k/v biases, tied output, Qwen2 BPE vocabulary and template. */
  qwen2: {
    ...small,
    name: 'qwen2',
    arch: 'qwen2',
    vocab: 'qwen2',
    ropeBase: 1000000,
    qkvBias: true,
    tied: true,
    chatTemplate: 'Qwen-Qwen2.5-7B-Instruct',
    seed: 21,
  },
  /** Qwen 3 shape: heads of 32 while dim / heads is 16, per-head q/k norms. */
  qwen3: {
    ...small,
    name: 'qwen3',
    arch: 'qwen3',
    vocab: 'qwen2',
    headDim: 32,
    ropeBase: 1000000,
    chatTemplate: 'Qwen-Qwen3-0.6B',
    seed: 22,
  },
  /** Gemma 2 shape: heads of 32, window 8 on every other layer, both soft-caps, the output tied as always. */
  gemma2: {
    ...small,
    layers: 4,
    tied: true,
    name: 'gemma2',
    arch: 'gemma2',
    vocab: 'spm',
    headDim: 32,
    slidingWindow: { window: 8 },
    softcap: { attn: 2, final: 10 },
    chatTemplate: 'google-gemma-2-2b-it',
    seed: 31,
  },
  /** Gemma 3 shape: q/k norms, 5 local layers (window 8, base 10000) then a global one (base 1e6, linear by 8). */
  gemma3: {
    ...small,
    layers: 6,
    name: 'gemma3',
    arch: 'gemma3',
    vocab: 'spm',
    headDim: 32,
    ropeBase: 1000000,
    ropeBaseSwa: 10000,
    ropeScaling: { type: 'linear', factor: 8, origCtx: 256 },
    slidingWindow: { window: 8 },
    chatTemplate: 'google-gemma-2-2b-it',
    seed: 32,
  },
  /**
   * Phi-3.5 / Phi-4-mini shape: fused attn_qkv and ffn_up, LongRoPE over 12 of 16 dimensions, trained context 256
   * (llama.cpp pads contexts to 256, so the long factors show from a context of 512), declared context 4096.
   */
  phi3: {
    ...small,
    contextLength: 4096,
    name: 'phi3',
    arch: 'phi3',
    vocab: 'spm',
    ropeDims: 12,
    fusedQkv: true,
    longRope: { origCtx: 256 },
    chatTemplate: 'microsoft-Phi-3.5-mini-instruct',
    seed: 41,
  },
} satisfies Record<string, SyntheticSpec>;

/** The specs written to `fixtures/models/synthetic/NAME.gguf` (F32). */
export const committedSynthetic: readonly SyntheticSpec[] = [
  syntheticSpecs.llama,
  syntheticSpecs.llama3,
  syntheticSpecs.qwen2,
  syntheticSpecs.qwen3,
  syntheticSpecs.gemma2,
  syntheticSpecs.gemma3,
  syntheticSpecs.phi3,
];

/** A spec with Q8_0 weights (and its own file name). */
export function asQ8_0(spec: SyntheticSpec): SyntheticSpec {
  return { ...spec, name: `${spec.name}-Q8_0`, dtype: 'q8_0' };
}

if (process.argv[1]?.endsWith('synthetic.ts')) {
  for (const spec of committedSynthetic) {
    const path = join(fixturePath('models', 'synthetic'), `${spec.name}.gguf`);
    writeFileSync(`${path}.tmp`, await syntheticModel(spec));
    renameSync(`${path}.tmp`, path);
    console.log(path);
  }
}
