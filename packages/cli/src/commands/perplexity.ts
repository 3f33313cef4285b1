/**
 * `nibble perplexity MODEL TEXTFILE`: perplexity over documents separated by `<|endoftext|>` (BOS + text each);
 * with `--kl-base BASE`, the KL divergence of MODEL from BASE on the same windows.
 */
import { readFile } from 'node:fs/promises';
import { klDivergence } from '@nibble/runner';
import { parseOrHelp, UsageError } from '../args.js';
import { type Progress, progressBar } from '../progress.js';
import { perplexitySpec } from '../specs.js';
import { formatTable } from '../table.js';
import { loadFromFlags } from './run.js';

type Values = NonNullable<ReturnType<typeof parseOrHelp<typeof perplexitySpec.flags>>>['values'];

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
  if (v['kl-base'] !== undefined) return klRun(modelPath, v['kl-base'], text, v, bar);
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

async function klRun(modelPath: string, basePath: string, text: string, v: Values, bar: Progress): Promise<number> {
  const model = await loadFromFlags(modelPath, v, bar);
  try {
    const base = await loadFromFlags(basePath, v, bar);
    try {
      const t0 = performance.now();
      let started = false;
      const r = await klDivergence(model, base, text, {
        contextSize: v.ctx,
        stride: v.stride,
        separator: v.separator,
        onProgress: (done, total) => {
          if (!started) bar.start(total, 0, 'tokens compared');
          started = true;
          bar.update(done);
        },
      }).finally(() => bar.stop());
      const seconds = (performance.now() - t0) / 1000;
      if (v.json) {
        console.log(JSON.stringify({ ...r, values: undefined, base: basePath, seconds, backend: model.backend.name }));
        return 0;
      }
      const f = (x: number) => x.toFixed(6);
      console.log(`${modelPath} against ${basePath}: ${r.count} predictions`);
      console.log(
        formatTable(
          ['statistic', 'value'],
          [
            ['Mean KLD', `${f(r.meanKld)} ± ${f(r.meanKldError)}`],
            ['Median KLD', f(r.medianKld)],
            ['90.0% KLD', f(r.p90Kld)],
            ['99.0% KLD', f(r.p99Kld)],
            ['Maximum KLD', f(r.maxKld)],
            ['Same top token', `${(100 * r.topTokenAgreement).toFixed(3)} %`],
            ['PPL(Q)', f(r.perplexity)],
            ['PPL(base)', f(r.basePerplexity)],
            ['PPL(Q) - PPL(base)', `${r.deltaPerplexity >= 0 ? '+' : ''}${f(r.deltaPerplexity)}`],
            ['Mean ln(PPL(Q)/PPL(base))', f(r.meanLnPplRatio)],
            ['RMS Δp', `${(100 * r.rmsDeltaP).toFixed(3)} %`],
          ],
          { align: ['l', 'r'] },
        ),
      );
      return 0;
    } finally {
      await base.dispose();
    }
  } finally {
    await model.dispose();
  }
}
