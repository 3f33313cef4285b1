/**
 * `qwen2`: Qwen 1.5 / 2 / 2.5 (llama.cpp `src/models/qwen2.cpp`). Llama's block with biases on q, k and v (fused into
 * the matmuls) and RoPE in the NeoX layout (pairs i, i + nRot/2):
 *
 *   x = token_embd[tokens]                                              [n, dim]
 *   per layer: h = rmsnorm(x) · attn_norm
 *              q, k = rope_neox(wq h + bq), rope_neox(wk h + bk); v = wv h + bv; cache[pos..] = k, v
 *              x = wo attention(q, cache) + x
 *              h = rmsnorm(x) · ffn_norm
 *              x = w_down (silu(w_gate h) · w_up h) + x
 *   logits = output (rmsnorm(x) · output_norm) (+ output.bias)          [n, vocab]
 */
import { baseHparams, MetaReader } from '../hparams.js';
import { type Architecture, type Forward, qkvSpecs, type TensorSpec } from './common.js';

/**
 * The qwen2 architecture.
 *
 * @example
 * ```ts
 * qwen2.hparams(file.metadata).nKvHeads; // 2 for Qwen2.5-0.5B
 * ```
 */
export const qwen2: Architecture = {
  name: 'qwen2',
  ropeMode: 'neox',

  hparams(meta, options) {
    return baseHparams(new MetaReader(meta, 'qwen2'), options);
  },

  tensors(hp, has) {
    const { dim, hiddenDim, vocabSize } = hp;
    const tied = !has('output.weight');
    const specs: TensorSpec[] = [
      { name: 'token_embd.weight', shape: [vocabSize, dim], use: 'get_rows', alsoMatmul: tied },
    ];
    for (let l = 0; l < hp.nLayers; l++) {
      const p = `blk.${l}.`;
      specs.push(
        { name: `${p}attn_norm.weight`, shape: [dim], use: 'f32' },
        ...qkvSpecs(l, hp, has),
        { name: `${p}attn_output.weight`, shape: [dim, hp.nHeads * hp.headDim], use: 'matmul' },
        { name: `${p}ffn_norm.weight`, shape: [dim], use: 'f32' },
        { name: `${p}ffn_gate.weight`, shape: [hiddenDim, dim], use: 'matmul' },
        { name: `${p}ffn_up.weight`, shape: [hiddenDim, dim], use: 'matmul' },
        { name: `${p}ffn_down.weight`, shape: [dim, hiddenDim], use: 'matmul' },
      );
    }
    specs.push({ name: 'output_norm.weight', shape: [dim], use: 'f32' });
    if (!tied) {
      specs.push(
        { name: 'output.weight', shape: [vocabSize, dim], use: 'matmul' },
        { name: 'output.bias', shape: [vocabSize], use: 'f32', optional: true },
      );
    }
    return specs;
  },

  forward(f: Forward) {
    const { hp } = f;
    let x = f.embed(); // [n, dim]
    for (let l = 0; l < hp.nLayers; l++) {
      const p = `blk.${l}.`;
      const h = f.norm(x, `${p}attn_norm.weight`, `l${l}.attn_in`); // [n, dim]
      const { q, k, v } = f.qkv(l, h); // + bq, bk, bv
      f.store(l, f.rope(k, l, hp.nKvHeads, `l${l}.k_rope`), v);
      if (f.stopsAfterCache(l)) break;
      const att = f.attend(l, f.rope(q, l, hp.nHeads, `l${l}.q_rope`)); // [n, qDim]
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
