import { getFormat } from '@nibble/formats';
import { createGgufFileWriter, openGgufFile } from '@nibble/gguf/node';

const file = await openGgufFile('stories260K.gguf');
const writer = await createGgufFileWriter('stories260K-q8_0.gguf'); // a temp file, renamed on finish()
const q8 = getFormat('q8_0');

// Every 2-D f32 weight whose rows fit Q8_0's blocks of 32 becomes Q8_0; norms and the rest are copied.
const plan = file.tensors.map((t) => ({
  t,
  quantize: t.dtype === 'f32' && t.shape.length === 2 && t.shape[1] % q8.info.blockSize === 0,
}));
writer.metadata.copyFrom(file);
for (const { t, quantize } of plan)
  writer.addTensor({ name: t.name, dtype: quantize ? 'q8_0' : t.ggmlType, shape: t.shape });

for (const { t, quantize } of plan) {
  if (!quantize) {
    await writer.writeTensor(t.name, await file.readTensorBytes(t));
    continue;
  }
  const { data } = await file.readTensor(t.name); // one tensor in memory at a time
  const values = new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4);
  await writer.writeTensor(t.name, q8.quantize(values, { rowLength: t.shape[1] }));
}
await writer.finish();
await file.close();
console.log(`${plan.filter((p) => p.quantize).length} tensors quantized, ${writer.bytesWritten} bytes written`);
