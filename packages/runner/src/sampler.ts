/**
 * Token sampling: repeat penalty -> top-k -> temperature -> softmax -> min-p -> top-p -> draw.
 *
 * With `topK: 0`, `minP: 0` and `repeatPenalty: 1` the chain is exactly llama2.c's `sample()` (float32 softmax,
 * nucleus cutoff `(1 - p) / (n - 1)`, `coin * cumulative` draw) and the xorshift64* generator, so a seed reproduces
 * run.c's samples token for token. Temperature 0 is greedy (first maximum), as in both llama2.c and llama.cpp.
 */
import { ValueError } from '@nibble/tensor';
import { Xorshift64Star } from './rng.js';

/** How to pick the next token from a row of logits. */
export interface SamplingOptions {
  /** Softmax temperature; 0 picks the most likely token. Default 0.8. */
  temperature?: number;
  /** Keep only the k most likely tokens; 0 disables. Default 40. */
  topK?: number;
  /** Nucleus sampling: keep the smallest set whose probability exceeds p; 1 disables. Default 0.95. */
  topP?: number;
  /** Drop tokens less likely than `minP` times the most likely one; 0 disables. Default 0.05. */
  minP?: number;
  /** Divide positive (multiply negative) logits of recently seen tokens by this; 1 disables. Default 1. */
  repeatPenalty?: number;
  /** How many recent tokens the repeat penalty looks at. Default 64. */
  repeatLastN?: number;
  /** Seed of the xorshift64* generator (run.c's). Default: a random seed. */
  seed?: number;
}

/** The options with every default filled in. */
export type ResolvedSampling = Required<SamplingOptions>;

/**
 * Fills in defaults and checks ranges; throws a ValueError naming the bad option.
 *
 * @example
 * ```ts
 * resolveSampling({ temperature: 0 }).topK; // 40
 * ```
 */
export function resolveSampling(o: SamplingOptions = {}): ResolvedSampling {
  const r: ResolvedSampling = {
    temperature: o.temperature ?? 0.8,
    topK: o.topK ?? 40,
    topP: o.topP ?? 0.95,
    minP: o.minP ?? 0.05,
    repeatPenalty: o.repeatPenalty ?? 1,
    repeatLastN: o.repeatLastN ?? 64,
    seed: o.seed ?? Math.floor(Math.random() * 2 ** 32),
  };
  const bad = (name: string, v: number, want: string): never => {
    throw new ValueError(`sampling option ${name} must be ${want}, got ${v}`, 0, 0);
  };
  if (!(r.temperature >= 0) || !Number.isFinite(r.temperature)) bad('temperature', r.temperature, 'finite and >= 0');
  if (!Number.isInteger(r.topK) || r.topK < 0) bad('topK', r.topK, 'an integer >= 0');
  if (!(r.topP > 0 && r.topP <= 1)) bad('topP', r.topP, 'in (0, 1]');
  if (!(r.minP >= 0 && r.minP < 1)) bad('minP', r.minP, 'in [0, 1)');
  if (!(r.repeatPenalty > 0) || !Number.isFinite(r.repeatPenalty))
    bad('repeatPenalty', r.repeatPenalty, 'finite and > 0');
  if (!Number.isInteger(r.repeatLastN) || r.repeatLastN < 0) bad('repeatLastN', r.repeatLastN, 'an integer >= 0');
  if (!Number.isSafeInteger(r.seed) || r.seed < 0) bad('seed', r.seed, 'a non-negative safe integer');
  return r;
}

/**
 * A sampler for one vocabulary size. All scratch is allocated once here; {@link Sampler.sample} allocates nothing.
 *
 * @example
 * ```ts
 * const s = new Sampler(512, { temperature: 1, topP: 0.9, topK: 0, minP: 0, seed: 133742 });
 * const id = s.sample(logits, recentIds, recentCount); // logits: Float32Array(512), left untouched
 * ```
 */
export class Sampler {
  readonly options: ResolvedSampling;
  private readonly rng: Xorshift64Star;
  // [vocab] working copy of the logits, then probabilities (float32, as run.c computes them)
  private readonly probs: Float32Array;
  // [vocab] candidate token ids, sorted by probability where a filter needs it
  private readonly order: Int32Array;

  constructor(
    readonly vocabSize: number,
    options: SamplingOptions = {},
  ) {
    this.options = resolveSampling(options);
    this.rng = new Xorshift64Star(this.options.seed);
    this.probs = new Float32Array(vocabSize);
    this.order = new Int32Array(vocabSize);
  }

