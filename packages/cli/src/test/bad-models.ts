/** Damaged copies of stories260K written to a temporary folder with @nibble/gguf's writer, for bad-input tests. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { blobSink, type GgufMetadataBuilder, GgufWriter, parseGguf } from '@nibble/gguf';

/** A file of the repository's fixtures/ folder. */
export const fixture = (rel: string): string => fileURLToPath(new URL(`../../../../fixtures/${rel}`, import.meta.url));

/** How to damage the model: edit its metadata, drop tensors, or edit a tensor's bytes (a copy). */
export interface Damage {
  metadata?: (m: GgufMetadataBuilder) => void;
  keepTensor?: (name: string) => boolean;
  tensorBytes?: (name: string, bytes: Uint8Array) => void;
}

/** A temporary folder for damaged files; `dispose()` removes it with everything in it. */
export class Scratch {
  readonly dir = mkdtempSync(join(tmpdir(), 'nibble-cli-'));

  /** Writes `name` with text or bytes; returns its path. */
  write(name: string, data: string | Uint8Array): string {
    const path = join(this.dir, name);
    writeFileSync(path, data);
    return path;
  }

  /** stories260K.gguf with `damage` applied, written as `name`; returns its path. */
  async stories(name: string, damage: Damage): Promise<string> {
    const file = parseGguf(new Uint8Array(readFileSync(fixture('models/stories260K.gguf'))));
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
    return this.write(name, new Uint8Array(await sink.blob().arrayBuffer()));
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
