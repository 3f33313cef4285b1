import { quantizeFile } from '@nibble/quantize/node';

// llama-quantize's Q8_0 preset: its per-tensor rules, its fallbacks for rows that fit no block, its bytes.
const r = await quantizeFile('stories260K.gguf', 'stories260K-Q8_0.gguf', {
  preset: 'Q8_0',
  onProgress: (p) => p.bytesDone === p.bytesTotal && console.log(`${p.count} tensors, ${p.bytesTotal} bytes read`),
});
const types = new Map<string, number>();
for (const t of r.tensors) types.set(t.to, (types.get(t.to) ?? 0) + 1);
console.log(`${r.fileBytes} bytes:`, [...types].map(([type, n]) => `${n} ${type}`).join(', '));
console.log(r.warnings.join('\n'));
