/**
 * The conformance suite judged: the minimal backend passes it, each deliberately broken copy fails it, and a backend
 * that claims nothing passes nothing.
 */
import { readFileSync } from 'node:fs';
import { formats } from '@nibble/formats';
import type { BackendFactory } from '@nibble/tensor';
import { loadGoldenDots, runConformance, type TestApi } from '@nibble/tensor/testing';
import { describe, expect, it } from 'vitest';
import { type Mutation, NaiveBackend } from './naive-backend.js';

const dir = new URL('../../fixtures/golden/ggml-synthetic/', import.meta.url);
const golden = loadGoldenDots((p) => new Uint8Array(readFileSync(new URL(p, dir))));
const factory = (mutation?: Mutation, claims: 'all' | 'nothing' = 'all'): BackendFactory => ({
  name: `naive${mutation ? `-${mutation}` : ''}${claims === 'nothing' ? '-empty' : ''}`,
  create: async () => new NaiveBackend(mutation, claims),
});
// Fewer property runs keep the plain loops fast; the mutants below use the same count.
const numRuns = 6;

runConformance(factory(), { describe, it }, { codecs: formats, golden, numRuns });

class Skip extends Error {}

/** Runs the whole suite outside vitest and counts what passed, failed and was skipped. */
async function judge(f: BackendFactory): Promise<{ passed: string[]; failed: string[]; skipped: string[] }> {
  const tests: { name: string; fn: Parameters<TestApi['it']>[1] }[] = [];
  runConformance(
    f,
    { describe: (_n, body) => body(), it: (name, fn) => tests.push({ name, fn }) },
    { codecs: formats, golden, numRuns },
  );
  const result = { passed: [] as string[], failed: [] as string[], skipped: [] as string[] };
  for (const t of tests) {
    try {
      await t.fn({
        skip: (note) => {
          throw new Skip(note);
        },
      });
      result.passed.push(t.name);
    } catch (e) {
      (e instanceof Skip ? result.skipped : result.failed).push(t.name);
    }
  }
  return result;
}

describe('the conformance suite catches broken backends', () => {
  const mutants: { mutation: Mutation; caughtBy: RegExp }[] = [
    { mutation: 'rope-off-by-one', caughtBy: /^rope/ },
    { mutation: 'gqa-head-mapping', caughtBy: /^attention/ },
    { mutation: 'clobber-live-value', caughtBy: /two-layer model/ },
    { mutation: 'kv-state-lost', caughtBy: /two-layer model/ },
  ];
  for (const { mutation, caughtBy } of mutants) {
    it(`${mutation}: fails, in the test that guards it`, async () => {
      const r = await judge(factory(mutation));
      expect(r.failed.length, `failed: ${r.failed.join('; ')}`).toBeGreaterThan(0);
      expect(r.failed.some((n) => caughtBy.test(n))).toBe(true);
    }, 120_000);
  }

  it('a backend that claims nothing passes nothing: every op test is a visible skip', async () => {
    const r = await judge(factory(undefined, 'nothing'));
    expect(r.passed).toEqual([]);
    expect(r.failed.length).toBeGreaterThan(0); // 'claims something' fails
    expect(r.skipped.length).toBeGreaterThan(10);
  }, 60_000);
});
