/**
 * Synthetic llama-shaped GGUF files for the GPU benchmark, in Q4_0 or Q8_0: random blocks (random quants, a small
 * positive fp16 scale patched into every block, so every weight is finite), f32 norms near 1, and the tokenizer of
 * fixtures/vocab/ggml-vocab-llama-spm.gguf so llama.cpp loads them too. The same idea as benchmarks/gguf/generate.ts
 * (TinyLlama Q4_0), for the 7B shape and for Q8_0 as well. Written through a temporary file (fileSink).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { GgufWriter } from '@nibble/gguf';
import { fileSink, openGgufFile } from '@nibble/gguf/node';

/** Shape of a llama-style model. */
export interface LlamaShape {
  readonly name: string;
  readonly dim: number;
  readonly hidden: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly vocab: number;
}

/** TinyLlama 1.1B (the 620 MB Q4_0 file of issue 13) and Llama 2 7B (3.8 GB in Q4_0). */
export const shapes: Readonly<Record<'tinyllama' | 'llama7b' | 'tiny', LlamaShape>> = Object.freeze({
  tinyllama: { name: 'tinyllama', dim: 2048, hidden: 5632, layers: 22, heads: 32, kvHeads: 4, vocab: 32000 },
  llama7b: { name: 'llama7b', dim: 4096, hidden: 11008, layers: 32, heads: 32, kvHeads: 32, vocab: 32000 },
  /** For checking the benchmark on a software adapter. */
  tiny: { name: 'tiny', dim: 256, hidden: 512, layers: 2, heads: 4, kvHeads: 2, vocab: 32000 },
});

export type BenchDType = 'q4_0' | 'q8_0';

/** xorshift128: the same bytes on every machine. */
function fillRandom(bytes: Uint8Array, state: Uint32Array): void {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  let [x, y, z, w] = state;
  for (let i = 0; i < words.length; i++) {
    const t = x ^ (x << 11);
    x = y;
    y = z;
    z = w;
    w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    words[i] = w;
  }
  for (let i = words.length * 4; i < bytes.length; i++) bytes[i] = (w >>> (8 * (i & 3))) & 0xff;
  state.set([x, y, z, w]);
}

/**
 * Random blocks of `dtype` for n weights. Q4_0 scales in [2^-8, 2^-4) (as benchmarks/gguf), Q8_0 scales 16 times
 * smaller (its quants are 16 times larger), so activations keep similar magnitudes through the layers.
 */
export function randomBlocks(dtype: BenchDType, n: number, state: Uint32Array): Uint8Array {
  const bpb = dtype === 'q4_0' ? 18 : 34;
  const bytes = new Uint8Array((n / 32) * bpb);
  fillRandom(bytes, state);
  const e0 = dtype === 'q4_0' ? 7 : 3;
  for (let b = 0; b < bytes.length; b += bpb)
    bytes[b + 1] = ((e0 + ((bytes[b + 1] >>> 2) & 3)) << 2) | (bytes[b + 1] & 3);
  return bytes;
}

function randomNorm(n: number, state: Uint32Array): Float32Array {
  const r = new Uint8Array(n);
  fillRandom(r, state);
  return Float32Array.from(r, (v) => 0.75 + v / 512);
}

/**
 * Writes a synthetic model; `vocabFile` is a GGUF whose `tokenizer.*` metadata is copied.
 *
 * @example
 * ```ts
 * await writeModel('/tmp/m.gguf', shapes.tinyllama, 'q8_0', 'fixtures/vocab/ggml-vocab-llama-spm.gguf');
 * ```
 */
export async function writeModel(path: string, s: LlamaShape, dtype: BenchDType, vocabFile: string): Promise<void> {
  const kvDim = (s.dim / s.heads) * s.kvHeads;
  mkdirSync(dirname(path), { recursive: true });
  const w = new GgufWriter(await fileSink(path));
  const m = w.metadata;
  m.setString('general.architecture', 'llama');
  m.setString('general.name', `nibble-bench-${s.name}-${dtype}`);
  m.setU32('general.file_type', dtype === 'q4_0' ? 2 : 7);
  m.setU32('general.quantization_version', 2);
  m.setU32('llama.context_length', 4096);
  m.setU32('llama.embedding_length', s.dim);
  m.setU32('llama.block_count', s.layers);
  m.setU32('llama.feed_forward_length', s.hidden);
  m.setU32('llama.attention.head_count', s.heads);
  m.setU32('llama.attention.head_count_kv', s.kvHeads);
  m.setU32('llama.rope.dimension_count', s.dim / s.heads);
  m.setF32('llama.rope.freq_base', 10000);
  m.setF32('llama.attention.layer_norm_rms_epsilon', 1e-5);
  m.setU32('llama.vocab_size', s.vocab);
  const spm = await openGgufFile(vocabFile);
  m.copyFrom(spm, (k) => k.startsWith('tokenizer.'));
  await spm.close();
  const plan: [string, BenchDType | 'f32', number[]][] = [
    ['token_embd.weight', dtype, [s.vocab, s.dim]],
    ['output_norm.weight', 'f32', [s.dim]],
    ['output.weight', dtype, [s.vocab, s.dim]],
  ];
  for (let l = 0; l < s.layers; l++) {
    plan.push(
      [`blk.${l}.attn_norm.weight`, 'f32', [s.dim]],
      [`blk.${l}.attn_q.weight`, dtype, [s.dim, s.dim]],
      [`blk.${l}.attn_k.weight`, dtype, [kvDim, s.dim]],
      [`blk.${l}.attn_v.weight`, dtype, [kvDim, s.dim]],
      [`blk.${l}.attn_output.weight`, dtype, [s.dim, s.dim]],
      [`blk.${l}.ffn_norm.weight`, 'f32', [s.dim]],
      [`blk.${l}.ffn_gate.weight`, dtype, [s.hidden, s.dim]],
      [`blk.${l}.ffn_up.weight`, dtype, [s.hidden, s.dim]],
      [`blk.${l}.ffn_down.weight`, dtype, [s.dim, s.hidden]],
    );
  }
  for (const [name, dt, shape] of plan) w.addTensor({ name, dtype: dt, shape });
  const state = new Uint32Array([0x12345678, 0x9abcdef0, 0x0fedcba9, 0x87654321]);
  try {
    for (const [name, dt, shape] of plan) {
      const n = shape.reduce((a, b) => a * b, 1);
      await w.writeTensor(name, dt === 'f32' ? randomNorm(n, state) : randomBlocks(dt, n, state));
    }
    await w.finish();
  } catch (e) {
    await w.abort(e);
    throw e;
  }
}

/**
 * The path of a model under `dir`, written on first use.
 *
 * @example
 * ```ts
 * const path = await modelPath('/tmp/models', shapes.llama7b, 'q4_0', vocab);
 * ```
 */
export async function modelPath(dir: string, s: LlamaShape, dtype: BenchDType, vocabFile: string): Promise<string> {
  const path = join(dir, `${s.name}-${dtype}.gguf`);
  if (!existsSync(path)) await writeModel(path, s, dtype, vocabFile);
  return path;
}
