// The WebAssembly quantizers against @nibble/formats' TypeScript codecs (themselves checked against ggml's bytes):
// every golden input, with and without importance weights, then random and extreme rows; and the committed module is
// what the build script makes from assembly/quantizers.ts.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getFormat } from '@nibble/formats';
import type { DTypeName } from '@nibble/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadQuantizerModule, WasmQuantizers, wasmTypes } from './wasm.js';
import { quantizersWasm } from './wasm-module.js';

const golden = fileURLToPath(new URL('../../../fixtures/golden/', import.meta.url));
const f32 = (path: string) => {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
const seed = Number(process.env.FC_SEED ?? 20261202);

interface Case {
  name: string;
  values: Float32Array;
  rowLength: number;
}
const synthetic = JSON.parse(readFileSync(`${golden}ggml-synthetic/manifest.json`, 'utf8')) as {
  cases: { name: string; cols: number; file: string }[];
};
const cases: Case[] = [
  ...synthetic.cases.map((c) => ({
    name: c.name,
    values: f32(`${golden}ggml-synthetic/${c.file}`),
    rowLength: c.cols,
  })),
  { name: 'stories260K token_embd', values: f32(`${golden}ggml-real/stories260K-token_embd.f32`), rowLength: 256 },
  { name: 'edge rows', values: f32(`${golden}ggml-real/edge-rows.f32`), rowLength: 256 },
];
const importance = {
  lognormal256: f32(`${golden}ggml-imatrix/importance-lognormal256.f32`),
  lognormal1024: f32(`${golden}ggml-imatrix/importance-lognormal1024.f32`),
  ones1024: f32(`${golden}ggml-imatrix/importance-ones1024.f32`),
  sparse1024: f32(`${golden}ggml-imatrix/importance-sparse1024.f32`),
};

function both(q: WasmQuantizers, type: DTypeName, values: Float32Array, rowLength: number, imp?: Float32Array) {
  // The WASM kernels write ggml's bytes for every input, overflowing scales included: compare with 'keep'.
  const want = getFormat(type).quantize(values, { rowLength, importance: imp, onOverflow: 'keep' });
  const got = new Uint8Array(want.length);
  expect(q.quantize(type, values, rowLength, imp, got)).toBe(true);
  return { want, got };
}

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

describe('WebAssembly quantizers are the TypeScript codecs, bit for bit', async () => {
  const q = new WasmQuantizers(await loadQuantizerModule());
  for (const type of wasmTypes) {
    for (const c of cases) {
      const imps =
        c.rowLength === 256 ? [undefined, importance.lognormal256] : [undefined, ...Object.values(importance).slice(1)];
      it(`${type}, ${c.name}: every importance vector`, () => {
        for (const imp of imps) {
          if (c.values.some((v) => !Number.isFinite(v))) continue; // the codecs refuse NaN; covered in quantize.test
          const { want, got } = both(q, type, c.values, c.rowLength, imp);
          expect(firstDiff(got, want), `first differing byte (importance ${imp ? imp.length : 'none'})`).toBe(-1);
        }
      });
    }
    it(`${type}: random rows of mixed scales, with and without importance`, () => {
      fc.assert(
        fc.property(
          fc.array(fc.float({ noNaN: true, noDefaultInfinity: true, min: -1e4, max: 1e4 }), {
            minLength: 256,
            maxLength: 256,
          }),
          // Positive weights: with weights of 0 the formats' TypeScript Q4_K differs from ggml on some rows (it
          // saturates a rounding that ggml wraps); those rows are judged against ggml's own bytes below.
          fc.array(fc.float({ noNaN: true, noDefaultInfinity: true, min: Math.fround(0.01), max: 1e3 }), {
            minLength: 256,
            maxLength: 256,
          }),
          fc.constantFrom(1, 1e-3, 1e-6, 1e3),
          fc.boolean(),
          (xs, ws, scale, useImp) => {
            const values = Float32Array.from(xs, (v) => v * scale);
            const imp = useImp ? Float32Array.from(ws) : undefined;
            const { want, got } = both(q, type, values, 256, imp);
            expect(firstDiff(got, want)).toBe(-1);
          },
        ),
        { seed, numRuns: 300 },
      );
    });
  }
  it('refuses types it does not have', () => {
    expect(q.quantize('q4_0', new Float32Array(32), 32, undefined, new Uint8Array(18))).toBe(false);
  });
});

describe("WebAssembly quantizers are ggml's bytes on adversarial rows", async () => {
  // fixtures/quantize/kquant: ggml_quantize_chunk on sparse, tiny, huge-among-tiny and constant rows, with sparse,
  // tiny and log-normal importance vectors (one block per row).
  const q = new WasmQuantizers(await loadQuantizerModule());
  const dir = fileURLToPath(new URL('../../../fixtures/quantize/kquant/', import.meta.url));
  const rows = f32(`${dir}rows.f32`);
  const imps = f32(`${dir}importance.f32`);
  const n = rows.length / 256;
  for (const [type, size] of [
    ['q4_K', 144],
    ['q5_K', 176],
    ['q6_K', 210],
  ] as const) {
    it(`${type}: ${n} rows without and with importance`, () => {
      const plain = new Uint8Array(readFileSync(`${dir}${type}.q`));
      const got = new Uint8Array(plain.length);
      q.quantize(type, rows, 256, undefined, got);
      expect(firstDiff(got, plain)).toBe(-1);
      const weighted = new Uint8Array(readFileSync(`${dir}${type}.imatrix.q`));
      for (let r = 0; r < n; r++) {
        const one = new Uint8Array(size);
        q.quantize(type, rows.subarray(256 * r, 256 * r + 256), 256, imps.subarray(256 * r, 256 * r + 256), one);
        expect(firstDiff(one, weighted.subarray(size * r, size * r + size)), `row ${r}`).toBe(-1);
      }
    });
  }
});

describe('the committed module', () => {
  it('is what scripts/build-wasm.mjs makes from assembly/quantizers.ts', async () => {
    const url = new URL('../scripts/build-wasm.mjs', import.meta.url).href;
    const { generate } = (await import(url)) as { generate(): Promise<string> };
    const src = await generate();
    expect(src).toContain(`'${quantizersWasm}'`);
  }, 120_000);
});
