import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  GgufError,
  type GgufFile,
  LLAMA_MAX_LAYERS,
  llamaHyperparams,
  openGguf,
  parseGguf,
  tokenizerMetadata,
} from './index.js';
import { openGgufFile } from './node.js';

const models = 'fixtures/models';
const stories = readFileSync(`${models}/stories260K.gguf`);

/** The llama2.c checkpoint the GGUF was converted from: header ints, then f32 weights (see llama2c.ts). */
const bin = readFileSync(`${models}/stories260K.bin`);
const binHeader = Array.from({ length: 7 }, (_, i) => bin.readInt32LE(i * 4));

/** tok512.bin: int32 max length, then per token: f32 score, int32 length, bytes. */
function tok512(): { scores: number[]; texts: string[] } {
  const b = readFileSync(`${models}/tok512.bin`);
  const scores: number[] = [];
  const texts: string[] = [];
  let p = 4;
  while (p < b.length) {
    scores.push(b.readFloatLE(p));
    const len = b.readInt32LE(p + 4);
    texts.push(b.subarray(p + 8, p + 8 + len).toString('utf8'));
    p += 8 + len;
  }
  return { scores, texts };
}

describe('reading stories260K.gguf', () => {
  const file = parseGguf(new Uint8Array(stories));

  it('reads the header', () => {
    expect(file.version).toBe(3);
    expect(file.alignment).toBe(32);
    expect(file.tensors.length).toBe(3 + 9 * binHeader[2]);
    expect(file.metadata.get('general.architecture')).toBe('llama');
    expect(file.metadataTypes.get('llama.block_count')).toBe('u32');
  });

  it('gives llama hyperparameters equal to the llama2.c checkpoint header', () => {
    const [dim, hidden, layers, heads, kvHeads, vocab] = binHeader;
    const hp = llamaHyperparams(file);
    expect(hp).toMatchObject({
      embeddingLength: dim,
      feedForwardLength: hidden,
      blockCount: layers,
      headCount: heads,
      headCountKv: kvHeads,
      vocabSize: Math.abs(vocab),
      ropeDimensionCount: dim / heads,
      ropeFreqBase: 10000,
      contextLength: 2048,
    });
    expect(hp.rmsEps).toBe(Math.fround(1e-5));
  });

  it('gives tokenizer metadata matching tok512.bin', () => {
    const tok = tokenizerMetadata(file);
    const ref = tok512();
    expect(tok.model).toBe('llama');
    expect(tok.tokens.length).toBe(ref.texts.length);
    expect(Array.from(tok.scores!)).toEqual(ref.scores);
    expect(tok.tokens[260]).toBe(ref.texts[260]);
    expect(tok.tokens[259]).toBe(ref.texts[259].replaceAll(' ', '\u2581'));
    expect(tok.tokenTypes).toBeInstanceOf(Int32Array);
    expect([tok.bosId, tok.eosId, tok.unkId, tok.sepId, tok.padId]).toEqual([1, 2, 0, 0xffffffff, 0xffffffff]);
  });

  it('reads tensors as views whose bytes equal the llama2.c weights', async () => {
    const [dim, , , , , vocab] = binHeader;
    const emb = await file.readTensor('token_embd.weight');
    expect(emb.dtype).toBe('f32');
    expect(emb.shape).toEqual([Math.abs(vocab), dim]);
    expect(emb.data.buffer).toBe(file.source.bytes!.buffer);
    expect(Buffer.from(emb.data).equals(bin.subarray(28, 28 + emb.data.byteLength))).toBe(true);
    expect(file.readTensorSync('token_embd.weight').data.byteOffset).toBe(emb.data.byteOffset);
    const info = file.getTensor('blk.0.attn_k.weight')!;
    expect(info.ne).toEqual([dim, (dim * binHeader[4]) / binHeader[3]]);
    expect(info.shape).toEqual([...info.ne].reverse());
  });

  it('names a missing tensor', async () => {
    await expect(file.readTensor('nope')).rejects.toMatchObject({ code: 'E_GGUF_TENSOR_NOT_FOUND', tensor: 'nope' });
  });

  it('names a missing hyperparameter key', () => {
    const copy = parseGguf(new Uint8Array(stories));
    copy.metadata.delete('llama.block_count');
    expect(() => llamaHyperparams(copy)).toThrow(/llama\.block_count/);
  });

  it("follows llama.cpp's load_hparams: required epsilon, bounded block count, divisible heads, n_rot", () => {
    const with_ = (key: string, value: unknown) => {
      const copy = parseGguf(new Uint8Array(stories));
      if (value === undefined) copy.metadata.delete(key);
      else copy.metadata.set(key, value as never);
      return copy;
    };
    const code = (f: GgufFile) => {
      try {
        llamaHyperparams(f);
        return 'ok';
      } catch (e) {
        return `${(e as GgufError).code} ${(e as GgufError).key}`;
      }
    };
    expect(code(with_('llama.attention.layer_norm_rms_epsilon', undefined))).toBe(
      'E_GGUF_MISSING_KEY llama.attention.layer_norm_rms_epsilon',
    );
    expect(code(with_('llama.block_count', 0xffffffff))).toBe('E_GGUF_KEY_VALUE llama.block_count');
    expect(code(with_('llama.block_count', LLAMA_MAX_LAYERS))).toBe('ok');
    expect(code(with_('llama.block_count', 0))).toBe('E_GGUF_KEY_VALUE llama.block_count');
    expect(code(with_('llama.context_length', undefined))).toBe('E_GGUF_MISSING_KEY llama.context_length');
    expect(code(with_('llama.attention.head_count', 7))).toBe('E_GGUF_KEY_VALUE llama.attention.head_count');
    expect(code(with_('llama.attention.head_count_kv', 3))).toBe('E_GGUF_KEY_VALUE llama.attention.head_count_kv');
    expect(code(with_('llama.rope.dimension_count', 4))).toBe('E_GGUF_KEY_VALUE llama.rope.dimension_count');
    expect(code(with_('llama.attention.layer_norm_rms_epsilon', Number.NaN))).toBe(
      'E_GGUF_KEY_VALUE llama.attention.layer_norm_rms_epsilon',
    );
  });
});

