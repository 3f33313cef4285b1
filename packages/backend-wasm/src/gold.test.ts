/**
 * The runner's gold checks on the WASM backend, with 1 and 2 threads: stories260K against llama2.c (greedy ids and
 * text, logits, perplexity) and llama.cpp's F16/Q8_0/Q4_0 files against llama.cpp's figures; and the two thread
 * counts give the same floats bit for bit.
 */
import { type Model, splitDocuments } from '@nibble/runner';
import { loadModel } from '@nibble/runner/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fixturePath,
  type GoldCases,
  type GreedyRef,
  type NlcGreedy,
  type NlcNll,
  readF32,
  readJson,
  readText,
} from '../../runner/src/test/fixtures.js';
import './node.js';

const greedy = readJson<GreedyRef>('reference', 'stories260K-greedy-llama2c.json');
const gold = readJson<GoldCases>('reference', 'stories260K-llama2c-gold.json');
const greedyText = gold.cases.find((c) => c.id === 'greedy-200')?.expected_text;
const sample = readText('text', 'cs336-tinystories_sample.txt');

for (const threads of [1, 2]) {
  describe(`stories260K (F32) on wasm, ${threads} thread(s), against llama2.c`, () => {
    let model: Model;
    beforeAll(async () => {
      model = await loadModel(fixturePath('models', 'stories260K.gguf'), {
        backend: 'wasm',
        threads,
        contextSize: 512,
      });
    });
    afterAll(async () => {
      await model?.dispose();
    });

    it('runs on wasm with the threads asked for', () => {
      expect(model.backend.name).toBe('wasm');
      expect((model.backend as unknown as { threads: number }).threads).toBe(threads);
    });

    it('generates the 200 greedy ids and the gold text from BOS', async () => {
      const { ids, text } = await model.generate([1], { temperature: 0, maxTokens: 200 }).collect();
      expect(ids).toEqual(greedy.tokens);
      expect(text).toBe(greedyText);
    });

    it('gives the logits of the first 16 greedy positions within 1e-4 of each row max', async () => {
      const ref = readF32('reference', 'stories260K-greedy-logits-first16.f32');
      const vocab = 512;
      const logits = await model.evaluate([1, ...greedy.tokens.slice(0, 15)]);
      for (let r = 0; r < 16; r++) {
        let max = 0;
        let worst = 0;
        for (let j = 0; j < vocab; j++) max = Math.max(max, Math.abs(ref[r * vocab + j]));
        for (let j = 0; j < vocab; j++) worst = Math.max(worst, Math.abs(logits[r * vocab + j] - ref[r * vocab + j]));
        expect(worst, `row ${r}`).toBeLessThanOrEqual(1e-4 * max);
      }
    });

    it('scores the TinyStories sample: perplexity 3.5482 like llama2.c (3.548202)', async () => {
      expect(splitDocuments(sample).length).toBeGreaterThan(0);
      const r = await model.perplexity(sample);
      expect(r.count).toBe(1804);
      expect(Math.abs(r.perplexity - 3.548202)).toBeLessThanOrEqual(0.001);
    });
  });
}

describe('1 and 2 threads give identical floats', () => {
  for (const name of ['stories260K', 'stories260K-Q4_0', 'stories260K-Q8_0']) {
    for (const mode of ['ggml', 'f32'] as const) {
      it(`${name}, ${mode} activations: logits of a 64-token prompt and a decode step`, async () => {
        const out: Float32Array[] = [];
        for (const threads of [1, 2]) {
          const model = await loadModel(fixturePath('models', `${name}.gguf`), {
            backend: 'wasm',
            threads,
            contextSize: 128,
            matmulActivations: mode,
          });
          try {
            const s = await model.createSession();
            out.push((await s.evaluate([1, ...greedy.tokens.slice(0, 63)])).slice());
            out.push((await s.evaluate([greedy.tokens[63]])).slice());
            s.dispose();
          } finally {
            await model.dispose();
          }
        }
        expect(out[2]).toEqual(out[0]);
        expect(out[3]).toEqual(out[1]);
      });
    }
  }
});

describe('llama.cpp quantizations of stories260K on wasm', () => {
  // sameIds: how many of llama.cpp's 200 greedy ids we reproduce with f32 activations (as on the JS backend).
  const cases = [
    { name: 'F16', ppl: 3.548598, tol: 0.005, sameIds: 200 },
    { name: 'Q8_0', ppl: 3.552335, tol: 0.005, sameIds: 200 },
    { name: 'Q4_0', ppl: 3.83082, tol: 0.02, sameIds: 70 },
  ];
  for (const c of cases) {
    for (const threads of [1, 2]) {
      it(`${c.name}, ${threads} thread(s): perplexity within ${c.tol * 100}% of llama.cpp's ${c.ppl} (ggml and f32 activations), greedy ids`, async () => {
        const ref = readJson<NlcNll>('reference', `stories260K-${c.name}-nll-cs336-tinystories_sample-nlc.json`);
        const path = fixturePath('models', `stories260K-${c.name}.gguf`);
        for (const mode of ['ggml', 'f32'] as const) {
          const model = await loadModel(path, { backend: 'wasm', threads, contextSize: 512, matmulActivations: mode });
          try {
            const r = await model.perplexity(sample);
            expect(r.count).toBe(ref.n_predicted);
            expect(Math.abs(r.perplexity / ref.ppl - 1), mode).toBeLessThanOrEqual(c.tol);
            if (mode === 'f32') {
              const nlc = readJson<NlcGreedy>('reference', `stories260K-${c.name}-greedy-nlc.json`);
              const { ids } = await model.generate([1], { temperature: 0, maxTokens: 200 }).collect();
              const firstDiff = ids.findIndex((id, i) => id !== nlc.tokens[i]);
              expect(firstDiff < 0 ? ids.length : firstDiff).toBeGreaterThanOrEqual(c.sameIds);
            }
          } finally {
            await model.dispose();
          }
        }
      });
    }
  }
});
