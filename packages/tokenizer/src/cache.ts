/**
 * Pre-token -> ids cache keyed by a range of the input string, so a hit costs one hash over the range's UTF-16 units
 * and one compare, without slicing a substring or hashing a JS string. Open addressing over typed arrays.
 */

const MAX_KEY = 48;
const MAX_ENTRIES = 1 << 17;

/** Cache of pre-token ids (only pre-tokens of at most 48 UTF-16 units are kept). */
export class PieceCache {
  private mask = 0;
  private hashes = new Int32Array(0);
  /** Entry index + 1 per slot (0: empty). */
  private slots = new Int32Array(0);
  private count = 0;
  // per entry: key offset/length in `keys`, value offset/length in `vals`
  private keyOff = new Int32Array(1024);
  private keyLen = new Int32Array(1024);
  private valOff = new Int32Array(1024);
  private valLen = new Int32Array(1024);
  private keys = new Uint16Array(1 << 14);
  private keyUsed = 0;
  private vals = new Int32Array(1 << 13);
  private valUsed = 0;

  constructor() {
    this.resize(1 << 12);
  }

  private static hash(t: string, p: number, q: number): number {
    let h = 0x811c9dc5 ^ (q - p);
    for (let i = p; i < q; i++) h = Math.imul(h ^ t.charCodeAt(i), 0x01000193);
    return h | 0;
  }

  /** Appends the cached ids of `t[p, q)` to `out` and returns true, or returns false on a miss. */
  emit(t: string, p: number, q: number, out: number[]): boolean {
    const len = q - p;
    if (len > MAX_KEY) return false;
    const h = PieceCache.hash(t, p, q);
    const keys = this.keys;
    for (let s = h & this.mask; ; s = (s + 1) & this.mask) {
      const e = this.slots[s] - 1;
      if (e < 0) return false;
      if (this.hashes[s] !== h || this.keyLen[e] !== len) continue;
      const ko = this.keyOff[e];
      let i = 0;
      while (i < len && keys[ko + i] === t.charCodeAt(p + i)) i++;
      if (i < len) continue;
      const vo = this.valOff[e];
      const vl = this.valLen[e];
      if (vl === 1) out.push(this.vals[vo]);
      else for (let k = 0; k < vl; k++) out.push(this.vals[vo + k]);
      return true;
    }
  }

  /** Remembers `ids[from, ids.length)` for `t[p, q)`. */
  insert(t: string, p: number, q: number, ids: number[], from: number): void {
    const len = q - p;
    if (len > MAX_KEY) return;
    if (this.count >= MAX_ENTRIES) this.clear();
    if ((this.count + 1) * 2 > this.slots.length) this.resize(this.slots.length * 2);
    const n = ids.length - from;
    if (this.keyUsed + len > this.keys.length) this.keys = grow16(this.keys, this.keyUsed + len);
    if (this.valUsed + n > this.vals.length) this.vals = grow32(this.vals, this.valUsed + n);
    if (this.count === this.keyOff.length) {
      const c = this.count * 2;
      this.keyOff = grow32(this.keyOff, c);
      this.keyLen = grow32(this.keyLen, c);
      this.valOff = grow32(this.valOff, c);
      this.valLen = grow32(this.valLen, c);
    }
    const e = this.count++;
    this.keyOff[e] = this.keyUsed;
    this.keyLen[e] = len;
    for (let i = 0; i < len; i++) this.keys[this.keyUsed + i] = t.charCodeAt(p + i);
    this.keyUsed += len;
    this.valOff[e] = this.valUsed;
    this.valLen[e] = n;
    for (let k = 0; k < n; k++) this.vals[this.valUsed + k] = ids[from + k];
    this.valUsed += n;
    this.place(PieceCache.hash(t, p, q), e);
  }

  private place(h: number, e: number): void {
    let s = h & this.mask;
    while (this.slots[s] !== 0) s = (s + 1) & this.mask;
    this.slots[s] = e + 1;
    this.hashes[s] = h;
  }

  private resize(cap: number): void {
    const oldSlots = this.slots;
    const oldHashes = this.hashes;
    this.slots = new Int32Array(cap);
    this.hashes = new Int32Array(cap);
    this.mask = cap - 1;
    for (let s = 0; s < oldSlots.length; s++) if (oldSlots[s] !== 0) this.place(oldHashes[s], oldSlots[s] - 1);
  }

  /** Forgets everything (bounded memory on endless input). */
  clear(): void {
    this.slots.fill(0);
    this.count = 0;
    this.keyUsed = 0;
    this.valUsed = 0;
  }
}

function grow16(a: Uint16Array<ArrayBuffer>, need: number): Uint16Array<ArrayBuffer> {
  const b = new Uint16Array(Math.max(need, a.length * 2));
  b.set(a);
  return b;
}

function grow32(a: Int32Array<ArrayBuffer>, need: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(Math.max(need, a.length * 2));
  b.set(a);
  return b;
}
