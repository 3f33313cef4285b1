/**
 * Hyperparameters of every architecture from metadata (llama.cpp's keys and defaults), and the loader's errors:
 * unknown architectures, corrupt counts, missing tensors and wrong shapes, named before anything is uploaded.
 */
import '@nibble/backend-js';
import { createBackend, NibbleError } from '@nibble/tensor';
import { describe, expect, it } from 'vitest';
import { isSlidingLayer, type ModelHparams } from '../hparams.js';
import { loadModel } from '../index.js';
import { asQ8_0, syntheticModel, syntheticSpecs } from '../test/synthetic.js';
import { modelHparams, supportedArchitectures, uploadModelWeights } from './registry.js';

function meta(arch: string, extra: Record<string, unknown> = {}): Map<string, unknown> {
  return new Map<string, unknown>([
    ['general.architecture', arch],
    [`${arch}.embedding_length`, 64],
    [`${arch}.block_count`, 4],
    [`${arch}.feed_forward_length`, 128],
    [`${arch}.attention.head_count`, 4],
    [`${arch}.attention.head_count_kv`, 2],
    [`${arch}.context_length`, 256],
    [`${arch}.attention.layer_norm_rms_epsilon`, 1e-5],
    ['tokenizer.ggml.tokens', new Array(100).fill('x')],
    ...Object.entries(extra).map(([k, v]) => [`${arch}.${k}`, v] as [string, unknown]),
  ]);
}

const layers = (hp: ModelHparams) => Array.from({ length: hp.nLayers }, (_, l) => isSlidingLayer(hp, l));

describe('architectures', () => {
  it('names an unknown architecture and lists the supported ones', () => {
    expect(supportedArchitectures).toEqual(['llama', 'qwen2', 'qwen3', 'gemma2', 'gemma3', 'phi3']);
    expect(() => modelHparams(meta('mamba'))).toThrow(
      "architecture 'mamba' is not supported; supported: llama, qwen2, qwen3, gemma2, gemma3, phi3",
    );
  });

  it('reads head width, RoPE dimensions and scaling like llama.cpp', () => {
    const hp = modelHparams(meta('qwen3', { 'attention.key_length': 32, 'attention.value_length': 32 }));
    expect(hp).toMatchObject({ headDim: 32, ropeDims: 32, attnScale: 1 / Math.sqrt(32), ropeScaling: 'linear' });
    expect(modelHparams(meta('llama')).ropeFreqScale).toBe(1);
    const yarn = modelHparams(
      meta('llama', {
        'rope.scaling.type': 'yarn',
        'rope.scaling.factor': 4,
        'rope.scaling.original_context_length': 32,
      }),
    );
    expect(yarn).toMatchObject({ ropeScaling: 'yarn', ropeFreqScale: 0.25, ropeOrigCtx: 32 });
    expect(modelHparams(meta('llama', { 'rope.scaling.type': 'none', 'rope.scaling.factor': 4 })).ropeFreqScale).toBe(
      1,
    );
    expect(modelHparams(meta('phi3', { 'rope.dimension_count': 12 })).ropeDims).toBe(12);
    expect(() => modelHparams(meta('llama', { 'rope.dimension_count': 18 }))).toThrow(/does not fit head size 16/);
    expect(() => modelHparams(meta('llama', { 'attention.key_length': 32, 'attention.value_length': 16 }))).toThrow(
      /value_length 16 differs from key_length 32/,
    );
    // Per-layer arrays: uniform ones are read, differing ones refused by name.
    expect(modelHparams(meta('llama', { 'attention.head_count_kv': Uint32Array.of(2, 2, 2, 2) })).nKvHeads).toBe(2);
    expect(() => modelHparams(meta('llama', { 'attention.head_count_kv': Uint32Array.of(2, 4, 2, 4) }))).toThrow(
      /'llama.attention.head_count_kv' differs between layers/,
    );
  });

  it('gemma2: window 4096 on every other layer, soft-caps 50 and 30, the 27B query scale', () => {
    const hp = modelHparams(meta('gemma2', { 'attention.key_length': 32, 'attention.value_length': 32 }));
    expect(hp).toMatchObject({ slidingWindow: 4096, attnSoftcap: 50, finalSoftcap: 30 });
    expect(layers(hp)).toEqual([true, false, true, false]);
    expect(hp.attnScale).toBe(Math.fround(1 / Math.sqrt(32)));
    const big = modelHparams(meta('gemma2', { block_count: 46, 'attention.key_length': 32 }));
    expect(big.attnScale).toBe(Math.fround(1 / Math.sqrt(16)));
  });

  it('gemma3: no window without the key; with it 5 local layers of 6, local base 10000 unscaled', () => {
    expect(layers(modelHparams(meta('gemma3'))).every((s) => !s)).toBe(true);
    const hp = modelHparams(
      meta('gemma3', {
        block_count: 12,
        'attention.sliding_window': 512,
        'rope.freq_base': 1e6,
        'rope.scaling.type': 'linear',
        'rope.scaling.factor': 8,
      }),
    );
    expect(layers(hp)).toEqual([true, true, true, true, true, false, true, true, true, true, true, false]);
    expect(hp).toMatchObject({ ropeBase: 1e6, ropeFreqScale: 0.125, ropeBaseSwa: 10000, ropeFreqScaleSwa: 1 });
    expect(hp.finalSoftcap).toBe(0);
  });
});

