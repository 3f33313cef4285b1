/** `nibble quantize IN OUT --type T`: a quantized copy of a GGUF model, like `llama-quantize`. */
import { existsSync } from 'node:fs';
import { createGgufFileWriter, openGgufFile } from '@nibble/gguf/node';
import { findDType } from '@nibble/tensor';
import { parseArgs, stringFlag, UsageError } from '../args.js';
import { quantizeModel } from '../model-quant.js';

const usage = `usage: nibble quantize IN.gguf OUT.gguf --type TYPE [--pure] [--force] [--allow-requantize]

Stores every 2-D weight tensor (not norms) as TYPE, or llama.cpp's fallback type where rows do not fit TYPE's
block size; copies everything else. Like llama-quantize, output.weight gets Q6_K (Q8_0 when its rows are not
multiples of 256) unless --pure is given. OUT is written to a temporary file and renamed; an existing OUT is kept
unless --force is given. 'nibble formats' lists the types.`;

export async function run(args: string[]): Promise<number> {
  const p = parseArgs(args, ['force', 'allow-requantize', 'pure', 'help']);
  if (p.flags.has('help')) {
    console.log(usage);
    return 0;
  }
  const [input, output] = p.positionals;
  const type = stringFlag(p, 'type');
  if (!input || !output || !type || p.positionals.length > 2)
    throw new UsageError(`expected IN, OUT and --type\n\n${usage}`);
  const dtype =
    findDType(type) ??
    findDType(type.toLowerCase()) ??
    findDType(type.replace(/_k$/i, '_K').toLowerCase().replace(/_k$/, '_K'));
  if (!dtype) throw new UsageError(`unknown type '${type}'; 'nibble formats' lists the types`);
  if (existsSync(output) && !p.flags.has('force')) {
    throw new UsageError(`${output} exists; pass --force to replace it`);
  }
  const file = await openGgufFile(input);
  try {
    const writer = await createGgufFileWriter(output);
    const counts = new Map<string, number>();
    await quantizeModel(file, dtype.name, writer, {
      allowRequantize: p.flags.has('allow-requantize'),
      pure: p.flags.has('pure'),
      onTensor: (_name, storedAs) => counts.set(storedAs, (counts.get(storedAs) ?? 0) + 1),
    });
    const summaryLine = [...counts].map(([t, n]) => `${n} ${t}`).join(', ');
    console.log(`wrote ${output}: ${writer.bytesWritten} bytes (${summaryLine})`);
  } finally {
    await file.close();
  }
  return 0;
}
