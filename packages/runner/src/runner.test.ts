/**
 * Gold checks of the runner on the JS backend: stories260K against llama2.c (ids, text, logits, per-token
 * log-probabilities, seeded sampling) and its llama.cpp quantizations against llama.cpp's perplexity and greedy ids.
 */
import '@nibble/backend-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Model } from './model.js';
import { loadModel } from './node.js';
import { splitDocuments } from './perplexity.js';
import {
  fixturePath,
  type GoldCases,
  type GreedyRef,
  type NlcGreedy,
  type NlcNll,
  type NllRef,
  readF32,
  readJson,
  readText,
} from './test/fixtures.js';

const greedy = readJson<GreedyRef>('reference', 'stories260K-greedy-llama2c.json');
const gold = readJson<GoldCases>('reference', 'stories260K-llama2c-gold.json');
const goldCase = (id: string) => gold.cases.find((c) => c.id === id) as GoldCases['cases'][number];
const nll = readJson<NllRef>('reference', 'stories260K-nll-cs336-tinystories_sample-llama2c.json');
const sample = readText('text', 'cs336-tinystories_sample.txt');

describe('stories260K (F32) against llama2.c', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(fixturePath('models', 'stories260K.gguf'), { backend: 'js', contextSize: 512 });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('generates the 200 greedy ids and the gold text from BOS', async () => {
    const { ids, text, stats } = await model.generate([1], { temperature: 0, maxTokens: 200 }).collect();
    expect(ids).toEqual(greedy.tokens);
    expect(text).toBe(goldCase('greedy-200').expected_text);
    expect(stats.finishReason).toBe('length');
    expect(stats.generatedTokens).toBe(200);
  });

  it('gives the logits of the first 16 greedy positions within 1e-4 of each row max', async () => {
    const ref = readF32('reference', 'stories260K-greedy-logits-first16.f32');
    const vocab = 512;
    const ids = [1, ...greedy.tokens.slice(0, 15)];
    const logits = await model.evaluate(ids);
    expect(logits.length).toBe(16 * vocab);
    for (let r = 0; r < 16; r++) {
      let max = 0;
      for (let j = 0; j < vocab; j++) max = Math.max(max, Math.abs(ref[r * vocab + j]));
      let worst = 0;
      for (let j = 0; j < vocab; j++) worst = Math.max(worst, Math.abs(logits[r * vocab + j] - ref[r * vocab + j]));
      expect(worst, `row ${r}`).toBeLessThanOrEqual(1e-4 * max);
    }
  });

  it('scores the TinyStories sample like llama2.c: same ids, per-token log-probs, perplexity 3.5482', async () => {
    const docs = splitDocuments(sample);
    expect(docs.map((d) => model.tokenizer.encode(d, true))).toEqual(nll.stories.map((s) => s.tokens));
    const r = await model.perplexity(sample);
    expect(r.count).toBe(1804);
    // Measured: |3.5482021 - 3.548202| = 1e-7; the reference prints 6 decimals (up to 5e-7 of rounding).
    expect(Math.abs(r.perplexity - nll.ppl)).toBeLessThanOrEqual(1e-6);
    let worst = 0;
    r.documents.forEach((d, i) => {
      const ref = nll.stories[i].logprobs;
      for (let j = 0; j < ref.length; j++) worst = Math.max(worst, Math.abs(d.logProbs[j] - ref[j]));
    });
    // Measured worst 2.6e-5: float32 sums in another order than llama2c's (its figures print 6 decimals).
    expect(worst).toBeLessThan(8e-5);
  });

  it('reproduces run.c -t 1.0 -p 0.9 -s 133742 token for token', async () => {
    const { text } = await model
      .generate([1], { temperature: 1, topP: 0.9, topK: 0, minP: 0, repeatPenalty: 1, seed: 133742, maxTokens: 256 })
      .collect();
    // run.c ends its output with a newline of its own.
    expect(`${text}\n`).toBe(goldCase('sample-topp-seed133742').expected_stdout);
  });

  it('continues the greedy gold after a prompt of ids and after a text prompt (run.c semantics)', async () => {
    // Greedy decoding is a function of the prefix: prompting with the first k gold tokens must give the rest.
    const k = 40;
    const ids = await model.generate([1, ...greedy.tokens.slice(0, k)], { temperature: 0, maxTokens: 60 }).collect();
    expect(ids.ids).toEqual(greedy.tokens.slice(k, k + 60));

    const goldText = goldCase('greedy-256').expected_stdout as string;
    const prompt = 'Once upon a time, there was a little girl named Lily.';
    const promptIds = model.tokenizer.encode(prompt, true);
    expect(promptIds).toEqual([1, ...greedy.tokens.slice(0, promptIds.length - 1)]);
    // run.c -n 256 counts every position: 256 - (prompt tokens after BOS) are sampled.
    const cont = await model.generate(prompt, { temperature: 0, maxTokens: 256 - (promptIds.length - 1) }).collect();
    expect(prompt + cont.text).toBe(goldText.slice(0, -1));
  });

  it('stops before a stop string and streams text that adds up', async () => {
    const text = goldCase('greedy-200').expected_text as string;
    const gen = model.generate([1], { temperature: 0, maxTokens: 200, stop: ['red ball'] });
    let streamed = '';
    for await (const t of gen) streamed += t.text;
    expect(streamed).toBe(text.slice(0, text.indexOf('red ball')));
    expect(gen.stats.finishReason).toBe('stop');
  });

  it('keeps sessions apart: interleaved generations equal solo ones', async () => {
    const a = await model.createSession();
    const b = await model.createSession();
    const ga = a.generate([1], { temperature: 0, maxTokens: 30 });
    const gb = b.generate('Tom had a dog', { temperature: 0, maxTokens: 30 });
    const idsA: number[] = [];
    const idsB: number[] = [];
    for (let i = 0; i < 30; i++) {
      const x = await ga.next();
      const y = await gb.next();
      if (!x.done) idsA.push(x.value.id);
      if (!y.done) idsB.push(y.value.id);
    }
    expect(idsA).toEqual(greedy.tokens.slice(0, 30));
    const solo = await model.generate('Tom had a dog', { temperature: 0, maxTokens: 30 }).collect();
    expect(idsB).toEqual(solo.ids);
    // Continuing a session appends to its cache.
    expect(a.position).toBe(30);
    a.dispose();
    b.dispose();
  });
});

