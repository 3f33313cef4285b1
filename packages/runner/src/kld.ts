/**
 * KL divergence of a model against a base model on the same text, like llama.cpp's `perplexity --kl-divergence`:
 * both models score the same windows, and each scored position compares the two next-token distributions.
 *
 * llama.cpp saves the base's log-probabilities compressed to 16 bits and skips base probabilities below e^-16; here
 * both models run side by side and every sum is exact in float64, so small KLDs come out a little different.
 */
import { ValueError } from '@nibble/tensor';
import type { Model } from './model.js';
import { splitDocuments, windows } from './perplexity.js';

/** Options of {@link klDivergence}. */
export interface KlDivergenceOptions {
  /** Window length in tokens. Default: the smaller model context. */
  contextSize?: number;
  /** Tokens between window starts for long documents. Default: half the window. */
  stride?: number;
  /** Document separator (documents are trimmed, BOS + tokens each). Default `<|endoftext|>`. */
  separator?: string;
  /** Tokens fed per evaluation (bounds memory to `2 * batch * vocab` floats). Default 64. */
  batch?: number;
  /** Called after each window with the predictions scored so far and in all. */
  onProgress?(done: number, total: number): void;
  /** Aborts between windows. */
  signal?: AbortSignal;
  /** Also return every position's KLD, in scoring order (`values`). */
  keepValues?: boolean;
}

/** What {@link klDivergence} measures, over every scored prediction. */
export interface KlDivergenceResult {
  /** Scored predictions. */
  readonly count: number;
  /** Mean of KL(base || model) in nats, and its standard error. */
  readonly meanKld: number;
  readonly meanKldError: number;
  readonly medianKld: number;
  /** 99th percentile (llama.cpp's linear interpolation between sorted values). */
  readonly p99Kld: number;
  readonly p90Kld: number;
  readonly maxKld: number;
  /** Fraction of positions where both models' most likely token is the same ("Same top p"). */
  readonly topTokenAgreement: number;
  /** Perplexity of the model and of the base on the same predictions, and their difference. */
  readonly perplexity: number;
  readonly basePerplexity: number;
  readonly deltaPerplexity: number;
  /** Mean of ln(PPL(model)/PPL(base)) per token. */
  readonly meanLnPplRatio: number;
  /** Root mean square of the change in the probability of the right token. */
  readonly rmsDeltaP: number;
  /** Every position's KLD in scoring order, with `keepValues`. */
  readonly values?: Float64Array;
}

/** Statistics of one position: log-softmax of both rows in float64. */
function compare(
  q: Float32Array,
  qOff: number,
  b: Float32Array,
  bOff: number,
  n: number,
  target: number,
): { kld: number; lpQ: number; lpB: number; sameTop: boolean } {
  let mq = Number.NEGATIVE_INFINITY;
  let mb = Number.NEGATIVE_INFINITY;
  let iq = 0;
  let ib = 0;
  for (let i = 0; i < n; i++) {
    if (q[qOff + i] > mq) {
      mq = q[qOff + i];
      iq = i;
    }
    if (b[bOff + i] > mb) {
      mb = b[bOff + i];
      ib = i;
    }
  }
  let sq = 0;
  let sb = 0;
  for (let i = 0; i < n; i++) {
    sq += Math.exp(q[qOff + i] - mq);
    sb += Math.exp(b[bOff + i] - mb);
  }
  const lq = mq + Math.log(sq);
  const lb = mb + Math.log(sb);
  let kld = 0;
  for (let i = 0; i < n; i++) {
    const lpb = b[bOff + i] - lb;
    const pb = Math.exp(lpb);
    if (pb > 0) kld += pb * (lpb - (q[qOff + i] - lq));
  }
  return { kld: Math.max(0, kld), lpQ: q[qOff + target] - lq, lpB: b[bOff + target] - lb, sameTop: iq === ib };
}

function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const p = fraction * (sorted.length - 1);
  const i = Math.floor(p);
  const f = p - i;
  return (1 - f) * sorted[i] + f * sorted[Math.min(i + 1, sorted.length - 1)];
}

/**
 * KL divergence of `model`'s next-token distributions from `base`'s over a text: the windows and documents of
 * {@link Model.perplexity}, both models fed the same tokens, every scored prediction compared.
 *
 * @example
 * ```ts
 * const r = await klDivergence(q4, f32, text);
 * r.meanKld; r.p99Kld; r.topTokenAgreement; r.deltaPerplexity;
 * ```
 */
