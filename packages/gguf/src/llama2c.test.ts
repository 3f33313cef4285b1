import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { blobSink, importLlama2c, parseGguf, readLlama2cConfig, tokenizerMetadata } from './index.js';

const model = readFileSync('fixtures/models/stories260K.bin');
const tokenizer = readFileSync('fixtures/models/tok512.bin');
const reference = readFileSync('fixtures/models/stories260K.gguf');

async function convert(options = {}): Promise<Uint8Array> {
  const out = blobSink();
  await importLlama2c(new Uint8Array(model), new Uint8Array(tokenizer), out, options);
  return new Uint8Array(await out.blob().arrayBuffer());
}

describe('llama2.c import', () => {
  it("gives tensors bit-identical to llama.cpp's conversion, and the same tokenizer metadata", async () => {
    const ours = parseGguf(await convert());
    const ref = parseGguf(new Uint8Array(reference));
    expect(ours.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(
      ref.tensors.map((t) => [t.name, t.dtype, t.shape]),
    );
    for (const t of ref.tensors) {
      expect(Buffer.compare(ours.readTensorSync(t.name).data, ref.readTensorSync(t.name).data)).toBe(0);
    }
    expect(tokenizerMetadata(ours)).toEqual(tokenizerMetadata(ref));
    // Our default context length is the checkpoint's seq_len; llama.cpp's converter wrote its own default of 2048.
    expect(ours.metadata.get('llama.context_length')).toBe(readLlama2cConfig(model).seqLen);
  });

  it("with llama.cpp's context length, the whole file is byte-identical", async () => {
    const ours = await convert({ contextLength: 2048 });
    expect(Buffer.compare(ours, reference)).toBe(0);
  });

  it('refuses a truncated checkpoint or tokenizer', async () => {
    await expect(importLlama2c(model.subarray(0, 1000), tokenizer, blobSink())).rejects.toMatchObject({
      code: 'E_GGUF_LLAMA2C',
    });
    await expect(importLlama2c(model, tokenizer.subarray(0, 100), blobSink())).rejects.toMatchObject({
      code: 'E_GGUF_LLAMA2C',
    });
    expect(() => readLlama2cConfig(new Uint8Array(28))).toThrow(/dim is 0/);
  });
});
