/**
 * Pre-tokenizers of byte-level BPE: the regex stages llama.cpp selects through `tokenizer.ggml.pre`.
 *
 * llama.cpp applies its regexes one after another: each stage splits every fragment left by the previous one, keeps
 * the text between matches as fragments of its own, and cannot look past a fragment's end. We do the same:
 * - GPT-2's and LLaMA 3's patterns run as hand-written scanners (as in llama.cpp, whose versions treat unassigned
 *   code points as matching no class), over a code point category table;
 * - every other pattern runs as a JS regex (`u` flag) on the fragment, with whitespace meaning Unicode White_Space:
 *   non-ASCII whitespace is replaced by U+000B in the string the regexes see (as llama.cpp does) and `\s` means
 *   `[\t-\r ]`.
 */

import { TokenizerError } from './types.js';
import { CONTROL, cptFlags, LETTER, NUMBER, PUNCT, SYMBOL, UNDEFINED, WHITESPACE } from './unicode.js';

/**
 * A pre-tokenizer family: its split stages and what llama.cpp does differently for it.
 *
 * @example
 * ```ts
 * const info: PreTokenizerInfo = preTokenizerInfo('qwen2'); // info.cleanSpaces === false
 * ```
 */
export interface PreTokenizerInfo {
  /** Canonical family name. */
  name: string;
  stages: readonly string[];
  /** A pre-token that is itself a token is emitted whole (LLaMA 3 and friends). */
  ignoreMerges: boolean;
  /** Decode applies clean_up_tokenization_spaces. */
  cleanSpaces: boolean;
  /** The family's default for add_bos (metadata overrides it). */
  addBos: boolean;
}

// llama.cpp's regex sources, as C++ would see them (backslashes single). GPT-2's and LLaMA 3's regexes run as the
// hand-written splitters llama.cpp uses for them (see scanGpt2 / scanLlama3), named by these two markers.
const GPT2 = '<gpt2>';
const LLAMA3 = '<llama3>';
const QWEN2 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN35 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const CHATGLM4 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// escapes, not literals: several of these code points are NFC singletons that editors silently normalize
const DEEPSEEK_LLM_LETTERS =
  '\\s?[A-Za-z\\u{00B5}\\u{00C0}-\\u{00D6}\\u{00D8}-\\u{00F6}\\u{00F8}-\\u{01BA}\\u{01BC}-\\u{01BF}\\u{01C4}-\\u{0293}\\u{0295}-\\u{02AF}\\u{0370}-\\u{0373}\\u{0376}\\u{0377}\\u{037B}-\\u{037D}\\u{037F}\\u{0386}\\u{0388}-\\u{038A}\\u{038C}\\u{038E}-\\u{03A1}\\u{03A3}-\\u{03F5}\\u{03F7}-\\u{0481}\\u{048A}-\\u{052F}\\u{0531}-\\u{0556}\\u{10A0}-\\u{10C5}\\u{13A0}-\\u{13F5}\\u{13F8}-\\u{13FD}\\u{1C90}-\\u{1CBA}\\u{1CBD}-\\u{1CBF}\\u{1D00}-\\u{1D2B}\\u{1D6B}-\\u{1D77}\\u{1D79}-\\u{1D9A}\\u{1E00}-\\u{1F15}\\u{1F18}-\\u{1F1D}\\u{1F20}-\\u{1F45}\\u{1F48}-\\u{1F4D}\\u{1F50}-\\u{1F57}\\u{1F59}\\u{1F5B}\\u{1F5D}\\u{1F5F}-\\u{1F7D}\\u{1F80}-\\u{1FB4}\\u{1FB6}-\\u{1FBC}\\u{1FBE}\\u{1FC2}-\\u{1FC4}\\u{1FC6}-\\u{1FCC}\\u{1FD0}-\\u{1FD3}\\u{1FD6}-\\u{1FDB}\\u{1FE0}-\\u{1FEC}\\u{1FF2}-\\u{1FF4}\\u{1FF6}-\\u{1FFC}\\u{2102}\\u{2107}\\u{210A}-\\u{2113}\\u{2115}\\u{2119}-\\u{211D}\\u{2124}\\u{2126}\\u{2128}\\u{212A}-\\u{212D}\\u{212F}-\\u{2134}\\u{2139}\\u{213C}-\\u{213F}\\u{2145}-\\u{2149}\\u{214E}\\u{2183}\\u{2184}\\u{2C00}-\\u{2C7B}\\u{2C7E}-\\u{2CE4}\\u{2CEB}-\\u{2CEE}\\u{2CF2}\\u{2CF3}\\u{A640}-\\u{A66D}\\u{A680}-\\u{A69B}\\u{A722}-\\u{A76F}\\u{A771}-\\u{A787}\\u{A78B}-\\u{A78E}\\u{AB70}-\\u{ABBF}\\u{FB00}-\\u{FB06}\\u{FB13}-\\u{FB17}\\u{FF21}-\\u{FF3A}\\u{FF41}-\\u{FF5A}\\u{10400}-\\u{1044F}\\u{104B0}-\\u{104D3}\\u{104D8}-\\u{104FB}\\u{10C80}-\\u{10CB2}\\u{10CC0}-\\u{10CF2}\\u{118A0}-\\u{118DF}\\u{1E900}-\\u{1E943}]+';
