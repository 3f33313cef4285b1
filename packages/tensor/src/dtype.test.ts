// The one layout table (`dtypes`) against the GGUF/ggml spec's type table and against what ggml itself reported
// when it wrote the golden sets (ids, block sizes and type sizes from `ggml_type_size`/`ggml_blck_size`).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dtypeFromGgmlType, dtypes } from './dtype.js';

const fixtures = new URL('../../../fixtures/', import.meta.url);
const read = (rel: string) => readFileSync(new URL(rel, fixtures), 'utf8');

interface SpecType {
  name: string;
  id: number;
  blockSize: number;
  bytesPerBlock: number;
  vecDot: string | undefined;
}

/** Rows of the spec's markdown table; rows naming several types ("IQ3_S, IQ2_S | 21, 22 | ...") are expanded. */
function specTable(): { types: SpecType[]; removed: number[] } {
  const types: SpecType[] = [];
  const removed: number[] = [];
  const ids = (cell: string) =>
    cell.includes('–')
      ? (() => {
          const [a, b] = cell.split('–').map(Number);
          return Array.from({ length: b - a + 1 }, (_, i) => a + i);
        })()
      : cell.split(',').map((x) => Number(x.trim()));
  for (const line of read('spec/ggml-type-table.md').split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 7 || !/^[\d–, ]+$/.test(cells[2])) continue;
    const [, names, idCell, block, bytes, , vecDot] = cells;
    if (names.startsWith('(')) {
      removed.push(...ids(idCell));
      continue;
    }
    const nameList = names.split(',').map((n) => n.trim().toLowerCase().replace(/_k$/, '_K'));
    const idList = ids(idCell);
    const sizes = bytes.split(',').map((b) => Number(b.replace(/\*/g, '').trim()));
    expect(idList.length, line).toBe(nameList.length);
    nameList.forEach((name, i) => {
      const vd = /^[A-Z]/.test(vecDot) ? vecDot.split(' ')[0].toLowerCase().replace(/_k$/, '_K') : undefined;
      types.push({
        name,
        id: idList[i],
        blockSize: Number(block),
        bytesPerBlock: sizes[sizes.length === 1 ? 0 : i],
        vecDot: vd,
      });
    });
  }
  return { types, removed };
}

describe('the dtype table', () => {
  const spec = specTable();

  it('reads the whole spec table (a parse that finds too little fails here)', () => {
    expect(spec.types.length).toBe(35);
    expect(spec.removed.sort((a, b) => a - b)).toEqual([4, 5, 31, 32, 33, 36, 37, 38]);
  });

  it('has every type of the spec with its ggml id, block size and bytes per block', () => {
    for (const t of spec.types) {
      const row = dtypes[t.name as keyof typeof dtypes];
      expect(row, t.name).toBeDefined();
      expect([row.ggmlType, row.blockSize, row.bytesPerBlock], t.name).toEqual([t.id, t.blockSize, t.bytesPerBlock]);
      expect(dtypeFromGgmlType(t.id)).toBe(row);
    }
  });

  it("has the spec's vec_dot type for every quantized weight type", () => {
    for (const t of spec.types) {
      if (t.vecDot === undefined || t.blockSize === 1) continue;
      expect(dtypes[t.name as keyof typeof dtypes].vecDotType, t.name).toBe(t.vecDot);
    }
  });

  it('has no ggml id the spec lacks, and none of the removed ones', () => {
    const specIds = new Set(spec.types.map((t) => t.id));
    for (const row of Object.values(dtypes)) {
      if (row.ggmlType >= 0) expect(specIds.has(row.ggmlType), row.name).toBe(true);
    }
    for (const id of spec.removed) expect(dtypeFromGgmlType(id)).toBeUndefined();
  });

  it('agrees with the sizes ggml reported when it wrote the golden sets', () => {
    const real = JSON.parse(read('golden/ggml-real/manifest.json')) as {
      // The types ggml would not quantize without an imatrix have no sizes there.
      types: Record<string, { ggml_type: number; block_size?: number; type_size?: number }>;
    };
    const synth = JSON.parse(read('golden/ggml-synthetic/manifest.json')) as {
      types: { type: string; id: number; blockSize: number; typeSize: number; vecDotType: string }[];
    };
    const seen: [number, number, number][] = [
      ...Object.values(real.types)
        .filter((t) => t.block_size !== undefined && t.type_size !== undefined)
        .map((t) => [t.ggml_type, t.block_size, t.type_size] as [number, number, number]),
      ...synth.types.map((t) => [t.id, t.blockSize, t.typeSize] as [number, number, number]),
    ];
    expect(seen.length).toBeGreaterThan(30);
    for (const [id, block, size] of seen) {
      const row = dtypeFromGgmlType(id);
      expect(row, `ggml type ${id}`).toBeDefined();
      expect([row?.blockSize, row?.bytesPerBlock], `ggml type ${id} (${row?.name})`).toEqual([block, size]);
    }
  });
});
