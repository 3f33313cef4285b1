/**
 * The runner's bookkeeping on the JS backend, checked against the llama2.c gold: batching, KV cache types, windows,
 * streaming text, aborts, progress and errors.
 */
import '@nibble/backend-js';
import { readFileSync } from 'node:fs';
import { createBackend } from '@nibble/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { llamaHparams } from './arch/registry.js';
import { loadModel as loadModelBrowser } from './index.js';
import type { Model } from './model.js';
import { loadModel } from './node.js';
import { splitDocuments, windows } from './perplexity.js';
import { fixturePath, type GreedyRef, type NllRef, readJson, readText } from './test/fixtures.js';

const greedy = readJson<GreedyRef>('reference', 'stories260K-greedy-llama2c.json');
const nll = readJson<NllRef>('reference', 'stories260K-nll-cs336-tinystories_sample-llama2c.json');
const sample = readText('text', 'cs336-tinystories_sample.txt');
const f32Path = fixturePath('models', 'stories260K.gguf');

describe('perplexity windows and documents', () => {
  it('covers every prediction exactly once with at least ctx - stride tokens of context', () => {
    for (const [n, ctx, stride] of [
      [10, 4, 2],
      [457, 128, 64],
      [457, 512, 256],
      [2, 2, 1],
      [100, 7, 7],
      [100, 7, 1],
    ]) {
      const seen = new Array(n).fill(0);
      for (const w of windows(n, ctx, stride)) {
        expect(w.end - w.start).toBeLessThanOrEqual(ctx);
        for (let t = w.from; t < w.end; t++) {
          seen[t]++;
          if (w.start > 0) expect(t - w.start).toBeGreaterThanOrEqual(ctx - stride);
        }
      }
      expect(seen.slice(1).every((c) => c === 1)).toBe(true);
      expect(seen[0]).toBe(0);
    }
    expect(() => windows(10, 4, 5)).toThrow(RangeError);
  });

  it('splits the TinyStories sample into its five stories', () => {
    const docs = splitDocuments(sample);
    expect(docs.length).toBe(nll.stories.length);
    expect(docs.every((d) => d === d.trim() && !d.includes('<|endoftext|>'))).toBe(true);
  });
});

describe('hyperparameters', () => {
  const base = new Map<string, unknown>([
    ['general.architecture', 'llama'],
    ['llama.embedding_length', 64],
    ['llama.block_count', 5],
    ['llama.feed_forward_length', 172],
    ['llama.attention.head_count', 8],
    ['llama.attention.head_count_kv', 4],
    ['llama.context_length', 2048],
    ['tokenizer.ggml.tokens', new Array(512).fill('x')],
  ]);
  it('reads llama keys with llama.cpp defaults', () => {
    const hp = llamaHparams(base);
    expect(hp).toMatchObject({
      dim: 64,
      nHeads: 8,
      nKvHeads: 4,
      headDim: 8,
      vocabSize: 512,
      ropeBase: 10000,
      rmsEps: 1e-5,
    });
  });
  it('names what is wrong', () => {
    const without = new Map(base);
    without.delete('llama.block_count');
    expect(() => llamaHparams(without)).toThrow(/'llama\.block_count' is missing/);
    expect(() => llamaHparams(new Map([...base, ['general.architecture', 'gpt2']]))).toThrow(/architecture 'gpt2'/);
    expect(() => llamaHparams(new Map([...base, ['llama.rope.scaling.type', 'dynamic']]))).toThrow(
      /RoPE scaling 'dynamic'/,
    );
    expect(() => llamaHparams(new Map([...base, ['llama.attention.head_count_kv', 3]]))).toThrow(/head_count_kv 3/);
    expect(
      llamaHparams(new Map([...base, ['llama.rope.scaling.type', 'linear'], ['llama.rope.scaling.factor', 4]]))
        .ropeFreqScale,
    ).toBe(0.25);
  });
});

describe('sources and backends', () => {
  it('loads from bytes through the browser-safe entry onto a backend it does not own', async () => {
    const backend = await createBackend('js');
    const model = await loadModelBrowser(new Uint8Array(readFileSync(f32Path)), { backend, contextSize: 64 });
    const { ids } = await model.generate([1], { temperature: 0, maxTokens: 20 }).collect();
    expect(ids).toEqual(greedy.tokens.slice(0, 20));
    await model.dispose();
    // Still usable: the model did not dispose a backend it was given.
    const again = await loadModelBrowser(new Uint8Array(readFileSync(f32Path)), { backend, contextSize: 64 });
    expect((await again.generate([1], { temperature: 0, maxTokens: 3 }).collect()).ids).toEqual(
      greedy.tokens.slice(0, 3),
    );
    await again.dispose();
    backend.dispose();
  });

  it('names a backend that is not registered', async () => {
    await expect(loadModel(f32Path, { backend: 'webgpu' })).rejects.toThrow(/webgpu: not registered/);
  });
});

