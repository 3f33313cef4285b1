// What docs:gen draws and measures: block diagrams that match the dtype table, and error figures that equal the
// ones computed from ggml's own dequantized output.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { blockDiagram, q4_0Layout, q4_KLayout } from '../../docs/scripts/block-diagrams.js';
import { measureBundle } from '../../docs/scripts/bundle-size.js';
import { measureFormatErrors } from '../../docs/scripts/format-errors.js';
import { qualitySection, runNibbleSizes, sizesSection } from '../../docs/scripts/size-quality.js';

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

  it('tabulates `nibble sizes`: LLaMA 7B at Q4_0 and F16 as the arithmetic of its tensor table gives them', () => {
    const models = runNibbleSizes(root);
    const md = sizesSection(models);
    const head = md
      .split('\n')[0]
      .split('|')
      .map((c) => c.trim());
    for (const m of ['LLaMA 7B', 'LLaMA 13B', 'LLaMA 30B', 'LLaMA 65B', 'Llama-3.1 8B']) expect(head).toContain(m);
    const cell = (preset: string, model: string) => {
      const row = md.split('\n').find((l) => l.startsWith(`| ${preset} |`)) ?? '';
      return row.split('|').map((c) => c.trim())[head.indexOf(model)];
    };
    // LLaMA 7B (config.json): 32 layers of 4 attention matrices 4096x4096 and 3 feed-forward 4096x11008, embedding
    // and output 32000x4096, 65 norms of 4096. Q4_0: 18 bytes per 32 weights, the output Q6_K (210 bytes per 256).
    const layers = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008);
    const embd = 32000 * 4096;
    const norms = 65 * 4096 * 4;
    expect(cell('Q4_0', 'LLaMA 7B')).toBe(
      (((layers + embd) * 18) / 32 / 1e9 + (embd * 210) / 256 / 1e9 + norms / 1e9).toFixed(2),
    );
    expect(cell('F16', 'LLaMA 7B')).toBe((((layers + 2 * embd) * 2 + norms) / 1e9).toFixed(2));
    expect(md).toContain('| *4-bit, published* | | *3.9* | *7.8* | *19.5* | *38.5* |');
  });

  it('charts each distinct stories260K file once and names the presets that share its tensors', () => {
    const row = (preset: string, fileBytes: number, perplexity: number, meanKld: number, sameTensorsAs?: string) => ({
      preset,
      fileBytes,
      bitsPerWeight: 8,
      perplexity,
      meanKld,
      p99Kld: meanKld * 5,
      topTokenAgreement: 0.9,
      sameTensorsAs,
    });
    const file = {
      schema: 'nibble-bench/1' as const,
      topic: 'quality',
      title: 't',
      date: '2026-12-02T00:00:00.000Z',
      quick: false,
      machine: { cpu: 'cpu', cores: 2, memoryGiB: 8, os: 'linux', node: 'v20' },
      versions: {},
      method: 'method',
      cases: [],
      details: {
        rows: [
          row('F32', 1000, 3.5, 0),
          row('Q8_0', 400, 3.6, 0.001),
          row('Q6_K', 400, 3.6, 0.001, 'Q8_0'),
          row('Q4_0', 300, 3.9, 0.07),
        ],
      },
    };
    const md = qualitySection(file);
    // Two charts, each with a bar for Q8_0 and Q4_0 only.
    expect(md.match(/<svg /g)).toHaveLength(2);
    expect(md.match(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="11"/g)).toHaveLength(4);
    expect(md).toContain('Q8_0 (= Q6_K)');
    expect(md).toContain('| Q6_K (= Q8_0) |');
    expect(md).toContain('+11.43 %'); // Q4_0: 3.9 / 3.5 - 1
  });
});
