/**
 * stories260K on the WebGPU backend (SwiftShader in CI) against llama2.c: the 200 greedy ids and their text exactly,
 * the perplexity of the TinyStories sample within 0.1% of llama2.c's 3.548202, and greedy decoding on the GPU
 * (only the id read back) giving the same ids. Also: each decode step is one pass of a fixed number of dispatches.
 */
import { readFileSync } from 'node:fs';
import { allocKvCache, buildModelGraph, type Model } from '@nibble/runner';
import { loadModel } from '@nibble/runner/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuBackend } from './backend.js';
import { webgpuNode } from './node.js';

const fixture = (p: string) => new URL(`../../../fixtures/${p}`, import.meta.url);
const json = <T>(p: string) => JSON.parse(readFileSync(fixture(p), 'utf8')) as T;
const greedy = json<{ tokens: number[] }>('reference/stories260K-greedy-llama2c.json');
const gold = json<{ cases: { id: string; expected_text?: string }[] }>('reference/stories260K-llama2c-gold.json');
const nll = json<{ ppl: number; n_predicted: number }>(
  'reference/stories260K-nll-cs336-tinystories_sample-llama2c.json',
);
const sample = readFileSync(fixture('text/cs336-tinystories_sample.txt'), 'utf8');

describe('stories260K on webgpu against llama2.c', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(fixture('models/stories260K.gguf').pathname, { backend: webgpuNode, contextSize: 512 });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('generates the 200 greedy ids and the gold text from BOS', async () => {
    const { ids, text } = await model.generate([1], { temperature: 0, maxTokens: 200 }).collect();
    expect(ids).toEqual(greedy.tokens);
    expect(text).toBe(gold.cases.find((c) => c.id === 'greedy-200')?.expected_text);
  });

  it('scores the TinyStories sample within 0.1% of llama2.c', async () => {
    const r = await model.perplexity(sample);
    expect(r.count).toBe(nll.n_predicted);
    expect(nll.ppl).toBeCloseTo(3.548202, 6);
    expect(Math.abs(r.perplexity / nll.ppl - 1)).toBeLessThanOrEqual(0.001);
  }, 400_000); // SwiftShader: about 1-2 minutes of prompt kernels

  it('decodes greedily on the GPU (only the id read back) with the same ids, in one pass per step', async () => {
    const backend = model.backend as WebGpuBackend;
    const cache = await allocKvCache(backend, model.hparams, 64, 'f32');
    try {
      const graph = buildModelGraph(model.hparams, model.weights, cache, { maxTokens: 1, logits: true });
      const ids: number[] = [];
      let token = 1;
      const tokens = new Int32Array(1);
      for (let pos = 0; pos < 60; pos++) {
        tokens[0] = token;
        token = await backend.runGreedy(graph, { tokens, nTokens: 1, pos });
        ids.push(token);
      }
      expect(ids).toEqual(greedy.tokens.slice(0, 60));
      // 5 layers: norm, q (+rope), k (+rope +cache write), v (+cache write), attention, o (+residual), norm, gate, up,
      // glu, down (+residual) = 11 per layer unfused; fused 5 (q/k/v with the norm, attention, o, gate/up/glu with the
      // norm, down); embedding, final norm, logits, argmax.
      expect(backend.lastStep.dispatches).toBe(5 * 5 + 4);
    } finally {
      for (const t of [...cache.k, ...cache.v]) backend.free(t);
    }
  });
});
