// Robustness: any string encodes without throwing (lone surrogates, NUL, controls, long runs), any id sequence
// decodes without throwing, invalid UTF-8 decodes to U+FFFD the same way everywhere, and the streaming decoder emits
// text only once a character is complete.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromVocabMerges } from './loaders.js';
import { readText, vocabTokenizer } from './test/fixtures.js';
import type { Tokenizer } from './tokenizer.js';

const seed = Number(process.env.FC_SEED ?? 20261125);
const gpt2 = fromVocabMerges(readText('gpt2-bpe/gpt2_vocab.json'), readText('gpt2-bpe/gpt2_merges.txt'));
const models: [string, () => Tokenizer][] = [
  ['gpt-2', () => gpt2],
  ['llama-spm', () => vocabTokenizer('llama-spm')],
  ['bert-bge', () => vocabTokenizer('bert-bge')],
  ['deepseek-llm', () => vocabTokenizer('deepseek-llm')],
];

const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.string({ unit: 'grapheme', maxLength: 64 }),
  fc.string({
    unit: fc.constantFrom('\0', '\x01', '\t', '\n', '\r', ' ', '\u00a0', '\u3000', '\ud800', 'a'),
    maxLength: 64,
  }),
);

describe('robustness', () => {
  for (const [name, make] of models) {
    it(`${name}: any string encodes to valid ids, with and without specials`, () => {
      const tok = make();
      fc.assert(
        fc.property(anyText, fc.boolean(), (text, special) => {
          const ids = tok.encode(text, { addSpecial: special, parseSpecial: special });
          return ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize);
        }),
        { seed, numRuns: 300 },
      );
    });

    it(`${name}: 1 MB of one character and 100k characters without a space encode`, () => {
      const tok = make();
      expect(tok.encode('a'.repeat(1 << 20)).length).toBeGreaterThan(0);
      // one pre-token / one SentencePiece word of 256k characters each: merged with a heap, O(n log n)
      for (const c of [' ', '\n', '中', '\0']) {
        const ids = tok.encode(c.repeat(1 << 18));
        expect(ids.every((id) => id >= 0 && id < tok.vocabSize)).toBe(true);
        // WordPiece drops whitespace and NUL; everything else keeps every byte
        if (tok.kind !== 'wpm') expect(tok.decodeBytes(ids).length).toBeGreaterThanOrEqual(1 << 18);
      }
      const noSpace = Array.from({ length: 100_000 }, (_, i) => String.fromCharCode(0x61 + ((i * 7) % 26))).join('');
      // WordPiece lowercases and decodes with llama.cpp's leading word space
      const back = tok.decode(tok.encode(noSpace)).toLowerCase().trimStart();
      expect(back === noSpace).toBe(true);
    });

    it(`${name}: decode of any id sequence never throws, and matches the bytes' WHATWG decoding`, () => {
      const tok = make();
      const id = fc.oneof(
        fc.integer({ min: 0, max: tok.vocabSize - 1 }),
        fc.integer({ min: -5, max: tok.vocabSize + 5 }),
        fc.constantFrom(Number.NaN, 1.5, Number.POSITIVE_INFINITY),
      );
      fc.assert(
        fc.property(fc.array(id, { maxLength: 40 }), (ids) => {
          const text = tok.decode(ids);
          const again = new TextDecoder('utf-8', { ignoreBOM: true }).decode(tok.decodeBytes(ids));
          return text === again;
        }),
        { seed, numRuns: 300 },
      );
    });

    it(`${name}: the streaming decoder's output equals decode without space clean-up`, () => {
      const tok = make();
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 0, max: tok.vocabSize - 1 }), { maxLength: 40 }), (ids) => {
          const d = tok.decoder();
          let text = '';
          for (const id of ids) text += d.push(id);
          text += d.flush();
          return text === tok.decode(ids, { cleanSpaces: false });
        }),
        { seed, numRuns: 300 },
      );
    });
  }

  it('emits a character split over byte tokens only once it is complete', () => {
    const ids = gpt2.encode('🦙'); // four bytes, several tokens
    expect(ids.length).toBeGreaterThan(1);
    const d = gpt2.decoder();
    const parts = ids.map((id) => d.push(id));
    expect(parts.slice(0, -1).every((p) => p === '')).toBe(true);
    expect(parts.at(-1)).toBe('🦙');
    expect(d.flush()).toBe('');
  });

  it('decodes a lone continuation byte and a cut sequence to U+FFFD', () => {
    const byte = (b: number) => gpt2.encode(String.fromCharCode(b)); // the byte token of b < 0x80
    const first = gpt2.encode('🦙')[0]; // starts with F0 9F
    expect(gpt2.decode([first])).toMatch(/^\ufffd+$/);
    expect(gpt2.decode([first, ...byte(0x41)])).toMatch(/^\ufffd+A$/);
    const d = gpt2.decoder();
    expect(d.push(first) + d.flush()).toBe(gpt2.decode([first], { cleanSpaces: false }));
  });
});
