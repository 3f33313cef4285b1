/**
 * Unicode helpers shared by the tokenizers: UTF-8 conversion, GPT-2's byte <-> character map, and a per-code-point
 * category table (letter, number, whitespace, ...) with the same meaning as llama.cpp's `unicode_cpt_flags`.
 */

/** Category bits of one code point. */
export const LETTER = 1;
export const NUMBER = 2;
export const PUNCT = 4;
export const SYMBOL = 8;
export const MARK = 16;
/** Cc, Cf, Co, Cs. */
export const CONTROL = 32;
/** Unicode White_Space (not JS `\s`: U+0085 is in, U+FEFF is out). */
export const WHITESPACE = 64;
/** Unassigned (Cn): no flag set in llama.cpp's tables. */
export const UNDEFINED = 128;

// Unicode White_Space. JS `\s` differs from it (and from llama.cpp) on U+0085 and U+FEFF.
const WS_CLASS = '\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

const CATEGORY_SOURCES: [number, string][] = [
  [LETTER, '\\p{L}'],
  [NUMBER, '\\p{N}'],
  [PUNCT, '\\p{P}'],
  [SYMBOL, '\\p{S}'],
  [MARK, '\\p{M}'],
  [CONTROL, '[\\p{Cc}\\p{Cf}\\p{Co}\\p{Cs}]'],
  [WHITESPACE, `[${WS_CLASS}]`],
  [UNDEFINED, '\\p{Cn}'],
];

let bmpFlags: Uint8Array | undefined;
let astralFlags: Uint8Array | undefined;

// One global-regex pass per category over a string of every code point in [lo, hi): a few ms for the BMP.
function buildFlags(lo: number, hi: number): Uint8Array {
  const flags = new Uint8Array(hi - lo);
  const units: number[] = [];
  for (let cp = lo; cp < hi; cp++) {
    // surrogates would pair up with their neighbours in the string: stand in with NUL, fixed below
    if (cp >= 0xd800 && cp < 0xe000) units.push(0);
    else if (cp < 0x10000) units.push(cp);
    else units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
  }
  let s = '';
  for (let i = 0; i < units.length; i += 8192) s += String.fromCharCode(...units.slice(i, i + 8192));
  const step = lo < 0x10000 ? 1 : 2;
  for (const [bit, src] of CATEGORY_SOURCES) {
    const re = new RegExp(src, 'gu');
    for (let m = re.exec(s); m !== null; m = re.exec(s)) flags[m.index / step] |= bit;
  }
  if (lo === 0) flags.fill(CONTROL, 0xd800, 0xe000);
  return flags;
}

/** Category bits of code point `cp` (0 for values past U+10FFFF). */
export function cptFlags(cp: number): number {
  if (cp < 0x10000) {
    bmpFlags ??= buildFlags(0, 0x10000);
    return bmpFlags[cp];
  }
  if (cp > 0x10ffff) return 0;
  astralFlags ??= buildFlags(0x10000, 0x110000);
  return astralFlags[cp - 0x10000];
}

const encoder = new TextEncoder();
// ignoreBOM: a leading U+FEFF is text here, not a byte order mark to drop
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** UTF-8 bytes of `s`; lone surrogates become U+FFFD (EF BF BD), as in every UTF-8 encoder. */
export function utf8Encode(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Decodes UTF-8, replacing each invalid sequence by U+FFFD (WHATWG rules, the same as `TextDecoder`). */
export function utf8Decode(bytes: Uint8Array): string {
  return utf8Decoder.decode(bytes);
}

/**
 * GPT-2's printable stand-in for every byte: bytes 0x21-0x7E, 0xA1-0xAC and 0xAE-0xFF stand for themselves, the rest
 * map to U+0100 upwards in byte order.
 */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const keep = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCharCode(keep ? b : 256 + n++);
  }
  return out;
})();

/** Inverse of BYTE_TO_CHAR, indexed by UTF-16 code unit (< 0x144); -1 where the unit stands for no byte. */
export const CHAR_TO_BYTE: Int16Array = (() => {
  const out = new Int16Array(0x144).fill(-1);
  for (let b = 0; b < 256; b++) out[BYTE_TO_CHAR[b].charCodeAt(0)] = b;
  return out;
})();

/** Bytes a GPT-2 style token text stands for, or undefined if it holds a character outside the byte map. */
export function byteLevelToBytes(text: string): Uint8Array | undefined {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const b = c < 0x144 ? CHAR_TO_BYTE[c] : -1;
    if (b < 0) return undefined;
    out[i] = b;
  }
  return out;
}
