// KL divergence against a base model: zero against itself; against llama.cpp's Q4_0 of stories260K, the perplexities
// it reports are Model.perplexity's and each position's KLD matches a direct softmax computation.
import '@nibble/backend-js';
import { describe, expect, it } from 'vitest';
import { klDivergence } from './kld.js';
import { loadModel } from './node.js';
import { fixturePath, readText } from './test/fixtures.js';

const text = readText('text', 'cs336-tinystories_sample.txt').split('<|endoftext|>').slice(0, 3).join('<|endoftext|>');

describe('klDivergence', () => {
  it('is zero against itself, with full top-token agreement', async () => {
    const m = await loadModel(fixturePath('models', 'stories260K.gguf'), { backend: 'js', contextSize: 128 });
    try {
      const r = await klDivergence(m, m, text);
      expect(r.count).toBeGreaterThan(100);
      expect(r.meanKld).toBeLessThan(1e-12);
      expect(r.maxKld).toBeLessThan(1e-12);
      expect(r.topTokenAgreement).toBe(1);
      expect(r.deltaPerplexity).toBe(0);
    } finally {
      await m.dispose();
    }
  });
  it("Q4_0 against F32: perplexities equal Model.perplexity's, KLD a direct softmax's", async () => {
    const base = await loadModel(fixturePath('models', 'stories260K.gguf'), { backend: 'js', contextSize: 128 });
    const q = await loadModel(fixturePath('models', 'stories260K-Q4_0.gguf'), { backend: 'js', contextSize: 128 });
    try {
      const r = await klDivergence(q, base, text, { batch: 7, contextSize: 40, keepValues: true });
      const [pq, pb] = [
        await q.perplexity(text, { contextSize: 40 }),
        await base.perplexity(text, { contextSize: 40 }),
      ];
      expect(r.count).toBe(pq.count);
      expect(Math.abs(r.perplexity / pq.perplexity - 1)).toBeLessThan(1e-12);
      expect(Math.abs(r.basePerplexity / pb.perplexity - 1)).toBeLessThan(1e-12);
      expect(r.meanKld).toBeGreaterThan(1e-4);
      expect(r.p99Kld).toBeGreaterThan(r.medianKld);
      expect(r.maxKld).toBeGreaterThanOrEqual(r.p99Kld);
      expect(r.topTokenAgreement).toBeGreaterThan(0.5);
      expect(r.topTokenAgreement).toBeLessThan(1);
      // The first window by hand: KL = sum p_b ln(p_b / p_q) from probabilities normalized without a max shift.
      const ids = [
        q.tokenizer.bosId as number,
        ...q.tokenizer.encode(text.split('<|endoftext|>')[0].trim(), false),
      ].slice(0, 40);
      const [lq, lb] = [await q.evaluate(ids), await base.evaluate(ids)];
      const v = q.hparams.vocabSize;
      for (let r0 = 0; r0 < ids.length - 1; r0++) {
        let kl = 0;
        let zq = 0;
        let zb = 0;
        for (let i = 0; i < v; i++) {
          zq += Math.exp(lq[r0 * v + i]);
          zb += Math.exp(lb[r0 * v + i]);
        }
        for (let i = 0; i < v; i++) {
          const pbi = Math.exp(lb[r0 * v + i]) / zb;
          const pqi = Math.exp(lq[r0 * v + i]) / zq;
          kl += pbi * Math.log(pbi / pqi);
        }
        const got = r.values?.[r0] as number;
        expect(Math.abs(got - kl), `position ${r0 + 1}`).toBeLessThan(1e-9 + 1e-9 * kl);
      }
    } finally {
      await q.dispose();
      await base.dispose();
    }
  });
  it('refuses a text with nothing to score', async () => {
    const m = await loadModel(fixturePath('models', 'stories260K.gguf'), { backend: 'js', contextSize: 64 });
    try {
      await expect(klDivergence(m, m, '   ')).rejects.toThrow(/nothing|no predictions/);
    } finally {
      await m.dispose();
    }
  });
});
