/**
 * The runner's bookkeeping on the JS backend, checked against the llama2.c gold: batching, KV cache types, windows,
 * streaming text, aborts, progress and errors.
 */
import '@nibble/backend-js';
import { readFileSync } from 'node:fs';
import { llamaHyperparams, type Meta } from '@nibble/gguf';
import { createBackend } from '@nibble/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { llamaHparams } from './arch/registry.js';
import { loadModel as loadModelBrowser } from './index.js';
import type { Model } from './model.js';
import { loadModel } from './node.js';
import { NonFiniteError, splitDocuments, windows } from './perplexity.js';
import { damagedStories } from './test/bad-models.js';
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
    ['llama.attention.layer_norm_rms_epsilon', 1e-5],
    ['tokenizer.ggml.tokens', new Array(512).fill('x')],
  ]);
  it("reads llama keys with llama.cpp's defaults, through @nibble/gguf's reader", () => {
    const hp = llamaHparams(base);
    expect(hp).toMatchObject({
      dim: 64,
      nHeads: 8,
      nKvHeads: 4,
      headDim: 8,
      vocabSize: 512,
      ropeBase: 10000,
      ropeDims: 8,
      ropeFreqScale: 1,
      rmsEps: 1e-5,
    });
    // The two readers are one: every shared field agrees with the gguf package's.
    const g = llamaHyperparams({ metadata: base as Meta['metadata'] });
    expect([hp.dim, hp.nLayers, hp.nHeads, hp.nKvHeads, hp.hiddenDim, hp.vocabSize, hp.contextLength]).toEqual([
      g.embeddingLength,
      g.blockCount,
      g.headCount,
      g.headCountKv,
      g.feedForwardLength,
      g.vocabSize,
      g.contextLength,
    ]);
  });
  it('names what is wrong', () => {
    const without = (key: string) => {
      const m = new Map(base);
      m.delete(key);
      return m;
    };
    expect(() => llamaHparams(without('llama.block_count'))).toThrow(/'llama\.block_count' is missing/);
    // llama.cpp requires the RMS epsilon of a llama model (get_key without a default).
    expect(() => llamaHparams(without('llama.attention.layer_norm_rms_epsilon'))).toThrow(
      /'llama\.attention\.layer_norm_rms_epsilon' is missing/,
    );
    expect(() => llamaHparams(new Map([...base, ['general.architecture', 'gpt2']]))).toThrow(/architecture 'gpt2'/);
    expect(() => llamaHparams(new Map([...base, ['llama.rope.scaling.type', 'dynamic']]))).toThrow(
      /RoPE scaling 'dynamic'/,
    );
    expect(() => llamaHparams(new Map([...base, ['llama.attention.head_count_kv', 3]]))).toThrow(/head_count_kv 3/);
    expect(() => llamaHparams(new Map([...base, ['llama.block_count', 0xffffffff]]))).toThrow(/found 4294967295/);
    expect(
      llamaHparams(new Map([...base, ['llama.rope.scaling.type', 'linear'], ['llama.rope.scaling.factor', 4]]))
        .ropeFreqScale,
    ).toBe(0.25);
    // llama.cpp: no type means linear, and type none never scales.
    expect(llamaHparams(new Map([...base, ['llama.rope.scaling.factor', 4]])).ropeFreqScale).toBe(0.25);
    expect(
      llamaHparams(new Map([...base, ['llama.rope.scaling.type', 'none'], ['llama.rope.scaling.factor', 4]]))
        .ropeFreqScale,
    ).toBe(1);
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
    // tol: about 3x the measured relative gap in total log-probability (f16 3.5e-5, q8_0 2.4e-3).
    for (const [kv, same, tol] of [
      ['f16', 200, 1e-4],
      ['q8_0', 100, 7e-3],
    ] as const) {
      const m = await loadModel(f32Path, { backend: 'js', contextSize: 512, kvCacheType: kv });
      try {
        const { ids } = await m.generate([1], { temperature: 0, maxTokens: 200 }).collect();
        const firstDiff = ids.findIndex((id, i) => id !== greedy.tokens[i]);
        expect(firstDiff < 0 ? 200 : firstDiff, kv).toBeGreaterThanOrEqual(same);
        // The first two stories: llama2.c's log-probabilities in total.
        const docs = splitDocuments(sample).slice(0, 2).join('<|endoftext|>');
        const r = await m.perplexity(docs);
        const ref = nll.stories[0].sum_logprob + nll.stories[1].sum_logprob;
        expect(Math.abs(r.totalLogProb / ref - 1), kv).toBeLessThan(tol);
      } finally {
        await m.dispose();
      }
    }
  });

  it('scores every prediction once with short windows', async () => {
    const seen: [number, number][] = [];
    const r = await model.perplexity(sample, {
      contextSize: 256,
      stride: 192,
      onProgress: (scored, total) => seen.push([scored, total]),
    });
    expect(r.count).toBe(nll.n_predicted);
    // Progress after every window: rising to the total, which is known from the start.
    expect(seen.length).toBeGreaterThan(nll.stories.length);
    expect(seen.every(([a, t], i) => t === r.count && (i === 0 || a > seen[i - 1][0]))).toBe(true);
    expect(seen.at(-1)).toEqual([r.count, r.count]);
    // Less context can only make the model less sure, and not by much with 64+ tokens of context (measured +0.84%).
    expect(r.perplexity).toBeGreaterThan(nll.ppl);
    expect(r.perplexity).toBeLessThan(nll.ppl * 1.025);
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

  it('continues a session with its last generated token in the cache, like a fresh run of the whole context', async () => {
    const s = await model.createSession();
    try {
      const promptIds = model.tokenizer.encode('Once upon a time', true);
      const first = await s.generate('Once upon a time', { temperature: 0, maxTokens: 8 }).collect();
      expect(first.stats.finishReason).toBe('length');
      const context = [...promptIds, ...first.ids];
      expect(s.tokens).toEqual(context);
      expect(s.position).toBe(context.length);
      // More text after the generation: its logits must be those of a fresh session fed everything at once.
      const more = model.tokenizer.encode(' Tom was happy.', false);
      const cont = await s.evaluate(more);
      const fresh = await model.evaluate([...context, ...more]);
      // Same kernels, same rows: the logits agree bit for bit (measured: max difference 0).
      expect(cont).toEqual(fresh.slice(context.length * model.hparams.vocabSize));
      // And through generate: a text continuation sees the same context as a fresh greedy run of all the ids.
      const second = await s.generate(' Then', { temperature: 0, maxTokens: 10 }).collect();
      const all = [...context, ...more, ...model.tokenizer.encode(' Then', false)];
      const solo = await model.generate(all, { temperature: 0, maxTokens: 10 }).collect();
      expect(second.ids).toEqual(solo.ids);
      expect(s.tokens).toEqual([...all, ...second.ids]);
    } finally {
      s.dispose();
    }
  });

  it('rejects bad ids, overflowing prompts and concurrent use of one session', async () => {
    await expect(model.evaluate([1, 512])).rejects.toThrow(/token id 512 at index 1/);
    await expect(model.evaluate(new Array(513).fill(1))).rejects.toThrow(/context of 512/);
    const s = await model.createSession();
    const g = s.generate([1], { temperature: 0, maxTokens: 3 });
    await g.next();
    await expect(s.evaluate([1])).rejects.toThrow(/already running/);
    await g.return();
    // The token the caller saw stays in the conversation even though the iteration stopped early.
    expect(s.position).toBe(2);
    await s.evaluate([403]);
    expect(s.tokens).toEqual([1, greedy.tokens[0], 403]);
    s.dispose();
    await expect(s.evaluate([1])).rejects.toThrow(/disposed/);
  });
});

