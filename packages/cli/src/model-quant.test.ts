// Quantizing the whole stories260K model must give llama.cpp's own tensor bytes (llama_model_quantize made the
// F16, Q8_0 and Q4_0 files in fixtures/models).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { blobSink, GgufWriter, openGguf, parseGguf } from '@nibble/gguf';
import type { DTypeName } from '@nibble/tensor';
import { describe, expect, it } from 'vitest';
import { isQuantizable, quantizeModel, storedType, tensorType } from './model-quant.js';

const fixture = (rel: string) =>
  new Uint8Array(readFileSync(fileURLToPath(new URL(`../../../fixtures/${rel}`, import.meta.url))));

describe('quantizeModel against llama.cpp', () => {
  const f32 = parseGguf(fixture('models/stories260K.gguf'));
  for (const [type, file] of [
    ['f16', 'stories260K-F16.gguf'],
    ['q8_0', 'stories260K-Q8_0.gguf'],
    ['q4_0', 'stories260K-Q4_0.gguf'],
  ] as [DTypeName, string][]) {
    it(`${type}: every tensor equals llama.cpp's bytes and type`, async () => {
      const sink = blobSink();
      await quantizeModel(f32, type, new GgufWriter(sink));
      const ours = await openGguf(sink.blob());
      const theirs = parseGguf(fixture(`models/${file}`));
      expect(ours.metadata.get('general.file_type')).toBe(theirs.metadata.get('general.file_type'));
      let compared = 0;
      for (const t of ours.tensors) {
        const ref = theirs.getTensor(t.name);
        expect(ref, t.name).toBeDefined();
        expect(t.dtype, t.name).toBe(ref?.dtype);
        expect(t.shape).toEqual(ref?.shape);
        const a = await ours.readTensorBytes(t);
        const b = await theirs.readTensorBytes(t.name);
        expect(Buffer.compare(a, b), `${t.name} bytes`).toBe(0);
        compared++;
      }
      expect(compared).toBe(f32.tensors.length);
      expect(theirs.tensors.length).toBe(ours.tensors.length);
    });
  }
});

describe('llama-quantize rules', () => {
  it('quantizes 2-D weights but not norms or 1-D tensors', () => {
    expect(isQuantizable('blk.0.attn_q.weight', [64, 64])).toBe(true);
    expect(isQuantizable('blk.0.attn_norm.weight', [64])).toBe(false);
    expect(isQuantizable('output_norm.weight', [1, 64])).toBe(false);
    expect(isQuantizable('blk.0.ffn_gate_inp.weight', [8, 64])).toBe(false);
  });
  it("falls back like llama.cpp when rows don't fit the block", () => {
    expect(storedType('q4_0', 64)).toBe('q4_0');
    expect(storedType('q4_0', 172)).toBe('f16');
    expect(storedType('q4_K', 64)).toBe('q5_0');
    expect(storedType('q6_K', 96)).toBe('q8_0');
    expect(storedType('q2_K', 4096)).toBe('q2_K');
    expect(storedType('q3_K', 96)).toBe('iq4_nl');
    expect(tensorType('output.weight', 'q4_0', 64)).toBe('q8_0');
    expect(tensorType('output.weight', 'q4_0', 4096)).toBe('q6_K');
    expect(tensorType('output.weight', 'q8_0', 4096)).toBe('q8_0');
    expect(tensorType('output.weight', 'q4_0', 64, true)).toBe('q4_0');
    expect(tensorType('output.weight', 'f16', 64)).toBe('f16');
  });
});