const DEEPSEEK3 =
  '[!"#$%&\'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';
const TEKKEN =
  '[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';
const GPT4O =
  "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const SEED_CODER =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const BAILINGMOE =
  "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";

function family(
  name: string,
  stages: string[],
  opts: { ignoreMerges?: boolean; cleanSpaces?: boolean; addBos?: boolean } = {},
): PreTokenizerInfo {
  return {
    name,
    stages,
    ignoreMerges: opts.ignoreMerges ?? false,
    cleanSpaces: opts.cleanSpaces ?? true,
    addBos: opts.addBos ?? false,
  };
}

const FAMILIES = {
  default: family('default', ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2, '\\p{N}+', '[0-9][0-9][0-9]']),
  gpt2: family('gpt2', [GPT2]),
  llama3: family('llama3', [LLAMA3], { ignoreMerges: true, addBos: true }),
  dbrx: family('dbrx', [LLAMA3]),
  deepseekLlm: family(
    'deepseek-llm',
    ['[\\r\\n]', DEEPSEEK_LLM_LETTERS, '\\s?[!-/:-~！-／：-～‘-‟　-。]+', '\\s+$', '[一-龥ࠀ-一가-퟿]+', '\\p{N}+'],
    { cleanSpaces: false },
  ),
  deepseekCoder: family('deepseek-coder', ['[\\r\\n]', '\\s?\\p{L}+', '\\s?\\p{P}+', '[一-龥ࠀ-一가-퟿]+', '\\p{N}'], {
    cleanSpaces: false,
  }),
  deepseek3: family('deepseek-v3', ['\\p{N}{1,3}', '[一-龥぀-ゟ゠-ヿ]+', DEEPSEEK3], { cleanSpaces: false }),
  falcon: family('falcon', ['[\\p{P}\\$\\+<=>\\^~\\|`]+', GPT2, '[0-9][0-9][0-9]']),
  starcoder: family('starcoder', ['\\p{N}', GPT2]),
  starcoderNoClean: family('starcoder', ['\\p{N}', GPT2], { cleanSpaces: false }),
  qwen2: family('qwen2', [QWEN2], { cleanSpaces: false }),
  qwen2Clean: family('qwen2', [QWEN2]),
  qwen35: family('qwen35', [QWEN35], { cleanSpaces: false }),
  poro: family('poro', [' ?[^(\\s|.,!?…。，、।۔،)]+'], { cleanSpaces: false }),
  bloom: family('bloom', [' ?[^(\\s|.,!?…。，、।۔،)]+']),
  viking: family('viking', [' ?[^(\\s|.,!?…。，、।۔،)]+', '\\p{N}'], { cleanSpaces: false }),
  chatglm4: family('chatglm4', [CHATGLM4]),
  tekken: family('tekken', [TEKKEN], { ignoreMerges: true, addBos: true, cleanSpaces: false }),
  gpt4o: family('gpt-4o', [GPT4O], { cleanSpaces: false }),
  seedCoder: family('seed-coder', [SEED_CODER], { cleanSpaces: false }),
  bailingmoe: family('bailingmoe', [BAILINGMOE], { cleanSpaces: false }),
  superbpe: family('superbpe', ['\\p{N}+', '(?=(\\d{3})+(?!\\d))'], { cleanSpaces: false }),
} as const;

