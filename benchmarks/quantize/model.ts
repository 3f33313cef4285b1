/**
 * The quantize benchmark's input: a TinyLlama-1.1B-shaped F16 GGUF (2.2 GB; the shape of ../gguf/generate.ts) with
 * random weights, norms F32, the llama SPM vocabulary of fixtures/vocab. Written once under benchmarks/.cache/.
 *
 * Weights are random f16 bits with the exponent kept in 2^-9..2^-2 (and random signs and mantissas), so every value
 * is finite and of the size real weights have; no float is converted, so writing 2.2 GB takes seconds.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GgufWriter } from '@nibble/gguf';
import { fileSink, openGgufFile } from '@nibble/gguf/node';
import { type LlamaShape, llamaTensors, tinyLlamaShape } from '../gguf/generate.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');

/** A small shape for checking the benchmark works (rows of 256 so every preset keeps its own types). */
export const smallShape: Readonly<LlamaShape> = Object.freeze({
  dim: 256,
  hidden: 768,
  layers: 4,
  heads: 8,
  kvHeads: 2,
  vocab: 32000,
  contextLength: 512,
});

function randomF16(n: number, state: Uint32Array): Uint16Array {
  const out = new Uint16Array(n);
  let [x, y, z, w] = state;
  for (let i = 0; i < n; i += 2) {
    const t = x ^ (x << 11);
    x = y;
    y = z;
    z = w;
    w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    // Per half: sign, exponent 6..13 (2^-9..2^-2), 10 random mantissa bits.
    const a = w & 0xffff;
    const b = w >>> 16;
    out[i] = (a & 0x83ff) | ((6 + ((a >>> 10) & 7)) << 10);
    if (i + 1 < n) out[i + 1] = (b & 0x83ff) | ((6 + ((b >>> 10) & 7)) << 10);
  }
  state.set([x, y, z, w]);
  return out;
}

/**
 * Writes the F16 model (atomically).
 *
 * @example
 * ```ts
 * await writeF16Model('/tmp/m.gguf', smallShape);
 * ```
 */
export async function writeF16Model(path: string, shape: LlamaShape = tinyLlamaShape): Promise<void> {
  const { dim, hidden, layers, heads, kvHeads, contextLength } = shape;
  const w = new GgufWriter(await fileSink(path));
  const m = w.metadata;
  m.setString('general.architecture', 'llama');
  m.setString('general.name', 'nibble-bench-tinyllama-shape-f16');
  m.setU32('general.file_type', 1);
  m.setU32('llama.context_length', contextLength);
  m.setU32('llama.embedding_length', dim);
  m.setU32('llama.block_count', layers);
  m.setU32('llama.feed_forward_length', hidden);
  m.setU32('llama.attention.head_count', heads);
  m.setU32('llama.attention.head_count_kv', kvHeads);
  m.setU32('llama.rope.dimension_count', dim / heads);
  m.setF32('llama.rope.freq_base', 10000);
  m.setF32('llama.attention.layer_norm_rms_epsilon', 1e-5);
  const spm = await openGgufFile(join(repo, 'fixtures/vocab/ggml-vocab-llama-spm.gguf'));
  m.copyFrom(spm, (k) => k.startsWith('tokenizer.'));
  await spm.close();
  const plan = llamaTensors(shape, 'f16');
  for (const [name, dtype, s] of plan) w.addTensor({ name, dtype, shape: s });
  const state = new Uint32Array([0x9e3779b9, 0x7f4a7c15, 0x94d049bb, 0x2545f491]);
  try {
    for (const [name, dtype, s] of plan) {
      const n = s.reduce((a, b) => a * b, 1);
      await w.writeTensor(name, dtype === 'f16' ? randomF16(n, state) : new Float32Array(n).fill(1));
    }
    await w.finish();
  } catch (e) {
    await w.abort(e);
    throw e;
  }
}

/**
 * The path of the model of a shape, written on first use under benchmarks/.cache/: the small shape, or the
 * TinyLlama shape with `layers` blocks (22, the real model's count, is the 2.2 GB file; fewer keep every tensor's
 * real size, the embeddings included, in a smaller file).
 */
export async function f16ModelPath(small: boolean, layers = tinyLlamaShape.layers): Promise<string> {
  const name = small
    ? 'small-shape-f16.gguf'
    : layers === tinyLlamaShape.layers
      ? 'tinyllama-shape-f16.gguf'
      : `tinyllama-shape-${layers}layers-f16.gguf`;
  const path = join(here, '..', '.cache', name);
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    await writeF16Model(path, small ? smallShape : { ...tinyLlamaShape, layers });
  }
  return path;
}
