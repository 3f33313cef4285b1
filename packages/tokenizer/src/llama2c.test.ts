// llama2.c's tokenizer.bin: tok512.bin encodes each TinyStories story to the ids llama2.c's run.c used (BOS + encode).
import { describe, expect, it } from 'vitest';
import { fromLlama2cTokenizer } from './loaders.js';
import { readBytes, readText } from './test/fixtures.js';
import { TokenizerError } from './types.js';

interface Reference {
  stories: { n_tokens: number; tokens: number[] }[];
}

describe('llama2.c tokenizer.bin', () => {
  const tok = fromLlama2cTokenizer(readBytes('models/tok512.bin'), 512);

  it('tok512.bin gives llama2.c run.c ids for every story of the TinyStories sample', () => {
    const ref = JSON.parse(readText('reference/stories260K-nll-cs336-tinystories_sample-llama2c.json')) as Reference;
    const stories = readText('text/cs336-tinystories_sample.txt')
      .split('<|endoftext|>')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    expect(stories.length).toBe(ref.stories.length);
    stories.forEach((story, i) => {
      expect(tok.encode(story, { addSpecial: true })).toEqual(ref.stories[i].tokens);
    });
  });

  it('has the special ids of llama2.c and decodes without the leading space', () => {
    expect([tok.vocabSize, tok.unkId, tok.bosId, tok.eosId]).toEqual([512, 0, 1, 2]);
    expect(tok.decode(tok.encode('Once upon a time', { addSpecial: true }), { removeSpecial: true })).toBe(
      ' Once upon a time',
    );
    expect(tok.decode(tok.encode('Once upon a time'))).toBe('Once upon a time');
  });

  it('rejects a truncated file with a typed error naming the offset', () => {
    const bytes = readBytes('models/tok512.bin').slice(0, 100);
    expect(() => fromLlama2cTokenizer(bytes, 512)).toThrow(TokenizerError);
    expect(() => fromLlama2cTokenizer(bytes, 512)).toThrow(/offset/);
    expect(() => fromLlama2cTokenizer(new Uint8Array(2))).toThrow(/need 4/);
  });
});