const BY_NAME: Record<string, PreTokenizerInfo> = {
  default: FAMILIES.default,
  'gpt-2': FAMILIES.gpt2,
  'phi-2': FAMILIES.gpt2,
  'jina-es': FAMILIES.gpt2,
  'jina-de': FAMILIES.gpt2,
  gigachat: FAMILIES.gpt2,
  'jina-v2-es': FAMILIES.gpt2,
  'jina-v2-de': FAMILIES.gpt2,
  'jina-v1-en': FAMILIES.gpt2,
  'jina-v2-code': FAMILIES.gpt2,
  'roberta-bpe': FAMILIES.gpt2,
  'a.x-4.0': FAMILIES.gpt2,
  mellum: FAMILIES.gpt2,
  'modern-bert': FAMILIES.gpt2,
  exaone4: FAMILIES.gpt2,
  mpt: FAMILIES.gpt2,
  olmo: FAMILIES.gpt2,
  jais: FAMILIES.gpt2,
  trillion: { ...FAMILIES.gpt2, cleanSpaces: false },
  'granite-docling': { ...FAMILIES.gpt2, cleanSpaces: false },
  llama3: FAMILIES.llama3,
  'llama-v3': FAMILIES.llama3,
  'llama-bpe': FAMILIES.llama3,
  falcon3: FAMILIES.llama3,
  'falcon-h1': FAMILIES.llama3,
  pixtral: FAMILIES.llama3,
  'midm-2.0': FAMILIES.llama3,
  lfm2: FAMILIES.llama3,
  dbrx: FAMILIES.dbrx,
  'smaug-bpe': FAMILIES.dbrx,
  'deepseek-llm': FAMILIES.deepseekLlm,
  'deepseek-coder': FAMILIES.deepseekCoder,
  'deepseek-v3': FAMILIES.deepseek3,
  'hunyuan-dense': FAMILIES.deepseek3,
  falcon: FAMILIES.falcon,
  starcoder: FAMILIES.starcoder,
  refact: FAMILIES.starcoder,
  codeshell: FAMILIES.starcoder,
  exaone: FAMILIES.starcoder,
  'minerva-7b': FAMILIES.starcoder,
  mellum2: FAMILIES.starcoder,
  'command-r': FAMILIES.starcoderNoClean,
  smollm: FAMILIES.starcoderNoClean,
  qwen2: FAMILIES.qwen2,
  'deepseek-r1-qwen': FAMILIES.qwen2,
  kormo: FAMILIES.qwen2,
  hunyuan: FAMILIES.qwen2,
  'solar-open': FAMILIES.qwen2,
  stablelm2: FAMILIES.qwen2Clean,
  megrez: FAMILIES.qwen2Clean,
  qwen35: FAMILIES.qwen35,
  'poro-chat': FAMILIES.poro,
  bloom: FAMILIES.bloom,
  'gpt3-finnish': FAMILIES.bloom,
  viking: FAMILIES.viking,
  'chatglm-bpe': FAMILIES.chatglm4,
  glm4: FAMILIES.chatglm4,
  tekken: FAMILIES.tekken,
  'gpt-4o': FAMILIES.gpt4o,
  llama4: FAMILIES.gpt4o,
  'minimax-m2': FAMILIES.gpt4o,
  'seed-coder': FAMILIES.seedCoder,
  'grok-2': { ...FAMILIES.qwen2, name: 'grok-2' },
  bailingmoe: FAMILIES.bailingmoe,
  bailingmoe2: FAMILIES.bailingmoe,
  'llada-moe': FAMILIES.bailingmoe,
  superbpe: FAMILIES.superbpe,
};

