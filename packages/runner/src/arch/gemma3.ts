/**
 * `gemma3`: Gemma 3 text models (llama.cpp `src/models/gemma3.cpp`). Gemma 2's block with a per-head RMS norm of q and
 * k before RoPE and no attention soft-cap; local layers (5 of every 6 by default) slide over
 * `attention.sliding_window` positions with their own RoPE base (`rope.freq_base_swa`, default 10000, never scaled)
 * while global layers use `rope.freq_base` and the file's scaling; logits are soft-capped only when the file says so.
 *
 *   x = token_embd[tokens] · sqrt(dim)                                  [n, dim]
 *   per layer: h = rmsnorm(x) · attn_norm
 *              q = rope_neox(headnorm(wq h) · q_norm); k = rope_neox(headnorm(wk h) · k_norm); v = wv h
 *              x = rmsnorm(wo attention(q, cache; scale, window)) · attn_post_norm + x
 *              h = rmsnorm(x) · ffn_norm
 *              x = rmsnorm(w_down (gelu(w_gate h) · w_up h)) · ffn_post_norm + x
 *   logits = output (rmsnorm(x) · output_norm)  (soft-capped if final_logit_softcapping)
 */
import { NibbleError } from '@nibble/tensor';
import { baseHparams, MetaReader } from '../hparams.js';
import { type Architecture, type Forward, qkvSpecs, type TensorSpec } from './common.js';
import { gemmaQueryScale, swaPeriod } from './gemma2.js';

/**
 * The gemma3 architecture.
 *
 * @example
 * ```ts
 * gemma3.hparams(file.metadata).swaPeriod; // 6: five local layers, then a global one
 * ```
 */
export const gemma3: Architecture = {
  name: 'gemma3',
  ropeMode: 'neox',

  hparams(meta, options) {
    const r = new MetaReader(meta, 'gemma3');
    const hp = baseHparams(r, options);
    const window = r.has('attention.sliding_window') ? r.num('attention.sliding_window') : 0;
    if (!Number.isSafeInteger(window) || window < 0) {
      throw new NibbleError('E_FORMAT', `gemma3.attention.sliding_window ${window} is not a non-negative integer`);
    }
    const sliding = window > 0;
    return {
      ...hp,
      slidingWindow: window,
      swaPeriod: sliding ? swaPeriod(r, 6) : 1,
      ropeBaseSwa: sliding ? r.num('rope.freq_base_swa', 10000) : hp.ropeBase,
      ropeFreqScaleSwa: sliding ? 1 : hp.ropeFreqScale,
      finalSoftcap: r.num('final_logit_softcapping', 0),
      attnScale: gemmaQueryScale(hp, 62),
    };
  },

  tensors(hp, has) {
    const { dim, hiddenDim, vocabSize, headDim } = hp;
    const tied = !has('output.weight');
    const specs: TensorSpec[] = [
      { name: 'token_embd.weight', shape: [vocabSize, dim], use: 'get_rows', alsoMatmul: tied },
    ];
    for (let l = 0; l < hp.nLayers; l++) {
      const p = `blk.${l}.`;
      specs.push(
        { name: `${p}attn_norm.weight`, shape: [dim], use: 'f32' },
        ...qkvSpecs(l, hp, has),
        { name: `${p}attn_q_norm.weight`, shape: [headDim], use: 'f32' },
        { name: `${p}attn_k_norm.weight`, shape: [headDim], use: 'f32' },
        { name: `${p}attn_output.weight`, shape: [dim, hp.nHeads * headDim], use: 'matmul' },
        { name: `${p}post_attention_norm.weight`, shape: [dim], use: 'f32' },
        { name: `${p}ffn_norm.weight`, shape: [dim], use: 'f32' },
        { name: `${p}ffn_gate.weight`, shape: [hiddenDim, dim], use: 'matmul' },
        { name: `${p}ffn_up.weight`, shape: [hiddenDim, dim], use: 'matmul' },
        { name: `${p}ffn_down.weight`, shape: [dim, hiddenDim], use: 'matmul' },
        { name: `${p}post_ffw_norm.weight`, shape: [dim], use: 'f32' },
      );
    }
    specs.push({ name: 'output_norm.weight', shape: [dim], use: 'f32' });
    if (!tied) specs.push({ name: 'output.weight', shape: [vocabSize, dim], use: 'matmul' });
    return specs;
  },

  forward(f: Forward) {
    const { hp, b } = f;
    let x = b.scale(f.embed(), Math.fround(Math.sqrt(hp.dim)), { name: 'embd_scaled' }); // [n, dim]
    for (let l = 0; l < hp.nLayers; l++) {
      const p = `blk.${l}.`;
      const h = f.norm(x, `${p}attn_norm.weight`, `l${l}.attn_in`); // [n, dim]
      const { q, k, v } = f.qkv(l, h);
      const kn = f.headNorm(k, hp.nKvHeads, `${p}attn_k_norm.weight`, `l${l}.k_norm`); // [n, kvDim]
      f.store(l, f.rope(kn, l, hp.nKvHeads, `l${l}.k_rope`), v);
      if (f.stopsAfterCache(l)) break;
      const qn = f.headNorm(q, hp.nHeads, `${p}attn_q_norm.weight`, `l${l}.q_norm`); // [n, qDim]
      const att = f.attend(l, f.rope(qn, l, hp.nHeads, `l${l}.q_rope`)); // [n, qDim]: scale, window
      const o = f.mm(`${p}attn_output.weight`, att, `l${l}.o`); // [n, dim]
      x = b.add(f.norm(o, `${p}post_attention_norm.weight`, `l${l}.attn_post`), x, { name: `l${l}.attn_res` });
      const m = f.norm(x, `${p}ffn_norm.weight`, `l${l}.ffn_in`);
      const gate = f.mm(`${p}ffn_gate.weight`, m, `l${l}.gate`); // [n, hidden]
      const g = b.glu(gate, f.mm(`${p}ffn_up.weight`, m, `l${l}.up`), { activation: 'gelu', name: `l${l}.glu` });
      const d = f.mm(`${p}ffn_down.weight`, g, `l${l}.down`); // [n, dim]
      x = b.add(f.norm(d, `${p}post_ffw_norm.weight`, `l${l}.ffn_post`), x, { name: `l${l}.ffn_res` });
    }
    if (f.options.logits) f.logits(x); // [n, vocab]
  },
};
