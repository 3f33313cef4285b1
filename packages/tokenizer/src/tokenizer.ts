/**
 * The Tokenizer: special-token partitioning, the three models (SentencePiece BPE, byte-level BPE, WordPiece),
 * decoding and streaming decoding, with llama.cpp's semantics (`llama_vocab::impl::tokenize` / `detokenize`).
 */

import { ByteBpe } from './bpe.js';
import { PieceCache } from './cache.js';
import { PreTokenizer, preTokenizerInfo } from './pretokenize.js';
import { SpmEncoder } from './spm.js';
import { TokenizerError, TokenType } from './types.js';
import { CHAR_TO_BYTE, utf8Decode, utf8Encode } from './unicode.js';
import { WpmEncoder } from './wpm.js';

/**
 * Which algorithm a vocabulary uses: SentencePiece BPE, byte-level BPE or WordPiece.
 *
 * @example
 * ```ts
 * if (tok.kind === 'spm') console.log('SentencePiece');
 * ```
 */
export type ModelKind = 'spm' | 'bpe' | 'wpm';

/**
 * Everything a {@link Tokenizer} is built from; loaders produce it. Ids left out take llama.cpp's defaults for the
 * model kind; ids past the vocabulary are dropped.
 *
 * @example
 * ```ts
 * const tok = new Tokenizer({ kind: 'bpe', pre: 'gpt-2', tokens: ['a', 'b', 'ab'], merges: ['a b'] });
 * tok.encode('ab'); // [2]
 * ```
 */
export interface TokenizerSpec {
  kind: ModelKind;
  tokens: string[];
  /** SentencePiece scores (merge priority, higher first). */
  scores?: Float32Array;
  /** Per-token {@link TokenType}; all Normal when absent. */
  tokenTypes?: Int32Array;
  /** Byte-level BPE merges, `"left right"`, highest priority first. */
  merges?: readonly string[];
  /** Rank of each merge when not its index (tiktoken vocabularies: the rank of the merged token). */
  mergeRanks?: ArrayLike<number>;
  /** Byte-level BPE pre-tokenizer (`tokenizer.ggml.pre`); `default` when absent. */
  pre?: string;
  /** Emit a pre-token whole when it is a token (default: the pre-tokenizer family's setting, true for LLaMA 3). */
  ignoreMerges?: boolean;
  bosId?: number;
  eosId?: number;
  unkId?: number;
  padId?: number;
  sepId?: number;
  eotId?: number;
  addBos?: boolean;
  addEos?: boolean;
  addSpacePrefix?: boolean;
  /** Decode applies clean_up_tokenization_spaces; defaults to the pre-tokenizer family's setting. */
  cleanSpaces?: boolean;
  /** WordPiece: lowercase (and strip accents) while normalizing; default true. */
  lowercase?: boolean;
  /**
   * SentencePiece: merge the text word by word (cut before each "▁" that follows another character) when no token
   * spans such a cut, which gives the same ids faster. Default true; false merges the whole text at once, as
   * llama.cpp does.
   */
  spmWordSplit?: boolean;
  /** Special tokens that swallow the whitespace before them (llama.cpp's `LLAMA_TOKEN_ATTR_LSTRIP`). */
  lstrip?: readonly number[];
  /** Special tokens that swallow the whitespace after them (`LLAMA_TOKEN_ATTR_RSTRIP`; Phi-3's). */
  rstrip?: readonly number[];
}

/**
 * Options of {@link Tokenizer.encode}.
 *
 * @example
 * ```ts
 * tok.encode('<s>hi', { addSpecial: true, parseSpecial: true });
 * ```
 */
export interface EncodeOptions {
  /** Add BOS/EOS (BERT: CLS/SEP) as the vocabulary asks (`addBos`/`addEos`). Default false. */
  addSpecial?: boolean;
  /** Recognize control tokens written in the text (`<s>`, `<|endoftext|>`). Default false; user-defined tokens are always recognized, as in llama.cpp. */
  parseSpecial?: boolean;
}

/**
 * Options of {@link Tokenizer.decode}.
 *
 * @example
 * ```ts
 * tok.decode(ids, { special: false });
 * ```
 */
