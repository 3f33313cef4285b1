/** `nibble quantize IN OUT PRESET`: llama-quantize, byte for byte (see @nibble/quantize). */
import { existsSync } from 'node:fs';
import { openGgufFile } from '@nibble/gguf/node';
import {
  planQuantization,
  QuantizeError,
  type QuantizeModelOptions,
  type QuantizePlan,
  type QuantizeResult,
} from '@nibble/quantize';
import { quantizeFile, readImatrixFile } from '@nibble/quantize/node';
import { parseOrHelp, UsageError } from '../args.js';
import { progressAllowed, progressBar } from '../progress.js';
import { quantizeSpec } from '../specs.js';
import { formatTable } from '../table.js';

/** Bytes as GiB, MiB or KiB. */
export function size(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(2)} MiB`;
  return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
}

/** Per stored type: tensors, weights, bytes, bits per weight; then the totals. */
function typeTable(plan: QuantizePlan): string {
  const by = new Map<string, { n: number; elements: number; bytes: number }>();
  for (const t of plan.tensors) {
    const e = by.get(t.to) ?? { n: 0, elements: 0, bytes: 0 };
    by.set(t.to, { n: e.n + 1, elements: e.elements + t.elements, bytes: e.bytes + t.bytesOut });
  }
  const rows = [...by]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .map(([type, e]) => [
      type,
      e.n,
      e.elements.toLocaleString('en-US'),
      size(e.bytes),
      ((8 * e.bytes) / e.elements).toFixed(2),
      `${((100 * e.bytes) / plan.bytesOut).toFixed(1)}%`,
    ]);
  rows.push([
    'total',
    plan.tensors.length,
    plan.elements.toLocaleString('en-US'),
    size(plan.bytesOut),
    ((8 * plan.bytesOut) / plan.elements).toFixed(2),
    `${((100 * plan.bytesOut) / plan.bytesIn).toFixed(1)}% of input`,
  ]);
  return formatTable(['type', 'tensors', 'weights', 'size', 'bpw', 'share'], rows, {
    align: ['l', 'r', 'r', 'r', 'r', 'r'],
  });
}

function summary(plan: QuantizePlan): object {
  return {
    preset: plan.preset,
    ftype: plan.ftype,
    bytesIn: plan.bytesIn,
    bytesOut: plan.bytesOut,
    bitsPerWeight: (8 * plan.bytesOut) / plan.elements,
    warnings: plan.warnings,
    tensors: plan.tensors.map((t) => ({
      name: t.name,
      from: t.from,
      to: t.to,
      bytesIn: t.bytesIn,
      bytesOut: t.bytesOut,
    })),
  };
}

export async function run(args: string[]): Promise<number> {
  const p = parseOrHelp(quantizeSpec, args);
  if (!p) return 0;
  const v = p.values;
  const positionals = p.positionals;
  const dryRun = v['dry-run'];
  const json = v.json;
  let input: string;
  let output: string | undefined;
  let preset: string | undefined;
  if (dryRun && positionals.length === 2 && v.type === undefined) [input, preset] = positionals;
  else [input, output, preset] = positionals;
  const type = v.type;
  if (type !== undefined && preset !== undefined) throw new UsageError('give a PRESET or --type, not both');
  if (preset === undefined && type === undefined) {
    throw new UsageError("expected IN, OUT and a PRESET (or --type); 'nibble sizes' lists the presets");
  }
  if (!dryRun && output === undefined) throw new UsageError('expected IN, OUT and a PRESET');
  if (!dryRun && existsSync(output as string) && !v.force) {
    throw new UsageError(`${output} exists; pass --force to replace it`);
  }
  const threads = v.threads;
  const tensorTypes = (v['tensor-type'] ?? []).map((s): [string, string] => {
    const eq = s.indexOf('=');
    if (eq <= 0 || eq === s.length - 1) throw new UsageError(`--tensor-type expects PATTERN=TYPE, got '${s}'`);
    return [s.slice(0, eq), s.slice(eq + 1)];
  });
  const imatrixPath = v.imatrix;
  try {
    const options: QuantizeModelOptions = {
      preset,
      type,
      imatrix: imatrixPath === undefined ? undefined : await readImatrixFile(imatrixPath),
      imatrixName: imatrixPath,
      pure: v.pure,
      outputType: v['output-tensor-type'],
      tokenEmbeddingType: v['token-embedding-type'],
      tensorTypes,
      leaveOutputTensor: v['leave-output-tensor'],
      allowRequantize: v['allow-requantize'],
      threads,
    };
    if (dryRun) {
      const file = await openGgufFile(input);
      try {
        const plan = planQuantization(file, { ...options, dryRun: true });
        if (json) console.log(JSON.stringify(summary(plan), null, 2));
        else {
          for (const w of plan.warnings) console.error(`nibble quantize: ${w}`);
          console.log(
            `${input} as ${plan.preset} (dry run, nothing written): ${size(plan.bytesIn)} -> ${size(plan.bytesOut)}`,
          );
          console.log(typeTable(plan));
        }
      } finally {
        await file.close();
      }
      return 0;
    }
    // A bar on a terminal; otherwise one line per tensor on stderr (like llama-quantize); nothing with --json.
    const bar = progressBar(json);
    const lines = !json && !progressAllowed(json);
    const MB = 1e6;
    let started = false;
    let r: QuantizeResult;
    try {
      r = await quantizeFile(input, output as string, {
        ...options,
        overwrite: v.force,
        onProgress: (q) => {
          const mbs = q.bytesDone / MB / Math.max(q.elapsedMs / 1000, 1e-3);
          if (!started) bar.start(Math.max(1, Math.round(q.bytesTotal / MB)), 0, q.tensor);
          started = true;
          bar.update(Math.round(q.bytesDone / MB), `MB in, ${mbs.toFixed(1)} MB/s, ${q.tensor}`);
          if (lines) {
            process.stderr.write(
              `[${String(q.index + 1).padStart(4)}/${q.count}] ${q.tensor.padEnd(32)} ` +
                `${(q.bytesDone / MB).toFixed(1)}/${(q.bytesTotal / MB).toFixed(1)} MB, ${mbs.toFixed(1)} MB/s\n`,
            );
          }
        },
      });
    } finally {
      bar.stop();
    }
    if (json) {
      console.log(
        JSON.stringify(
          { ...summary(r), output, fileBytes: r.fileBytes, seconds: r.elapsedMs / 1000, threads: r.threads },
          null,
          2,
        ),
      );
      return 0;
    }
    for (const w of r.warnings) console.error(`nibble quantize: ${w}`);
    const seconds = r.elapsedMs / 1000;
    console.log(
      `wrote ${output} as ${r.preset}: ${size(r.bytesIn)} -> ${size(r.fileBytes)} (${(r.bytesIn / r.bytesOut).toFixed(2)}x smaller) ` +
        `in ${seconds.toFixed(1)} s, ${(r.bytesIn / 1e6 / Math.max(seconds, 1e-3)).toFixed(1)} MB/s, ${r.threads} thread(s)`,
    );
    console.log(typeTable(r));
    return 0;
  } catch (e) {
    // An unknown preset or type is a mistake in the command line (exit 2); library errors name API options, which
    // on the command line are flags.
    if (e instanceof QuantizeError && e.code === 'E_QUANT_PRESET') throw new UsageError(e.message);
    if (e instanceof QuantizeError && e.option) throw new QuantizeError(e.code as never, e.cliMessage());
    throw e;
  }
}
