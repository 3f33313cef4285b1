/**
 * Import of llama2.c checkpoints (the legacy "v0" `model.bin` written by `export.py --version 0`, and `tokenizer.bin`)
 * into GGUF, following llama.cpp's `convert-llama2c-to-ggml`: the same tensor names and order, the same metadata keys,
 * and the same token text and types. llama2.c's Q/K rows are already in the interleaved rope order llama.cpp uses, so
 * no permutation is applied (spec §6.7).
 *
 * model.bin: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means
 * the classifier is stored separately), then f32 weights in this order:
 *   token_embedding [vocab, dim], rms_att [layers, dim], wq [layers, dim, dim], wk [layers, kv_dim, dim],
 *   wv [layers, kv_dim, dim], wo [layers, dim, dim], rms_ffn [layers, dim], w1 [layers, hidden, dim],
 *   w2 [layers, dim, hidden], w3 [layers, hidden, dim], rms_final [dim], freq_cis_real and _imag
 *   [seq_len, head_size/2] each (unused), wcls [vocab, dim] when not shared.
 * tokenizer.bin: int32 max_token_length, then per token: f32 score, int32 length, the bytes.
 */
import { GgufError } from './errors.js';
import { type ByteSource, bytesSource } from './source.js';
import { type GgufSink, GgufWriter } from './writer.js';

/** The model.bin header. */
export interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  /** Whether the classifier shares the token embedding (vocab_size was positive). */
  sharedClassifier: boolean;
}

/** Options of {@link importLlama2c}. */
export interface ImportLlama2cOptions {
  /** `llama.context_length`. Default: the checkpoint's seq_len. (llama.cpp's converter writes its own default.) */
  contextLength?: number;
  /** `llama.attention.layer_norm_rms_epsilon`. Default 1e-5, as llama2.c uses. */
  rmsEps?: number;
  /** `general.name`. Default "llama", as llama.cpp's converter writes. */
  name?: string;
}

function bad(message: string, offset?: number): GgufError {
  return new GgufError('E_GGUF_LLAMA2C', message, { offset });
}

/**
 * Reads and checks the 28-byte model.bin header.
 *
 * @example
 * ```ts
 * readLlama2cConfig(modelBytes); // { dim: 64, hiddenDim: 172, nLayers: 5, ... }
 * ```
 */
export function readLlama2cConfig(header: Uint8Array): Llama2cConfig {
  if (header.byteLength < 28) throw bad(`model.bin is ${header.byteLength} bytes; the header alone is 28`, 0);
  const dv = new DataView(header.buffer, header.byteOffset, 28);
  const v = Array.from({ length: 7 }, (_, i) => dv.getInt32(i * 4, true));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = v;
  const names = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'];
  for (let i = 0; i < 7; i++) {
    const x = i === 5 ? Math.abs(v[i]) : v[i];
    if (x <= 0) throw bad(`${names[i]} is ${v[i]}`, i * 4);
  }
  if (dim % nHeads !== 0) throw bad(`dim ${dim} is not a multiple of n_heads ${nHeads}`, 12);
  if (nHeads % nKvHeads !== 0) throw bad(`n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`, 16);
  return {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize: Math.abs(vocab),
    seqLen,
    sharedClassifier: vocab > 0,
  };
}

/** A llama2.c vocabulary as llama.cpp's converter turns it into GGUF tokenizer data. */
export interface Llama2cVocab {
  tokens: string[];
  scores: Float32Array;
  tokenTypes: Int32Array;
}

// ignoreBOM: a token may be exactly U+FEFF, which the default decoder would drop.
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * Parses tokenizer.bin for `vocabSize` tokens: ids 0, 1, 2 become `<unk>` (unknown), `<s>` and `</s>` (control);
 * `<0xXX>` tokens are byte tokens; empty ones are control; spaces become U+2581 like SentencePiece.
 *
 * @example
 * ```ts
 * const vocab = readLlama2cTokenizer(tokBytes, 512);
 * vocab.tokens[259]; // '▁t'
 * ```
 */
export function readLlama2cTokenizer(bytes: Uint8Array, vocabSize: number): Llama2cVocab {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 4) throw bad('tokenizer.bin is too short', 0);
  // Each token takes at least 8 bytes, which bounds the allocations below by the file size.
  if (vocabSize * 8 > bytes.byteLength - 4) throw bad(`tokenizer.bin cannot hold ${vocabSize} tokens`, 4);
  const tokens: string[] = new Array(vocabSize);
  const scores = new Float32Array(vocabSize);
  const tokenTypes = new Int32Array(vocabSize);
  let p = 4;
  for (let id = 0; id < vocabSize; id++) {
    if (p + 8 > bytes.byteLength) throw bad(`tokenizer.bin ends inside token ${id}`, p);
    scores[id] = dv.getFloat32(p, true);
    const len = dv.getInt32(p + 4, true);
    if (len < 0 || p + 8 + len > bytes.byteLength) throw bad(`token ${id} has length ${len}`, p + 4);
    let text = utf8.decode(bytes.subarray(p + 8, p + 8 + len));
    p += 8 + len;
    let type = 1; // normal
    if (id === 0) {
      text = '<unk>';
      type = 2;
    } else if (id === 1) {
      text = '<s>';
      type = 3;
    } else if (id === 2) {
      text = '</s>';
      type = 3;
    } else if (text.length === 0) type = 3;
    else if (/^<0x[0-9A-Fa-f]/.test(text)) type = 6;
    tokens[id] = text.replaceAll(' ', '\u2581');
    tokenTypes[id] = type;
  }
  return { tokens, scores, tokenTypes };
}

