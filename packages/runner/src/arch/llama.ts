/**
 * `llama`: Llama 1-3.x, Mistral, SmolLM, TinyLlama and every file llama.cpp's converter writes as `llama`
 * (llama.cpp `src/models/llama.cpp`). Reads top to bottom like llama2.c's `forward()`:
 *
 *   x = token_embd[tokens]                                              [n, dim]
 *   per layer: h = rmsnorm(x) · attn_norm                               (one fused rms_norm node)
 *              q, k = rope(wq h (+ bq)), rope(wk h (+ bk)); v = wv h (+ bv); cache[pos..] = k, v
 *              x = wo attention(q, cache) (+ bo) + x                    (residual fused into the matmul)
 *              h = rmsnorm(x) · ffn_norm
 *              x = w_down (silu(w_gate h) · w_up h) + x                 (one glu node)
 *   logits = output (rmsnorm(x) · output_norm)                          [n, vocab]
 *
 * RoPE is the "normal" layout (pairs 2i, 2i+1), with Llama 3's per-pair `rope_freqs`, linear or YaRN scaling from the
 * metadata, and LongRoPE factors when the file says `longrope`. Biases, a fused `attn_qkv` and a tied output are
 * taken when present, as llama.cpp does.
 */
import { baseHparams, MetaReader, type ModelHparams } from '../hparams.js';
import { type Architecture, type Forward, qkvSpecs, type TensorSpec } from './common.js';

/**
 * The llama architecture.
 *
 * @example
 * ```ts
 * const hp = llama.hparams(file.metadata); // hp.ropeScaling: 'none' | 'linear' | 'yarn' | 'longrope'
 * ```
 */
export const llama: Architecture = {
  name: 'llama',
  ropeMode: 'normal',

  hparams(meta, options) {
    return baseHparams(new MetaReader(meta, 'llama'), options);
  },

  tensors(hp, has) {
    const { dim, hiddenDim, vocabSize, nLayers } = hp;
    const qDim = hp.nHeads * hp.headDim;
    const tied = !has('output.weight');
    const specs: TensorSpec[] = [
      { name: 'token_embd.weight', shape: [vocabSize, dim], use: 'get_rows', alsoMatmul: tied },
    ];
    specs.push(...ropeFactorSpecs(hp));
    for (let l = 0; l < nLayers; l++) {
      const p = `blk.${l}.`;
      specs.push(
        { name: `${p}attn_norm.weight`, shape: [dim], use: 'f32' },
        ...qkvSpecs(l, hp, has),
        { name: `${p}attn_output.weight`, shape: [dim, qDim], use: 'matmul' },
        { name: `${p}attn_output.bias`, shape: [dim], use: 'f32', optional: true },
        { name: `${p}ffn_norm.weight`, shape: [dim], use: 'f32' },
        { name: `${p}ffn_gate.weight`, shape: [hiddenDim, dim], use: 'matmul' },
        { name: `${p}ffn_gate.bias`, shape: [hiddenDim], use: 'f32', optional: true },
        { name: `${p}ffn_up.weight`, shape: [hiddenDim, dim], use: 'matmul' },
        { name: `${p}ffn_up.bias`, shape: [hiddenDim], use: 'f32', optional: true },
        { name: `${p}ffn_down.weight`, shape: [dim, hiddenDim], use: 'matmul' },
        { name: `${p}ffn_down.bias`, shape: [dim], use: 'f32', optional: true },
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
      const { q, k, v } = f.qkv(l, h); // [n, qDim], [n, kvDim], [n, kvDim]
      f.store(l, f.rope(k, l, hp.nKvHeads, `l${l}.k_rope`), v);
      if (f.stopsAfterCache(l)) break;
      const att = f.attend(l, f.rope(q, l, hp.nHeads, `l${l}.q_rope`)); // [n, qDim]
      x = f.mm(`${p}attn_output.weight`, att, `l${l}.o`, { bias: `${p}attn_output.bias`, residual: x }); // [n, dim]
      const m = f.norm(x, `${p}ffn_norm.weight`, `l${l}.ffn_in`);
      const gate = f.mm(`${p}ffn_gate.weight`, m, `l${l}.gate`, { bias: `${p}ffn_gate.bias` }); // [n, hidden]
      const up = f.mm(`${p}ffn_up.weight`, m, `l${l}.up`, { bias: `${p}ffn_up.bias` }); // [n, hidden]
      const g = f.b.glu(gate, up, { name: `l${l}.glu` }); // silu(gate) · up
      x = f.mm(`${p}ffn_down.weight`, g, `l${l}.down`, { bias: `${p}ffn_down.bias`, residual: x }); // [n, dim]
    }
    if (f.options.logits) f.logits(x); // [n, vocab]
  },
};

/**
 * The RoPE factor tensors llama.cpp reads for llama-style files: `rope_freqs` (Llama 3), or LongRoPE's long and short
 * factors when the scaling type is `longrope`; all optional, all `[ropeDims / 2]`.
 *
 * @example
 * ```ts
 * specs.push(...ropeFactorSpecs(hp));
 * ```
 */
export function ropeFactorSpecs(hp: ModelHparams): TensorSpec[] {
  const shape = [hp.ropeDims / 2];
  if (hp.ropeScaling === 'longrope') {
    return [
      { name: 'rope_factors_long.weight', shape, use: 'f32', optional: true },
      { name: 'rope_factors_short.weight', shape, use: 'f32', optional: true },
    ];
  }
  return [{ name: 'rope_freqs.weight', shape, use: 'f32', optional: true }];
}
