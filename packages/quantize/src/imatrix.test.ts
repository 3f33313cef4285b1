// Importance matrices: llama.cpp's files read and written back byte for byte, the legacy layout, accumulation
// against a float64 reference, and every malformed file a typed error.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { blobSink, GgufWriter, parseGguf } from '@nibble/gguf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QuantizeError } from './errors.js';
import { Imatrix, ImatrixCollector, imatrixToBlob, readImatrix, readLegacyImatrix } from './imatrix.js';
import { planQuantization } from './quantize.js';

const dir = fileURLToPath(new URL('../../../fixtures/quantize/imatrix/', import.meta.url));
const read = (f: string) => new Uint8Array(readFileSync(`${dir}${f}`));
const seed = Number(process.env.FC_SEED ?? 20261201);

describe("llama-imatrix's GGUF layout", () => {
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.gguf'))) {
    it(`${f}: read, then written back identical to ggml's gguf writer`, async () => {
      const bytes = read(f);
      const im = readImatrix(bytes);
      expect(im.size).toBeGreaterThan(0);
      expect(im.datasets).toEqual(['synthetic-calibration.txt']);
      expect(im.chunkCount).toBe(7);
      expect(im.chunkSize).toBe(64);
      const again = new Uint8Array(await (await imatrixToBlob(im)).arrayBuffer());
      expect(Buffer.compare(again, bytes)).toBe(0);
    });
  }
  it('importance is in_sum2 / count in float32', () => {
    const im = readImatrix(read('l1-mha-tied-f16.imatrix.gguf'));
    const [name, e] = [...im.entries][0];
    const v = im.importance(name) as Float32Array;
    expect(e.counts[0]).toBe(448);
    for (let i = 0; i < v.length; i++) expect(v[i]).toBe(Math.fround(e.sums[i] / 448));
    expect(im.importance('no.such.weight')).toBeUndefined();
  });
});

