// WordPiece (BERT): the bert-bge suite through a Hugging Face tokenizer.json built from the same vocabulary, and the
// special-token behaviour of addSpecial / parseSpecial.
import { describe, expect, it } from 'vitest';
import { fromHfTokenizerJson } from './loaders.js';
import { vocabCases, vocabMetadata, vocabTokenizer } from './test/fixtures.js';

describe('WordPiece', () => {
  it("a tokenizer.json with the bge vocabulary ('##' continuations) gives llama.cpp's ids", () => {
    const meta = vocabMetadata('bert-bge');
    // back to the Hugging Face spelling: "▁word" starts a word, a bare piece continues one
    const vocab: Record<string, number> = {};
    meta.tokens.forEach((t, id) => {
      const control = meta.tokenTypes?.[id] === 3;
      vocab[control ? t : t.startsWith('\u2581') ? t.slice(1) : `##${t}`] = id;
    });
    const tok = fromHfTokenizerJson({
      model: { type: 'WordPiece', vocab, unk_token: '[UNK]' },
      normalizer: { type: 'BertNormalizer', lowercase: true },
    });
    for (const c of vocabCases('bert-bge')) expect({ text: c.text, ids: tok.encode(c.text) }).toEqual(c);
  });

  it('adds [CLS] ... [SEP] with addSpecial and parses [MASK]-style tokens with parseSpecial', () => {
    const tok = vocabTokenizer('bert-bge');
    const plain = tok.encode('hello world');
    expect(tok.encode('hello world', { addSpecial: true })).toEqual([tok.bosId, ...plain, tok.sepId]);
    const sep = tok.tokenText(tok.sepId)!;
    expect(tok.encode(`hello ${sep} world`, { parseSpecial: true })).toEqual([plain[0], tok.sepId, plain[1]]);
    // llama.cpp keeps the space that starts every word (BERT has no space-prefix removal)
    expect(tok.decode(plain)).toBe(' hello world');
  });
});
