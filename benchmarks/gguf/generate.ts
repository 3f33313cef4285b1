/**
 * A 620 MB llama-shaped Q4_0 GGUF with random weights (TinyLlama 1.1B shape: dim 2048, hidden 5632, 22 layers,
 * 32 heads, 4 KV heads, vocab 32000), written through @nibble/gguf's streaming writer, with the tokenizer metadata of
 * fixtures/vocab/ggml-vocab-llama-spm.gguf. Created once under benchmarks/.cache/ and reused by later benchmarks.
 *
 * Random Q4_0 weights are random bytes whose per-block fp16 scale is patched to a small positive normal number, so
 * every block dequantizes to finite values; no floats are quantized.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GgufWriter } from '@nibble/gguf';
import { fileSink, openGgufFile } from '@nibble/gguf/node';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');

/** Shape of a llama-style model. */
export interface LlamaShape {
  dim: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  contextLength: number;
}

/** The model shape, TinyLlama 1.1B. */
export const tinyLlamaShape: Readonly<LlamaShape> = Object.freeze({
  dim: 2048,
  hidden: 5632,
  layers: 22,
  heads: 32,
  kvHeads: 4,
  vocab: 32000,
  contextLength: 2048,
});

/** xorshift128: deterministic and fast, so the file is the same on every machine. */
/**
 * The tensors of a llama-shaped file in llama.cpp's order, `[name, dtype, shape (outermost first)]`: the matrices in
 * `weight`, the norms in f32.
 *
 * @example
 * ```ts
 * for (const [name, dtype, shape] of llamaTensors(tinyLlamaShape, 'q4_0')) writer.addTensor({ name, dtype, shape });
 * ```
 */
export function llamaTensors<T extends string>(shape: LlamaShape, weight: T): [string, T | 'f32', number[]][] {
  const { dim, hidden, layers, heads, kvHeads, vocab } = shape;
  const kvDim = (dim / heads) * kvHeads;
  const plan: [string, T | 'f32', number[]][] = [
    ['token_embd.weight', weight, [vocab, dim]],
    ['output_norm.weight', 'f32', [dim]],
    ['output.weight', weight, [vocab, dim]],
  ];
  for (let l = 0; l < layers; l++) {
    plan.push(
      [`blk.${l}.attn_norm.weight`, 'f32', [dim]],
      [`blk.${l}.attn_q.weight`, weight, [dim, dim]],
      [`blk.${l}.attn_k.weight`, weight, [kvDim, dim]],
      [`blk.${l}.attn_v.weight`, weight, [kvDim, dim]],
      [`blk.${l}.attn_output.weight`, weight, [dim, dim]],
      [`blk.${l}.ffn_norm.weight`, 'f32', [dim]],
      [`blk.${l}.ffn_gate.weight`, weight, [hidden, dim]],
      [`blk.${l}.ffn_up.weight`, weight, [hidden, dim]],
      [`blk.${l}.ffn_down.weight`, weight, [dim, hidden]],
    );
  }
  return plan;
}

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

/** Random Q4_0 blocks (18 bytes: fp16 scale, 16 bytes of nibbles) with scales in [2^-8, 2^-4). */
function randomQ4_0(n: number, state: Uint32Array): Uint8Array {
  const bytes = new Uint8Array((n / 32) * 18);
  fillRandom(bytes, state);
  for (let b = 0; b < bytes.length; b += 18) {
    // fp16 high byte: sign 0, exponent 7..10 (2^-8..2^-5), the top two mantissa bits kept random.
    bytes[b + 1] = ((7 + ((bytes[b + 1] >>> 2) & 3)) << 2) | (bytes[b + 1] & 3);
  }
  return bytes;
}

/** Random f32 norm weights near 1. */
function randomNorm(n: number, state: Uint32Array): Float32Array {
  const r = new Uint8Array(n);
  fillRandom(r, state);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = 0.75 + r[i] / 512;
  return out;
}

