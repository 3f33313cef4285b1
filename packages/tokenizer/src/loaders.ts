/**
 * Loaders: GGUF tokenizer metadata, llama2.c `tokenizer.bin`, Hugging Face `tokenizer.json` and GPT-2's
 * `vocab.json` + `merges.txt`. All take plain objects, strings or bytes; none reads files.
 */

import { Tokenizer } from './tokenizer.js';
import { TokenizerError, type TokenizerMetadata, TokenType } from './types.js';
import { BYTE_TO_CHAR } from './unicode.js';

/**
 * A tokenizer from GGUF metadata (`tokenizer.ggml.*`), e.g. the output of `@nibble/gguf`'s `tokenizerMetadata`.
 * `model` `llama` is SentencePiece BPE, `gpt2` byte-level BPE (with `pre`), `bert` WordPiece.
 *
 * @example
 * ```ts
 * import { parseGguf, tokenizerMetadata } from '@nibble/gguf';
 * const tok = fromGgufMetadata(tokenizerMetadata(parseGguf(bytes)));
 * ```
 *
 * `modelName` (`general.name`) applies the token attributes llama.cpp sets by model name: in a Phi-3 file
 * ("phi-3"/"phi3" in the name) special tokens swallow the whitespace after them, except `<unk>`, `<s>` and
 * `<|endoftext|>` (and `</s>` does too).
 */
export function fromGgufMetadata(meta: TokenizerMetadata, options: { modelName?: string } = {}): Tokenizer {
  const kind = meta.model === 'llama' ? 'spm' : meta.model === 'gpt2' ? 'bpe' : meta.model === 'bert' ? 'wpm' : null;
  if (kind === null) {
    throw new TokenizerError(
      'E_TOKENIZER_UNSUPPORTED',
      `tokenizer.ggml.model '${meta.model}' is not supported (llama, gpt2, bert)`,
    );
  }
  if (kind === 'bpe' && !meta.merges) {
    throw new TokenizerError('E_TOKENIZER_FORMAT', 'gpt2 tokenizer without tokenizer.ggml.merges');
  }
  return new Tokenizer({
    kind,
    tokens: meta.tokens,
    scores: meta.scores,
    tokenTypes: meta.tokenTypes,
    merges: meta.merges,
    pre: kind === 'bpe' ? (meta.pre ?? 'default') : undefined,
    bosId: meta.bosId,
    eosId: meta.eosId,
    unkId: meta.unkId,
    padId: meta.padId,
    sepId: meta.sepId,
    eotId: meta.eotId,
    addBos: meta.addBos,
    addEos: meta.addEos,
    addSpacePrefix: meta.addSpacePrefix,
    rstrip: nameRstrip(meta, options.modelName),
  });
}

/** llama.cpp's `load` (llama-vocab.cpp): the RSTRIP tokens of files whose `general.name` says Phi-3. */
function nameRstrip(meta: TokenizerMetadata, name: string | undefined): number[] | undefined {
  const lower = name?.toLowerCase();
  if (lower === undefined || !(lower.includes('phi-3') || lower.includes('phi3'))) return undefined;
  const special = new Set<number>([TokenType.Control, TokenType.UserDefined, TokenType.Unknown]);
  const out = new Set<number>();
  meta.tokens.forEach((t, id) => {
    if (special.has(meta.tokenTypes?.[id] ?? TokenType.Normal) || t === '</s>') out.add(id);
  });
  for (const t of ['<unk>', '<s>', '<|endoftext|>']) {
    const id = meta.tokens.indexOf(t);
    if (id >= 0) out.delete(id);
  }
  return [...out];
}

/**
 * A SentencePiece tokenizer from a llama2.c `tokenizer.bin` (`int32 max_token_length`, then per token `float32
 * score, int32 length, bytes`, little-endian). Ids 0/1/2 are unknown/BOS/EOS, `<0xXX>` are byte tokens; spaces are
 * stored as ' ' and become '▁'. `vocabSize` (from the checkpoint header) stops reading early when given.
 *
 * @example
 * ```ts
 * const tok = fromLlama2cTokenizer(readFileSync('tok512.bin'), 512);
 * tok.encode('Once upon a time', { addSpecial: true });
 * ```
 */
