/**
 * Every architecture against llama.cpp (node-llama-cpp 3.21.1, run live: each synthetic model loads and scores in
 * milliseconds). For each synthetic model (src/test/synthetic.ts: llama.cpp's tensor layout and metadata, random
 * weights, a real tokenizer) both score the same forced token sequence in one batch; we require
 *   - the same token ids for the text,
 *   - the same greedy (argmax) id at every position, except at near-ties: positions where the two candidates are
 *     within the case's tolerance of each other in both models (counted, and few),
 *   - per-token log-probabilities (of the forced next token and of llama.cpp's argmax) within the case's tolerance,
 *     set at about 3x the gap measured on the JS backend (README of this test: the table in the closing report).
 * F32 files run with f32 activations; Q8_0 files with `matmulActivations: 'ggml'` (activations quantized to Q8_0
 * like llama.cpp's CPU backend). llama.cpp runs with an f32 KV cache, no flash attention and one thread.
 *
 * A backend's test file calls {@link describeLlamaParity} with its factory (packages/runner's own test runs the JS
 * backend; backend-wasm's and backend-webgpu's their own).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '@nibble/tensor';
import { getLlama, type Llama, LlamaLogLevel, type Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../index.js';
import { fixturePath } from './fixtures.js';
import { asQ8_0, phi3Twin, syntheticSpecs as S, type SyntheticSpec, syntheticModel } from './synthetic.js';

/** A backend under test. */
export interface ParityBackend {
  name: string;
  create: () => Promise<Backend>;
  /**
   * Tolerances of this backend where it differs from the JS backend's, by case (`llama-tied-Q8_0`): where one f32
   * value upstream differs by an ulp (another summation order), a Q8_0 activation can round to the other step.
   * Each is about 3x the gap this backend measured, with the reason beside it in the test file.
   */
  tolerances?: Readonly<Record<string, number>>;
  /**
   * Why this backend skips the Q8_0 files (reported as visible skips): one without llama.cpp's quantized activations
   * cannot match its CPU backend within these tolerances.
   */
  skipQ8_0?: string;
}

/** What the extra tests of {@link describeLlamaParity} may use: the live llama.cpp and a temporary folder. */
export interface ParityContext {
  llama(): Llama;
  dir(): string;
}

interface Case {
  spec: SyntheticSpec;
  /** Context size of both runs (LongRoPE picks its factors by it). */
  ctx: number;
  /** Largest |Δ log p| allowed, F32 and Q8_0 (about 3x the measured gap). */
  tol: { f32: number; q8_0: number };
  /** llama.cpp scores this file instead (same function, a layout it accepts). */
  oracle?: (spec: SyntheticSpec) => Promise<Uint8Array>;
  note?: string;
}

// Measured max |Δ log p| on the JS backend, printed by this test: F32 files 4.2e-6..8.1e-6 (Gemma 1.8e-3 and 2.2e-3:
// ggml's CPU GELU reads an f16 table). Q8_0 files agree to 3.0e-6..6.2e-6 where every f32 value upstream is
// bit-equal; where one differs by an ulp (YaRN's angles, the twin's permuted q·k, Gemma's GELU), a Q8_0 activation
// rounds the other way and the gap grows to 0.05..0.12, so those cases carry their own tolerance, about 3x theirs.
const exact = { f32: 2.5e-5, q8_0: 2e-5 };
const cases: Case[] = [
  { spec: S.llama, ctx: 128, tol: exact },
  { spec: S.llamaTied, ctx: 128, tol: exact },
  { spec: S.llama3, ctx: 128, tol: exact, note: 'Llama 3.2 shape: rope_freqs, Llama 3 BPE vocabulary' },
  { spec: S.llamaLinear, ctx: 128, tol: exact },
  { spec: S.llamaYarn, ctx: 128, tol: { f32: 2.5e-5, q8_0: 0.2 } },
  {
    spec: S.llamaPartial,
    ctx: 128,
    tol: { f32: 2.5e-5, q8_0: 0.155 },
    oracle: phi3Twin,
    note: 'llama.cpp refuses rope.dimension_count < head size for llama ("invalid n_rot"); it scores the phi3 twin',
  },
  { spec: S.qwen2, ctx: 128, tol: exact },
  { spec: S.qwen3, ctx: 128, tol: exact },
  { spec: S.gemma2, ctx: 128, tol: { f32: 5.5e-3, q8_0: 0.28 }, note: "ggml's CPU GELU is an f16 table" },
  { spec: S.gemma3, ctx: 128, tol: { f32: 6.5e-3, q8_0: 0.37 }, note: "ggml's CPU GELU is an f16 table" },
  { spec: S.phi3, ctx: 256, tol: exact, note: 'context within the trained 256: short factors' },
  { spec: S.phi3, ctx: 512, tol: exact, note: 'context beyond 256: long factors' },
];

const text = readFileSync(fixturePath('text', 'cs336-tinystories_sample.txt'), 'utf8').slice(0, 600);

let llama: Llama;
let dir: string;
const figures: string[] = ['architecture parity with llama.cpp (max |Δ log p| over forced and argmax tokens):'];

