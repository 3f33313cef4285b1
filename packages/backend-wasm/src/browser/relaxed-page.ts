// The relaxed-SIMD test page's script (bundled by browser.test.ts): in Chromium the backend must pick the relaxed
// build; it must then give the same floats, bit for bit, as the plain build (`relaxedSimd: false`) on random q4_0 and
// q4_1 matmuls and on stories260K-Q4_0 decode steps, and pass the conformance suite's q4_0/q4_1 part (ggml's golden
// dots included). Results go to `window.__nibble` for the test to read.
import '../index.js';
import { formats } from '@nibble/formats';
import { loadModel } from '@nibble/runner';
import { type Backend, createBackend, GraphBuilder, hostTensor } from '@nibble/tensor';
import { loadGoldenDots, runConformance, type TestContext } from '@nibble/tensor/testing';
import type { WasmBackend } from '../backend.js';

const out = globalThis as unknown as { __nibble?: unknown };
const query = new URLSearchParams(location.search);
// Threads of both backends (the test runs 1 and 2).
const threads = Number(query.get('threads') ?? '1');

/** mulberry32, so the page's random data is the same on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random q4_0 / q4_1 rows: every nibble value, scales (and q4_1's mins) of either sign between 2^-12 and 1. */
function randomQ4(dtype: 'q4_0' | 'q4_1', rows: number, cols: number, next: () => number): Uint8Array {
  const blocks = (rows * cols) / 32;
  const head = dtype === 'q4_0' ? 2 : 4;
  const size = head + 16;
  const b = new Uint8Array(blocks * size);
  const h = new Float32Array(1);
  const hu = new Uint32Array(h.buffer);
  for (let k = 0; k < blocks; k++) {
    for (let o = 0; o < head; o += 2) {
      h[0] = (next() < 0.5 ? -1 : 1) * 2 ** (-12 * next());
      // f32 -> fp16 by truncation (any finite fp16 value will do).
      const x = hu[0];
      const e = ((x >>> 23) & 0xff) - 127 + 15;
      const f16 = ((x >>> 16) & 0x8000) | (e << 10) | ((x >>> 13) & 0x3ff);
      b[k * size + o] = f16 & 0xff;
      b[k * size + o + 1] = f16 >>> 8;
    }
    for (let j = head; j < size; j++) b[k * size + j] = Math.floor(next() * 256);
  }
  return b;
}

