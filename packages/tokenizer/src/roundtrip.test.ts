// llama.cpp's round-trip checks (test-tokenizer-1-bpe / -spm) on every SentencePiece and byte-level BPE vocabulary:
// every id decodes, re-encodes (parsing specials) and decodes to the same text; every code point (surrogates and
// U+40000..U+DFFFF skipped) survives encode + decode.
import { describe, expect, it } from 'vitest';
import { VOCABS, vocabTokenizer } from './test/fixtures.js';
import { utf8Decode } from './unicode.js';

const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function validUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strict.decode(bytes);
  } catch {
    return undefined;
  }
}

const ROUND_TRIP = VOCABS.filter((v) => v !== 'bert-bge'); // llama.cpp runs these checks on SPM and BPE only

describe('round trips', () => {
  for (const name of ROUND_TRIP) {
    it(`${name}: decode -> encode(parseSpecial) -> decode is stable for every id`, () => {
      const tok = vocabTokenizer(name);
      const bad: string[] = [];
      for (let id = 0; id < tok.vocabSize; id++) {
        const str = validUtf8(tok.decodeBytes([id]));
        if (str === undefined) continue; // a lone byte of a multi-byte character: llama.cpp skips these too
        const check = tok.decode(tok.encode(str, { parseSpecial: true }));
        if (check !== str && bad.length < 5) bad.push(`${id} ${JSON.stringify(str)} -> ${JSON.stringify(check)}`);
      }
      expect(bad).toEqual([]);
    });

    it(`${name}: every code point round-trips through encode/decode`, () => {
      const tok = vocabTokenizer(name);
      const spm = tok.kind === 'spm';
      const bad: string[] = [];
      for (let cp = 0; cp < 0x110000; cp++) {
        if (cp === 0xd800) cp = 0xe000;
        if (cp === 0x40000) cp = 0xe0000;
        if (spm && cp === 0x2581) continue; // '▁' is SentencePiece's space; llama.cpp skips it as well
        const str = String.fromCodePoint(cp);
        const check = utf8Decode(tok.decodeBytes(tok.encode(str)));
        if (check !== str && bad.length < 5) bad.push(`U+${cp.toString(16)} -> ${JSON.stringify(check)}`);
      }
      expect(bad).toEqual([]);
    });
  }
});
