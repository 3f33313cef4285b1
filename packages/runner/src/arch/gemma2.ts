/**
 * `gemma2`: Gemma 2 (llama.cpp `src/models/gemma2.cpp`). The embedding is scaled by sqrt(dim); every block has a norm
 * before and after both attention and the feed-forward network; the feed-forward is GeGLU (tanh GELU); attention
 * scores are soft-capped and every other layer (period `attention.sliding_window_pattern`, default 2) only sees the
 * last `attention.sliding_window` positions; the logits are soft-capped too. The output is always the token
 * embedding (llama.cpp never reads an `output.weight` for gemma2).
 *
 *   x = token_embd[tokens] · sqrt(dim)                                  [n, dim]
 *   per layer: h = rmsnorm(x) · attn_norm
 *              q, k = rope_neox(wq h), rope_neox(wk h); v = wv h; cache[pos..] = k, v
 *              x = rmsnorm(wo attention(q, cache; scale, softcap, window)) · attn_post_norm + x
 *              h = rmsnorm(x) · ffn_norm
 *              x = rmsnorm(w_down (gelu(w_gate h) · w_up h)) · ffn_post_norm + x
 *   logits = softcap(token_embd (rmsnorm(x) · output_norm))             [n, vocab]
 */
import { NibbleError } from '@nibble/tensor';
import { baseHparams, MetaReader, type ModelHparams } from '../hparams.js';
import { type Architecture, type Forward, qkvSpecs, type TensorSpec } from './common.js';

/**
 * The gemma2 architecture.
 *
 * @example
 * ```ts
 * gemma2.hparams(file.metadata).attnSoftcap; // 50
 * ```
 */
export const gemma2: Architecture = {
  name: 'gemma2',
  ropeMode: 'neox',

  hparams(meta, options) {
    const r = new MetaReader(meta, 'gemma2');
    const hp = baseHparams(r, options);
    return {
      ...hp,
      slidingWindow: r.posInt('attention.sliding_window', 4096),
      swaPeriod: swaPeriod(r, 2),
      ropeBaseSwa: r.num('rope.freq_base_swa', hp.ropeBase),
      attnSoftcap: r.num('attn_logit_softcapping', 50),
      finalSoftcap: r.num('final_logit_softcapping', 30),
      attnScale: gemmaQueryScale(hp, 46),
    };
  },

  tensors(hp, has) {
    const { dim, hiddenDim, vocabSize } = hp;
    const specs: TensorSpec[] = [
      { name: 'token_embd.weight', shape: [vocabSize, dim], use: 'get_rows', alsoMatmul: true },
    ];
    for (let l = 0; l < hp.nLayers; l++) {
      const p = `blk.${l}.`;
      specs.push(
        { name: `${p}attn_norm.weight`, shape: [dim], use: 'f32' },
        ...qkvSpecs(l, hp, has),
        { name: `${p}attn_output.weight`, shape: [dim, hp.nHeads * hp.headDim], use: 'matmul' },
        { name: `${p}post_attention_norm.weight`, shape: [dim], use: 'f32' },
        { name: `${p}ffn_norm.weight`, shape: [dim], use: 'f32' },
        { name: `${p}ffn_gate.weight`, shape: [hiddenDim, dim], use: 'matmul' },
        { name: `${p}ffn_up.weight`, shape: [hiddenDim, dim], use: 'matmul' },
        { name: `${p}ffn_down.weight`, shape: [dim, hiddenDim], use: 'matmul' },
        { name: `${p}post_ffw_norm.weight`, shape: [dim], use: 'f32' },
      );
    }
    specs.push({ name: 'output_norm.weight', shape: [dim], use: 'f32' });
    return specs;
  },

  forward(f: Forward) {
    const { hp, b } = f;
    let x = b.scale(f.embed(), Math.fround(Math.sqrt(hp.dim)), { name: 'embd_scaled' }); // [n, dim]
    for (let l = 0; l < hp.nLayers; l++) {
      const p = `blk.${l}.`;
      const h = f.norm(x, `${p}attn_norm.weight`, `l${l}.attn_in`); // [n, dim]
      const { q, k, v } = f.qkv(l, h);
      f.store(l, f.rope(k, l, hp.nKvHeads, `l${l}.k_rope`), v);
      if (f.stopsAfterCache(l)) break;
      const att = f.attend(l, f.rope(q, l, hp.nHeads, `l${l}.q_rope`)); // [n, qDim]: scale, softcap, window
      const o = f.mm(`${p}attn_output.weight`, att, `l${l}.o`); // [n, dim]
      x = b.add(f.norm(o, `${p}post_attention_norm.weight`, `l${l}.attn_post`), x, { name: `l${l}.attn_res` });
      const m = f.norm(x, `${p}ffn_norm.weight`, `l${l}.ffn_in`);
      const gate = f.mm(`${p}ffn_gate.weight`, m, `l${l}.gate`); // [n, hidden]
      const g = b.glu(gate, f.mm(`${p}ffn_up.weight`, m, `l${l}.up`), { activation: 'gelu', name: `l${l}.glu` });
      const d = f.mm(`${p}ffn_down.weight`, g, `l${l}.down`); // [n, dim]
      x = b.add(f.norm(d, `${p}post_ffw_norm.weight`, `l${l}.ffn_post`), x, { name: `l${l}.ffn_res` });
    }
    if (f.options.logits) f.logits(x); // [n, vocab], soft-capped
  },
};

/**
 * `attention.sliding_window_pattern` (a period), checked: a non-negative integer.
 *
 * @example
 * ```ts
 * swaPeriod(new MetaReader(meta, 'gemma3'), 6); // 6 unless the file says otherwise
 * ```
 */
export function swaPeriod(r: MetaReader, dflt: number): number {
  const p = r.num('attention.sliding_window_pattern', dflt);
  if (!Number.isSafeInteger(p) || p < 0) {
    throw new NibbleError('E_FORMAT', `${r.arch}.attention.sliding_window_pattern ${p} is not a non-negative integer`);
  }
  return p;
}

/**
 * Gemma's query scale (gemma_pytorch's `query_pre_attn_scalar`, as llama.cpp hard-codes it): 1/sqrt(headDim), except
 * for the 27B models (recognised by their layer count), which use 1/sqrt(dim / heads).
 *
 * @example
 * ```ts
 * gemmaQueryScale(hp, 46); // gemma2: 46 layers is the 27B
 * ```
 */
export function gemmaQueryScale(hp: ModelHparams, layers27b: number): number {
  const width = hp.nLayers === layers27b ? Math.fround(hp.dim / hp.nHeads) : hp.headDim;
  return Math.fround(1 / Math.fround(Math.sqrt(width)));
}
