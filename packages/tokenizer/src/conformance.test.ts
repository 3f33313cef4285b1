// llama.cpp's tokenizer conformance suite (fixtures/vocab): every case of every .inp/.out pair, no BOS, no special
// parsing; SentencePiece still adds its leading-space prefix.
import { describe, expect, it } from 'vitest';
import { fromGgufMetadata, fromLlama2cTokenizer } from './loaders.js';
import { readBytes, readText, SUITES, vocabCases, vocabMetadata, vocabTokenizer } from './test/fixtures.js';
import { Tokenizer } from './tokenizer.js';

describe('llama.cpp vocab suites', () => {
  for (const name of SUITES) {
    it(`${name}: every case gives llama.cpp's ids`, () => {
      const tok = vocabTokenizer(name);
      const cases = vocabCases(name);
      expect(cases.length).toBe(46);
      for (const c of cases) expect({ text: c.text, ids: tok.encode(c.text) }).toEqual(c);
    });
  }

  it("llama2.c's tokenizer.bin of LLaMA 2 gives the llama-spm suite's ids", () => {
    const tok = fromLlama2cTokenizer(readBytes('models/llama2c-tokenizer.bin'), 32000);
    for (const c of vocabCases('llama-spm')) expect({ text: c.text, ids: tok.encode(c.text) }).toEqual(c);
  });

  it('cutting SentencePiece text into words before "▁" changes no id (llama.cpp merges the whole text at once)', () => {
    const text = readText('text/wikitext-2-raw-v1.test.txt').slice(0, 60_000);
    const meta = vocabMetadata('llama-spm');
    const words = fromGgufMetadata(meta);
    // The whole-text merge, as llama.cpp does it.
    const whole = new Tokenizer({ kind: 'spm', ...meta, spmWordSplit: false });
    expect(words.encode(text)).toEqual(whole.encode(text));
  });
});