/**
 * Converts a llama2.c checkpoint and tokenizer into a GGUF file written to `sink`, tensor by tensor (the model is
 * read through a {@link ByteSource}, so it need not be in memory). The result has llama.cpp's tensor names, order and
 * metadata; weights are copied bit for bit as F32.
 *
 * @example
 * ```ts
 * const out = blobSink();
 * await importLlama2c(modelBytes, tokenizerBytes, out);
 * const file = await openGguf(out.blob());
 * ```
 */
export async function importLlama2c(
  model: ByteSource | Uint8Array | ArrayBuffer,
  tokenizer: Uint8Array | ArrayBuffer,
  sink: GgufSink,
  options: ImportLlama2cOptions = {},
): Promise<void> {
  const src = model instanceof Uint8Array || model instanceof ArrayBuffer ? bytesSource(model) : model;
  const cfg = readLlama2cConfig(await src.read(0, Math.min(28, src.size)));
  const tok = tokenizer instanceof Uint8Array ? tokenizer : new Uint8Array(tokenizer);
  const vocab = readLlama2cTokenizer(tok, cfg.vocabSize);
  const { dim, hiddenDim: hidden, nLayers: L, nHeads, nKvHeads, vocabSize: V, seqLen } = cfg;
  const headSize = dim / nHeads;
  const kvDim = (dim * nKvHeads) / nHeads;

  // Byte offsets of each weight group in model.bin (f32 = 4 bytes).
  const f = 4;
  let o = 28;
  const at = (count: number) => {
    const start = o;
    o += count * f;
    return start;
  };
  const emb = at(V * dim);
  const rmsAtt = at(L * dim);
  const wq = at(L * dim * dim);
  const wk = at(L * kvDim * dim);
  const wv = at(L * kvDim * dim);
  const wo = at(L * dim * dim);
  const rmsFfn = at(L * dim);
  const w1 = at(L * hidden * dim);
  const w2 = at(L * dim * hidden);
  const w3 = at(L * hidden * dim);
  const rmsFinal = at(dim);
  at(seqLen * headSize); // freq_cis_real and freq_cis_imag, [seq_len, head_size/2] each
  const wcls = cfg.sharedClassifier ? emb : at(V * dim);
  if (o > src.size) throw bad(`model.bin needs ${o} bytes for this config, has ${src.size}`, src.size);

  const w = new GgufWriter(sink);
  const m = w.metadata;
  // Keys in the order llama.cpp's converter writes them.
  m.set('tokenizer.ggml.tokens', vocab.tokens, { array: 'string' });
  m.set('tokenizer.ggml.scores', vocab.scores, { array: 'f32' });
  m.set('tokenizer.ggml.token_type', vocab.tokenTypes, { array: 'i32' });
  m.setString('tokenizer.ggml.model', 'llama');
  m.setString('general.architecture', 'llama');
  m.setString('general.name', options.name ?? 'llama');
  m.setU32('tokenizer.ggml.unknown_token_id', 0);
  m.setU32('tokenizer.ggml.bos_token_id', 1);
  m.setU32('tokenizer.ggml.eos_token_id', 2);
  m.setU32('tokenizer.ggml.seperator_token_id', 0xffffffff);
  m.setU32('tokenizer.ggml.padding_token_id', 0xffffffff);
  m.setU32('llama.context_length', options.contextLength ?? seqLen);
  m.setU32('llama.embedding_length', dim);
  m.setU32('llama.feed_forward_length', hidden);
  m.setU32('llama.attention.head_count', nHeads);
  m.setU32('llama.attention.head_count_kv', nKvHeads);
  m.setU32('llama.block_count', L);
  m.setU32('llama.rope.dimension_count', headSize);
  m.setF32('llama.attention.layer_norm_rms_epsilon', options.rmsEps ?? 1e-5);

  // [name, shape (outermost first), byte offset in model.bin]
  const plan: [string, number[], number][] = [
    ['token_embd.weight', [V, dim], emb],
    ['output_norm.weight', [dim], rmsFinal],
    ['output.weight', [V, dim], wcls],
  ];
  for (let l = 0; l < L; l++) {
    plan.push(
      [`blk.${l}.attn_q.weight`, [dim, dim], wq + l * dim * dim * f],
      [`blk.${l}.attn_k.weight`, [kvDim, dim], wk + l * kvDim * dim * f],
      [`blk.${l}.attn_v.weight`, [kvDim, dim], wv + l * kvDim * dim * f],
      [`blk.${l}.attn_output.weight`, [dim, dim], wo + l * dim * dim * f],
      [`blk.${l}.attn_norm.weight`, [dim], rmsAtt + l * dim * f],
      [`blk.${l}.ffn_gate.weight`, [hidden, dim], w1 + l * hidden * dim * f],
      [`blk.${l}.ffn_down.weight`, [dim, hidden], w2 + l * dim * hidden * f],
      [`blk.${l}.ffn_up.weight`, [hidden, dim], w3 + l * hidden * dim * f],
      [`blk.${l}.ffn_norm.weight`, [dim], rmsFfn + l * dim * f],
    );
  }
  for (const [name, shape] of plan) w.addTensor({ name, dtype: 'f32', shape });
  try {
    for (const [name, shape, offset] of plan) {
      const n = shape.reduce((a, b) => a * b, 1);
      await w.writeTensor(name, await src.read(offset, n * f));
    }
    await w.finish();
  } catch (e) {
    await w.abort(e);
    throw e;
  }
}
