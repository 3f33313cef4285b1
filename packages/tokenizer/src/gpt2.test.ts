// GPT-2 byte-level BPE from vocab.json + merges.txt against its peers: js-tiktoken's ids on every text fixture, and
// the published nanoGPT 90/10 split counts of Tiny Shakespeare.
import { readdirSync } from 'node:fs';
import { getEncoding } from 'js-tiktoken';
import { describe, expect, it } from 'vitest';
import { fromHfTokenizerJson, fromVocabMerges } from './loaders.js';
import { fixturePath, readText, vocabTokenizer } from './test/fixtures.js';

const tok = fromVocabMerges(readText('gpt2-bpe/gpt2_vocab.json'), readText('gpt2-bpe/gpt2_merges.txt'));
const tiktoken = getEncoding('gpt2');

describe('GPT-2 BPE', () => {
  it('tinyshakespeare split 90/10 by characters gives 301,966 / 36,059 tokens', () => {
    const text = readText('text/tinyshakespeare.txt');
    const n = Math.floor(text.length * 0.9);
    expect(tok.encode(text.slice(0, n)).length).toBe(301_966);
    expect(tok.encode(text.slice(n)).length).toBe(36_059);
  });

  for (const file of readdirSync(fixturePath('text'))) {
    it(`${file}: ids equal js-tiktoken's (special tokens as text, and parsed where present)`, () => {
      const text = readText(`text/${file}`);
      expect(tok.encode(text)).toEqual(tiktoken.encode(text, [], []));
      if (text.includes('<|endoftext|>')) {
        expect(tok.encode(text, { parseSpecial: true })).toEqual(tiktoken.encode(text, 'all'));
      }
    });
  }

  it('the GGUF gpt-2 vocabulary and vocab.json + merges.txt agree', () => {
    const text = readText('text/cs336-corpus.en');
    expect(vocabTokenizer('gpt-2').encode(text)).toEqual(tok.encode(text));
  });

  it('a Hugging Face tokenizer.json (BPE) gives the same ids', () => {
    const json = {
      model: {
        type: 'BPE',
        vocab: JSON.parse(readText('gpt2-bpe/gpt2_vocab.json')),
        merges: readText('gpt2-bpe/gpt2_merges.txt')
          .split('\n')
          .filter((l) => l && !l.startsWith('#version'))
          .map((l) => l.split(' ')),
      },
      added_tokens: [{ id: 50256, content: '<|endoftext|>', special: true }],
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false },
    };
    const hf = fromHfTokenizerJson(JSON.stringify(json));
    const text = readText('text/cs336-tinystories_sample.txt');
    expect(hf.encode(text, { parseSpecial: true })).toEqual(tiktoken.encode(text, 'all'));
  });

  it('decodes its ids back to the text', () => {
    for (const file of ['cs336-german.txt', 'tinyshakespeare.txt']) {
      const text = readText(`text/${file}`);
      expect(tok.decode(tok.encode(text), { cleanSpaces: false }) === text).toBe(true);
    }
    expect(tok.decode(tiktoken.encode('Hello world'))).toBe(tiktoken.decode(tiktoken.encode('Hello world')));
  });
});