describe('llama.cpp quantizations of stories260K', () => {
  // sameIds: how many of llama.cpp's 200 greedy ids we reproduce (F32 llama.cpp vs llama2.c: 200; Q4_0: 27).
  // Tolerances: about 3x the relative gap to llama.cpp's perplexity measured on the JS backend (one thread):
  // F16 9.2e-5 (f32 activations) / 7.8e-5 (ggml); Q8_0 1.9e-4 / 9.7e-4; Q4_0 4.1e-4 / 5.2e-4.
  const cases = [
    { name: 'F16', ppl: 3.548598, tol: { f32: 3e-4, ggml: 3e-4 }, sameIds: 200 },
    { name: 'Q8_0', ppl: 3.552335, tol: { f32: 6e-4, ggml: 3e-3 }, sameIds: 200 },
    { name: 'Q4_0', ppl: 3.83082, tol: { f32: 1.3e-3, ggml: 1.6e-3 }, sameIds: 70 },
  ];
  for (const c of cases) {
    it(`${c.name}: perplexity within ${c.tol.f32 * 100}% (f32 activations) and ${c.tol.ggml * 100}% (ggml) of llama.cpp's ${c.ppl}, greedy ids`, async () => {
      const ref = readJson<NlcNll>('reference', `stories260K-${c.name}-nll-cs336-tinystories_sample-nlc.json`);
      expect(ref.ppl).toBeCloseTo(c.ppl, 6);
      const path = fixturePath('models', `stories260K-${c.name}.gguf`);
      const exact = await loadModel(path, { backend: 'js', contextSize: 512 });
      const ggml = await loadModel(path, { backend: 'js', contextSize: 512, matmulActivations: 'ggml' });
      try {
        const a = await exact.perplexity(sample);
        expect(a.count).toBe(ref.n_predicted);
        expect(Math.abs(a.perplexity / ref.ppl - 1)).toBeLessThanOrEqual(c.tol.f32);
        const g = await ggml.perplexity(sample);
        expect(g.count).toBe(ref.n_predicted);
        expect(Math.abs(g.perplexity / ref.ppl - 1)).toBeLessThanOrEqual(c.tol.ggml);
        const nlc = readJson<NlcGreedy>('reference', `stories260K-${c.name}-greedy-nlc.json`);
        const { ids } = await exact.generate([1], { temperature: 0, maxTokens: 200 }).collect();
        const firstDiff = ids.findIndex((id, i) => id !== nlc.tokens[i]);
        expect(firstDiff < 0 ? ids.length : firstDiff).toBeGreaterThanOrEqual(c.sameIds);
      } finally {
        await exact.dispose();
        await ggml.dispose();
      }
    });
  }
});

describe('errors', () => {
  it('names an unknown architecture and a missing tensor', async () => {
    const { openGgufFile } = await import('@nibble/gguf/node');
    const { loadModelFrom } = await import('./model.js');
    const { fromGgufFile } = await import('./text.js');
    const file = await openGgufFile(fixturePath('models', 'stories260K.gguf'));
    try {
      const tokenizer = fromGgufFile(file);
      const meta = new Map(file.metadata);
      meta.set('general.architecture', 'mamba');
      const other = { metadata: meta, tensors: file.tensors, readTensor: (n: string) => file.readTensor(n) };
      await expect(loadModelFrom({ file: other, tokenizer }, { backend: 'js' })).rejects.toThrow(
        /architecture 'mamba'/,
      );
      const missing = {
        metadata: file.metadata,
        tensors: file.tensors.filter((t) => t.name !== 'blk.3.ffn_up.weight'),
        readTensor: (n: string) => file.readTensor(n),
      };
      await expect(loadModelFrom({ file: missing, tokenizer }, { backend: 'js' })).rejects.toThrow(
        /'blk\.3\.ffn_up\.weight' is missing/,
      );
    } finally {
      await file.close();
    }
  });
});
