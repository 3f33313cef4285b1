/**
 * `nibble perplexity MODEL TEXTFILE`: perplexity over documents separated by `<|endoftext|>` (BOS + text each).
 */
import { readFile } from 'node:fs/promises';
import { parseArgs, stringFlag, UsageError } from '../args.js';
import { loadFromFlags } from './run.js';

const usage = `usage: nibble perplexity MODEL TEXTFILE [--ctx N] [--stride N] [--separator S] [--backend B]
                         [--threads K] [--kv-type f32|f16|q8_0] [--activations f32|ggml] [--json]

Each document (split at --separator, default <|endoftext|>, trimmed) is scored as BOS + its tokens; documents
longer than --ctx are scored in windows that move by --stride (default ctx/2).`;

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