describe('bad input: a clear error before anything is sized by it', () => {
  const load = (bytes: Uint8Array, contextSize = 64) => loadModelBrowser(bytes, { backend: 'js', contextSize });

  it('checks block_count against the file before planning 9 tensors per block', async () => {
    const blocks = (n: number) => damagedStories({ metadata: (m) => m.setU32('llama.block_count', n) });
    await expect(load(await blocks(0xffffffff))).rejects.toThrow(
      /expected an integer in 1\.\.512, found 4294967295 \(key 'llama\.block_count'\)/,
    );
    await expect(load(await blocks(500))).rejects.toThrow(
      /llama\.block_count is 500, which needs at least 501 tensors; the file has 48/,
    );
    await expect(load(await blocks(4))).rejects.toThrow(/llama\.block_count is 4 but the file has tensors of 5 blocks/);
  });

  it('refuses a BOS id outside the vocabulary instead of dropping it', async () => {
    const bytes = await damagedStories({ metadata: (m) => m.setU32('tokenizer.ggml.bos_token_id', 600) });
    await expect(load(bytes)).rejects.toThrow(
      /'tokenizer\.ggml\.bos_token_id' is 600, outside the vocabulary 0\.\.511/,
    );
  });

  it('refuses a context beyond the trained one, before allocating it', async () => {
    const bytes = new Uint8Array(readFileSync(f32Path));
    await expect(load(bytes, 100_000_000)).rejects.toThrow(
      /contextSize must be an integer in 1\.\.2048 .*got 100000000/,
    );
    await expect(load(bytes, 2049)).rejects.toThrow(/llama\.context_length/);
    await expect(load(bytes, 0)).rejects.toThrow(/contextSize/);
  });

  it('names non-finite logits instead of generating id 0 or printing NaN', async () => {
    // One NaN in output.weight (f32, [512, 64]): every position's logit of token 7 is NaN.
    const bytes = await damagedStories({
      tensorBytes: (name, b) => {
        if (name === 'output.weight') new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4)[7 * 64] = Number.NaN;
      },
    });
    const model = await load(bytes);
    try {
      const err = await model
        .generate([1], { temperature: 0, maxTokens: 5 })
        .collect()
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NonFiniteError);
      expect(err).toMatchObject({ code: 'E_NON_FINITE', position: 0 });
      await expect(model.perplexity('Once upon a time.')).rejects.toThrow(/non-finite logits at position 0/);
    } finally {
      await model.dispose();
    }
  });

  it('refuses to score an empty text and a bad stride', async () => {
    const model = await load(new Uint8Array(readFileSync(f32Path)));
    try {
      await expect(model.perplexity('')).rejects.toThrow(/nothing to score/);
      await expect(model.perplexity('<|endoftext|>\n<|endoftext|>')).rejects.toThrow(/nothing to score/);
      for (const stride of [0, -1, Number.NaN, 1.5, 10_000]) {
        await expect(model.perplexity(sample, { stride }), String(stride)).rejects.toThrow(
          /stride .* must be an integer in 1\.\.64/,
        );
      }
    } finally {
      await model.dispose();
    }
  });
});
