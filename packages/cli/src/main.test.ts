// The CLI end to end through main(): output on good input, one-line errors and exit codes on bad input.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseGguf } from '@nibble/gguf';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from './main.js';

const fixture = (rel: string) => fileURLToPath(new URL(`../../../fixtures/${rel}`, import.meta.url));

/** Runs the CLI and returns its exit code and what it printed. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  const code = await main(argv);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

afterEach(() => vi.restoreAllMocks());

describe('nibble', () => {
  it('help lists every command', async () => {
    const r = await cli('help');
    expect(r.code).toBe(0);
    for (const c of ['demo', 'formats', 'inspect', 'quantize', 'tokenize', 'run', 'perplexity', 'bench']) {
      expect(r.out).toContain(c);
    }
  });

  it('an unknown command exits 2', async () => {
    expect((await cli('frobnicate')).code).toBe(2);
  });

  it('inspect --json describes the real model', async () => {
    const r = await cli('inspect', fixture('models/stories260K-Q4_0.gguf'), '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(JSON.stringify(j)).toContain('blk.4.ffn_up.weight');
    expect(JSON.stringify(j)).toContain('q4_0');
  });

  it('inspect of a damaged file prints the GgufError in one line and exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nibble-cli-'));
    const bad = join(dir, 'bad.gguf');
    writeFileSync(bad, readFileSync(fixture('models/stories260K.gguf')).subarray(0, 1000));
    const r = await cli('inspect', bad);
    expect(r.code).toBe(1);
    expect(r.err.split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/^nibble inspect: /);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('tokenize --inp reproduces llama.cpp .out lines', async () => {
    const r = await cli(
      'tokenize',
      fixture('vocab/ggml-vocab-gpt-2.gguf'),
      '--inp',
      fixture('vocab/ggml-vocab-gpt-2.gguf.inp'),
    );
    expect(r.code).toBe(0);
    const expected = readFileSync(fixture('vocab/ggml-vocab-gpt-2.gguf.out'), 'utf8').trimEnd();
    expect(r.out.trimEnd()).toBe(expected);
  });

  it('quantize refuses to overwrite without --force, then writes through a temporary file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nibble-cli-'));
    const out = join(dir, 'out.gguf');
    writeFileSync(out, 'keep me');
    const refused = await cli('quantize', fixture('models/stories260K.gguf'), out, '--type', 'q8_0');
    expect(refused.code).toBe(1);
    expect(readFileSync(out, 'utf8')).toBe('keep me');
    const done = await cli('quantize', fixture('models/stories260K.gguf'), out, '--type', 'q8_0', '--force');
    expect(done.code).toBe(0);
    // Same tensors and bytes as llama.cpp's Q8_0 file (the tensor order differs, so compare by name).
    const ours = parseGguf(new Uint8Array(readFileSync(out)));
    const theirs = parseGguf(new Uint8Array(readFileSync(fixture('models/stories260K-Q8_0.gguf'))));
    expect(ours.tensors.length).toBe(theirs.tensors.length);
    for (const t of ours.tensors) {
      expect(Buffer.compare(ours.readTensorSync(t.name).data, theirs.readTensorSync(t.name).data), t.name).toBe(0);
    }
  });

  it('demo prints the size and error table for every format', async () => {
    const r = await cli('demo', '--json', '--table-only');
    expect(r.code).toBe(0);
    const { rows } = JSON.parse(r.out) as { rows: { format: string; bitsPerWeight: number; rmse: number }[] };
    const byName = new Map(rows.map((x) => [x.format, x]));
    for (const f of ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1']) expect(byName.has(f)).toBe(true);
    // Fewer bits, more error: the table must show the trade-off, not noise.
    expect(byName.get('Q8_0')!.rmse).toBeLessThan(byName.get('Q5_0')!.rmse);
    expect(byName.get('Q5_0')!.rmse).toBeLessThan(byName.get('Q4_0')!.rmse);
    expect(byName.get('F16')!.rmse).toBeLessThan(byName.get('Q8_0')!.rmse);
  });

  it('run --json from BOS gives llama2.c greedy ids', async () => {
    const goldIds: number[] = JSON.parse(
      readFileSync(fixture('reference/stories260K-greedy-llama2c.json'), 'utf8'),
    ).tokens;
    const r = await cli(
      'run',
      fixture('models/stories260K.gguf'),
      '--prompt',
      '',
      '--max-tokens',
      '24',
      '--temperature',
      '0',
      '--json',
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { ids: number[]; generatedTokens: number; backend: string };
    expect(j.backend).toBe('js');
    expect(j.ids.slice(-24)).toEqual(goldIds.slice(0, 24));
  });

  it("perplexity --json equals llama2.c's on the TinyStories sample", async () => {
    const r = await cli(
      'perplexity',
      fixture('models/stories260K.gguf'),
      fixture('text/cs336-tinystories_sample.txt'),
      '--json',
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { perplexity: number; predictions: number };
    expect(j.predictions).toBe(1804);
    expect(Math.abs(j.perplexity - 3.548202)).toBeLessThan(0.001);
  });
});