describe('the legacy .dat layout', () => {
  for (const model of ['l1-mha-tied-f16', 'stories260K']) {
    it(`${model}: the same weights as the GGUF file, to float32 rounding`, () => {
      const legacy = readImatrix(read(`${model}.imatrix.dat`));
      const gguf = readImatrix(read(`${model}.imatrix.gguf`));
      expect(legacy.legacy).toBe(true);
      expect(legacy.chunkCount).toBe(7);
      expect(legacy.datasets).toEqual(['synthetic-calibration.txt']);
      expect([...legacy.entries.keys()].sort()).toEqual([...gguf.entries.keys()].sort());
      for (const name of gguf.entries.keys()) {
        const a = legacy.importance(name) as Float32Array;
        const b = gguf.importance(name) as Float32Array;
        for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(2 ** -22 * b[i]);
      }
    });
  }
  it('rejects truncated and absurd files with a typed error', () => {
    const good = read('l1-mha-tied-f16.imatrix.dat');
    const bad = [
      good.subarray(0, 2),
      good.subarray(0, 40),
      good.subarray(0, good.byteLength - 100),
      Uint8Array.of(0, 0, 0, 0),
      Uint8Array.of(0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0),
      (() => {
        const b = good.slice();
        new DataView(b.buffer).setInt32(4, -5, true); // name length
        return b;
      })(),
    ];
    for (const b of bad) {
      const err = (() => {
        try {
          readLegacyImatrix(b);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(QuantizeError);
      expect((err as QuantizeError).code).toBe('E_QUANT_IMATRIX_FORMAT');
    }
  });
});

async function gguf(build: (w: GgufWriter) => Promise<void>): Promise<Uint8Array> {
  const sink = blobSink();
  const w = new GgufWriter(sink);
  await build(w);
  await w.finish();
  return new Uint8Array(await sink.blob().arrayBuffer());
}

describe('malformed GGUF imatrix files', () => {
  const meta = (w: GgufWriter) => {
    w.metadata.set('imatrix.datasets', ['x'], { array: 'string' });
    w.metadata.setU32('imatrix.chunk_count', 1);
    w.metadata.setU32('imatrix.chunk_size', 512);
  };
  it('no metadata, a sum without counts, F16 sums, no tensors, NaN sums: each a typed error', async () => {
    const cases = [
      await gguf(async (w) => {
        w.addTensor({ name: 'a.weight.in_sum2', dtype: 'f32', shape: [32] }).addTensor({
          name: 'a.weight.counts',
          dtype: 'f32',
          shape: [1],
        });
        await w.writeTensor('a.weight.in_sum2', new Float32Array(32));
        await w.writeTensor('a.weight.counts', new Float32Array(1));
      }),
      await gguf(async (w) => {
        meta(w);
        w.addTensor({ name: 'a.weight.in_sum2', dtype: 'f32', shape: [32] });
        await w.writeTensor('a.weight.in_sum2', new Float32Array(32));
      }),
      await gguf(async (w) => {
        meta(w);
        w.addTensor({ name: 'a.weight.in_sum2', dtype: 'f16', shape: [32] }).addTensor({
          name: 'a.weight.counts',
          dtype: 'f32',
          shape: [1],
        });
        await w.writeTensor('a.weight.in_sum2', new Uint8Array(64));
        await w.writeTensor('a.weight.counts', new Float32Array(1));
      }),
      await gguf(async (w) => meta(w)),
    ];
    for (const [i, b] of cases.entries()) {
      const err = (() => {
        try {
          readImatrix(b);
        } catch (e) {
          return e;
        }
      })();
      expect(err, `case ${i}`).toBeInstanceOf(QuantizeError);
      expect((err as QuantizeError).code, `case ${i}`).toBe('E_QUANT_IMATRIX_FORMAT');
    }
    const nan = await gguf(async (w) => {
      meta(w);
      w.addTensor({ name: 'a.weight.in_sum2', dtype: 'f32', shape: [32] }).addTensor({
        name: 'a.weight.counts',
        dtype: 'f32',
        shape: [1],
      });
      await w.writeTensor('a.weight.in_sum2', new Float32Array(32).fill(Number.NaN));
      await w.writeTensor('a.weight.counts', Float32Array.of(5));
    });
    expect(() => readImatrix(nan)).toThrow(/a\.weight: non-finite sum NaN at column 0/);
  });
  it('an entry of the wrong size is refused before anything is written (token_embd is ignored)', () => {
    const stories = parseGguf(
      new Uint8Array(
        readFileSync(fileURLToPath(new URL('../../../fixtures/models/stories260K.gguf', import.meta.url))),
      ),
    );
    const entry = (n: number) => ({ sums: new Float32Array(n).fill(1), counts: Float64Array.of(1) });
    const info = { datasets: [], chunkCount: 1, chunkSize: 1 };
    const wrong = new Imatrix(new Map([['blk.0.attn_q.weight', entry(32)]]), info);
    expect(() => planQuantization(stories, { preset: 'Q4_0', imatrix: wrong })).toThrow(
      /blk\.0\.attn_q\.weight: imatrix has 32 values, the tensor needs 64/,
    );
    const embd = new Imatrix(new Map([['token_embd.weight', entry(32)]]), info);
    expect(planQuantization(stories, { preset: 'Q4_0', imatrix: embd }).tensors.some((t) => t.imatrix)).toBe(false);
  });
});

describe('ImatrixCollector', () => {
  it('sums squared inputs per column and counts tokens, like a float64 reference', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer(),
        (cols8, rows, batches, s) => {
          const cols = cols8 * 8;
          let state = s >>> 0 || 1;
          const next = () => {
            state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
            return state / 2 ** 32 - 0.5;
          };
          const c = new ImatrixCollector();
          // Reference: column-major pass in float64, independent of the collector's row-major loop.
          const want = new Float64Array(cols);
          for (let b = 0; b < batches; b++) {
            const x = Float32Array.from({ length: rows * cols }, () => next() * 8);
            for (let j = 0; j < cols; j++) for (let r = 0; r < rows; r++) want[j] += x[r * cols + j] ** 2;
            c.add('w', x, rows, cols);
          }
          const im = c.toImatrix({ datasets: ['t'], chunkCount: batches, chunkSize: rows });
          const e = im.entries.get('w');
          expect(e?.counts[0]).toBe(rows * batches);
          const imp = im.importance('w') as Float32Array;
          for (let j = 0; j < cols; j++) {
            expect(e?.sums[j]).toBe(Math.fround(want[j]));
            const mean = want[j] / (rows * batches);
            expect(Math.abs(imp[j] - mean)).toBeLessThanOrEqual(mean * 2 ** -22 + 1e-30);
          }
        },
      ),
      { seed, numRuns: 60 },
    );
  });
  it('refuses inconsistent shapes and non-finite activations', () => {
    const c = new ImatrixCollector();
    c.add('w', new Float32Array(8), 2, 4);
    expect(() => c.add('w', new Float32Array(8), 1, 8)).toThrow(QuantizeError);
    expect(() => c.add('v', new Float32Array(4), 2, 4)).toThrow(QuantizeError);
    expect(() => c.add('u', Float32Array.of(Number.POSITIVE_INFINITY, 1), 1, 2)).toThrow(/u: non-finite/);
  });
});