/**
 * The pre-tokenizer llama.cpp uses for `tokenizer.ggml.pre` = `pre` (`default` when absent).
 *
 * @example
 * ```ts
 * preTokenizerInfo('llama-bpe').ignoreMerges; // true
 * ```
 */
export function preTokenizerInfo(pre: string | undefined): PreTokenizerInfo {
  const info = BY_NAME[pre ?? 'default'];
  if (!info) {
    throw new TokenizerError(
      'E_TOKENIZER_UNSUPPORTED',
      `unknown pre-tokenizer '${pre}' (known: ${Object.keys(BY_NAME).join(', ')})`,
    );
  }
  return info;
}

/**
 * The names `preTokenizerInfo` accepts.
 *
 * @example
 * ```ts
 * preTokenizerNames.includes('deepseek-coder'); // true
 * ```
 */
export const preTokenizerNames: readonly string[] = Object.keys(BY_NAME);

const ASCII_WS = '\\t-\\r ';

// Rewrites `\s` / `\S` to ASCII whitespace (non-ASCII whitespace is U+000B by the time the regex runs).
function toJsRegex(src: string): RegExp {
  let out = '';
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\' && i + 1 < src.length) {
      const n = src[i + 1];
      if (n === 's') out += inClass ? ASCII_WS : `[${ASCII_WS}]`;
      else if (n === 'S') {
        if (inClass) throw new TokenizerError('E_TOKENIZER_UNSUPPORTED', `\\S inside a class in '${src}'`);
        out += `[^${ASCII_WS}]`;
      } else out += c + n;
      i++;
      continue;
    }
    if (c === '[' && !inClass) inClass = true;
    else if (c === ']' && inClass) inClass = false;
    out += c;
  }
  return new RegExp(out, 'gu');
}

// Non-ASCII White_Space, all single UTF-16 units, so replacing them keeps every index.
const NON_ASCII_WS = /[\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/g;

/**
 * A hand-written splitter: the end of the pre-token that starts at `pos` (`pos < end`).
 *
 * @example
 * ```ts
 * const scan: Scanner = scanGpt2;
 * scan('Hello world', 5, 11); // 11 (' world')
 * ```
 */
export type Scanner = (text: string, pos: number, end: number) => number;

// ASCII categories, spelled out so the scanners need no table build for plain text.
const ASCII_FLAGS = (() => {
  const f = new Uint8Array(128);
  for (let c = 0; c < 128; c++) {
    if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) f[c] = LETTER;
    else if (c >= 0x30 && c <= 0x39) f[c] = NUMBER;
    else if ((c >= 0x09 && c <= 0x0d) || c === 0x20) f[c] = WHITESPACE | (c === 0x20 ? 0 : CONTROL);
    else if (c < 0x20 || c === 0x7f) f[c] = CONTROL;
    else f[c] = '$+<=>^`|~'.includes(String.fromCharCode(c)) ? SYMBOL : PUNCT;
  }
  return f;
})();

// Category flags of the code point at `pos` (text is well-formed: surrogates come in pairs).
function flagsAt(t: string, pos: number, end: number): number {
  if (pos >= end) return 0;
  const c = t.charCodeAt(pos);
  if (c < 0x80) return ASCII_FLAGS[c];
  if (c >= 0xd800 && c < 0xdc00 && pos + 1 < end) {
    return cptFlags(0x10000 + ((c - 0xd800) << 10) + (t.charCodeAt(pos + 1) - 0xdc00));
  }
  return cptFlags(c);
}

