/**
 * `phi3`: Phi-3, Phi-3.5 and Phi-4-mini (llama.cpp `src/models/phi3.cpp`). Llama's block with one fused `attn_qkv`
 * (cut into q, k, v at load: byte ranges of the same weight), one fused `ffn_up` whose rows hold `[gate | up]`,
 * NeoX RoPE over `rope.dimension_count` dimensions of each head (Phi-4-mini rotates 3/4 of them), and LongRoPE:
 * per-pair frequency divisors, the long set when the context exceeds `rope.scaling.original_context_length`, the
 * short set otherwise, with cos and sin scaled by `rope.scaling.attn_factor`. llama.cpp ignores Phi's sliding window,
 * and so does this graph.
 *
 *   x = token_embd[tokens]                                              [n, dim]
 *   per layer: h = rmsnorm(x) · attn_norm
 *              q, k, v = w_qkv h (cut);  q, k = longrope(q), longrope(k); cache[pos..] = k, v
 *              x = wo attention(q, cache) + x
 *              h = rmsnorm(x) · ffn_norm
 *              x = w_down swiglu(w_up h) + x                            (glu over the [gate | up] halves)
 *   logits = output (rmsnorm(x) · output_norm) (+ output.bias)          [n, vocab]
 */
import { baseHparams, MetaReader } from '../hparams.js';
import { type Architecture, type Forward, qkvSpecs, type TensorSpec } from './common.js';

/**
 * The phi3 architecture.
 *
 * @example
 * ```ts
 * phi3.hparams(file.metadata).ropeOrigCtx; // 4096 for Phi-3-mini-128k
 * ```
 */
export const phi3: Architecture = {
  name: 'phi3',
  ropeMode: 'neox',

  hparams(meta, options) {
    return baseHparams(new MetaReader(meta, 'phi3'), options);
  },

  tensors(hp, has) {
    const { dim, hiddenDim, vocabSize } = hp;
    const tied = !has('output.weight');
    const factors = [hp.ropeDims / 2];
    const specs: TensorSpec[] = [
      { name: 'token_embd.weight', shape: [vocabSize, dim], use: 'get_rows', alsoMatmul: tied },
      { name: 'rope_factors_long.weight', shape: factors, use: 'f32', optional: true },
      { name: 'rope_factors_short.weight', shape: factors, use: 'f32', optional: true },
    ];
    for (let l = 0; l < hp.nLayers; l++) {
      const p = `blk.${l}.`;
      specs.push(
        { name: `${p}attn_norm.weight`, shape: [dim], use: 'f32' },
        ...qkvSpecs(l, hp, has),
        { name: `${p}attn_output.weight`, shape: [dim, hp.nHeads * hp.headDim], use: 'matmul' },
        { name: `${p}ffn_norm.weight`, shape: [dim], use: 'f32' },
        { name: `${p}ffn_up.weight`, shape: [2 * hiddenDim, dim], use: 'matmul' },
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
      const { q, k, v } = f.qkv(l, h); // rows of the one attn_qkv weight
      f.store(l, f.rope(k, l, hp.nKvHeads, `l${l}.k_rope`), v);
      if (f.stopsAfterCache(l)) break;
      const att = f.attend(l, f.rope(q, l, hp.nHeads, `l${l}.q_rope`)); // [n, qDim]
      x = f.mm(`${p}attn_output.weight`, att, `l${l}.o`, { residual: x }); // [n, dim]
      const m = f.norm(x, `${p}ffn_norm.weight`, `l${l}.ffn_in`);
      const gu = f.mm(`${p}ffn_up.weight`, m, `l${l}.gate_up`); // [n, 2 * hidden]: [gate | up]
      const g = f.b.glu(gu, undefined, { name: `l${l}.glu` }); // [n, hidden]
      x = f.mm(`${p}ffn_down.weight`, g, `l${l}.down`, { residual: x }); // [n, dim]
    }
    if (f.options.logits) f.logits(x); // [n, vocab]
  },
};