describe('quantized files', () => {
  it('reads q4_0, q8_0 and f16 tensor tables with ggml block sizes', async () => {
    const file = await openGgufFile(`${models}/stories260K-Q4_0.gguf`);
    try {
      const q = file.getTensor('token_embd.weight')!;
      expect(q.dtype).toBe('q4_0');
      expect(q.byteLength).toBe((q.elementCount / 32) * 18);
      expect(file.getTensor('output.weight')!.dtype).toBe('q8_0');
      expect(file.getTensor('blk.0.ffn_down.weight')!.dtype).toBe('f16');
      const t = await file.readTensor('token_embd.weight');
      const whole = readFileSync(`${models}/stories260K-Q4_0.gguf`);
      expect(Buffer.from(t.data).equals(whole.subarray(q.byteOffset, q.byteOffset + q.byteLength))).toBe(true);
      // Tensors are back to back, each padded to the alignment.
      for (const x of file.tensors) expect(x.byteOffset % file.alignment).toBe(0);
    } finally {
      await file.close();
    }
  });
});

describe('vocab files', () => {
  it('reads every fixture vocabulary with its token count', async () => {
    const cases: [string, string, number][] = [
      ['llama-spm', 'llama', 32000],
      ['gpt-2', 'gpt2', 50257],
      ['bert-bge', 'bert', 30522],
    ];
    for (const [name, model, n] of cases) {
      const file = await openGgufFile(`fixtures/vocab/ggml-vocab-${name}.gguf`);
      const tok = tokenizerMetadata(file);
      expect(tok.model).toBe(model);
      expect(tok.tokens.length).toBe(n);
      if (model === 'gpt2') expect(tok.merges!.length).toBeGreaterThan(40000);
      await file.close();
    }
  });
});

describe('openGguf', () => {
  it('refuses a string that is not a URL', async () => {
    await expect(openGguf('not a url')).rejects.toBeInstanceOf(GgufError);
  });
});