function widthAt(t: string, pos: number): number {
  const c = t.charCodeAt(pos);
  return c >= 0xd800 && c < 0xdc00 ? 2 : 1;
}

// llama.cpp's flags are all zero for unassigned code points; those match no class.
const defined = (f: number): boolean => (f & ~UNDEFINED) !== 0;
const LNW = LETTER | NUMBER | WHITESPACE;

/**
 * @example
 * ```ts
 * scanGpt2("it's", 0, 4); // 2 ('it'), then scanGpt2("it's", 2, 4) === 4 ("'s")
 * ```
 *
 * GPT-2's `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, step by step as
 * llama.cpp's `unicode_regex_split_custom_gpt2`.
 */
export const scanGpt2: Scanner = (t, pos, end) => {
  const c = t.charCodeAt(pos);
  if (c === 0x27 && pos + 1 < end) {
    const n1 = t.charCodeAt(pos + 1);
    if (n1 === 0x73 || n1 === 0x74 || n1 === 0x6d || n1 === 0x64) return pos + 2;
    if (pos + 2 < end) {
      const n2 = t.charCodeAt(pos + 2);
      if ((n1 === 0x72 && n2 === 0x65) || (n1 === 0x76 && n2 === 0x65) || (n1 === 0x6c && n2 === 0x6c)) return pos + 3;
    }
  }
  const sp = c === 0x20 ? 1 : 0;
  const f2 = flagsAt(t, pos + sp, end);
  let p = pos + sp;
  if (f2 & LETTER) {
    while (p < end && flagsAt(t, p, end) & LETTER) p += widthAt(t, p);
    return p;
  }
  if (f2 & NUMBER) {
    while (p < end && flagsAt(t, p, end) & NUMBER) p += widthAt(t, p);
    return p;
  }
  if (!(f2 & LNW) && defined(f2)) {
    for (;;) {
      const f = flagsAt(t, p, end);
      if (p >= end || f & LNW || !defined(f)) break;
      p += widthAt(t, p);
    }
    return p;
  }
  let q = pos;
  while (q < end && flagsAt(t, q, end) & WHITESPACE) q++;
  if (q - pos > 1 && q < end) return q - 1; // \s+(?!\S): leave the last space to the next word
  if (q > pos) return q;
  return pos + widthAt(t, pos);
};

/**
 * @example
 * ```ts
 * scanLlama3('12345', 0, 5); // 3: digits go in groups of at most three
 * ```
 *
 * LLaMA 3's `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 * \s*[\r\n]+|\s+(?!\S)|\s+`, step by step as llama.cpp's `unicode_regex_split_custom_llama3`.
 */
export const scanLlama3: Scanner = (t, pos, end) => {
  const c = t.charCodeAt(pos);
  if (c === 0x27 && pos + 1 < end) {
    const n1 = t.charCodeAt(pos + 1) | 0x20;
    if (n1 === 0x73 || n1 === 0x74 || n1 === 0x6d || n1 === 0x64) return pos + 2;
    if (pos + 2 < end) {
      const n2 = t.charCodeAt(pos + 2) | 0x20;
      if ((n1 === 0x72 && n2 === 0x65) || (n1 === 0x76 && n2 === 0x65) || (n1 === 0x6c && n2 === 0x6c)) return pos + 3;
    }
  }
  const f = flagsAt(t, pos, end);
  const w = widthAt(t, pos);
  if (!(c === 0x0d || c === 0x0a || f & NUMBER)) {
    if (f & LETTER || flagsAt(t, pos + w, end) & LETTER) {
      let p = pos + w;
      while (p < end && flagsAt(t, p, end) & LETTER) p += widthAt(t, p);
      return p;
    }
  }
  if (f & NUMBER) {
    let p = pos;
    for (let k = 0; k < 3 && p < end && flagsAt(t, p, end) & NUMBER; k++) p += widthAt(t, p);
    return p;
  }
  const sp = c === 0x20 ? 1 : 0;
  const f2 = sp ? flagsAt(t, pos + 1, end) : f;
  // llama.cpp tests the current code point's flags here, not f2's (a space before an unassigned one still enters)
  if (!(f2 & LNW) && defined(f)) {
    let p = pos + sp;
    for (;;) {
      const g = flagsAt(t, p, end);
      if (p >= end || g & LNW || !defined(g)) break;
      p += widthAt(t, p);
    }
    while (p < end && (t.charCodeAt(p) === 0x0d || t.charCodeAt(p) === 0x0a)) p++;
    return p;
  }
  let q = pos;
  let lastNl = -1;
  while (q < end && flagsAt(t, q, end) & WHITESPACE) {
    const d = t.charCodeAt(q);
    if (d === 0x0d || d === 0x0a) lastNl = q + 1;
    q++;
  }
  if (lastNl >= 0) return lastNl;
  if (q - pos > 1 && q < end) return q - 1;
  if (q > pos) return q;
  return pos + w;
};