/** llama.cpp's text ids and, per position of [bos?, ...ids], its full next-token distribution. */
async function llamaCpp(bytes: Uint8Array, name: string, ctx: number) {
  const path = join(dir, `${name}.gguf`);
  writeFileSync(path, bytes);
  const model = await llama.loadModel({ modelPath: path });
  try {
    const context = await model.createContext({
      contextSize: ctx,
      batchSize: ctx,
      threads: 1,
      flashAttention: false,
      experimentalKvCacheKeyType: 'F32',
      experimentalKvCacheValueType: 'F32',
      swaFullCache: true,
    });
    try {
      const textIds = model.tokenize(text).map(Number);
      const bos = model.tokens.bos;
      const ids = (bos === null ? textIds : [Number(bos), ...textIds]).slice(0, Math.min(ctx, 100));
      const out = await context
        .getSequence()
        .controlledEvaluate(ids.map((t) => [t as Token, { generateNext: { probabilities: true } }]));
      const probs = out.map((o) => o?.next?.probabilities as Map<Token, number>);
      return { textIds, ids, probs };
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/**
 * Registers the parity tests of every synthetic architecture on each backend, llama.cpp (live) as the oracle, and
 * `extra` tests that share its llama.cpp instance.
 */
export function describeLlamaParity(backends: readonly ParityBackend[], extra?: (ctx: ParityContext) => void): void {
  beforeAll(async () => {
    llama = await getLlama({ gpu: false, build: 'never', maxThreads: 1, logLevel: LlamaLogLevel.disabled });
    dir = mkdtempSync(join(tmpdir(), 'nibble-parity-'));
  });
  afterAll(async () => {
    await llama?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
    console.log(figures.join('\n'));
  });

  extra?.({ llama: () => llama, dir: () => dir });

  describe.each(backends)('llama.cpp parity on the $name backend', ({ create, tolerances, skipQ8_0 }) => {
    for (const c of cases) {
      for (const dtype of ['f32', 'q8_0'] as const) {
        const spec = dtype === 'f32' ? c.spec : asQ8_0(c.spec);
        const tol = tolerances?.[spec.name] ?? c.tol[dtype];
        if (dtype === 'q8_0' && skipQ8_0 !== undefined) {
          it.skip(`${spec.name} (${spec.arch}), ctx ${c.ctx}: skipped, ${skipQ8_0}`, () => {});
          continue;
        }
        it(`${spec.name} (${spec.arch}), ctx ${c.ctx}: greedy ids equal, |Δ log p| <= ${tol}`, async () => {
          const bytes = await syntheticModel(spec);
          const oracleBytes = c.oracle ? await c.oracle(spec) : bytes;
          const ref = await llamaCpp(oracleBytes, `${spec.name}-${c.ctx}`, c.ctx);
          const backend = await create();
          const model = await loadModel(bytes, {
            backend,
            contextSize: c.ctx,
            matmulActivations: dtype === 'f32' ? 'f32' : 'ggml',
          });
          try {
            expect(model.hparams.architecture).toBe(spec.arch);
            expect(model.tokenizer.encode(text, false)).toEqual(ref.textIds);
            const { ids } = ref;
            const V = model.hparams.vocabSize;
            const logits = await model.evaluate(ids);
            let maxGap = 0;
            let nearTies = 0;
            for (let i = 0; i < ids.length; i++) {
              const row = logits.subarray(i * V, (i + 1) * V);
              let top = 0;
              for (let j = 1; j < V; j++) if (row[j] > row[top]) top = j;
              let sum = 0;
              for (let j = 0; j < V; j++) sum += Math.exp(row[j] - row[top]);
              const lse = row[top] + Math.log(sum);
              const p = ref.probs[i];
              let refTop = -1;
              let refMax = -1;
              for (const [t, v] of p) if (v > refMax) [refTop, refMax] = [t, v];
              const check = i + 1 < ids.length ? [ids[i + 1], refTop] : [refTop];
              for (const t of check) {
                const ours = row[t] - lse;
                const theirs = Math.log(p.get(t as Token) as number);
                maxGap = Math.max(maxGap, Math.abs(ours - theirs));
              }
              if (top !== refTop) {
                // A near-tie: both models put the two candidates within the tolerance of each other.
                const oursMargin = row[top] - row[refTop];
                const theirsMargin = Math.log(refMax) - Math.log(p.get(top as Token) as number);
                expect(
                  oursMargin <= tol && theirsMargin <= tol,
                  `argmax at ${i}: ours ${top}, llama.cpp ${refTop}`,
                ).toBe(true);
                nearTies++;
              }
            }
            figures.push(
              `${`${spec.name} ctx ${c.ctx}`.padEnd(30)} ${model.backend.name} max |Δ log p| ${maxGap.toExponential(2)} (tol ${tol}), argmax equal at ${ids.length - nearTies}/${ids.length}${nearTies ? ` (${nearTies} near-ties)` : ''}${c.note ? `  ${c.note}` : ''}`,
            );
            expect(maxGap).toBeLessThanOrEqual(tol);
            expect(nearTies).toBeLessThanOrEqual(Math.ceil(ids.length * 0.03));
          } finally {
            await model.dispose();
            backend.dispose();
          }
        });
      }
    }
  });
}