export function fromLlama2cTokenizer(bytes: Uint8Array, vocabSize?: number): Tokenizer {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4) throw new TokenizerError('E_TOKENIZER_FORMAT', `tokenizer.bin: ${bytes.length} bytes, need 4`);
  const maxLen = view.getInt32(0, true);
  if (maxLen <= 0) throw new TokenizerError('E_TOKENIZER_FORMAT', `tokenizer.bin: max_token_length ${maxLen} at 0`);
  const decoder = new TextDecoder('utf-8');
  const tokens: string[] = [];
  const scores: number[] = [];
  let o = 4;
  while (o < bytes.length && (vocabSize === undefined || tokens.length < vocabSize)) {
    if (o + 8 > bytes.length) {
      throw new TokenizerError('E_TOKENIZER_FORMAT', `tokenizer.bin: token ${tokens.length} header cut at offset ${o}`);
    }
    const score = view.getFloat32(o, true);
    const len = view.getInt32(o + 4, true);
    o += 8;
    if (len < 0 || o + len > bytes.length) {
      throw new TokenizerError(
        'E_TOKENIZER_FORMAT',
        `tokenizer.bin: token ${tokens.length} length ${len} at offset ${o - 4} runs past the end (${bytes.length})`,
      );
    }
    tokens.push(decoder.decode(bytes.subarray(o, o + len)));
    scores.push(score);
    o += len;
  }
  if (vocabSize !== undefined && tokens.length < vocabSize) {
    throw new TokenizerError(
      'E_TOKENIZER_FORMAT',
      `tokenizer.bin: expected ${vocabSize} tokens, found ${tokens.length} (data ends at offset ${o})`,
    );
  }
  const types = new Int32Array(tokens.length).fill(TokenType.Normal);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (i < 3) {
      // llama2.c stores BOS/EOS as "\n<s>\n" / "\n</s>\n" for its own decoder
      tokens[i] = t.trim();
      types[i] = i === 0 ? TokenType.Unknown : TokenType.Control;
    } else if (/^<0x[0-9A-F]{2}>$/.test(t)) types[i] = TokenType.Byte;
    else tokens[i] = t.replaceAll(' ', '\u2581');
  }
  return new Tokenizer({
    kind: 'spm',
    tokens,
    scores: Float32Array.from(scores),
    tokenTypes: types,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    addBos: true,
  });
}

/**
 * Options of {@link fromVocabMerges}.
 *
 * @example
 * ```ts
 * const opts: VocabMergesOptions = { pre: 'gpt-2', specialTokens: ['<|endoftext|>'] };
 * ```
 */
export interface VocabMergesOptions {
  /** Pre-tokenizer name (default `gpt-2`). */
  pre?: string;
  /** Tokens to treat as control tokens (default: `<|endoftext|>` when present). */
  specialTokens?: string[];
  bosId?: number;
  eosId?: number;
}

/**
 * A byte-level BPE tokenizer from GPT-2's `vocab.json` (object or its text) and `merges.txt` (text or lines).
 *
 * @example
 * ```ts
 * const tok = fromVocabMerges(readFileSync('vocab.json', 'utf8'), readFileSync('merges.txt', 'utf8'));
 * tok.encode('Hello world'); // [15496, 995]
 * ```
 */
export function fromVocabMerges(
  vocab: Record<string, number> | string,
  merges: string | readonly string[],
  options: VocabMergesOptions = {},
): Tokenizer {
  const v = typeof vocab === 'string' ? (parseJson(vocab, 'vocab.json') as Record<string, number>) : vocab;
  const tokens = tokensFromVocab(v, 'vocab.json');
  const lines = typeof merges === 'string' ? mergeLines(merges) : merges;
  const types = new Int32Array(tokens.length).fill(TokenType.Normal);
  const ids = new Map(tokens.map((t, i) => [t, i]));
  const specials = options.specialTokens ?? ['<|endoftext|>'];
  let eot: number | undefined;
  for (const s of specials) {
    const id = ids.get(s);
    if (id !== undefined) {
      types[id] = TokenType.Control;
      eot ??= id;
    }
  }
  return new Tokenizer({
    kind: 'bpe',
    tokens,
    tokenTypes: types,
    merges: lines,
    pre: options.pre ?? 'gpt-2',
    bosId: options.bosId ?? eot,
    eosId: options.eosId ?? eot,
    eotId: eot,
  });
}

/**
 * Options of {@link fromTiktoken}.
 *
 * @example
 * ```ts
 * const opts: TiktokenOptions = { pre: 'llama3', specialTokens: { '<|endoftext|>': 100257 } };
 * ```
 */
export interface TiktokenOptions {
  /** Pre-tokenizer name (default `gpt-2`; `llama3` is cl100k_base's pattern). */
  pre?: string;
  /** Special tokens and their ids (control tokens). */
  specialTokens?: Record<string, number>;
}