type Stage = { scan: Scanner } | { re: RegExp };

/**
 * Splits text into pre-tokens the way llama.cpp's `unicode_regex_split` does for one pre-tokenizer family.
 *
 * @example
 * ```ts
 * new PreTokenizer(preTokenizerInfo('gpt-2')).split("Hello world's"); // ['Hello', ' world', "'s"]
 * ```
 */
export class PreTokenizer {
  readonly info: PreTokenizerInfo;
  private readonly stages: Stage[];
  /** The only stage, when it is a scanner (the fast path of GPT-2 and LLaMA 3). */
  readonly scanner: Scanner | undefined;

  constructor(info: PreTokenizerInfo) {
    this.info = info;
    this.stages = info.stages.map((s) =>
      s === GPT2 ? { scan: scanGpt2 } : s === LLAMA3 ? { scan: scanLlama3 } : { re: toJsRegex(s) },
    );
    const first = this.stages[0];
    this.scanner = this.stages.length === 1 && 'scan' in first ? first.scan : undefined;
  }

  /** The pre-tokens of `text` (well-formed UTF-16), in order; their concatenation is `text`. */
  split(text: string): string[] {
    const subject = NON_ASCII_WS.test(text) ? text.replace(NON_ASCII_WS, '\x0b') : text;
    NON_ASCII_WS.lastIndex = 0;
    // fragment boundaries as [start0, end0, start1, end1, ...] UTF-16 offsets
    let bounds: number[] = [0, text.length];
    for (const stage of this.stages) {
      const next: number[] = [];
      for (let f = 0; f < bounds.length; f += 2) {
        const start = bounds[f];
        const end = bounds[f + 1];
        if ('scan' in stage) {
          for (let p = start; p < end; ) {
            const q = stage.scan(text, p, end);
            next.push(p, q);
            p = q;
          }
        } else splitFragment(stage.re, subject, start, end, next);
      }
      bounds = next;
    }
    const out: string[] = new Array(bounds.length / 2);
    for (let f = 0; f < bounds.length; f += 2) out[f / 2] = text.slice(bounds[f], bounds[f + 1]);
    return out;
  }
}

// Splits subject[start, end) by `re` into matches and the gaps between them, appending non-empty ranges to `out`.
function splitFragment(re: RegExp, subject: string, start: number, end: number, out: number[]): void {
  const s = start === 0 && end === subject.length ? subject : subject.slice(start, end);
  re.lastIndex = 0;
  let prev = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    const len = m[0].length;
    if (m.index > prev) out.push(start + prev, start + m.index);
    if (len > 0) out.push(start + m.index, start + m.index + len);
    prev = m.index + len;
    // an empty match still splits (llama.cpp's superbpe digit grouping relies on it); step past it
    if (len === 0) {
      const c = s.charCodeAt(m.index);
      re.lastIndex = m.index + (c >= 0xd800 && c < 0xdc00 && m.index + 1 < s.length ? 2 : 1);
      if (m.index >= s.length) break;
    }
  }
  if (prev < s.length) out.push(start + prev, start + s.length);
}
