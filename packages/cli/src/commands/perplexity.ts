/**
 * `nibble perplexity MODEL TEXTFILE`: perplexity over documents separated by `<|endoftext|>` (BOS + text each).
 */
import { readFile } from 'node:fs/promises';
import { klDivergence } from '@nibble/runner';
import { parseArgs, stringFlag, UsageError } from '../args.js';
import { table } from '../quant-cli.js';
import { loadFromFlags } from './run.js';

const usage = `usage: nibble perplexity MODEL TEXTFILE [--ctx N] [--stride N] [--separator S] [--backend B]
                         [--threads K] [--kv-type f32|f16|q8_0] [--activations f32|ggml] [--kl-base BASE.gguf]
                         [--json]

Each document (split at --separator, default <|endoftext|>, trimmed) is scored as BOS + its tokens; documents
longer than --ctx are scored in windows that move by --stride (default ctx/2).

--kl-base BASE.gguf also runs BASE (e.g. the F16 or F32 model MODEL was quantized from) on the same windows and
reports, like llama.cpp's --kl-divergence, the KL divergence of MODEL's next-token distributions from BASE's (mean,
median, 99th percentile, maximum), how often both pick the same top token, and both perplexities.`;

export async function run(args: string[]): Promise<number> {
  const p = parseArgs(args, ['json', 'help']);
  if (p.flags.has('help')) {
    console.log(usage);
    return 0;
  }
  const [modelPath, textPath] = p.positionals;
  if (modelPath === undefined || textPath === undefined || p.positionals.length > 2) throw new UsageError(usage);
  const text = await readFile(textPath, 'utf8').catch((e: Error) => {
    throw new UsageError(`cannot read ${textPath}: ${e.message}`);
  });
  const klBase = stringFlag(p, 'kl-base');
  if (klBase !== undefined) return klRun(modelPath, klBase, text, p);
  const { model, threads } = await loadFromFlags(modelPath, p);
  try {
    const stride = stringFlag(p, 'stride');
    const t0 = performance.now();
    const r = await model.perplexity(text, {
      contextSize: p.flags.has('ctx') ? Number(stringFlag(p, 'ctx')) : undefined,
      stride: stride === undefined ? undefined : Number(stride),
      separator: stringFlag(p, 'separator'),
    });
    const seconds = (performance.now() - t0) / 1000;
    const out = {
      perplexity: r.perplexity,
      predictions: r.count,
      totalLogProb: r.totalLogProb,
      documents: r.documents.length,
      tokPerSec: Math.round((r.count / seconds) * 10) / 10,
      backend: model.backend.name,
      threads,
    };
    if (p.flags.has('json')) console.log(JSON.stringify(out));
    else {
      console.log(
        `perplexity ${r.perplexity.toFixed(6)} over ${r.count} predictions in ${r.documents.length} document(s) ` +
          `(${out.tokPerSec} tok/s, backend ${out.backend}, ${threads} thread(s))`,
      );
    }
    return 0;
  } finally {
    await model.dispose();
  }
}

async function klRun(
  modelPath: string,
  basePath: string,
  text: string,
  p: ReturnType<typeof parseArgs>,
): Promise<number> {
  const { model, threads } = await loadFromFlags(modelPath, p);
  try {
    const { model: base } = await loadFromFlags(basePath, p);
    try {
      const stride = stringFlag(p, 'stride');
      const t0 = performance.now();
      const r = await klDivergence(model, base, text, {
        contextSize: p.flags.has('ctx') ? Number(stringFlag(p, 'ctx')) : undefined,
        stride: stride === undefined ? undefined : Number(stride),
        separator: stringFlag(p, 'separator'),
      });
      const seconds = (performance.now() - t0) / 1000;
      const out = { ...r, values: undefined, base: basePath, seconds, backend: model.backend.name, threads };
      if (p.flags.has('json')) {
        console.log(JSON.stringify(out));
        return 0;
      }
      const f = (x: number, d = 6) => x.toFixed(d);
      console.log(`${modelPath} against ${basePath}: ${r.count} predictions`);
      console.log(
        table(
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
          ['left', 'right'],
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
