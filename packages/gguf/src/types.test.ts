// GGUF reads its type layouts from the one table of @nibble/tensor; both agree with the spec's type table. Types
// without a codec (the grid IQ types, NVFP4, Q2_0) are still sized, written and read, like any other.
import { readFileSync } from 'node:fs';
import { dtypes } from '@nibble/tensor';
import { describe, expect, it } from 'vitest';
import { blobSink, GgufWriter, ggmlTypes, openGguf } from './index.js';

/** [name, id, block, bytes] from the spec's table (fixtures copy), multi-type rows expanded. */
function specRows(): [string, number, number, number][] {
  const text = readFileSync(new URL('../../../fixtures/spec/ggml-type-table.md', import.meta.url), 'utf8');
  const rows: [string, number, number, number][] = [];
  for (const line of text.split('\n')) {
    const c = line.split('|').map((x) => x.trim());
    if (c.length < 7 || c[1].startsWith('(') || !/^[\d–, ]+$/.test(c[2])) continue;
    const names = c[1].split(',').map((n) => n.trim().toLowerCase().replace(/_k$/, '_K'));
    const ids = c[2].includes('–')
      ? Array.from({ length: names.length }, (_, i) => Number(c[2].split('–')[0]) + i)
      : c[2].split(',').map(Number);
    const sizes = c[4].split(',').map((s) => Number(s.replace(/\*/g, '')));
    names.forEach((n, i) => {
      rows.push([n, ids[i], Number(c[3]), sizes[sizes.length === 1 ? 0 : i]]);
    });
  }
  return rows;
}

describe('ggmlTypes', () => {
  const spec = specRows();

  it('holds exactly the spec types, with their ids, block sizes and bytes per block', () => {
    expect(spec.length).toBe(35);
    const ours = [...ggmlTypes.values()]
      .map((t) => [t.name, t.ggmlType, t.blockSize, t.bytesPerBlock] as [string, number, number, number])
      .sort((a, b) => a[1] - b[1]);
    expect(ours).toEqual([...spec].sort((a, b) => a[1] - b[1]));
    for (const [id, t] of ggmlTypes) expect(t.ggmlType).toBe(id);
  });

  it('is the dtype table of @nibble/tensor, not a copy', () => {
    for (const t of ggmlTypes.values()) expect(t).toBe(dtypes[t.name]);
  });

  it.each(['iq2_xxs', 'iq1_m', 'nvfp4', 'q1_0', 'q2_0'] as const)(
    'writes and reads a %s tensor with its spec size',
    async (dtype) => {
      const [, , block, bytes] = spec.find(([n]) => n === dtype)!;
      const shape = [3, 2 * block];
      const data = new Uint8Array(3 * 2 * bytes).map((_, i) => (i * 7) & 0xff);
      const out = blobSink();
      const w = new GgufWriter(out);
      w.addTensor({ name: 't', dtype, shape });
      await w.writeTensor('t', data);
      await w.finish();
      const file = await openGguf(out.blob());
      const t = file.tensors[0];
      expect([t.typeName, t.ggmlType, t.byteLength]).toEqual([dtype, dtypes[dtype].ggmlType, data.length]);
      expect((await file.readTensor('t')).data).toEqual(data);
    },
  );
});