export async function klDivergence(
  model: Model,
  base: Model,
  text: string,
  options: KlDivergenceOptions = {},
): Promise<KlDivergenceResult> {
  const vocab = model.hparams.vocabSize;
  if (base.hparams.vocabSize !== vocab) {
    throw new ValueError(`the models' vocabularies differ (${vocab} vs ${base.hparams.vocabSize} tokens)`, 0, 0);
  }
  const maxCtx = Math.min(model.contextSize, base.contextSize);
  const ctx = options.contextSize ?? maxCtx;
  if (!Number.isSafeInteger(ctx) || ctx < 2 || ctx > maxCtx) {
    throw new ValueError(`contextSize ${ctx} must be in 2..${maxCtx}`, 0, 0);
  }
  const stride = options.stride ?? Math.max(1, Math.floor(ctx / 2));
  const batch = options.batch ?? 64;
  if (!Number.isSafeInteger(batch) || batch < 1)
    throw new ValueError(`batch must be a positive integer, got ${batch}`, 0, 0);
  const docs = splitDocuments(text, options.separator).map((d) => {
    const ids = model.tokenizer.encode(d, false);
    if (model.tokenizer.bosId !== undefined) ids.unshift(model.tokenizer.bosId);
    return ids;
  });
  const plans = docs.map((ids) => windows(ids.length, ctx, stride));
  const total = plans.reduce((a, ws) => a + ws.reduce((s, w) => s + (w.end - w.from), 0), 0);
  if (total === 0)
    throw new ValueError('the text has no predictions to score (empty, or one token per document)', 0, 0);
  const klds = new Float64Array(total);
  let count = 0;
  let sumKld = 0;
  let sumKld2 = 0;
  let sumNll = 0;
  let sumNllBase = 0;
  let sumLnRatio = 0;
  let sumDp2 = 0;
  let sameTop = 0;
  const sq = await model.createSession();
  const sb = await base.createSession();
  try {
    for (let d = 0; d < docs.length; d++) {
      const ids = docs[d];
      for (const w of plans[d]) {
        options.signal?.throwIfAborted();
        sq.reset();
        sb.reset();
        for (let s = w.start; s < w.end; s += batch) {
          const e = Math.min(s + batch, w.end);
          const slice = ids.slice(s, e);
          const [lq, lb] = [await sq.evaluate(slice), await sb.evaluate(slice)];
          // Row r predicts token s + r + 1; score targets in [from, end).
          for (let r = 0; r < e - s; r++) {
            const target = s + r + 1;
            if (target < w.from || target >= w.end) continue;
            const c = compare(lq, r * vocab, lb, r * vocab, vocab, ids[target]);
            klds[count++] = c.kld;
            sumKld += c.kld;
            sumKld2 += c.kld * c.kld;
            sumNll -= c.lpQ;
            sumNllBase -= c.lpB;
            sumLnRatio += c.lpB - c.lpQ;
            const dp = Math.exp(c.lpQ) - Math.exp(c.lpB);
            sumDp2 += dp * dp;
            if (c.sameTop) sameTop++;
          }
        }
        options.onProgress?.(count, total);
      }
    }
  } finally {
    sq.dispose();
    sb.dispose();
  }
  const mean = sumKld / count;
  const variance = Math.max(0, sumKld2 / count - mean * mean);
  const values = options.keepValues ? klds.slice() : undefined;
  klds.sort();
  const ppl = Math.exp(sumNll / count);
  const basePpl = Math.exp(sumNllBase / count);
  return {
    count,
    meanKld: mean,
    meanKldError: count > 1 ? Math.sqrt(variance / (count - 1)) : 0,
    medianKld: percentile(klds, 0.5),
    p99Kld: percentile(klds, 0.99),
    p90Kld: percentile(klds, 0.9),
    maxKld: klds[count - 1],
    topTokenAgreement: sameTop / count,
    perplexity: ppl,
    basePerplexity: basePpl,
    deltaPerplexity: ppl - basePpl,
    meanLnPplRatio: sumLnRatio / count,
    rmsDeltaP: Math.sqrt(sumDp2 / count),
    values,
  };
}
