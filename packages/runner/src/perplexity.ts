/**
 * Perplexity bookkeeping: log-probabilities from logits in double precision, documents of a text file, and the
 * sliding windows that cover a document longer than the context.
 */
import { NibbleError } from '@nibble/tensor';

/**
 * Natural-log probability of `target` under `softmax(logits[offset .. offset + n))`, computed in double precision
 * (max-shifted log-sum-exp) so the reduction adds no error of its own.
 *
 * @example
 * ```ts
 * logProbAt(new Float32Array([0, 0]), 0, 2, 1); // Math.log(0.5)
 * ```
 */
export function logProbAt(logits: Float32Array, offset: number, n: number, target: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) if (logits[offset + i] > max) max = logits[offset + i];
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[offset + i] - max);
  return logits[offset + target] - max - Math.log(sum);
}

/**
 * Splits a text into documents at `separator` (default `<|endoftext|>`, as in TinyStories dumps), trimming each
 * and dropping empty ones.
 *
 * @example
 * ```ts
 * splitDocuments('\nOne.\n<|endoftext|>\nTwo.\n'); // ['One.', 'Two.']
 * ```
 */
export function splitDocuments(text: string, separator = '<|endoftext|>'): string[] {
  return text
    .split(separator)
    .map((d) => d.trim())
    .filter((d) => d.length > 0);
}

/** One evaluation window over a document's tokens: evaluate `[start, end)`, score predictions of `[from, end)`. */
export interface Window {
  readonly start: number;
  readonly end: number;
  /** First token whose prediction this window scores (> start: the first token of a window has no context). */
  readonly from: number;
}

/**
 * Windows of at most `contextSize` tokens that score every token after the first exactly once. Each new window
 * starts `stride` tokens after the previous one, so every scored token (after the first window) sees at least
 * `contextSize - stride` tokens of context.
 *
 * @example
 * ```ts
 * windows(10, 4, 2); // [{start:0,end:4,from:1}, {start:2,end:6,from:4}, {start:4,end:8,from:6}, {start:6,end:10,from:8}]
 * ```
 */
export function windows(nTokens: number, contextSize: number, stride: number): Window[] {
  if (!(contextSize >= 2) || !(stride >= 1) || stride > contextSize) {
    throw new RangeError(`need contextSize >= 2 and 1 <= stride <= contextSize, got ${contextSize} and ${stride}`);
  }
  const out: Window[] = [];
  if (nTokens < 2) return out;
  let scored = 1; // the first token is never predicted
  for (let start = 0; scored < nTokens; start += stride) {
    const end = Math.min(start + contextSize, nTokens);
    if (end > scored) out.push({ start, end, from: scored });
    scored = end;
  }
  return out;
}

/** Result of a perplexity run. */
export interface PerplexityResult {
  /** exp(-mean log-probability). */
  readonly perplexity: number;
  /** Number of scored predictions. */
  readonly count: number;
  /** Sum of natural-log probabilities of the scored tokens. */
  readonly totalLogProb: number;
  /** Per document: its token count and the log-probability of each scored prediction, in order. */
  readonly documents: readonly { readonly tokens: number; readonly logProbs: Float64Array }[];
}

/**
 * Logits that are NaN or infinite: the model (a NaN or infinite weight) or the backend is broken, so no token can be
 * sampled and no text scored. `position` is the position in the sequence whose logits are bad.
 *
 * @example
 * ```ts
 * try { await model.perplexity(text); } catch (e) { if (e instanceof NonFiniteError) console.log(e.position); }
 * ```
 */
export class NonFiniteError extends NibbleError {
  /** Position (0-based, in the evaluated sequence) whose logits are not finite. */
  readonly position: number;
  constructor(position: number, document?: number) {
    super(
      'E_NON_FINITE',
      `non-finite logits at position ${position}${document === undefined ? '' : ` of document ${document}`}: ` +
        'the model has a NaN or infinite weight, or the backend overflowed',
    );
    this.position = position;
  }
}

/**
 * The first index of `row` that holds NaN or ±Infinity, or -1.
 *
 * @example
 * ```ts
 * firstNonFinite(new Float32Array([0, NaN])); // 1
 * ```
 */
export function firstNonFinite(row: Float32Array): number {
  for (let i = 0; i < row.length; i++) if (!Number.isFinite(row[i])) return i;
  return -1;
}