export interface DecodeOptions {
  /** Render control and unknown tokens as their text (default true, like llama.cpp's `common_detokenize`). */
  special?: boolean;
  /** Drop a leading BOS / trailing EOS that `addSpecial` would have added. Default false. */
  removeSpecial?: boolean;
  /** Apply llama.cpp's clean-up of spaces before punctuation (byte-level BPE families that use it). */
  cleanSpaces?: boolean;
}

const NONE = -1;
const EOT_NAMES = [
  '<|eot_id|>',
  '<|im_end|>',
  '<|end|>',
  '<end_of_turn>',
  '<|endoftext|>',
  '<|end_of_text|>',
  '<EOT>',
  '_<EOT>',
  '<\uff5cend\u2581of\u2581sentence\uff5c>',
];
const HAS_SURROGATE = /\p{Cs}/u;
const SURROGATES = /\p{Cs}/gu;
const SPACES = / /g;
const EMPTY_BYTES = new Uint8Array(0);

/** C's `isspace` in the "C" locale: what llama.cpp strips around LSTRIP/RSTRIP tokens. */
function isCSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

function validId(id: number | undefined, n: number): number {
  return id !== undefined && Number.isInteger(id) && id >= 0 && id < n ? id : NONE;
}

/**
 * A tokenizer with llama.cpp's exact ids: SentencePiece BPE (`llama`), byte-level BPE (`gpt2`, with every common
 * pre-tokenizer) or WordPiece (`bert`). Build it with a loader (`fromGgufMetadata`, `fromLlama2cTokenizer`,
 * `fromHfTokenizerJson`, `fromVocabMerges`) or from a {@link TokenizerSpec}.
 *
 * @example
 * ```ts
 * const tok = fromVocabMerges(vocabJson, mergesTxt);
 * const ids = tok.encode('Hello world'); // [15496, 995]
 * tok.decode(ids); // 'Hello world'
 * ```
 */
export class Tokenizer {
  readonly kind: ModelKind;
  /** Number of tokens. */
  readonly vocabSize: number;
  /** Special ids; -1 when the vocabulary has none. */
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  readonly padId: number;
  readonly sepId: number;
  readonly eotId: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  readonly cleanSpaces: boolean;
  /** Byte-level BPE pre-tokenizer family, if any. */
  readonly pre: string | undefined;

  private readonly tokens: string[];
  private readonly types: Int32Array;
  private readonly textToId: Map<string, number>;
  /** Control, user-defined and unknown tokens, longest text first (the order llama.cpp partitions in). */
  private readonly specials: number[];
  /** The user-defined ones among them (partitioned even without parseSpecial). */
  private readonly userDefined: number[];
  /** Positions in `specials` / `userDefined` by the token's first UTF-16 unit. */
  private readonly specialsByFirst: Map<number, number[]>;
  private readonly userByFirst: Map<number, number[]>;
  private readonly pieces: (Uint8Array | undefined)[];
  private readonly lstrip: ReadonlySet<number>;
  private readonly rstrip: ReadonlySet<number>;
  private readonly bpe?: ByteBpe;
  private readonly preTok?: PreTokenizer;
  private readonly ignoreMerges: boolean = false;
  private readonly spm?: SpmEncoder;
  /** SentencePiece text may be cut into words before each "▁" that follows another character. */
  private readonly spmWords: boolean = false;
  private readonly wpm?: WpmEncoder;
  private readonly cache = new PieceCache();
  private scratch = new Uint8Array(256);
  private readonly utf8 = new TextEncoder();

