// A tiktoken vocabulary through the LLaMA 3 pre-tokenizer: cl100k_base uses exactly llama.cpp's llama3 pattern (with
// whole-token pre-tokens), so our ids must equal js-tiktoken's cl100k_base ids.
import { getEncoding } from 'js-tiktoken';
import cl100k from 'js-tiktoken/ranks/cl100k_base';
import { describe, expect, it } from 'vitest';
import { fromTiktoken } from './loaders.js';
import { readText } from './test/fixtures.js';

// js-tiktoken ships ranks as lines "! offset base64 base64 ...", ranks counting up from offset
function rankPairs(compressed: string): [Uint8Array, number][] {
  const out: [Uint8Array, number][] = [];
  for (const line of compressed.split('\n')) {
    if (!line) continue;
    const [, offset, ...tokens] = line.split(' ');
    tokens.forEach((b64, i) => {
      out.push([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)), Number(offset) + i]);
    });
  }
  return out;
}

describe('tiktoken vocabularies', () => {
  // the .tiktoken text format ("base64 rank" lines), as tiktoken publishes its vocabularies
  const tiktokenText = rankPairs(cl100k.bpe_ranks)
    .map(([bytes, rank]) => `${btoa(String.fromCharCode(...bytes))} ${rank}`)
    .join('\n');
  const tok = fromTiktoken(tiktokenText, { pre: 'llama3', specialTokens: cl100k.special_tokens });
  const peer = getEncoding('cl100k_base');

  for (const file of ['cs336-corpus.en', 'cs336-german.txt', 'cs336-address.txt', 'cs336-tinystories_sample.txt']) {
    it(`cl100k_base with the llama3 pre-tokenizer equals js-tiktoken on ${file}`, () => {
      const text = readText(`text/${file}`);
      expect(tok.encode(text)).toEqual(peer.encode(text, [], []));
      expect(tok.encode(text, { parseSpecial: true })).toEqual(peer.encode(text, 'all'));
    });
  }

  it('rejects a line that is not "base64 rank"', () => {
    expect(() => fromTiktoken('not-a-line')).toThrow(/line 1/);
  });
});
