/**
 * `nibble perplexity MODEL TEXTFILE`: perplexity over documents separated by `<|endoftext|>` (BOS + text each).
 */
import { readFile } from 'node:fs/promises';
import { parseOrHelp, UsageError } from '../args.js';
import { progressBar } from '../progress.js';
import { perplexitySpec } from '../specs.js';
import { loadFromFlags } from './run.js';

export async function run(args: string[]): Promise<number> {
  const p = parseOrHelp(perplexitySpec, args);
  if (!p) return 0;
  const v = p.values;
  const [modelPath, textPath] = p.positionals;
  if (v.separator === '') throw new UsageError('--separator must not be empty');
  const text = await readFile(textPath, 'utf8');
  if (v.stride !== undefined && v.ctx !== undefined && v.stride > v.ctx) {
    throw new UsageError(`--stride must be an integer in 1..${v.ctx} (at most --ctx), got ${v.stride}`);
  }
  const bar = progressBar(v.json);
  const model = await loadFromFlags(modelPath, v, bar);
  try {
    if (v.stride !== undefined && v.stride > model.contextSize) {
      throw new UsageError(
        `--stride must be an integer in 1..${model.contextSize} (at most the context size), got ${v.stride}`,
      );
    }
    const t0 = performance.now();
    let started = false;
    const r = await model
      .perplexity(text, {
        contextSize: v.ctx,
        stride: v.stride,
        separator: v.separator,
        onProgress: (scored, total) => {
          if (!started) bar.start(total, 0, 'tokens scored');
          started = true;
          bar.update(scored);
        },
      })
      .finally(() => bar.stop());
    const seconds = (performance.now() - t0) / 1000;
    const out = {
      perplexity: r.perplexity,
      predictions: r.count,
      totalLogProb: r.totalLogProb,
      documents: r.documents.length,
      tokPerSec: Math.round((r.count / seconds) * 10) / 10,
      backend: model.backend.name,
      threads: v.threads,
    };
    if (v.json) console.log(JSON.stringify(out));
    else {
      console.log(
        `perplexity ${r.perplexity.toFixed(6)} over ${r.count} predictions in ${r.documents.length} document(s) ` +
          `(${out.tokPerSec} tok/s, backend ${out.backend}, ${v.threads} thread(s))`,
      );
    }
    return 0;
  } finally {
    await model.dispose();
  }
}