function sameBits(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

/** q4_0 and q4_1 matmuls of several shapes on both builds; the first mismatch as a message, or undefined. */
async function compareMatmuls(relaxed: Backend, plain: Backend): Promise<{ cases: number; mismatch?: string }> {
  const next = rng(20261202);
  const shapes = [
    [1, 32],
    [5, 64],
    [8, 96],
    [13, 256],
    [40, 512],
    [67, 2048],
    [256, 1024],
  ];
  let cases = 0;
  for (const dtype of ['q4_0', 'q4_1'] as const) {
    for (const [rows, cols] of shapes) {
      const bytes = randomQ4(dtype, rows, cols, next);
      const wr = await relaxed.upload(hostTensor(dtype, [rows, cols], bytes));
      const wp = await plain.upload(hostTensor(dtype, [rows, cols], bytes));
      // 1-3 tokens take the decode path; 4 and more the prompt tiles of 4 (5, 7 and 13 leave 1-3 tokens over).
      for (const nTok of [1, 2, 3, 4, 5, 7, 8, 13]) {
        const x = new Float32Array(nTok * cols);
        for (let i = 0; i < x.length; i++) x[i] = (next() - 0.5) * (next() < 0.05 ? 64 : 2);
        const ys: Float32Array[] = [];
        for (const [b, w] of [
          [relaxed, wr],
          [plain, wp],
        ] as const) {
          const g = new GraphBuilder();
          const xi = g.input('x', 'f32', [nTok, cols]);
          g.output('y', g.matmul(g.weight(w), xi, { activations: 'ggml' }));
          ys.push((await b.run(g.build(), { x })).y);
        }
        cases++;
        const at = sameBits(ys[0], ys[1]);
        if (at >= 0) {
          const where = `${dtype} [${rows}, ${cols}] x ${nTok} tokens: element ${at}`;
          return { cases, mismatch: `${where}: relaxed ${ys[0][at]}, plain ${ys[1][at]}` };
        }
      }
      relaxed.free(wr);
      plain.free(wp);
    }
  }
  return { cases };
}

/** The conformance suite's q4_0/q4_1 matmul tests (random shapes vs float64, ggml's golden dots), relaxed build. */
async function conformance(
  golden: ReturnType<typeof loadGoldenDots>,
): Promise<{ passed: string[]; failed: string[]; skipped: string[] }> {
  const tests: { name: string; fn: (ctx: TestContext) => Promise<void> | void }[] = [];
  runConformance(
    { name: 'wasm', create: (o) => createBackend('wasm', { ...o, threads, relaxedSimd: true }) },
    { describe: (_n, fn) => fn(), it: (name, fn) => tests.push({ name, fn }) },
    { codecs: formats, golden, ops: ['matmul'], dtypes: ['q4_0', 'q4_1'] },
  );
  const passed: string[] = [];
  const failed: string[] = [];
  const skipped: string[] = [];
  // Like vitest's, skip() ends the test.
  const skip = Symbol('skip');
  for (const t of tests) {
    try {
      await t.fn({
        skip: () => {
          throw skip;
        },
      });
      passed.push(t.name);
    } catch (e) {
      if (e === skip) skipped.push(t.name);
      else failed.push(`${t.name}: ${String((e as Error)?.message ?? e)}`);
    }
  }
  return { passed, failed, skipped };
}

async function goldenDots(): Promise<ReturnType<typeof loadGoldenDots>> {
  const manifest = await (await fetch('/golden/manifest.json')).json();
  manifest.types = manifest.types.filter((t: { type: string }) => t.type === 'q4_0' || t.type === 'q4_1');
  const files = new Map<string, Uint8Array>();
  const paths = ['inputs/activation.f32'];
  for (const t of manifest.types as { files: Record<string, string> }[])
    for (const c of manifest.cases as { name: string }[])
      for (const f of Object.values(t.files)) paths.push(f.replace('CASE', c.name));
  for (const p of paths) files.set(p, new Uint8Array(await (await fetch(`/golden/${p}`)).arrayBuffer()));
  files.set('manifest.json', new TextEncoder().encode(JSON.stringify(manifest)));
  return loadGoldenDots((p) => {
    const f = files.get(p);
    if (f === undefined) throw new Error(`golden file ${p} not fetched`);
    return f;
  });
}

/** stories260K-Q4_0 (ggml activations): a prompt and 24 decode steps' logits, and 100 greedy ids. */
async function storiesQ4_0(backend: Backend, bytes: Uint8Array, prompt: number[]) {
  const model = await loadModel(bytes, { backend, contextSize: 256, matmulActivations: 'ggml' });
  const s = await model.createSession();
  const parts: Float32Array[] = [(await s.evaluate(prompt)).slice()];
  for (let i = 0; i < 24; i++) parts.push((await s.evaluate([prompt[(i * 7) % prompt.length]])).slice());
  s.dispose();
  const { ids } = await model.generate([1], { temperature: 0, maxTokens: 100 }).collect();
  await model.dispose();
  const logits = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    logits.set(p, o);
    o += p.length;
  }
  return { logits, ids };
}

try {
  const relaxed = (await createBackend('wasm', { threads, relaxedSimd: true })) as WasmBackend;
  const plain = (await createBackend('wasm', { threads, relaxedSimd: false })) as WasmBackend;
  const matmuls = await compareMatmuls(relaxed, plain);
  const f32Bytes = new Uint8Array(await (await fetch('/stories260K.gguf')).arrayBuffer());
  const q4Bytes = new Uint8Array(await (await fetch('/stories260K-Q4_0.gguf')).arrayBuffer());
  const prompt = [1, 403, 407, 261, 378, 429, 395, 283, 365, 308, 271, 260, 437, 280, 267, 302];
  const qr = await storiesQ4_0(relaxed, q4Bytes, prompt);
  const qp = await storiesQ4_0(plain, q4Bytes, prompt);
  // The F32 gold through the relaxed build (its q4_0 kernels are not used there; everything else must still work).
  const m = await loadModel(f32Bytes, { backend: relaxed, contextSize: 256 });
  const { ids } = await m.generate([1], { temperature: 0, maxTokens: 200 }).collect();
  await m.dispose();
  const conf = await conformance(await goldenDots());
  out.__nibble = {
    relaxed: relaxed.info,
    plain: plain.info,
    threads: [relaxed.threads, plain.threads],
    matmuls,
    q4Logits: { length: qr.logits.length, firstDiff: sameBits(qr.logits, qp.logits) },
    q4Ids: { relaxed: qr.ids, plain: qp.ids },
    ids,
    conformance: conf,
  };
  relaxed.dispose();
  plain.dispose();
} catch (e) {
  out.__nibble = { error: String((e as Error)?.stack ?? e) };
}
