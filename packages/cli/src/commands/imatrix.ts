/** `nibble imatrix MODEL TEXT -o OUT`: an importance matrix from calibration text, like llama-imatrix. */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { computeImatrix } from '@nibble/quantize';
import { writeImatrixFile } from '@nibble/quantize/node';
import { loadModel } from '@nibble/runner/node';
import { parseOrHelp, UsageError } from '../args.js';
import { progressBar } from '../progress.js';
import { imatrixSpec } from '../specs.js';
import { registerBackendByName } from './run.js';

export async function run(args: string[]): Promise<number> {
  const p = parseOrHelp(imatrixSpec, args);
  if (!p) return 0;
  const v = p.values;
  const [modelPath, textPath] = p.positionals;
  const out = v.output;
  if (out === undefined) throw new UsageError('-o OUT is required (where to write the imatrix)');
  const text = await readFile(textPath, 'utf8');
  await registerBackendByName(v.backend);
  const model = await loadModel(modelPath, {
    backend: v.backend === 'auto' ? 'auto' : v.backend.split(','),
    threads: v.threads,
    contextSize: v.ctx,
  });
  const bar = progressBar(v.json);
  const t0 = performance.now();
  try {
    const im = await computeImatrix(model, text, {
      contextSize: v.ctx,
      chunks: v.chunks,
      dataset: basename(textPath),
      processOutput: v['process-output'],
      onProgress: (c, n) => {
        const tps = (c * v.ctx) / Math.max((performance.now() - t0) / 1000, 1e-3);
        if (c === 1) bar.start(n, 0, 'chunks');
        bar.update(c, `chunks, ${tps.toFixed(0)} tok/s`);
      },
    }).finally(() => bar.stop());
    await writeImatrixFile(im, out);
    const seconds = (performance.now() - t0) / 1000;
    const tokens = im.chunkCount * im.chunkSize;
    if (v.json) {
      console.log(
        JSON.stringify({
          output: out,
          entries: im.size,
          chunks: im.chunkCount,
          chunkSize: im.chunkSize,
          tokens,
          seconds,
        }),
      );
    } else {
      console.log(
        `wrote ${out}: ${im.size} weights from ${tokens} tokens (${im.chunkCount} chunks of ${v.ctx}) in ${seconds.toFixed(1)} s`,
      );
    }
    return 0;
  } finally {
    await model.dispose();
  }
}
