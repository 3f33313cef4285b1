/**
 * An F16 llama-shaped GGUF with random N(0, 0.02) weights, the input of the model-quantization benchmark: written
 * once under benchmarks/.cache/ through @nibble/gguf's streaming writer, with the tokenizer metadata of
 * fixtures/vocab/ggml-vocab-llama-spm.gguf, so that llama.cpp loads it as a llama model.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { f16 } from '@nibble/formats';
import { GgufWriter } from '@nibble/gguf';
import { fileSink, openGgufFile } from '@nibble/gguf/node';
import type { LlamaShape } from '../gguf/generate.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');

/** TinyLlama's shape with 4 of its 22 layers: 307M parameters, 614 MB in F16. */
export const fullShape: Readonly<LlamaShape> = Object.freeze({
  dim: 2048,
  hidden: 5632,
  layers: 4,
  heads: 32,
  kvHeads: 4,
  vocab: 32000,
  contextLength: 2048,
});

/** A small shape for `--quick`: 38M parameters, 76 MB; every row a multiple of 256 so K-quants apply. */
export const quickShape: Readonly<LlamaShape> = Object.freeze({
  dim: 512,
  hidden: 1536,
  layers: 2,
  heads: 8,
  kvHeads: 4,
  vocab: 32000,
  contextLength: 2048,
});

/** Deterministic N(0, sigma) values (xorshift32 + Box-Muller). */
function gaussian(n: number, sigma: number, state: Uint32Array): Float32Array {
  const out = new Float32Array(n);
  let s = state[0];
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 2 ** 32;
  };
  for (let i = 0; i < n; i += 2) {
    const r = sigma * Math.sqrt(-2 * Math.log(next()));
    const t = 2 * Math.PI * next();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  state[0] = s;
  return out;
}

/** Writes the model to `path` (through a temporary file). */
export async function writeLlamaF16(path: string, shape: LlamaShape): Promise<void> {
  const { dim, hidden, layers, heads, kvHeads, vocab, contextLength } = shape;
  const kvDim = (dim / heads) * kvHeads;
  const w = new GgufWriter(await fileSink(path));
  const m = w.metadata;
  m.setString('general.architecture', 'llama');
  m.setString('general.name', 'nibble-bench-llama-f16');
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
  m.setU32('llama.vocab_size', vocab);
  const spm = await openGgufFile(join(repo, 'fixtures/vocab/ggml-vocab-llama-spm.gguf'));
  m.copyFrom(spm, (k) => k.startsWith('tokenizer.'));
  await spm.close();

  const plan: [string, 'f16' | 'f32', number[]][] = [
    ['token_embd.weight', 'f16', [vocab, dim]],
    ['output_norm.weight', 'f32', [dim]],
    ['output.weight', 'f16', [vocab, dim]],
  ];
  for (let l = 0; l < layers; l++) {
    plan.push(
      [`blk.${l}.attn_norm.weight`, 'f32', [dim]],
      [`blk.${l}.attn_q.weight`, 'f16', [dim, dim]],
      [`blk.${l}.attn_k.weight`, 'f16', [kvDim, dim]],
      [`blk.${l}.attn_v.weight`, 'f16', [kvDim, dim]],
      [`blk.${l}.attn_output.weight`, 'f16', [dim, dim]],
      [`blk.${l}.ffn_norm.weight`, 'f32', [dim]],
      [`blk.${l}.ffn_gate.weight`, 'f16', [hidden, dim]],
      [`blk.${l}.ffn_up.weight`, 'f16', [hidden, dim]],
      [`blk.${l}.ffn_down.weight`, 'f16', [dim, hidden]],
    );
  }
  for (const [name, dtype, s] of plan) w.addTensor({ name, dtype, shape: s });
  const state = new Uint32Array([0x2545f491]);
  try {
    for (const [name, dtype, s] of plan) {
      const n = s.reduce((a, b) => a * b, 1);
      if (dtype === 'f32') await w.writeTensor(name, new Float32Array(n).fill(1));
      else await w.writeTensor(name, f16.quantize(gaussian(n, 0.02, state)));
    }
    await w.finish();
  } catch (e) {
    await w.abort(e);
    throw e;
  }
}

/** The path of the model of `shape`, created on first use under benchmarks/.cache/. */
export async function llamaF16Path(name: string, shape: LlamaShape): Promise<string> {
  const path = join(here, '..', '.cache', `${name}-f16.gguf`);
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    await writeLlamaF16(path, shape);
  }
  return path;
}
