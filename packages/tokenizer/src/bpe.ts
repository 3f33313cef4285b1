/**
 * Byte-level BPE (GPT-2): merge ranks over byte strings, exactly as llama.cpp's `llm_tokenizer_bpe_session`.
 *
 * Every string that can appear in a merge gets a "piece id": the token id when the string is a token, an extra id
 * past the vocabulary otherwise. A word is a row of piece ids, one per byte; merging looks a (left, right) pair up
 * in an open-addressing hash table of int32 arrays, which gives its rank and the merged piece. The pair with the
 * lowest rank merges first, the leftmost on ties (llama.cpp's priority queue order); short words use a linear scan,
 * long ones a heap, both O(1) per lookup and without strings.
 */

import { BYTE_TO_CHAR, byteLevelToBytes } from './unicode.js';

const EMPTY = -1;

/** The merge table and per-word encoder of one byte-level BPE vocabulary. */
export class ByteBpe {
  /** Number of real tokens; piece ids at or above it are merge intermediates that are not tokens. */
  readonly nTokens: number;
  /** Piece id of each single byte. */
  private readonly byteInit = new Int32Array(256);
  /** Bytes of each extra piece (id - nTokens). */
  private readonly extraBytes: Uint8Array[] = [];
  // open-addressing table: (left, right) -> (rank, merged)
  private readonly keyL: Int32Array;
  private readonly keyR: Int32Array;
  private readonly rank: Int32Array;
  private readonly merged: Int32Array;
  private readonly mask: number;
  // scratch, grown on demand
  private sym = new Int32Array(64);
  private rk = new Int32Array(64);

  /**
   * @param textToId token text (byte-level characters) -> id
   * @param merges `"left right"` lines, highest priority first
   * @param ranks rank of each merge (default: its index); equal ranks merge leftmost first, as tiktoken does
   */
  constructor(nTokens: number, textToId: Map<string, number>, merges: readonly string[], ranks?: ArrayLike<number>) {
    this.nTokens = nTokens;
    const extraIds = new Map<string, number>();
    const pieceOf = (text: string): number => {
      const id = textToId.get(text);
      if (id !== undefined) return id;
      let x = extraIds.get(text);
      if (x === undefined) {
        x = nTokens + this.extraBytes.length;
        extraIds.set(text, x);
        this.extraBytes.push(byteLevelToBytes(text) ?? new Uint8Array(0));
      }
      return x;
    };
    for (let b = 0; b < 256; b++) this.byteInit[b] = pieceOf(BYTE_TO_CHAR[b]);

    let cap = 16;
    while (cap < merges.length * 2) cap *= 2;
    this.mask = cap - 1;
    this.keyL = new Int32Array(cap).fill(EMPTY);
    this.keyR = new Int32Array(cap);
    this.rank = new Int32Array(cap);
    this.merged = new Int32Array(cap);
    for (let i = 0; i < merges.length; i++) {
      const line = merges[i];
      // llama.cpp splits at the first space after position 0
      const sp = line.indexOf(' ', 1);
      if (sp < 0) continue;
      const left = line.slice(0, sp);
      const right = line.slice(sp + 1);
      const l = pieceOf(left);
      const r = pieceOf(right);
      let h = this.hash(l, r);
      while (this.keyL[h] !== EMPTY && !(this.keyL[h] === l && this.keyR[h] === r)) h = (h + 1) & this.mask;
      if (this.keyL[h] !== EMPTY) continue; // first rank wins, as std::unordered_map::emplace
      this.keyL[h] = l;
      this.keyR[h] = r;
      this.rank[h] = ranks ? ranks[i] : i;
      this.merged[h] = pieceOf(left + right);
    }
  }

  private hash(l: number, r: number): number {
    return ((Math.imul(l, 0x9e3779b1) ^ Math.imul(r + 0x7f4a7c15, 0x85ebca77)) >>> 7) & this.mask;
  }

  /** Slot of the pair (l, r), or -1. */
  private find(l: number, r: number): number {
    let h = this.hash(l, r);
    for (;;) {
      const k = this.keyL[h];
      if (k === EMPTY) return -1;
      if (k === l && this.keyR[h] === r) return h;
      h = (h + 1) & this.mask;
    }
  }

