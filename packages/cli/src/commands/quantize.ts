/** `nibble quantize IN OUT PRESET`: llama-quantize, byte for byte (see @nibble/quantize). */
import { openGgufFile } from '@nibble/gguf/node';
import {
  planQuantization,
  presets,
  QuantizeError,
  type QuantizeModelOptions,
  type QuantizePlan,
  type QuantizeResult,
} from '@nibble/quantize';
import { quantizeFile, readImatrixFile } from '@nibble/quantize/node';
import { UsageError } from '../args.js';
import { intFlag, Progress, parseStrict, size, table } from '../quant-cli.js';

const usage = `usage: nibble quantize IN.gguf OUT.gguf PRESET [options]
       nibble quantize IN.gguf OUT.gguf --type TYPE [options]
       nibble quantize IN.gguf PRESET --dry-run

Writes OUT as llama-quantize would, byte for byte: llama.cpp's per-tensor rules for the preset (attn_v, ffn_down,
output and embeddings by layer and GQA factor), its fallbacks for rows that do not fit a block, its tensor order and
metadata. OUT is written to a temporary file and renamed; an existing OUT is kept unless --force.

presets: ${presets.map((p) => p.name).join(', ')}

options:
  --type TYPE                 a type instead of a preset (the preset of that name, else every tensor TYPE)
  --imatrix FILE              importance matrix (llama-imatrix's GGUF or legacy .dat; 'nibble imatrix' makes one)
  --pure                      no mix: every quantized tensor gets the preset's default type
  --output-tensor-type TYPE   type of output.weight
  --token-embedding-type TYPE type of token_embd.weight
  --tensor-type PATTERN=TYPE  type of tensors whose name matches PATTERN (a regex; repeatable, first match wins)
  --leave-output-tensor       keep output.weight as it is
  --allow-requantize          quantize tensors that are already quantized
  --threads N                 worker threads (default 1)
  --dry-run                   print the sizes, write nothing
  --json                      print the result as JSON (no progress)
  --force                     replace OUT
  -h, --help                  this text`;

const flags = {
  type: { type: 'string' },
  imatrix: { type: 'string' },
  pure: { type: 'boolean' },
  'output-tensor-type': { type: 'string' },
  'token-embedding-type': { type: 'string' },
  'tensor-type': { type: 'string', multiple: true },
  'leave-output-tensor': { type: 'boolean' },
  'allow-requantize': { type: 'boolean' },
  threads: { type: 'string' },
  'dry-run': { type: 'boolean' },
  json: { type: 'boolean' },
  force: { type: 'boolean' },
} as const;

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
  return table(['type', 'tensors', 'weights', 'size', 'bpw', 'share'], rows, [
    'left',
    'right',
    'right',
    'right',
    'right',
    'right',
  ]);
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
  const { values: v, positionals } = parseStrict(args, flags, usage);
  if (v.help) {
    console.log(usage);
    return 0;
  }
  const dryRun = v['dry-run'] === true;
  const json = v.json === true;
  let input: string | undefined;
  let output: string | undefined;
  let preset: string | undefined;
  if (dryRun) {
    [input, preset] = positionals.length === 3 ? [positionals[0], positionals[2]] : positionals;
    if (positionals.length === 3) output = positionals[1];
  } else [input, output, preset] = positionals;
  const type = v.type as string | undefined;
  if (type !== undefined && preset !== undefined) throw new UsageError(`give a PRESET or --type, not both\n\n${usage}`);
  if (preset === undefined && type === undefined)
    throw new UsageError(`expected IN, OUT and a PRESET (or --type)\n\n${usage}`);
  if (!input || (!dryRun && !output) || positionals.length > 3)
    throw new UsageError(`expected IN, OUT and a PRESET\n\n${usage}`);
  const threads = intFlag(v.threads, 'threads', 1, 256, 1);
  const tensorTypes = ((v['tensor-type'] as string[] | undefined) ?? []).map((s): [string, string] => {
    const eq = s.indexOf('=');
    if (eq <= 0 || eq === s.length - 1) throw new UsageError(`--tensor-type expects PATTERN=TYPE, got '${s}'`);
    return [s.slice(0, eq), s.slice(eq + 1)];
  });
  const imatrixPath = v.imatrix as string | undefined;
  try {
    const options: QuantizeModelOptions = {
      preset,
      type,
      imatrix: imatrixPath === undefined ? undefined : await readImatrixFile(imatrixPath),
      imatrixName: imatrixPath,
      pure: v.pure === true,
      outputType: v['output-tensor-type'] as string | undefined,
      tokenEmbeddingType: v['token-embedding-type'] as string | undefined,
      tensorTypes,
      leaveOutputTensor: v['leave-output-tensor'] === true,
      allowRequantize: v['allow-requantize'] === true,
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
    const progress = new Progress(json);
    let r: QuantizeResult;
    try {
      r = await quantizeFile(input, output as string, {
        ...options,
        overwrite: v.force === true,
        onProgress: (p) => {
          const mbs = p.bytesDone / 1e6 / Math.max(p.elapsedMs / 1000, 1e-3);
          progress.update(
            p.bytesDone,
            p.bytesTotal,
            p.tensor,
            `[${String(p.index + 1).padStart(4)}/${p.count}] ${p.tensor.padEnd(32)} ${(p.bytesDone / 1e6).toFixed(1)}/${(p.bytesTotal / 1e6).toFixed(1)} MB, ${mbs.toFixed(1)} MB/s`,
          );
        },
      });
    } finally {
      progress.stop();
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
    // Library errors name API options; on the command line they are flags.
    if (e instanceof QuantizeError && e.option) throw new QuantizeError(e.code as never, e.cliMessage());
    throw e;
  }
}