  constructor(spec: TokenizerSpec) {
    const n = spec.tokens.length;
    if (n === 0) throw new TokenizerError('E_TOKENIZER_FORMAT', 'vocabulary has no tokens');
    this.kind = spec.kind;
    this.vocabSize = n;
    this.tokens = spec.tokens.slice();
    this.types = spec.tokenTypes ?? new Int32Array(n).fill(TokenType.Normal);
    if (this.types.length < n) {
      throw new TokenizerError('E_TOKENIZER_FORMAT', `token types: expected ${n} entries, found ${this.types.length}`);
    }
    this.textToId = new Map();
    for (let i = 0; i < n; i++) {
      let t = spec.tokens[i];
      if (t === '') t = this.tokens[i] = `[EMPTY_${i}]`;
      if (this.textToId.has(t)) {
        throw new TokenizerError(
          'E_TOKENIZER_FORMAT',
          `duplicate token ${JSON.stringify(t)}: ids ${this.textToId.get(t)} and ${i}`,
        );
      }
      this.textToId.set(t, i);
    }

    const defaults =
      spec.kind === 'spm'
        ? { bos: 1, eos: 2, unk: 0, sep: NONE, pad: NONE, addBos: true }
        : spec.kind === 'wpm'
          ? { bos: 101, eos: NONE, unk: 100, sep: 102, pad: 0, addBos: true }
          : { bos: 11, eos: 11, unk: NONE, sep: NONE, pad: NONE, addBos: false };
    this.bosId = validId(spec.bosId ?? defaults.bos, n);
    this.eosId = validId(spec.eosId ?? defaults.eos, n);
    this.unkId = validId(spec.unkId ?? defaults.unk, n);
    this.sepId = validId(spec.sepId ?? defaults.sep, n);
    this.padId = validId(spec.padId ?? defaults.pad, n);
    // llama.cpp finds the end-of-turn token by name when the metadata has none
    this.eotId = validId(spec.eotId ?? EOT_NAMES.map((t) => this.textToId.get(t)).find((id) => id !== undefined), n);

    let familyAddBos = defaults.addBos;
    let cleanSpaces = spec.kind === 'wpm';
    if (spec.kind === 'bpe') {
      const info = preTokenizerInfo(spec.pre);
      this.pre = info.name;
      this.preTok = new PreTokenizer(info);
      this.ignoreMerges = spec.ignoreMerges ?? info.ignoreMerges;
      familyAddBos = info.addBos;
      cleanSpaces = info.cleanSpaces;
      this.bpe = new ByteBpe(n, this.textToId, spec.merges ?? [], spec.mergeRanks);
    } else if (spec.kind === 'spm') {
      const byteTokens = new Int32Array(256).fill(NONE);
      for (let b = 0; b < 256; b++) {
        const hex = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
        byteTokens[b] = this.textToId.get(hex) ?? this.textToId.get(String.fromCharCode(b)) ?? this.unkId;
      }
      const scores = spec.scores ?? new Float32Array(n);
      if (scores.length < n) {
        throw new TokenizerError('E_TOKENIZER_FORMAT', `scores: expected ${n} entries, found ${scores.length}`);
      }
      this.spm = new SpmEncoder(this.textToId, scores, byteTokens);
      this.spmWords = (spec.spmWordSplit ?? true) && !spec.tokens.some((t) => /[^\u2581]\u2581/.test(t));
    } else {
      let maxLen = 0;
      for (const t of spec.tokens) maxLen = Math.max(maxLen, t.length);
      const lower = spec.lowercase ?? true;
      this.wpm = new WpmEncoder(this.textToId, this.unkId, maxLen, lower, lower);
    }
    this.addBos = spec.addBos ?? familyAddBos;
    this.addEos = spec.addEos ?? false;
    this.addSpacePrefix = spec.addSpacePrefix ?? spec.kind === 'spm';
    this.cleanSpaces = spec.cleanSpaces ?? cleanSpaces;

    const specials: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = this.types[i];
      if (t === TokenType.Control || t === TokenType.UserDefined || t === TokenType.Unknown) specials.push(i);
    }
    // llama.cpp orders them by UTF-8 length, longest first
    const bytes = new Map(specials.map((id) => [id, utf8Encode(this.tokens[id]).length]));
    specials.sort((a, b) => bytes.get(b)! - bytes.get(a)! || a - b);
    this.specials = specials;
    this.userDefined = specials.filter((id) => this.types[id] === TokenType.UserDefined);
    this.specialsByFirst = this.indexByFirst(this.specials);
    this.userByFirst = this.indexByFirst(this.userDefined);
    this.pieces = new Array(n);
    this.lstrip = new Set(spec.lstrip ?? []);
    this.rstrip = new Set(spec.rstrip ?? []);
  }

  private indexByFirst(list: number[]): Map<number, number[]> {
    const m = new Map<number, number[]>();
    list.forEach((id, r) => {
      const c = this.tokens[id].charCodeAt(0);
      const a = m.get(c);
      if (a) a.push(r);
      else m.set(c, [r]);
    });
    return m;
  }

  /**
   * Token ids of `text`. No BOS/EOS unless `addSpecial`; control tokens written in the text are plain text unless
   * `parseSpecial`. Never throws: lone surrogates count as U+FFFD, as their UTF-8 encoding does.
   *
   * @example
   * ```ts
   * tok.encode('Hello world', { addSpecial: true }); // [1, 15043, 3186] with a LLaMA vocabulary
   * ```
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const addSpecial = options.addSpecial ?? false;
    const parseSpecial = options.parseSpecial ?? false;
    const wellFormed = (text as { isWellFormed?: () => boolean }).isWellFormed;
    if (wellFormed ? !wellFormed.call(text) : HAS_SURROGATE.test(text)) text = text.replace(SURROGATES, '\ufffd');
    const out: number[] = [];
    const frags = text === '' ? [] : this.partition(text, parseSpecial);
    if (this.kind === 'spm') {
      if (addSpecial && this.addBos && this.bosId !== NONE) out.push(this.bosId);
      let prevSpecial = true;
      for (const f of frags) {
        if (typeof f === 'number') {
          out.push(f);
          prevSpecial = true;
          continue;
        }
        const t = this.addSpacePrefix && prevSpecial ? ` ${f}` : f;
        this.encodeSpm(t.replace(SPACES, '\u2581'), out);
        prevSpecial = false;
      }
      if (addSpecial && this.addEos && this.eosId !== NONE) out.push(this.eosId);
    } else if (this.kind === 'bpe') {
      if (addSpecial && this.addBos && this.bosId !== NONE) out.push(this.bosId);
      for (const f of frags) {
        if (typeof f === 'number') out.push(f);
        else this.encodeBpe(f, out);
      }
      if (addSpecial && this.addEos && this.eosId !== NONE) out.push(this.eosId);
    } else {
      if (addSpecial && this.bosId !== NONE) out.push(this.bosId);
      const mark = out.length;
      for (const f of frags) {
        if (typeof f === 'number') out.push(f);
        else this.wpm!.encode(f, out);
      }
      // a vocabulary without an unknown token cannot stand for unmatched words; drop them
      if (this.unkId === NONE) {
        let w = mark;
        for (let i = mark; i < out.length; i++) if (out[i] !== NONE) out[w++] = out[i];
        out.length = w;
      }
      if (addSpecial && this.sepId !== NONE) out.push(this.sepId);
    }
    return out;
  }

  // Splits text around special tokens (llama.cpp's tokenizer_st_partition): longest token first, every occurrence.
  private partition(text: string, parseSpecial: boolean): (string | number)[] {
    const list = parseSpecial ? this.specials : this.userDefined;
    if (list.length === 0) return [text];
    let order: readonly number[] = list;
    if (text.length <= 256) {
      // short texts (chat turns, round-trip checks) only try tokens that start with a unit present in the text
      const byFirst = parseSpecial ? this.specialsByFirst : this.userByFirst;
      const picked: number[] = [];
      for (let i = 0; i < text.length; i++) {
        const ids = byFirst.get(text.charCodeAt(i));
        if (ids) for (const r of ids) picked.push(r);
      }
      if (picked.length === 0) return [text];
      picked.sort((x, y) => x - y);
      // a unit seen twice picked its tokens twice
      let w = 0;
      for (let i = 0; i < picked.length; i++) if (i === 0 || picked[i] !== picked[i - 1]) picked[w++] = picked[i];
      picked.length = w;
      order = picked.map((r) => list[r]);
    }
    let frags: (string | number)[] = [text];
    for (const id of order) {
      const s = this.tokens[id];
      const lstrip = this.lstrip.has(id);
      const rstrip = this.rstrip.has(id);
      let next: (string | number)[] | undefined;
      for (let k = 0; k < frags.length; k++) {
        const f = frags[k];
        const at = typeof f === 'string' ? f.indexOf(s) : -1;
        if (at < 0) {
          next?.push(f);
          continue;
        }
        next ??= frags.slice(0, k);
        let from = 0;
        for (let i = at; i >= 0; i = (f as string).indexOf(s, from)) {
          let left = i;
          if (lstrip) while (left > from && isCSpace((f as string).charCodeAt(left - 1))) left--;
          if (left > from) next.push((f as string).slice(from, left));
          next.push(id);
          from = i + s.length;
          if (rstrip) while (from < (f as string).length && isCSpace((f as string).charCodeAt(from))) from++;
        }
        if (from < (f as string).length) next.push((f as string).slice(from));
      }
      if (next) frags = next;
    }
    return frags;
  }

  // SentencePiece merges never cross a "▁" that follows another character when no token contains such a pair, so
  // the text can be cut there into words that are merged (and cached) independently, with identical results.
  private encodeSpm(text: string, out: number[]): void {
    if (!this.spmWords) {
      this.spm!.encode(text, out);
      return;
    }
    const n = text.length;
    for (let p = 0; p < n; ) {
      let q = p;
      while (q < n && text.charCodeAt(q) === 0x2581) q++;
      while (q < n && text.charCodeAt(q) !== 0x2581) q++;
      if (!this.cache.emit(text, p, q, out)) {
        const mark = out.length;
        this.spm!.encode(text.slice(p, q), out);
        this.cache.insert(text, p, q, out, mark);
      }
      p = q;
    }
  }

  private encodeBpe(text: string, out: number[]): void {
    const scan = this.preTok!.scanner;
    if (scan) {
      // fast path (GPT-2, LLaMA 3): scan and look the range up without slicing it
      for (let p = 0, end = text.length; p < end; ) {
        const q = scan(text, p, end);
        if (!this.cache.emit(text, p, q, out)) {
          const mark = out.length;
          this.encodeBpePiece(text.slice(p, q), out);
          this.cache.insert(text, p, q, out, mark);
        }
        p = q;
      }
      return;
    }
    for (const piece of this.preTok!.split(text)) {
      if (this.cache.emit(piece, 0, piece.length, out)) continue;
      const mark = out.length;
      this.encodeBpePiece(piece, out);
      this.cache.insert(piece, 0, piece.length, out, mark);
    }
  }

  private encodeBpePiece(piece: string, out: number[]): void {
    const len = piece.length;
    if (this.scratch.length < len * 3) this.scratch = new Uint8Array(len * 3 + 64);
    const bytes = this.scratch;
    let n = 0;
    for (; n < len; n++) {
      const c = piece.charCodeAt(n);
      if (c >= 0x80) break;
      bytes[n] = c;
    }
    if (n < len) n = this.utf8.encodeInto(piece, bytes).written;
    if (this.ignoreMerges) {
      const id = this.textToId.get(ByteBpe.textOf(bytes, n));
      if (id !== undefined) {
        out.push(id);
        return;
      }
    }
    this.bpe!.encodeWord(bytes, n, out);
  }

  /**
   * The raw text of token `id` as stored in the vocabulary (`▁` for spaces in SentencePiece, GPT-2's byte
   * characters in byte-level BPE), or undefined for an id out of range.
   *
   * @example
   * ```ts
   * tok.tokenText(1); // '<s>'
   * ```
   */
  tokenText(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 && id < this.vocabSize ? this.tokens[id] : undefined;
  }

  /**
   * The {@link TokenType} of `id` (Undefined for an id out of range).
   *
   * @example
   * ```ts
   * tok.tokenType(tok.bosId) === TokenType.Control;
   * ```
   */
  tokenType(id: number): number {
    return Number.isInteger(id) && id >= 0 && id < this.vocabSize ? this.types[id] : TokenType.Undefined;
  }

  /**
   * Id of a token by its raw vocabulary text, or undefined.
   *
   * @example
   * ```ts
   * tok.tokenId('<s>'); // 1
   * ```
   */
  tokenId(text: string): number | undefined {
    return this.textToId.get(text);
  }

  /**
   * The bytes token `id` stands for (llama.cpp's `token_to_piece`); empty for control/unknown tokens unless
   * `special`, and for ids out of range.
   *
   * @example
   * ```ts
   * tok.tokenToBytes(tok.tokenId('<0x0A>')!); // Uint8Array [10]
   * ```
   */
  tokenToBytes(id: number, special = true): Uint8Array {
    if (!(Number.isInteger(id) && id >= 0 && id < this.vocabSize)) return EMPTY_BYTES;
    const type = this.types[id];
    if (!special && (type === TokenType.Control || type === TokenType.Unknown)) return EMPTY_BYTES;
    let p = this.pieces[id];
    if (p === undefined) p = this.pieces[id] = this.computePiece(id, type);
    return p;
  }

  /**
   * The text of token `id` (U+FFFD where its bytes are not complete UTF-8).
   *
   * @example
   * ```ts
   * tok.tokenToPiece(tok.encode(' world')[0]); // ' world'
   * ```
   */
  tokenToPiece(id: number, special = true): string {
    return utf8Decode(this.tokenToBytes(id, special));
  }

  private computePiece(id: number, type: number): Uint8Array {
    const text = this.tokens[id];
    if (type === TokenType.Control || type === TokenType.Unknown || type === TokenType.UserDefined) {
      return utf8Encode(text);
    }
    if (type === TokenType.Byte) {
      const b = Number.parseInt(text.slice(3, 5), 16);
      return Number.isNaN(b) ? EMPTY_BYTES : Uint8Array.of(b);
    }
    if (type !== TokenType.Normal) return EMPTY_BYTES;
    if (this.kind !== 'bpe') return utf8Encode(text.replaceAll('\u2581', ' '));
    // byte-level characters back to bytes; anything else is reported as llama.cpp does
    const out: number[] = [];
    for (const ch of text) {
      const c = ch.codePointAt(0)!;
      const b = c < 0x144 ? CHAR_TO_BYTE[c] : -1;
      if (b >= 0) out.push(b);
      else {
        const hex = Array.from(utf8Encode(ch), (x) => x.toString(16).padStart(2, '0')).join('');
        out.push(...utf8Encode(`[UNK_BYTE_0x${hex}${text}]`));
      }
    }
    return Uint8Array.from(out);
  }

  /**
   * The bytes of `ids` (llama.cpp's `detokenize`): the leading space of a SentencePiece text is removed, unknown
   * ids produce nothing. Never throws.
   *
   * @example
   * ```ts
   * tok.decodeBytes([15496, 995]); // UTF-8 of 'Hello world'
   * ```
   */
  decodeBytes(ids: ArrayLike<number>, options: DecodeOptions = {}): Uint8Array {
    const special = options.special ?? true;
    let from = 0;
    let to = ids.length;
    let removeSpace = this.addSpacePrefix;
    if (options.removeSpecial && this.addBos && to > 0 && ids[0] === this.bosId) {
      removeSpace = false;
      from = 1;
    }
    if (options.removeSpecial && this.addEos && to > from && ids[to - 1] === this.eosId) to--;
    let total = 0;
    const parts: Uint8Array[] = [];
    for (let i = from; i < to; i++) {
      let p = this.tokenToBytes(ids[i], special);
      if (removeSpace && p.length > 0 && p[0] === 0x20) p = p.subarray(1);
      removeSpace = false;
      parts.push(p);
      total += p.length;
    }
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return (options.cleanSpaces ?? this.cleanSpaces) ? cleanUpSpaces(out) : out;
  }

  /**
   * The text of `ids`; invalid UTF-8 becomes U+FFFD (one per maximal invalid sequence, WHATWG rules). Never throws.
   *
   * @example
   * ```ts
   * tok.decode(tok.encode('Hello world')); // 'Hello world'
   * ```
   */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    return utf8Decode(this.decodeBytes(ids, options));
  }

  /**
   * A streaming decoder for token-by-token generation: `push(id)` returns only text whose UTF-8 is complete, so a
   * character split across tokens appears once its last byte arrives; `flush()` ends the stream. The concatenated
   * output equals `decode(ids, { cleanSpaces: false, special })`.
   *
   * @example
   * ```ts
   * const d = tok.decoder();
   * let text = '';
   * for (const id of ids) text += d.push(id);
   * text += d.flush();
   * ```
   */
  decoder(options: StreamDecoderOptions = {}): StreamDecoder {
    return new StreamDecoder(this, options);
  }
}

