/** `nibble quantize IN OUT --type T`: a quantized copy of a GGUF model, like `llama-quantize`. */
import { existsSync } from 'node:fs';
import { createGgufFileWriter, openGgufFile } from '@nibble/gguf/node';
import { findDType } from '@nibble/tensor';
import { parseOrHelp, UsageError } from '../args.js';
import { quantizeModel } from '../model-quant.js';
import { quantizeSpec } from '../specs.js';

export async function run(args: string[]): Promise<number> {
  const p = parseOrHelp(quantizeSpec, args);
  if (!p) return 0;
  const [input, output] = p.positionals;
  const type = p.values.type;
  if (!type) throw new UsageError("--type is required ('nibble formats' lists the types)");
  const dtype =
    findDType(type) ??
    findDType(type.toLowerCase()) ??
    findDType(type.replace(/_k$/i, '_K').toLowerCase().replace(/_k$/, '_K'));
  if (!dtype) throw new UsageError(`unknown type '${type}'; 'nibble formats' lists the types`);
  if (existsSync(output) && !p.values.force) {
    throw new UsageError(`${output} exists; pass --force to replace it`);
  }
  const file = await openGgufFile(input);
  try {
    const writer = await createGgufFileWriter(output);
    const counts = new Map<string, number>();
    await quantizeModel(file, dtype.name, writer, {
      allowRequantize: p.values['allow-requantize'],
      pure: p.values.pure,
      onTensor: (_name, storedAs) => counts.set(storedAs, (counts.get(storedAs) ?? 0) + 1),
    });
    const summaryLine = [...counts].map(([t, n]) => `${n} ${t}`).join(', ');
    console.log(`wrote ${output}: ${writer.bytesWritten} bytes (${summaryLine})`);
  } finally {
    await file.close();
  }
  return 0;
}
