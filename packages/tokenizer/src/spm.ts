/**
 * SentencePiece BPE as llama.cpp's `llm_tokenizer_spm_session`: start from one symbol per code point, repeatedly
 * merge the adjacent pair whose concatenation is the token with the highest score (leftmost on ties), then emit each
 * symbol's token, or its bytes as `<0xXX>` tokens when the symbol is no token.
 */

import { utf8Encode } from './unicode.js';

/** Encoder of one SentencePiece vocabulary. */
export class SpmEncoder {
  private readonly textToId: Map<string, number>;
  private readonly scores: Float32Array;
  /** Byte fallback token of each byte (-1: none). */
  private readonly byteTokens: Int32Array;
  // heap of candidate merges: score (higher first), left (lower first), right, byte size of the pair
  private hs = new Float64Array(256);
  private hl = new Int32Array(256);
  private hr = new Int32Array(256);
  private hz = new Int32Array(256);
  private hn = 0;

  constructor(textToId: Map<string, number>, scores: Float32Array, byteTokens: Int32Array) {
    this.textToId = textToId;
    this.scores = scores;
    this.byteTokens = byteTokens;
  }

  /** Appends the ids of `text` (spaces already escaped to U+2581) to `out`. */
  encode(text: string, out: number[]): void {
    const n = text.length;
    if (n === 0) return;
    // symbols as UTF-16 ranges: start[i], len[i] (0 once merged away), prev/next links
    const start = new Int32Array(n);
    const len = new Int32Array(n);
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    let count = 0;
    for (let i = 0; i < n; ) {
      const c = text.charCodeAt(i);
      const w = c >= 0xd800 && c < 0xdc00 && i + 1 < n ? 2 : 1;
      start[count] = i;
      len[count] = w;
      prev[count] = count - 1;
      next[count] = i + w < n ? count + 1 : -1;
      count++;
      i += w;
    }
    this.hn = 0;
    for (let i = 1; i < count; i++) this.tryAdd(text, start, len, i - 1, i);
    while (this.hn > 0) {
      const l = this.hl[0];
      const r = this.hr[0];
      const size = this.hz[0];
      this.pop();
      if (len[l] === 0 || len[r] === 0 || len[l] + len[r] !== size) continue;
      len[l] += len[r];
      len[r] = 0;
      next[l] = next[r];
      if (next[r] >= 0) prev[next[r]] = l;
      if (prev[l] >= 0) this.tryAdd(text, start, len, prev[l], l);
      if (next[l] >= 0) this.tryAdd(text, start, len, l, next[l]);
    }
    for (let i = 0; i !== -1; i = next[i]) {
      const piece = text.slice(start[i], start[i] + len[i]);
      const id = this.textToId.get(piece);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      for (const b of utf8Encode(piece)) {
        const t = this.byteTokens[b];
        if (t >= 0) out.push(t);
      }
    }
  }

  private tryAdd(text: string, start: Int32Array, len: Int32Array, l: number, r: number): void {
    const size = len[l] + len[r];
    const id = this.textToId.get(text.slice(start[l], start[l] + size));
    if (id === undefined) return;
    this.push(this.scores[id], l, r, size);
  }

  // a is above b in the heap
  private above(sa: number, la: number, sb: number, lb: number): boolean {
    return sa > sb || (sa === sb && la < lb);
  }

  private push(score: number, l: number, r: number, size: number): void {
    if (this.hn === this.hs.length) this.grow();
    let i = this.hn++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(score, l, this.hs[p], this.hl[p])) break;
      this.hs[i] = this.hs[p];
      this.hl[i] = this.hl[p];
      this.hr[i] = this.hr[p];
      this.hz[i] = this.hz[p];
      i = p;
    }
    this.hs[i] = score;
    this.hl[i] = l;
    this.hr[i] = r;
    this.hz[i] = size;
  }

  private pop(): void {
    const n = --this.hn;
    const s = this.hs[n];
    const l = this.hl[n];
    const r = this.hr[n];
    const z = this.hz[n];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.above(this.hs[c + 1], this.hl[c + 1], this.hs[c], this.hl[c])) c++;
      if (!this.above(this.hs[c], this.hl[c], s, l)) break;
      this.hs[i] = this.hs[c];
      this.hl[i] = this.hl[c];
      this.hr[i] = this.hr[c];
      this.hz[i] = this.hz[c];
      i = c;
    }
    this.hs[i] = s;
    this.hl[i] = l;
    this.hr[i] = r;
    this.hz[i] = z;
  }

  private grow(): void {
    const cap = this.hs.length * 2;
    const hs = new Float64Array(cap);
    hs.set(this.hs);
    this.hs = hs;
    const hl = new Int32Array(cap);
    hl.set(this.hl);
    this.hl = hl;
    const hr = new Int32Array(cap);
    hr.set(this.hr);
    this.hr = hr;
    const hz = new Int32Array(cap);
    hz.set(this.hz);
    this.hz = hz;
  }
}
