/** Damaged copies of stories260K, built in memory with @nibble/gguf's writer, for the bad-input tests. */
import { readFileSync } from 'node:fs';
import { blobSink, type GgufMetadataBuilder, GgufWriter, parseGguf } from '@nibble/gguf';
import { fixturePath } from './fixtures.js';

/** How to damage the model: edit its metadata, drop tensors, or edit a tensor's bytes (a copy). */
export interface Damage {
  metadata?: (m: GgufMetadataBuilder) => void;
  keepTensor?: (name: string) => boolean;
  tensorBytes?: (name: string, bytes: Uint8Array) => void;
}

/** stories260K.gguf with `damage` applied, as the bytes of a GGUF file. */
export async function damagedStories(damage: Damage): Promise<Uint8Array> {
  const file = parseGguf(new Uint8Array(readFileSync(fixturePath('models', 'stories260K.gguf'))));
  const sink = blobSink();
  const w = new GgufWriter(sink);
  w.metadata.copyFrom(file);
  damage.metadata?.(w.metadata);
  const kept = file.tensors.filter((t) => damage.keepTensor?.(t.name) ?? true);
  for (const t of kept) w.addTensor({ name: t.name, dtype: t.ggmlType, shape: t.shape });
  for (const t of kept) {
    const bytes = file.readTensorSync(t.name).data.slice();
    damage.tensorBytes?.(t.name, bytes);
    await w.writeTensor(t.name, bytes);
  }
  await w.finish();
  return new Uint8Array(await sink.blob().arrayBuffer());
}
