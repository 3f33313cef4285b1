// `nibble formats`: the table agrees with ggml's type table (spec §2) and says which types need an imatrix.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { run } from './formats.js';

afterEach(() => vi.restoreAllMocks());

async function output(args: string[]): Promise<string> {
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((s: string) => lines.push(s));
  expect(await run(args)).toBe(0);
  return lines.join('\n');
}

describe('nibble formats', () => {
  it('--json lists ggml ids, sizes and bits per weight of spec §2, and the imatrix column', async () => {
    const rows = JSON.parse(await output(['--json'])) as {
      name: string;
      ggmlType: number | null;
      blockSize: number;
      bytesPerBlock: number;
      bitsPerWeight: number;
      imatrix: string | null;
      codec: boolean;
    }[];
    const by = new Map(rows.map((r) => [r.name, r]));
    // [ggml id, block, bytes, bpw] from ggml's type table.
    const ggml: Record<string, [number, number, number, number]> = {
      q2_K: [10, 256, 84, 2.625],
      q3_K: [11, 256, 110, 3.4375],
      q4_K: [12, 256, 144, 4.5],
      q5_K: [13, 256, 176, 5.5],
      q6_K: [14, 256, 210, 6.5625],
      q8_K: [15, 256, 292, 9.125],
      iq4_nl: [20, 32, 18, 4.5],
      iq4_xs: [23, 256, 136, 4.25],
      tq1_0: [34, 256, 54, 1.6875],
      tq2_0: [35, 256, 66, 2.0625],
      mxfp4: [39, 32, 17, 4.25],
    };
    for (const [name, [id, block, bytes, bpw]] of Object.entries(ggml)) {
      const r = by.get(name);
      expect([r?.ggmlType, r?.blockSize, r?.bytesPerBlock, r?.bitsPerWeight], name).toEqual([id, block, bytes, bpw]);
      expect(r?.codec, name).toBe(true);
    }
    for (const name of ['iq2_xxs', 'iq2_xs', 'iq1_s']) expect(by.get(name)?.imatrix, name).toBe('required');
    expect(by.get('q4_K')?.imatrix).toBe('used');
    expect(by.get('q8_0')?.imatrix).toBe('ignored');
    expect(by.get('nvfp4')?.codec).toBe(false);
  });

  it('prints a text table with a header and one line per format', async () => {
    const text = await output([]);
    expect(text.split('\n')[0]).toMatch(/^name\s+ggml id\s+block\s+bytes\s+bpw\s+imatrix\s+codec\s+description$/);
    expect(text).toMatch(/\niq4_xs\s+23\s+256\s+136\s+4\.25\s+used\s+yes\s+4-bit non-linear grid/);
  });
});