/**
 * A byte-level BPE tokenizer from a tiktoken vocabulary: `.tiktoken` text (`base64 rank` per line) or
 * `[bytes, rank]` pairs. Ids are ranks; a pair merges with the rank of the token it forms, lowest first and leftmost
 * on ties (tiktoken's rule), and a pre-token that is itself a token is emitted whole.
 *
 * @example
 * ```ts
 * const tok = fromTiktoken(readFileSync('cl100k_base.tiktoken', 'utf8'), { pre: 'llama3' });
 * ```
 */
export function fromTiktoken(ranks: string | Iterable<[Uint8Array, number]>, options: TiktokenOptions = {}): Tokenizer {
  const pairs: [Uint8Array, number][] = [];
  if (typeof ranks === 'string') {
    const lines = ranks.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i].trim();
      if (line === '') continue;
      const [b64, r] = line.split(' ');
      const rank = Number(r);
      if (!b64 || !Number.isInteger(rank) || rank < 0) {
        throw new TokenizerError(
          'E_TOKENIZER_FORMAT',
          `tiktoken: line ${i + 1} is not 'base64 rank': ${line.slice(0, 40)}`,
        );
      }
      pairs.push([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)), rank]);
    }
  } else for (const p of ranks) pairs.push(p);
  const specials = Object.entries(options.specialTokens ?? {});
  let n = 0;
  for (const [, r] of pairs) n = Math.max(n, r + 1);
  for (const [, id] of specials) n = Math.max(n, id + 1);
  if (n > 1 << 24) throw new TokenizerError('E_TOKENIZER_FORMAT', `tiktoken: rank ${n - 1} is implausibly large`);
  const tokens: string[] = new Array(n);
  const types = new Int32Array(n).fill(TokenType.Unused);
  for (const [bytes, r] of pairs) {
    let t = '';
    for (const b of bytes) t += BYTE_TO_CHAR[b];
    tokens[r] = t;
    types[r] = TokenType.Normal;
  }
  for (const [text, id] of specials) {
    tokens[id] = text;
    types[id] = TokenType.Control;
  }
  for (let i = 0; i < n; i++) if (tokens[i] === undefined) tokens[i] = `[UNUSED_${i}]`;
  // every split of a token into two tokens is a merge with the token's rank
  const ids = new Map<string, number>();
  for (const [, r] of pairs) ids.set(tokens[r], r);
  const order = pairs.slice().sort((a, b) => a[1] - b[1]);
  const merges: string[] = [];
  const mergeRanks: number[] = [];
  for (const [, r] of order) {
    const t = tokens[r];
    for (let k = 1; k < t.length; k++) {
      const left = t.slice(0, k);
      const right = t.slice(k);
      if (ids.has(left) && ids.has(right)) {
        merges.push(`${left} ${right}`);
        mergeRanks.push(r);
      }
    }
  }
  const eot = specials.find(([t]) => /endoftext/.test(t))?.[1];
  return new Tokenizer({
    kind: 'bpe',
    tokens,
    tokenTypes: types,
    merges,
    mergeRanks,
    pre: options.pre ?? 'gpt-2',
    ignoreMerges: true,
    bosId: eot,
    eosId: eot,
    eotId: eot,
    cleanSpaces: false,
  });
}

/**
 * Options of {@link fromHfTokenizerJson}.
 *
 * @example
 * ```ts
 * const opts: HfTokenizerOptions = { pre: 'llama-bpe' };
 * ```
 */
export interface HfTokenizerOptions {
  /** Pre-tokenizer name for BPE; detected from the pre_tokenizer's Split pattern when absent. */
  pre?: string;
  bosId?: number;
  eosId?: number;
  addBos?: boolean;
}

// Hugging Face Split patterns -> llama.cpp pre-tokenizer names.
const HF_PATTERNS: [string, string][] = [
  [
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    'llama-bpe',
  ],
  [
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    'qwen2',
  ],
];

/**
 * A tokenizer from a Hugging Face `tokenizer.json` (object or text): `BPE` models with a ByteLevel pre-tokenizer,
 * and `WordPiece` (BERT) models. Added tokens become control (special) or user-defined tokens.
 *
 * @example
 * ```ts
 * const tok = fromHfTokenizerJson(readFileSync('tokenizer.json', 'utf8'));
 * ```
 */