/**
 * Options of {@link Tokenizer.decoder}.
 *
 * @example
 * ```ts
 * // Text generated after a prompt: keep the space a continuation starts with, show no control tokens.
 * tok.decoder({ special: false, stripLeadingSpace: false });
 * ```
 */
export interface StreamDecoderOptions {
  /** Render control and unknown tokens as their text. Default true, as in {@link Tokenizer.decode}. */
  special?: boolean;
  /**
   * Drop SentencePiece's leading space from the first token pushed, as {@link Tokenizer.decode} does. Default: the
   * vocabulary's `addSpacePrefix`. Pass false for the continuation of a text, whose first space is real.
   */
  stripLeadingSpace?: boolean;
}

/**
 * Incremental decoder made by {@link Tokenizer.decoder}: the one streaming UTF-8 decoder of nibble (the runner
 * streams generated text through it).
 *
 * @example
 * ```ts
 * const d = tok.decoder();
 * d.push(id1) + d.push(id2) + d.flush();
 * ```
 */
export class StreamDecoder {
  readonly #tok: Tokenizer;
  readonly #special: boolean;
  readonly #strip: boolean;
  readonly #dec = new TextDecoder('utf-8', { ignoreBOM: true });
  #stripNext: boolean;
  // Continuation bytes still expected by the last lead byte seen.
  #need = 0;