describe('runner bookkeeping on stories260K', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(f32Path, { backend: 'js', contextSize: 512 });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('gives the same greedy ids with tiny batches (prompt split across runs)', async () => {
    const progress: number[] = [];
    const small = await loadModel(f32Path, {
      backend: 'js',
      contextSize: 256,
      batchSize: 7,
      onProgress: (p) => progress.push(p.loadedBytes / p.totalBytes),
    });
    try {
      expect(progress.at(-1)).toBe(1);
      expect(progress.every((x, i) => i === 0 || x >= progress[i - 1])).toBe(true);
      const { ids } = await small
        .generate([1, ...greedy.tokens.slice(0, 50)], { temperature: 0, maxTokens: 40 })
        .collect();
      expect(ids).toEqual(greedy.tokens.slice(50, 90));
      const whole = await model.evaluate([1, ...greedy.tokens.slice(0, 20)]);
      const split = await small.evaluate([1, ...greedy.tokens.slice(0, 20)]);
      expect(split).toEqual(whole);
    } finally {
      await small.dispose();
    }
  });

  it('keeps the llama2.c greedy ids with an f16 KV cache, and stays close with q8_0', async () => {
    for (const [kv, same] of [
      ['f16', 200],
      ['q8_0', 100],
    ] as const) {
      const m = await loadModel(f32Path, { backend: 'js', contextSize: 512, kvCacheType: kv });
      try {
        const { ids } = await m.generate([1], { temperature: 0, maxTokens: 200 }).collect();
        const firstDiff = ids.findIndex((id, i) => id !== greedy.tokens[i]);
        expect(firstDiff < 0 ? 200 : firstDiff, kv).toBeGreaterThanOrEqual(same);
        // The first two stories: llama2.c's log-probabilities within 0.5% in total.
        const docs = splitDocuments(sample).slice(0, 2).join('<|endoftext|>');
        const r = await m.perplexity(docs);
        const ref = nll.stories[0].sum_logprob + nll.stories[1].sum_logprob;
        expect(Math.abs(r.totalLogProb / ref - 1), kv).toBeLessThan(0.005);
      } finally {
        await m.dispose();
      }
    }
  });

  it('scores every prediction once with short windows', async () => {
    const r = await model.perplexity(sample, { contextSize: 256, stride: 192 });
    expect(r.count).toBe(nll.n_predicted);
    // Less context can only make the model less sure, and not by much with 64+ tokens of context.
    expect(r.perplexity).toBeGreaterThan(nll.ppl);
    expect(r.perplexity).toBeLessThan(nll.ppl * 1.05);
  });

  it('streams multi-byte text through byte tokens without ever showing half a character', async () => {
    const text = 'café “quoted” — 😀 日本';
    const ids = model.tokenizer.encode(text, true);
    expect(ids.length).toBeGreaterThan(10); // most of it is <0xNN> byte tokens in a 512-token vocabulary
    const d = model.tokenizer.streamDecoder(ids[0]);
    let out = '';
    for (const id of ids.slice(1)) {
      const piece = d.push(id);
      expect(piece).not.toContain('\ufffd');
      out += piece;
    }
    out += d.flush();
    expect(out).toBe(text);
    expect(model.tokenizer.decode(ids)).toBe(text);
  });

  it('keeps the first space of a continuation, drops it only after BOS', async () => {
    const { text } = await model.generate('Once upon a time', { temperature: 0, maxTokens: 3 }).collect();
    expect(text).toBe(', there was');
    const fromBos = await model.generate([1], { temperature: 0, maxTokens: 2 }).collect();
    expect(fromBos.text).toBe('Once upon');
  });

  it('aborts between tokens and stays usable', async () => {
    const ac = new AbortController();
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const t of model.generate([1], { temperature: 0, maxTokens: 100, signal: ac.signal })) {
          seen.push(t.id);
          if (seen.length === 5) ac.abort(new Error('enough'));
        }
      })(),
    ).rejects.toThrow('enough');
    expect(seen).toEqual(greedy.tokens.slice(0, 5));
    const { ids } = await model.generate([1], { temperature: 0, maxTokens: 5 }).collect();
    expect(ids).toEqual(greedy.tokens.slice(0, 5));
  });

  it('rejects bad ids, overflowing prompts and concurrent use of one session', async () => {
    await expect(model.evaluate([1, 512])).rejects.toThrow(/token id 512 at index 1/);
    await expect(model.evaluate(new Array(513).fill(1))).rejects.toThrow(/context of 512/);
    const s = await model.createSession();
    const g = s.generate([1], { temperature: 0, maxTokens: 3 });
    await g.next();
    await expect(s.evaluate([1])).rejects.toThrow(/already running/);
    await g.return();
    expect(s.position).toBe(1);
    await s.evaluate([403]);
    expect(s.tokens).toEqual([1, 403]);
    s.dispose();
    await expect(s.evaluate([1])).rejects.toThrow(/disposed/);
  });
});