describe('loading', () => {
  it('refuses a block count beyond the tensors in the file before planning by it', async () => {
    const backend = await createBackend('js');
    expect(() => modelHparams(meta('llama', { block_count: 0xffffffff }))).toThrow(/found 4294967295/);
    const hp = modelHparams(meta('llama', { block_count: 500 }));
    const file = { metadata: new Map(), tensors: [], readTensor: () => Promise.reject(new Error('unreachable')) };
    await expect(uploadModelWeights(file, hp, backend)).rejects.toThrow(
      /llama.block_count 500 exceeds the 0 tensors in the file/,
    );
    backend.dispose();
  });

  it('names a missing tensor and a wrong shape', async () => {
    const bytes = await syntheticModel({ ...syntheticSpecs.gemma3, layers: 1 });
    // Rename blk.0.attn_q_norm.weight (same length): the loader names what is missing.
    const renamed = new Uint8Array(bytes);
    renamed.set(
      new TextEncoder().encode('blk.0.attn_q_nrrm.weight'),
      Buffer.from(bytes).indexOf('blk.0.attn_q_norm.weight'),
    );
    const missing = await loadModel(renamed, { backend: 'js', contextSize: 64 }).catch((e) => e);
    expect(missing).toBeInstanceOf(NibbleError);
    expect(missing.message).toBe("tensor 'blk.0.attn_q_norm.weight' is missing from the gemma3 model file");
    // Claim a feed-forward width of 64 (the u32 after the key and its type): the gate weight has the wrong shape.
    const narrowed = new Uint8Array(bytes);
    const key = Buffer.from(bytes).indexOf('gemma3.feed_forward_length') + 'gemma3.feed_forward_length'.length;
    new DataView(narrowed.buffer).setUint32(key + 4, 64, true);
    const shape = await loadModel(narrowed, { backend: 'js', contextSize: 64 }).catch((e) => e);
    expect(shape.message).toBe(
      "tensor 'blk.0.ffn_gate.weight' has shape [128, 64], expected [64, 64] from the hyperparameters",
    );
    // Separate q/k/v in a phi3 file load too, as llama.cpp accepts them.
    const unfused = await loadModel(await syntheticModel({ ...syntheticSpecs.phi3, fusedQkv: false }), {
      backend: 'js',
      contextSize: 64,
    });
    await unfused.dispose();
  });

  it('loads Q8_0 weights with a fused attn_qkv cut into views', async () => {
    const model = await loadModel(await syntheticModel(asQ8_0(syntheticSpecs.phi3)), {
      backend: 'js',
      contextSize: 64,
    });
    try {
      const q = model.weights.get('blk.0.attn_q.weight');
      expect(q.dtype).toBe('q8_0');
      expect(q.shape).toEqual([64, 64]);
      expect(model.weights.source(q)).toBe('blk.0.attn_qkv.weight');
      expect(model.weights.get('blk.0.attn_v.weight').shape).toEqual([32, 64]);
    } finally {
      await model.dispose();
    }
  });
});

describe('observed matmul inputs (imatrix)', () => {
  it('every architecture outputs the input of each file matmul weight once, a fused attn_qkv as itself', async () => {
    for (const spec of Object.values(syntheticSpecs)) {
      const bytes = await syntheticModel(spec);
      const model = await loadModel(bytes, { backend: 'js', contextSize: 64 });
      try {
        const { parseGguf } = await import('@nibble/gguf');
        const file = parseGguf(bytes);
        // What llama-imatrix collects: every 2-D weight that multiplies activations (the embedding only when tied).
        const expected = file.tensors
          .filter((t) => t.shape.length === 2 && (t.name !== 'token_embd.weight' || model.weights.tied))
          .map((t) => t.name)
          .sort();
        const session = await model.createSession();
        const seen = new Map<string, number>();
        await session.evaluateObserved([1, 2, 3], (inputs) => {
          for (const [name, x] of inputs) seen.set(name, x.cols);
          expect(inputs.get('blk.0.attn_norm.weight')).toBeUndefined();
        });
        session.dispose();
        expect([...seen.keys()].sort(), spec.name).toEqual(expected);
        for (const t of file.tensors.filter((t) => seen.has(t.name))) expect(seen.get(t.name)).toBe(t.shape[1]);
      } finally {
        await model.dispose();
      }
    }
  });
});