  constructor(tok: Tokenizer, options: StreamDecoderOptions = {}) {
    this.#tok = tok;
    this.#special = options.special ?? true;
    this.#strip = options.stripLeadingSpace ?? tok.addSpacePrefix;
    this.#stripNext = this.#strip;
  }

  /** Whether bytes of an unfinished character are held back (the next push or `flush` releases them). */
  get pending(): boolean {
    return this.#need > 0;
  }

  /** Adds one token; returns the text completed by it (possibly ''). */
  push(id: number): string {
    let p = this.#tok.tokenToBytes(id, this.#special);
    // As in decode (llama.cpp's detokenize): only the first token's space goes, even when that token is empty.
    if (this.#stripNext && p.length > 0 && p[0] === 0x20) p = p.subarray(1);
    this.#stripNext = false;
    if (p.length === 0) return '';
    for (let i = 0; i < p.length; i++) {
      const b = p[i];
      if ((b & 0xc0) === 0x80) this.#need = this.#need > 0 ? this.#need - 1 : 0;
      else this.#need = b >= 0xf0 ? 3 : b >= 0xe0 ? 2 : b >= 0xc0 ? 1 : 0;
    }
    return this.#dec.decode(p, { stream: true });
  }

  /** Ends the stream: held-back bytes come out (as U+FFFD if they never formed a character); then starts afresh. */
  flush(): string {
    this.#need = 0;
    this.#stripNext = this.#strip;
    return this.#dec.decode();
  }
}

// llama.cpp's three clean-up passes over the detokenized bytes, in place as in C.
function cleanUpSpaces(t: Uint8Array): Uint8Array {
  const SP = 0x20;
  const AP = 0x27;
  let total = t.length;
  // " ?", " !", " .", " ," lose the space
  const t1 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < t1; i++) {
    const x = t[i];
    if (t[i - 1] === SP && (x === 0x3f || x === 0x21 || x === 0x2e || x === 0x2c)) total--;
    t[total++] = x;
  }
  // " ' " becomes "'"
  const t2 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < t2; i++) {
    const x = t[i];
    if (x === AP && i + 1 < t2 && t[i - 1] === SP && t[i + 1] === SP) {
      total--;
      t[++i] = 0;
    }
    t[total++] = x;
  }
  // " 's", " 'm", " 're", " 've" lose the space
  const t3 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < t3; i++) {
    const x = t[i];
    if (t[i - 1] === SP && x === AP && i + 1 < t3) {
      const x1 = t[i + 1];
      if (x1 === 0x73 || x1 === 0x6d) total--;
      else if (i + 2 < t3) {
        const x2 = t[i + 2];
        if ((x1 === 0x72 && x2 === 0x65) || (x1 === 0x76 && x2 === 0x65)) total--;
      }
    }
    t[total++] = x;
  }
  return t.subarray(0, total);
}