export function fromHfTokenizerJson(json: unknown, options: HfTokenizerOptions = {}): Tokenizer {
  const root = (typeof json === 'string' ? parseJson(json, 'tokenizer.json') : json) as HfJson;
  const model = root?.model;
  if (!model || typeof model !== 'object' || !model.vocab) {
    throw new TokenizerError('E_TOKENIZER_FORMAT', 'tokenizer.json: no model.vocab');
  }
  const base = tokensFromVocab(model.vocab, 'tokenizer.json model.vocab');
  const added = Array.isArray(root.added_tokens) ? root.added_tokens : [];
  const tokens = base.slice();
  for (const a of added) {
    if (typeof a?.id !== 'number' || typeof a.content !== 'string') continue;
    if (a.id >= tokens.length) tokens.length = a.id + 1;
    tokens[a.id] = a.content;
  }
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] === undefined) {
      throw new TokenizerError('E_TOKENIZER_FORMAT', `tokenizer.json: no token has id ${i}`);
    }
  }
  const types = new Int32Array(tokens.length).fill(TokenType.Normal);
  for (const a of added) {
    if (typeof a?.id === 'number') types[a.id] = a.special ? TokenType.Control : TokenType.UserDefined;
  }
  const type = model.type ?? (model.merges ? 'BPE' : 'WordPiece');
  if (type === 'BPE') {
    const merges = (model.merges ?? []).map((m) => (Array.isArray(m) ? `${m[0]} ${m[1]}` : m));
    const pattern = JSON.stringify(root.pre_tokenizer ?? {});
    let pre = options.pre;
    if (!pre) {
      pre = 'gpt-2';
      for (const [p, name] of HF_PATTERNS) if (pattern.includes(JSON.stringify(p).slice(1, -1))) pre = name;
    }
    let eot: number | undefined;
    for (const a of added) if (a.special && eot === undefined && /end|eot|eos/i.test(a.content)) eot = a.id;
    return new Tokenizer({
      kind: 'bpe',
      tokens,
      tokenTypes: types,
      merges,
      pre,
      bosId: options.bosId,
      eosId: options.eosId ?? eot,
      eotId: eot,
      addBos: options.addBos,
    });
  }
  if (type === 'WordPiece') {
    // llama.cpp's BERT conversion: "##x" continues a word as "x"; other normal tokens start one, as "▁x"
    const wp = tokens.map((t, i) => {
      if (types[i] !== TokenType.Normal || (t.startsWith('[') && t.endsWith(']'))) return t;
      return t.startsWith('##') && t.length > 2 ? t.slice(2) : `\u2581${t}`;
    });
    for (let i = 0; i < wp.length; i++) if (wp[i].startsWith('[') && wp[i].endsWith(']')) types[i] = TokenType.Control;
    const id = (s: string): number | undefined => {
      const k = tokens.indexOf(s);
      return k >= 0 ? k : undefined;
    };
    return new Tokenizer({
      kind: 'wpm',
      tokens: wp,
      tokenTypes: types,
      unkId: id(model.unk_token ?? '[UNK]'),
      bosId: options.bosId ?? id('[CLS]'),
      sepId: id('[SEP]'),
      padId: id('[PAD]'),
      lowercase: root.normalizer?.lowercase ?? true,
    });
  }
  throw new TokenizerError('E_TOKENIZER_UNSUPPORTED', `tokenizer.json: model type '${type}' (BPE, WordPiece)`);
}

interface HfJson {
  model?: {
    type?: string;
    vocab?: Record<string, number>;
    merges?: (string | [string, string])[];
    unk_token?: string;
  };
  added_tokens?: { id: number; content: string; special?: boolean }[];
  pre_tokenizer?: unknown;
  normalizer?: { lowercase?: boolean };
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TokenizerError('E_TOKENIZER_FORMAT', `${what}: not JSON (${(e as Error).message})`);
  }
}

function tokensFromVocab(vocab: Record<string, number>, what: string): string[] {
  const keys = Object.keys(vocab);
  const tokens: string[] = new Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const t = keys[i];
    const id = vocab[t];
    if (!Number.isInteger(id) || id < 0 || id >= keys.length) {
      throw new TokenizerError(
        'E_TOKENIZER_FORMAT',
        `${what}: token ${JSON.stringify(t)} has id ${id}, expected 0..${keys.length - 1}`,
      );
    }
    if (tokens[id] !== undefined) throw new TokenizerError('E_TOKENIZER_FORMAT', `${what}: id ${id} used twice`);
    tokens[id] = t;
  }
  return tokens;
}

function mergeLines(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const l = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (l === '' || l.startsWith('#version')) continue;
    out.push(l);
  }
  return out;
}