/**
 * Writes the benchmark model to `path` (through a temporary file, so a crash never leaves a half file behind).
 * `shape` overrides parts of the TinyLlama shape (tests use a small one; the vocabulary stays 32000).
 *
 * @example
 * ```ts
 * await writeTinyLlamaQ4_0('/tmp/model.gguf');
 * ```
 */
export async function writeTinyLlamaQ4_0(path: string, shape: Partial<LlamaShape> = {}): Promise<void> {
  const { dim, hidden, layers, heads, kvHeads, vocab, contextLength } = { ...tinyLlamaShape, ...shape };
  const w = new GgufWriter(await fileSink(path));
  const m = w.metadata;
  m.setString('general.architecture', 'llama');
  m.setString('general.name', 'nibble-bench-tinyllama-shape-q4_0');
  m.setU32('general.file_type', 2);
  m.setU32('general.quantization_version', 2);
  m.setU32('llama.context_length', contextLength);
  m.setU32('llama.embedding_length', dim);
  m.setU32('llama.block_count', layers);
  m.setU32('llama.feed_forward_length', hidden);
  m.setU32('llama.attention.head_count', heads);
  m.setU32('llama.attention.head_count_kv', kvHeads);
  m.setU32('llama.rope.dimension_count', dim / heads);
  m.setF32('llama.rope.freq_base', 10000);
  m.setF32('llama.attention.layer_norm_rms_epsilon', 1e-5);
  m.setU32('llama.vocab_size', vocab);
  const spm = await openGgufFile(join(repo, 'fixtures/vocab/ggml-vocab-llama-spm.gguf'));
  m.copyFrom(spm, (k) => k.startsWith('tokenizer.'));
  await spm.close();

  const plan = llamaTensors({ dim, hidden, layers, heads, kvHeads, vocab, contextLength }, 'q4_0');
  for (const [name, dtype, shape] of plan) w.addTensor({ name, dtype, shape });
  const state = new Uint32Array([0x12345678, 0x9abcdef0, 0x0fedcba9, 0x87654321]);
  try {
    for (const [name, dtype, shape] of plan) {
      const n = shape.reduce((a, b) => a * b, 1);
      await w.writeTensor(name, dtype === 'q4_0' ? randomQ4_0(n, state) : randomNorm(n, state));
    }
    await w.finish();
  } catch (e) {
    await w.abort(e);
    throw e;
  }
}

/**
 * The path of the benchmark model, creating it on first use (a few seconds; about 620 MB under benchmarks/.cache/).
 *
 * @example
 * ```ts
 * import { tinyLlamaQ4_0Path } from '../gguf/generate.js';
 * const path = await tinyLlamaQ4_0Path();
 * ```
 */
export async function tinyLlamaQ4_0Path(): Promise<string> {
  const path = join(here, '..', '.cache', 'tinyllama-shape-q4_0.gguf');
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    await writeTinyLlamaQ4_0(path);
  }
  return path;
}

/**
 * The Q4_K_M benchmark model: the Q4_0 one requantized by llama-quantize's Q4_K_M rules (`@nibble/quantize`, byte for
 * byte what llama.cpp would write: q4_K with q6_K for the output and half the attn_v / ffn_down), about 640 MB under
 * benchmarks/.cache/, made on first use (a few minutes on two threads).
 *
 * @example
 * ```ts
 * import { tinyLlamaQ4_K_MPath } from '../gguf/generate.js';
 * const path = await tinyLlamaQ4_K_MPath();
 * ```
 */
export async function tinyLlamaQ4_K_MPath(): Promise<string> {
  const path = join(here, '..', '.cache', 'tinyllama-shape-q4_k_m.gguf');
  if (!existsSync(path)) {
    const { quantizeFile } = await import('@nibble/quantize/node');
    await quantizeFile(await tinyLlamaQ4_0Path(), path, { preset: 'Q4_K_M', allowRequantize: true, threads: 2 });
  }
  return path;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t0 = performance.now();
  const path = await tinyLlamaQ4_0Path();
  console.log(`${path} ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