  /**
   * Picks the next token from `logits` (`[vocab]`, not modified). `history[0..historyLength)` are the tokens so
   * far, which the repeat penalty looks at.
   */
  sample(logits: Float32Array, history?: ArrayLike<number>, historyLength = 0): number {
    const n = this.vocabSize;
    const o = this.options;
    const x = this.probs;
    x.set(logits.length === n ? logits : logits.subarray(0, n));

    if (o.repeatPenalty !== 1 && history !== undefined && historyLength > 0) {
      // llama.cpp's penalty: each distinct recent token once, shrinking its logit towards "less likely".
      const from = Math.max(0, historyLength - o.repeatLastN);
      for (let i = from; i < historyLength; i++) {
        const t = history[i];
        if (t < 0 || t >= n) continue;
        let seen = false;
        for (let j = from; j < i; j++) if (history[j] === t) seen = true;
        if (seen) continue;
        x[t] = x[t] > 0 ? x[t] / o.repeatPenalty : x[t] * o.repeatPenalty;
      }
    }

    if (o.temperature === 0) return argmax(x, n);

    // Candidates: all tokens, or the k with the largest logits.
    let count = n;
    const order = this.order;
    for (let i = 0; i < n; i++) order[i] = i;
    if (o.topK > 0 && o.topK < n) {
      sortByValueDesc(order, 0, n - 1, x);
      count = o.topK;
      for (let i = count; i < n; i++) x[order[i]] = Number.NEGATIVE_INFINITY;
    }

    // run.c: logits /= temperature; softmax in float32 (max, expf, running float sum, divide).
    const t = Math.fround(o.temperature);
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      x[i] = x[i] / t;
      if (x[i] > max) max = x[i];
    }
    let sum = 0;
    for (let i = 0; i < n; i++) {
      x[i] = Math.exp(x[i] - max);
      sum = Math.fround(sum + x[i]);
    }
    for (let i = 0; i < n; i++) x[i] = x[i] / sum;

    if (o.minP > 0) {
      // Relative to the most likely token, whose probability is exp(0) / sum.
      const floor = (o.minP * 1) / sum;
      let kept = 0;
      for (let i = 0; i < n; i++) if (x[i] < floor) x[i] = 0;
      for (let i = 0; i < n; i++) kept += x[i];
      for (let i = 0; i < n; i++) x[i] = x[i] / kept;
    }

    const coin = this.rng.nextF32();
    if (o.topP <= 0 || o.topP >= 1) return sampleMult(x, n, coin);
    return this.sampleTopP(x, n, Math.fround(o.topP), coin);
  }

  /** run.c's `sample_topp`: pre-filter by `(1 - p) / (n - 1)`, sort descending, cut where the sum passes p. */
  private sampleTopP(x: Float32Array, n: number, topP: number, coin: number): number {
    const order = this.order;
    const cutoff = Math.fround(Math.fround(1 - topP) / (n - 1));
    let n0 = 0;
    for (let i = 0; i < n; i++) if (x[i] >= cutoff) order[n0++] = i;
    sortByValueDesc(order, 0, n0 - 1, x);
    let cumulative = 0;
    let last = n0 - 1;
    for (let i = 0; i < n0; i++) {
      cumulative = Math.fround(cumulative + x[order[i]]);
      if (cumulative > topP) {
        last = i;
        break;
      }
    }
    const r = Math.fround(coin * cumulative);
    let cdf = 0;
    for (let i = 0; i <= last; i++) {
      cdf = Math.fround(cdf + x[order[i]]);
      if (r < cdf) return order[i];
    }
    return order[last];
  }
}

/**
 * Index of the first largest value, as run.c's `argmax`.
 *
 * @example
 * ```ts
 * argmax([1, 3, 3]); // 1
 * ```
 */
export function argmax(x: ArrayLike<number>, n = x.length): number {
  let best = 0;
  let bestVal = x[0];
  for (let i = 1; i < n; i++) {
    if (x[i] > bestVal) {
      bestVal = x[i];
      best = i;
    }
  }
  return best;
}

/** run.c's `sample_mult`: the first index where the running float32 sum passes the coin. */
function sampleMult(p: Float32Array, n: number, coin: number): number {
  let cdf = 0;
  for (let i = 0; i < n; i++) {
    cdf = Math.fround(cdf + p[i]);
    if (coin < cdf) return i;
  }
  return n - 1;
}

/**
 * Sorts `idx[lo..hi]` by `key[idx]` descending, ties by index ascending (what glibc's merge-sort qsort gives run.c),
 * in place and without allocating: quicksort on the larger side's loop, recursion on the smaller, insertion sort for
 * short ranges.
 */
function sortByValueDesc(idx: Int32Array, lo: number, hi: number, key: Float32Array): void {
  while (hi - lo > 16) {
    const mid = (lo + hi) >>> 1;
    // Median of three as the pivot.
    if (before(idx[mid], idx[lo], key)) swap(idx, mid, lo);
    if (before(idx[hi], idx[lo], key)) swap(idx, hi, lo);
    if (before(idx[hi], idx[mid], key)) swap(idx, hi, mid);
    const pivot = idx[mid];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (before(idx[i], pivot, key)) i++;
      while (before(pivot, idx[j], key)) j--;
      if (i <= j) {
        swap(idx, i, j);
        i++;
        j--;
      }
    }
    if (j - lo < hi - i) {
      sortByValueDesc(idx, lo, j, key);
      lo = i;
    } else {
      sortByValueDesc(idx, i, hi, key);
      hi = j;
    }
  }
  for (let i = lo + 1; i <= hi; i++) {
    const v = idx[i];
    let j = i - 1;
    while (j >= lo && before(v, idx[j], key)) {
      idx[j + 1] = idx[j];
      j--;
    }
    idx[j + 1] = v;
  }
}

/** Whether token a sorts before token b: larger key first, then smaller id. */
function before(a: number, b: number, key: Float32Array): boolean {
  const ka = key[a];
  const kb = key[b];
  return ka > kb || (ka === kb && a < b);
}

function swap(a: Int32Array, i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}
