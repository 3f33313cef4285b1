import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Xorshift64Star } from './rng.js';
import { Sampler } from './sampler.js';
import { StopMatcher } from './stop.js';

const seed = Number(process.env.FC_SEED ?? 20261125);

// run.c's random_u32 written directly with 64-bit arithmetic: the limb version must agree with it on every step.
function runcU32(state: { s: bigint }): number {
  const mask = (1n << 64n) - 1n;
  let s = state.s;
  s ^= s >> 12n;
  s ^= (s << 25n) & mask;
  s ^= s >> 27n;
  state.s = s;
  return Number(((s * 0x2545f4914f6cdd1dn) & mask) >> 32n);
}

describe('Xorshift64Star', () => {
  it('follows run.c random_u32 for any seed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (s) => {
        const rng = new Xorshift64Star(s);
        const ref = { s: BigInt(s) };
        for (let i = 0; i < 50; i++) expect(rng.nextU32()).toBe(runcU32(ref));
      }),
      { seed, numRuns: 200 },
    );
  });

  it('gives floats in [0, 1) with 24 bits', () => {
    const rng = new Xorshift64Star(42);
    for (let i = 0; i < 1000; i++) {
      const f = rng.nextF32();
      expect(f).toBeGreaterThanOrEqual(0);
      expect(f).toBeLessThan(1);
      expect(Number.isInteger(f * 16777216)).toBe(true);
    }
  });

  it('does not stall on seed 0', () => {
    const rng = new Xorshift64Star(0);
    expect(rng.nextU32() !== 0 || rng.nextU32() !== 0).toBe(true);
  });
});

describe('Sampler', () => {
  const logitsArb = fc.float32Array({
    minLength: 2,
    maxLength: 64,
    noNaN: true,
    noDefaultInfinity: true,
    min: -20,
    max: 20,
  });

  it('is greedy (first maximum) at temperature 0 and with topK 1', () => {
    fc.assert(
      fc.property(logitsArb, fc.double({ min: 0.1, max: 3, noNaN: true }), (logits, t) => {
        // Written here, not taken from sampler.ts: the first index of the largest value.
        const best = logits.indexOf(Math.max(...logits));
        expect(new Sampler(logits.length, { temperature: 0 }).sample(logits)).toBe(best);
        expect(new Sampler(logits.length, { temperature: t, topK: 1, seed: 7 }).sample(logits)).toBe(best);
      }),
      { seed, numRuns: 200 },
    );
  });

  it('is deterministic for a seed and never picks a token outside top-k', () => {
    fc.assert(
      fc.property(logitsArb, fc.integer({ min: 1, max: 1e9 }), fc.integer({ min: 1, max: 8 }), (logits, s, k) => {
        const a = new Sampler(logits.length, { temperature: 1, topK: k, topP: 0.9, minP: 0.01, seed: s });
        const b = new Sampler(logits.length, { temperature: 1, topK: k, topP: 0.9, minP: 0.01, seed: s });
        const kth = [...logits].sort((x, y) => y - x)[Math.min(k, logits.length) - 1];
        for (let i = 0; i < 20; i++) {
          const id = a.sample(logits);
          expect(b.sample(logits)).toBe(id);
          expect(logits[id]).toBeGreaterThanOrEqual(kth);
        }
      }),
      { seed, numRuns: 100 },
    );
  });

  it('samples softmax(logits / T) at topK 0, topP 1, minP 0 (frequencies within 4 sigma)', () => {
    const logits = new Float32Array([1, 2, 3, 0.5, -1]);
    for (const t of [1, 0.7]) {
      // The expectation, computed here in float64 from the definition.
      const e = Array.from(logits, (x) => Math.exp(x / t));
      const z = e.reduce((a, b) => a + b, 0);
      const p = e.map((x) => x / z);
      const n = 20000;
      const counts = new Array(logits.length).fill(0);
      const s = new Sampler(logits.length, { temperature: t, topK: 0, topP: 1, minP: 0, seed: 12345 });
      for (let i = 0; i < n; i++) counts[s.sample(logits)]++;
      for (let i = 0; i < p.length; i++) {
        const sigma = Math.sqrt((p[i] * (1 - p[i])) / n);
        expect(Math.abs(counts[i] / n - p[i]), `T=${t} token ${i}`).toBeLessThan(4 * sigma);
      }
    }
  });

  it('leaves the logits untouched', () => {
    const logits = new Float32Array([1, 2, 3, 4]);
    new Sampler(4, { temperature: 0.7, repeatPenalty: 1.3, seed: 1 }).sample(logits, [3, 3], 2);
    expect([...logits]).toEqual([1, 2, 3, 4]);
  });

  it('min-p drops tokens far below the best', () => {
    const logits = new Float32Array([10, 0, 0, 0]); // p(others) ~ 4.5e-5 of p(best)
    const s = new Sampler(4, { temperature: 1, topK: 0, topP: 1, minP: 0.001, seed: 3 });
    for (let i = 0; i < 200; i++) expect(s.sample(logits)).toBe(0);
  });

  it('repeat penalty steers greedy away from a recent token', () => {
    const logits = new Float32Array([2, 1.8, -1]);
    expect(new Sampler(3, { temperature: 0 }).sample(logits, [0], 1)).toBe(0);
    expect(new Sampler(3, { temperature: 0, repeatPenalty: 1.2 }).sample(logits, [0], 1)).toBe(1);
  });

  it('rejects bad options by name', () => {
    expect(() => new Sampler(4, { topP: 0 })).toThrow(/topP/);
    expect(() => new Sampler(4, { temperature: -1 })).toThrow(/temperature/);
    expect(() => new Sampler(4, { seed: -1 })).toThrow(/seed/);
  });
});

describe('StopMatcher', () => {
  it('never shows a stop string, however the text is cut', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom('a', 'b', '\n', 'x'), maxLength: 40 }),
        fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 40 }),
        (text, cuts) => {
          const stops = ['\n\n', 'abx'];
          const m = new StopMatcher(stops);
          let shown = '';
          let stopped = false;
          let i = 0;
          for (const c of [...cuts, text.length]) {
            if (i >= text.length || stopped) break;
            const r = m.push(text.slice(i, i + c));
            i += c;
            shown += r.text;
            stopped = r.stopped;
          }
          if (!stopped) shown += m.flush();
          let first = text.length;
          for (const s of stops) {
            const at = text.indexOf(s);
            if (at >= 0 && at < first) first = at;
          }
          const consumed = stopped ? text : text.slice(0, Math.max(i, 0));
          expect(shown).toBe(consumed.slice(0, Math.min(first, consumed.length)));
        },
      ),
      { seed, numRuns: 300 },
    );
  });
});
