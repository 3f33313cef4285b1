// What docs:gen draws and measures: block diagrams that match the dtype table, and error figures that equal the
// ones computed from ggml's own dequantized output.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { blockDiagram, q4_0Layout, q4_KLayout } from '../../docs/scripts/block-diagrams.js';
import { measureBundle } from '../../docs/scripts/bundle-size.js';
import { measureFormatErrors } from '../../docs/scripts/format-errors.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const f32 = (p: string) => {
  const b = readFileSync(join(root, 'fixtures/golden/ggml-real', p));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

describe('docs generators', () => {
  it('draws the Q4_0 and Q4_K blocks and refuses a layout that does not add up', () => {
    expect(blockDiagram(q4_0Layout)).toContain('bytes 2–17');
    expect(blockDiagram(q4_KLayout)).toContain('bytes 16–143');
    const wrong = { ...q4_0Layout, fields: [{ ...q4_0Layout.fields[0] }, { ...q4_0Layout.fields[1], bytes: 15 }] };
    expect(() => blockDiagram(wrong)).toThrow("the diagram's fields hold 17 bytes, a block has 18");
  });

  it("measures each format's error exactly as ggml's own dequantized values give it", () => {
    const m = measureFormatErrors(root);
    const x = f32('stories260K-token_embd.f32');
    expect(m.values).toBe(x.length);
    expect(m.rows.every((r) => r.sameBytesAsGgml === true)).toBe(true);
    for (const r of m.rows) {
      const y = f32(`emb.${r.format.toUpperCase()}.deq.f32`);
      let se = 0;
      let max = 0;
      for (let i = 0; i < x.length; i++) {
        const e = Math.abs(x[i] - y[i]);
        se += e * e;
        max = Math.max(max, e);
      }
      expect(r.rmse, r.format).toBe(Math.sqrt(se / x.length));
      expect(r.maxAbsError, r.format).toBe(max);
    }
  });

  it('bundles the Q4_0 codec alone far smaller than every format together', async () => {
    const one = await measureBundle(root, "export { q4_0 } from '@nibble/formats/q4_0';");
    const all = await measureBundle(root, "export * from '@nibble/formats';");
    expect(one.minifiedBytes).toBeGreaterThan(1000);
    expect(one.minifiedBytes * 2).toBeLessThan(all.minifiedBytes);
    expect(one.gzipBytes).toBeLessThan(one.minifiedBytes);
  });
});
