/**
 * `qwen3`: Qwen 3 dense models (llama.cpp `src/models/qwen3.cpp`). Qwen 2's block without biases, with an RMS norm
 * of every query and key head (weights `[headDim]`) before RoPE, and heads as wide as `attention.key_length` (128 in
 * Qwen3-0.6B, where dim / heads is 64):
 *
 *   x = token_embd[tokens]                                              [n, dim]
 *   per layer: h = rmsnorm(x) · attn_norm
 *              q = rope_neox(headnorm(wq h) · q_norm)                   [n, nHeads * headDim]
 *              k = rope_neox(headnorm(wk h) · k_norm); v = wv h; cache[pos..] = k, v
 *              x = wo attention(q, cache) + x
 *              h = rmsnorm(x) · ffn_norm
 *              x = w_down (silu(w_gate h) · w_up h) + x
 *   logits = output (rmsnorm(x) · output_norm)                          [n, vocab]
 */
import { baseHparams, MetaReader } from '../hparams.js';
import { type Architecture, type Forward, qkvSpecs, type TensorSpec } from './common.js';

/**
 * The qwen3 architecture.
 *
 * @example
 * ```ts
 * qwen3.hparams(file.metadata).headDim; // attention.key_length
 * ```
 */
export const qwen3: Architecture = {
  name: 'qwen3',
  ropeMode: 'neox',

  hparams(meta, options) {
    return baseHparams(new MetaReader(meta, 'qwen3'), options);
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
        { name: `${p}ffn_norm.weight`, shape: [dim], use: 'f32' },
        { name: `${p}ffn_gate.weight`, shape: [hiddenDim, dim], use: 'matmul' },
        { name: `${p}ffn_up.weight`, shape: [hiddenDim, dim], use: 'matmul' },
        { name: `${p}ffn_down.weight`, shape: [dim, hiddenDim], use: 'matmul' },
      );
    }
    specs.push({ name: 'output_norm.weight', shape: [dim], use: 'f32' });
    if (!tied) specs.push({ name: 'output.weight', shape: [vocabSize, dim], use: 'matmul' });
    return specs;
  },

  forward(f: Forward) {
    const { hp } = f;
    let x = f.embed(); // [n, dim]
    for (let l = 0; l < hp.nLayers; l++) {
      const p = `blk.${l}.`;
      const h = f.norm(x, `${p}attn_norm.weight`, `l${l}.attn_in`); // [n, dim]
      const { q, k, v } = f.qkv(l, h);
      const kn = f.headNorm(k, hp.nKvHeads, `${p}attn_k_norm.weight`, `l${l}.k_norm`); // [n, kvDim]
      f.store(l, f.rope(kn, l, hp.nKvHeads, `l${l}.k_rope`), v);
      if (f.stopsAfterCache(l)) break;
      const qn = f.headNorm(q, hp.nHeads, `${p}attn_q_norm.weight`, `l${l}.q_norm`); // [n, qDim]
      const att = f.attend(l, f.rope(qn, l, hp.nHeads, `l${l}.q_rope`)); // [n, qDim]
      x = f.mm(`${p}attn_output.weight`, att, `l${l}.o`, { residual: x }); // [n, dim]
      const m = f.norm(x, `${p}ffn_norm.weight`, `l${l}.ffn_in`);
      const g = f.b.glu(f.mm(`${p}ffn_gate.weight`, m, `l${l}.gate`), f.mm(`${p}ffn_up.weight`, m, `l${l}.up`), {
        name: `l${l}.glu`,
      }); // [n, hidden]
      x = f.mm(`${p}ffn_down.weight`, g, `l${l}.down`, { residual: x }); // [n, dim]
    }
    if (f.options.logits) f.logits(x); // [n, vocab]
  },
};
