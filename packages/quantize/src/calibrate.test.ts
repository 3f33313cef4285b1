// Calibration on stories260K: the importance matrix of layer 0's attention inputs equals an independent float64
// computation from the file's own tensors (RMS-normed token embeddings times attn_norm), and the bookkeeping is
// llama-imatrix's (chunks, counts, which weights).
import '@nibble/backend-js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseGguf } from '@nibble/gguf';
import { loadModel } from '@nibble/runner/node';
import { describe, expect, it } from 'vitest';
import { computeImatrix } from './calibrate.js';
import { QuantizeError } from './errors.js';

const fixtures = fileURLToPath(new URL('../../../fixtures/', import.meta.url));
const modelPath = `${fixtures}models/stories260K.gguf`;
const text = readFileSync(`${fixtures}text/tinyshakespeare.txt`, 'utf8').slice(0, 20000);

describe('computeImatrix', () => {
  it("layer 0's attention inputs match a float64 computation; counts and names are llama-imatrix's", async () => {
    const model = await loadModel(modelPath, { backend: 'js', contextSize: 64 });
    try {
      const im = await computeImatrix(model, text, { contextSize: 64, chunks: 3, dataset: 'tinyshakespeare.txt' });
      expect(im.chunkCount).toBe(3);
      expect(im.chunkSize).toBe(64);
      expect(im.datasets).toEqual(['tinyshakespeare.txt']);
      const names = [...im.entries.keys()].sort();
      expect(names.length).toBe(5 * 7);
      expect(names.every((n) => n.startsWith('blk.'))).toBe(true);
      for (const e of im.entries.values()) expect(e.counts[0]).toBe(3 * 64);

      // Independent: tokens as computeImatrix cuts them, x = rmsnorm(tok_embd[t]) * attn_norm, summed in float64.
      const file = parseGguf(new Uint8Array(readFileSync(modelPath)));
      const emb = new Float32Array(file.readTensorSync('token_embd.weight').data.slice().buffer);
      const norm = new Float32Array(file.readTensorSync('blk.0.attn_norm.weight').data.slice().buffer);
      const eps = file.metadata.get('llama.attention.layer_norm_rms_epsilon') as number;
      const dim = norm.length;
      const tokens = model.tokenizer.encode(text, true);
      const want = new Float64Array(dim);
      for (let c = 0; c < 3; c++) {
        for (let i = 0; i < 64; i++) {
          const t = i === 0 ? (model.tokenizer.bosId as number) : tokens[c * 64 + i];
          let ss = 0;
          for (let j = 0; j < dim; j++) ss += emb[t * dim + j] ** 2;
          const scale = 1 / Math.sqrt(ss / dim + eps);
          for (let j = 0; j < dim; j++) want[j] += (emb[t * dim + j] * scale * norm[j]) ** 2;
        }
      }
      for (const w of ['attn_q', 'attn_k', 'attn_v']) {
        const sums = im.entries.get(`blk.0.${w}.weight`)?.sums as Float32Array;
        for (let j = 0; j < dim; j++)
          expect(Math.abs(sums[j] - want[j]), `${w} column ${j}`).toBeLessThan(2e-5 * want[j]);
      }
    } finally {
      await model.dispose();
    }
  });
  it('refuses a text shorter than two chunks and bad counts', async () => {
    const model = await loadModel(modelPath, { backend: 'js', contextSize: 64 });
    try {
      await expect(computeImatrix(model, 'To be.', { contextSize: 64 })).rejects.toThrow(QuantizeError);
      await expect(computeImatrix(model, text, { contextSize: 65 })).rejects.toThrow(/2\.\.64/);
      await expect(computeImatrix(model, text, { contextSize: 32, chunks: 0 })).rejects.toThrow(/chunks/);
    } finally {
      await model.dispose();
    }
  });
});
