// The hand-written GPT-2 and LLaMA 3 splitters against the original regexes run by the JS regex engine (with `\s`
// as Unicode White_Space, which is what llama.cpp and the Rust/Python originals mean), on every text fixture and on
// random strings built from the characters that matter to the rules. Unassigned code points are left out: there
// llama.cpp's splitters deliberately differ from the regexes.
import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PreTokenizer, preTokenizerInfo, type Scanner, scanGpt2, scanLlama3 } from './pretokenize.js';
import { fixturePath, readText } from './test/fixtures.js';

const WS = '\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const s = `[${WS}]`;
const S = `[^${WS}]`;
const GPT2 = new RegExp(
  `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|${s}+(?!${S})|${s}+`,
  'gu',
);
const LLAMA3 = new RegExp(
  `'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^${WS}\\p{L}\\p{N}]+[\\r\\n]*|${s}*[\\r\\n]+|${s}+(?!${S})|${s}+`,
  'gu',
);

function byRegex(re: RegExp, text: string): string[] {
  return Array.from(text.matchAll(re), (m) => m[0]);
}

function byScanner(scan: Scanner, text: string): string[] {
  const out: string[] = [];
  for (let p = 0; p < text.length; ) {
    const q = scan(text, p, text.length);
    out.push(text.slice(p, q));
    p = q;
  }
  return out;
}

const alphabet = fc.constantFrom(
  'a',
  'Z',
  'é',
  'ß',
  'Ж',
  '中',
  'ก',
  '1',
  '٣',
  '½',
  "'",
  's',
  't',
  'l',
  'L',
  'v',
  'e',
  'R',
  'D',
  'm',
  ' ',
  ' ',
  '\t',
  '\n',
  '\r',
  '\u00a0',
  '\u3000',
  '\u0085',
  '\ufeff',
  '.',
  ',',
  '!',
  '-',
  '$',
  '🦙',
  '\u0301',
  '\0',
);
const texts = fc.string({ unit: alphabet, maxLength: 40 });
const seed = Number(process.env.FC_SEED ?? 20261125);

describe('pre-tokenizer splitters', () => {
  for (const [name, scan, re] of [
    ['gpt-2', scanGpt2, GPT2],
    ['llama3', scanLlama3, LLAMA3],
  ] as const) {
    it(`${name}: the splitter equals the original regex on every text fixture`, () => {
      for (const file of readdirSync(fixturePath('text'))) {
        const text = readText(`text/${file}`);
        expect(byScanner(scan, text)).toEqual(byRegex(re, text));
      }
    });

    it(`${name}: the splitter equals the original regex on random strings`, () => {
      fc.assert(
        fc.property(texts, (text) => {
          expect(byScanner(scan, text)).toEqual(byRegex(re, text));
        }),
        { seed, numRuns: 2000 },
      );
    });
  }

  it('multi-stage families keep earlier fragments apart (starcoder splits digits first)', () => {
    const pre = new PreTokenizer(preTokenizerInfo('starcoder'));
    // the digit stage cuts "abc  " off, so its trailing spaces cannot lend one to the next word
    expect(pre.split('abc  1')).toEqual(['abc', '  ', '1']);
    expect(new PreTokenizer(preTokenizerInfo('gpt-2')).split('abc  1')).toEqual(['abc', ' ', ' 1']);
  });

  it('rejects an unknown pre-tokenizer name', () => {
    expect(() => preTokenizerInfo('no-such-pre')).toThrow(/unknown pre-tokenizer 'no-such-pre'/);
  });
});
