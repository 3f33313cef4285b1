/**
 * WordPiece as llama.cpp's `llm_tokenizer_wpm_session` (BERT). GGUF BERT vocabularies mark a word start with U+2581
 * and store `##` continuations bare, so a word is matched greedily, longest token first, as "▁" + word. A word with
 * an unmatchable rest becomes the single unknown token.
 */

import { CONTROL, cptFlags, MARK, PUNCT, SYMBOL, WHITESPACE } from './unicode.js';

function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    // llama.cpp (and HF's Rust code) start this block at 0x2B920, not 0x2B820
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

const lowerCache = new Map<number, number>();
const baseCache = new Map<number, number>();

// Simple (one code point) lowercase mapping: the first code point of the full mapping.
function toLower(cp: number): number {
  if (cp < 0x80) return cp >= 0x41 && cp <= 0x5a ? cp + 32 : cp;
  let v = lowerCache.get(cp);
  if (v === undefined) {
    v = String.fromCodePoint(cp).toLowerCase().codePointAt(0) ?? cp;
    lowerCache.set(cp, v);
  }
  return v;
}

// llama.cpp's NFD table keeps the first code point of the canonical decomposition (the base letter).
function nfdBase(cp: number): number {
  if (cp < 0xc0) return cp;
  let v = baseCache.get(cp);
  if (v === undefined) {
    v = String.fromCodePoint(cp).normalize('NFD').codePointAt(0) ?? cp;
    baseCache.set(cp, v);
  }
  return v;
}

/** Encoder of one WordPiece vocabulary. */
export class WpmEncoder {
  private readonly textToId: Map<string, number>;
  private readonly unkId: number;
  private readonly maxLen: number;
  private readonly lowercase: boolean;
  private readonly stripAccents: boolean;

  constructor(textToId: Map<string, number>, unkId: number, maxTokenLength: number, lowercase = true, strip = true) {
    this.textToId = textToId;
    this.unkId = unkId;
    this.maxLen = maxTokenLength;
    this.lowercase = lowercase;
    this.stripAccents = strip;
  }

  /** Normalizes and splits `text` into words (BERT's basic tokenizer as llama.cpp implements it). */
  preprocess(text: string): string[] {
    const words: string[] = [];
    let word = '';
    for (const ch of text) {
      let cp = ch.codePointAt(0)!;
      if (this.stripAccents) cp = nfdBase(cp);
      const flags = cptFlags(cp);
      if (flags & WHITESPACE) {
        if (word) words.push(word);
        word = '';
        continue;
      }
      if (cp === 0 || cp === 0xfffd || flags & CONTROL) continue;
      if (this.stripAccents && flags & MARK) continue;
      const s = String.fromCodePoint(this.lowercase ? toLower(cp) : cp);
      if (flags & PUNCT || (cp < 0x7f && flags & SYMBOL) || isChineseChar(cp)) {
        if (word) words.push(word);
        words.push(s);
        word = '';
      } else word += s;
    }
    if (word) words.push(word);
    return words;
  }

  /** Appends the ids of `text` to `out`. */
  encode(text: string, out: number[]): void {
    for (const w of this.preprocess(text)) {
      const word = `\u2581${w}`;
      const n = word.length;
      const mark = out.length;
      for (let i = 0; i < n; ) {
        let matched = -1;
        for (let j = Math.min(n, i + this.maxLen); j > i; j--) {
          const id = this.textToId.get(word.slice(i, j));
          if (id !== undefined) {
            out.push(id);
            matched = j;
            break;
          }
        }
        if (matched < 0) {
          out.length = mark;
          break;
        }
        i = matched;
      }
      if (out.length === mark) out.push(this.unkId);
    }
  }
}