  private rankOf(l: number, r: number): number {
    const s = this.find(l, r);
    return s < 0 ? 0x7fffffff : this.rank[s];
  }

  /** Appends the token ids of the word `bytes[0, n)` to `out`. */
  encodeWord(bytes: Uint8Array, n: number, out: number[]): void {
    if (n === 0) return;
    if (this.sym.length < n) {
      this.sym = new Int32Array(n * 2);
      this.rk = new Int32Array(n * 2);
    }
    const sym = this.sym;
    for (let i = 0; i < n; i++) sym[i] = this.byteInit[bytes[i]];
    const len = n <= 256 ? this.mergeScan(n) : this.mergeHeap(n);
    for (let i = 0; i < len; i++) this.emit(sym[i], out);
  }

  private emit(piece: number, out: number[]): void {
    if (piece < this.nTokens) {
      out.push(piece);
      return;
    }
    // not a token: llama.cpp falls back to the single-byte tokens, dropping bytes that have none
    for (const b of this.extraBytes[piece - this.nTokens]) {
      const t = this.byteInit[b];
      if (t < this.nTokens) out.push(t);
    }
  }

  // O(n^2) worst case, but n is a word: the common case.
  private mergeScan(n: number): number {
    const sym = this.sym;
    const rk = this.rk;
    let len = n;
    for (let i = 0; i + 1 < len; i++) rk[i] = this.rankOf(sym[i], sym[i + 1]);
    while (len > 1) {
      let best = 0x7fffffff;
      let at = -1;
      for (let i = 0; i + 1 < len; i++) {
        if (rk[i] < best) {
          best = rk[i];
          at = i;
        }
      }
      if (at < 0) break;
      sym[at] = this.merged[this.find(sym[at], sym[at + 1])];
      for (let i = at + 1; i + 1 < len; i++) {
        sym[i] = sym[i + 1];
        rk[i] = rk[i + 1];
      }
      len--;
      if (at > 0) rk[at - 1] = this.rankOf(sym[at - 1], sym[at]);
      if (at + 1 < len) rk[at] = this.rankOf(sym[at], sym[at + 1]);
    }
    return len;
  }

  // O(n log n) for long words (a megabyte without a break must stay linear-ish). Keys are rank * 2^32 + position,
  // so the heap order is llama.cpp's: lowest rank, then leftmost.
  private mergeHeap(n: number): number {
    const sym = this.sym;
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const heap = new MinHeap(n);
    const push = (l: number): void => {
      const r = next[l];
      if (l < 0 || r < 0) return;
      const s = this.find(sym[l], sym[r]);
      if (s >= 0) heap.push(this.rank[s] * 4294967296 + l);
    };
    for (let i = 0; i + 1 < n; i++) push(i);
    while (heap.size > 0) {
      const key = heap.pop();
      const l = key % 4294967296;
      const rank = (key - l) / 4294967296;
      const r = next[l];
      // stale entries: the left symbol was absorbed, or the pair changed since it was pushed
      if (!alive[l] || r < 0 || this.rankOf(sym[l], sym[r]) !== rank) continue;
      sym[l] = this.merged[this.find(sym[l], sym[r])];
      alive[r] = 0;
      next[l] = next[r];
      if (next[r] >= 0) prev[next[r]] = l;
      if (prev[l] >= 0) push(prev[l]);
      push(l);
    }
    let len = 0;
    for (let i = 0; i >= 0; i = next[i]) sym[len++] = sym[i];
    return len;
  }

  /** Key of a byte string in the token-text map (its byte-level characters). */
  static textOf(bytes: Uint8Array, n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += BYTE_TO_CHAR[bytes[i]];
    return s;
  }
}

/** A binary min-heap of doubles. */
class MinHeap {
  private a: Float64Array;
  size = 0;
  constructor(cap: number) {
    this.a = new Float64Array(Math.max(16, cap));
  }
  push(v: number): void {
    if (this.size === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    const a = this.a;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p] <= v) break;
      a[i] = a[p];
      i = p;
    }
    a[i] = v;
  }
  pop(): number {
    const a = this.a;
    const top = a[0];
    const v = a[--this.size];
    let i = 0;
    const n = this.size;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && a[c + 1] < a[c]) c++;
      if (a[c] >= v) break;
      a[i] = a[c];
      i = c;
    }
    a[i] = v;
    return top;
  }
}
