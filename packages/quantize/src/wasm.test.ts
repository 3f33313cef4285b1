// The WebAssembly quantizers against ggml's own bytes (the adversarial rows of fixtures/quantize/kquant) and against
// @nibble/formats' TypeScript codecs (themselves checked against ggml's bytes) on every golden input, with and
// without importance weights, then on random rows; the F16 and BF16 inputs they decode; their NaN and overflow
// reports; and that the committed module is what the build script makes from assembly/.
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

/** Every quantized type the module writes (the float ones are checked on their own below). */
const quantized = [...wasmTypes].filter((t) => t !== 'f32' && t !== 'f16' && t !== 'bf16');

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
  { name: 'overflowing scales', values: f32(`${golden}ggml-overflow/input.f32`), rowLength: 256 },
  { name: 'known-answer input', values: f32(`${golden}ggml-kat/kat_input.f32`), rowLength: 256 },
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
  return a.length === b.length ? -1 : a.length;
}

describe("WebAssembly quantizers are ggml's bytes on adversarial rows", async () => {
  // fixtures/quantize/kquant: ggml_quantize_chunk on sparse, tiny, huge-among-tiny, constant and float32-subnormal
  // rows of 256, alone and with sparse (mostly zero), tiny and log-normal importance vectors, one per row.
  const q = new WasmQuantizers(await loadQuantizerModule());
  const dir = fileURLToPath(new URL('../../../fixtures/quantize/kquant/', import.meta.url));
  const rows = f32(`${dir}rows.f32`);
  const imps = f32(`${dir}importance.f32`);
  const n = rows.length / 256;
  for (const type of quantized) {
    it(`${type}: ${n} rows without and with importance`, () => {
      const plain = new Uint8Array(readFileSync(`${dir}${type}.q`));
      const size = plain.length / n;
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

describe('WebAssembly quantizers are the TypeScript codecs, bit for bit', async () => {
  const q = new WasmQuantizers(await loadQuantizerModule());
  for (const type of wasmTypes) {
    const bs = getFormat(type).info.blockSize;
    for (const c of cases) {
      if (c.rowLength % bs !== 0) continue;
      const imps =
        c.rowLength === 256 ? [undefined, importance.lognormal256] : [undefined, ...Object.values(importance).slice(1)];
      it(`${type}, ${c.name}: every importance vector`, () => {
        expect(c.values.every(Number.isFinite)).toBe(true);
        for (const imp of imps) {
          const { want, got } = both(q, type, c.values, c.rowLength, imp);
          expect(firstDiff(got, want), `first differing byte (importance ${imp ? imp.length : 'none'})`).toBe(-1);
        }
      });
    }
    it(`${type}: random rows of mixed scales, with and without importance (zeros included)`, () => {
      fc.assert(
        fc.property(
          fc.array(fc.float({ noNaN: true, noDefaultInfinity: true, min: -1e4, max: 1e4 }), {
            minLength: 256,
            maxLength: 256,
          }),
          fc.array(fc.oneof(fc.constant(0), fc.float({ noNaN: true, noDefaultInfinity: true, min: 0, max: 1e3 })), {
            minLength: 256,
            maxLength: 256,
          }),
          fc.constantFrom(1, 1e-3, 1e-6, 1e3, 1e-40),
          fc.boolean(),
          (xs, ws, scale, useImp) => {
            const values = Float32Array.from(xs, (v) => v * scale);
            const imp = useImp ? Float32Array.from(ws) : undefined;
            const { want, got } = both(q, type, values, 256, imp);
            expect(firstDiff(got, want)).toBe(-1);
          },
        ),
        { seed, numRuns: type.endsWith('_K') || type.startsWith('iq') ? 150 : 300 },
      );
    });
    it(`${type}: rows that are not a multiple of four blocks (the lanes' spare blocks)`, () => {
      const rowLength = bs === 32 ? 32 * 7 : 256 * 3;
      const x = Float32Array.from({ length: 5 * rowLength }, (_, i) => Math.sin(i * 1.3) * (1 + (i % 29)));
      const imp = Float32Array.from({ length: rowLength }, (_, i) => (i % 5) * 0.7);
      for (const w of [undefined, imp]) {
        const { want, got } = both(q, type, x, rowLength, w);
        expect(firstDiff(got, want)).toBe(-1);
      }
    });
  }
  it('refuses types it does not have', () => {
    expect(q.quantize('q8_K', new Float32Array(256), 256, undefined, new Uint8Array(292))).toBe(false);
  });
});

describe('F16 and BF16 rows', async () => {
  const q = new WasmQuantizers(await loadQuantizerModule());
  it('decode like ggml_fp16_to_fp32 for every finite half', () => {
    const halves = Uint16Array.from({ length: 65536 }, (_, h) => h).filter((h) => (h & 0x7c00) !== 0x7c00);
    const n = halves.length - (halves.length % 32);
    const src = new Uint8Array(halves.buffer, 0, 2 * n);
    const got = new Uint8Array(4 * n);
    expect(q.convert('f16', 'f32', src, 1, n, undefined, got)).toBe(-1);
    const want = getFormat('f16').dequantize(src);
    expect(firstDiff(got, new Uint8Array(want.buffer))).toBe(-1);
  });
  it('quantize as the TypeScript codecs do from their decoded values', () => {
    const x = Float32Array.from({ length: 4 * 256 }, (_, i) => Math.sin(i * 0.37) * (i % 13) * 0.01);
    for (const from of ['f16', 'bf16'] as const) {
      const src = getFormat(from).quantize(x);
      const values = getFormat(from).dequantize(src);
      for (const type of wasmTypes) {
        const want = getFormat(type).quantize(values, { rowLength: 256, onOverflow: 'keep' });
        const got = new Uint8Array(want.length);
        expect(q.convert(from, type, src, 4, 256, undefined, got), `${from} to ${type}`).toBe(-1);
        expect(firstDiff(got, want), `${from} to ${type}`).toBe(-1);
      }
    }
  });
  it('report the first NaN or infinity, and write nothing', () => {
    for (const [from, bad] of [
      ['f16', 0x7e00],
      ['f16', 0xfc00],
      ['bf16', 0x7f80],
      ['bf16', 0xffc1],
    ] as const) {
      const src = new Uint16Array(512).fill(0x3c00);
      src[300] = bad;
      src[400] = bad;
      const dst = new Uint8Array(2 * 8 * 18).fill(7);
      expect(q.convert(from, 'q4_0', new Uint8Array(src.buffer), 2, 256, undefined, dst)).toBe(300);
      expect(dst.every((b) => b === 7)).toBe(true);
    }
    const x = new Float32Array(256);
    x[17] = Number.NEGATIVE_INFINITY;
    expect(q.convert('f32', 'q8_0', new Uint8Array(x.buffer), 1, 256, undefined, new Uint8Array(8 * 34))).toBe(17);
  });
  it('name the first block whose fp16 scale overflows', () => {
    const x = new Float32Array(256).fill(1);
    x.fill(1e8, 96, 128);
    x.fill(1e8, 200, 210);
    const dst = new Uint8Array(8 * 34);
    expect(q.convert('f32', 'q8_0', new Uint8Array(x.buffer), 1, 256, undefined, dst)).toBe(-1);
    expect(q.overflowBlock).toBe(3);
    expect(q.convert('f32', 'q8_0', new Uint8Array(new Float32Array(256).fill(2).buffer), 1, 256, undefined, dst)).toBe(
      -1,
    );
    expect(q.overflowBlock).toBe(-1);
  });
});

describe('the committed module', () => {
  it('is what scripts/build-wasm.mjs makes from assembly/', async () => {
    const url = new URL('../scripts/build-wasm.mjs', import.meta.url).href;
    const { generate } = (await import(url)) as { generate(): Promise<string> };
    const src = await generate();
    expect(src).toContain(`'${quantizersWasm}'`);
  }, 120_000);
});
