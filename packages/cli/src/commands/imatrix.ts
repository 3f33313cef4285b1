/** `nibble imatrix MODEL TEXT -o OUT`: an importance matrix from calibration text, like llama-imatrix. */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { computeImatrix } from '@nibble/quantize';
import { writeImatrixFile } from '@nibble/quantize/node';
import { loadModel } from '@nibble/runner/node';
import { UsageError } from '../args.js';
import { intFlag, Progress, parseStrict } from '../quant-cli.js';
import { registerBackendByName } from './run.js';

const usage = `usage: nibble imatrix MODEL TEXTFILE -o OUT.gguf [--ctx N] [--chunks N] [--process-output]
                      [--backend B] [--threads K] [--json]

Runs MODEL over TEXTFILE as llama-imatrix does (chunks of --ctx tokens, default 512, each from an empty cache
starting with BOS; all chunks unless --chunks) and writes the mean squared input of every column of every layer
weight, in llama-imatrix's GGUF layout, for 'nibble quantize --imatrix'. The text needs at least two chunks.`;

const flags = {
  output: { type: 'string', short: 'o' },
  ctx: { type: 'string' },
  chunks: { type: 'string' },
  'process-output': { type: 'boolean' },
  backend: { type: 'string' },
  threads: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export async function run(args: string[]): Promise<number> {
  const { values: v, positionals } = parseStrict(args, flags, usage);
  if (v.help) {
    console.log(usage);
    return 0;
  }
  const [modelPath, textPath] = positionals;
  const out = v.output as string | undefined;
  if (!modelPath || !textPath || !out || positionals.length > 2)
    throw new UsageError(`expected MODEL, TEXTFILE and -o OUT\n\n${usage}`);
  const ctx = intFlag(v.ctx, 'ctx', 2, 1 << 20, 512);
  const chunks = v.chunks === undefined ? undefined : intFlag(v.chunks, 'chunks', 1, 1 << 30, 1);
  const threads = intFlag(v.threads, 'threads', 1, 256, 1);
  const text = await readFile(textPath, 'utf8').catch((e: Error) => {
    throw new UsageError(`cannot read ${textPath}: ${e.message}`);
  });
  const backend = (v.backend as string | undefined) ?? 'js';
  await registerBackendByName(backend);
  const model = await loadModel(modelPath, {
    backend: backend === 'auto' ? 'auto' : backend.split(','),
    threads,
    contextSize: ctx,
  });
  const progress = new Progress(v.json === true, 'chunks');
  const t0 = performance.now();
  try {
    const im = await computeImatrix(model, text, {
      contextSize: ctx,
      chunks,
      dataset: basename(textPath),
      processOutput: v['process-output'] === true,
      onProgress: (c, n) => {
        const tps = (c * ctx) / Math.max((performance.now() - t0) / 1000, 1e-3);
        progress.update(c, n, '', `chunk ${c}/${n} (${tps.toFixed(0)} tok/s)`, tps);
      },
    });
    progress.stop();
    await writeImatrixFile(im, out);
    const seconds = (performance.now() - t0) / 1000;
    const result = {
      output: out,
      entries: im.size,
      chunks: im.chunkCount,
      chunkSize: im.chunkSize,
      tokens: im.chunkCount * im.chunkSize,
      seconds,
    };
    if (v.json) console.log(JSON.stringify(result));
    else
      console.log(
        `wrote ${out}: ${im.size} weights from ${result.tokens} tokens (${im.chunkCount} chunks of ${ctx}) in ${seconds.toFixed(1)} s`,
      );
    return 0;
  } finally {
    progress.stop();
    await model.dispose();
  }
}
