/**
 * llama.cpp (through node-llama-cpp) loads what @nibble/gguf writes: every fixture rewritten by our writer, the
 * llama2.c import, and a small llama-shaped Q4_0 model from the benchmark generator. Vocab files are loaded
 * vocab-only and must tokenize like the originals.
 */
import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blobSink, importLlama2c, rewriteGguf } from '@nibble/gguf';
import { fileSink, openGgufFile } from '@nibble/gguf/node';
import { getLlama, type Llama, LlamaLogLevel, type Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyLlamaQ4_0 } from './generate.js';

const sample = 'Once upon a time, a little fox saw the moon. 123 héllo   world\n';

let llama: Llama;
let dir: string;
beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: 'never', maxThreads: 1, logLevel: LlamaLogLevel.disabled });
  dir = await mkdtemp(join(tmpdir(), 'nibble-gguf-llamacpp-'));
});
afterAll(async () => {
  await llama?.dispose();
  await rm(dir, { recursive: true, force: true });
});

async function rewrite(path: string): Promise<string> {
  const out = join(dir, `rw-${path.split('/').pop()}`);
  const file = await openGgufFile(path);
  await rewriteGguf(file, await fileSink(out));
  await file.close();
  return out;
}

/** Tokenizes `sample` with the model at `path` (vocab only), disposing it after. */
async function tokens(path: string, vocabOnly: boolean): Promise<number[]> {
  const model = await llama.loadModel({ modelPath: path, vocabOnly });
  try {
    return [...model.tokenize(sample)];
  } finally {
    await model.dispose();
  }
}

describe('llama.cpp loads files written by @nibble/gguf', () => {
  const models = readdirSync('fixtures/models').filter((f) => f.endsWith('.gguf'));
  it.each(models)('rewritten %s', async (name) => {
    const original = `fixtures/models/${name}`;
    const ours = await rewrite(original);
    const model = await llama.loadModel({ modelPath: ours });
    try {
      expect(model.trainContextSize).toBe(2048);
      expect([...model.tokenize(sample)]).toEqual(await tokens(original, true));
    } finally {
      await model.dispose();
    }
  });

  const vocabs = readdirSync('fixtures/vocab').filter((f) => f.endsWith('.gguf'));
  it.each(vocabs)('rewritten %s (vocab only) tokenizes like the original', async (name) => {
    const original = `fixtures/vocab/${name}`;
    expect(await tokens(await rewrite(original), true)).toEqual(await tokens(original, true));
  });

  it('the llama2.c import of stories260K', async () => {
    const out = blobSink();
    await importLlama2c(
      await readFile('fixtures/models/stories260K.bin'),
      await readFile('fixtures/models/tok512.bin'),
      out,
    );
    const path = join(dir, 'stories260K-from-llama2c.gguf');
    await import('node:fs/promises').then((fs) =>
      out
        .blob()
        .arrayBuffer()
        .then((b) => fs.writeFile(path, Buffer.from(b))),
    );
    const model = await llama.loadModel({ modelPath: path });
    try {
      expect(model.trainContextSize).toBe(512);
      expect([...model.tokenize(sample)]).toEqual(await tokens('fixtures/models/stories260K.gguf', true));
    } finally {
      await model.dispose();
    }
  });

  it('a small llama-shaped Q4_0 model from the benchmark generator, and runs it', async () => {
    const path = join(dir, 'small-q4_0.gguf');
    await writeTinyLlamaQ4_0(path, { dim: 64, hidden: 128, layers: 2, heads: 4, kvHeads: 2, contextLength: 64 });
    const model = await llama.loadModel({ modelPath: path });
    try {
      const context = await model.createContext({ contextSize: 64, threads: 1 });
      try {
        const seq = context.getSequence();
        const first = await seq.evaluate([1, 300, 301] as Token[]).next();
        expect(Number.isInteger(first.value)).toBe(true);
      } finally {
        await context.dispose();
      }
    } finally {
      await model.dispose();
    }
  });
});
