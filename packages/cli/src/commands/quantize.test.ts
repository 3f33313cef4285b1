// nibble quantize / imatrix / sizes / perplexity --kl-base through main(): llama.cpp's bytes, one-line errors that
// name flags, nothing left behind on failure.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { blobSink, GgufWriter, parseGguf } from '@nibble/gguf';
import { readImatrix } from '@nibble/quantize';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../main.js';

const fixture = (rel: string) => fileURLToPath(new URL(`../../../../fixtures/${rel}`, import.meta.url));
const stories = fixture('models/stories260K.gguf');
const manifest = JSON.parse(readFileSync(fixture('quantize/manifest.json'), 'utf8')) as {
  runs: { model: string; label: string; sha256?: string }[];
};
const llamaSha = (label: string) => manifest.runs.find((r) => r.model === 'stories260K' && r.label === label)?.sha256;
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const code = await main(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    stderr.mockRestore();
  }
}
afterEach(() => vi.restoreAllMocks());

const tmp = () => mkdtempSync(join(tmpdir(), 'nibble-quantize-cli-'));
const leftovers = (d: string) => readdirSync(d).filter((f) => f.endsWith('.tmp'));

describe('nibble quantize', () => {
  it("writes llama.cpp's Q4_K_M file, byte for byte, and a table of sizes per type", async () => {
    const d = tmp();
    const r = await cli('quantize', stories, join(d, 'q.gguf'), 'Q4_K_M', '--threads', '2');
    expect(r.code).toBe(0);
    expect(sha(join(d, 'q.gguf'))).toBe(llamaSha('Q4_K_M'));
    expect(r.out).toMatch(/wrote .* as Q4_K_M/);
    expect(r.out).toMatch(/q5_0\s+29/); // stories260K's rows of 64: Q4_K falls back to Q5_0
  });
  it('--json reports every tensor without progress', async () => {
    const d = tmp();
    const r = await cli('quantize', stories, join(d, 'q.gguf'), 'Q8_0', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { tensors: { to: string }[]; bytesOut: number };
    expect(j.tensors.length).toBe(48);
    expect(sha(join(d, 'q.gguf'))).toBe(llamaSha('Q8_0'));
  });
  it('an unknown preset, or a refused requantize: one line, the flag named, no temporary file', async () => {
    const d = tmp();
    const a = await cli('quantize', stories, join(d, 'a.gguf'), 'Q4_Z');
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/^nibble quantize: unknown preset 'Q4_Z'/);
    const b = await cli('quantize', fixture('models/stories260K-Q8_0.gguf'), join(d, 'b.gguf'), 'Q4_K_M');
    expect(b.code).toBe(1);
    expect(b.err).toContain('--allow-requantize');
    expect(b.err).not.toContain('allowRequantize');
    expect(b.err.split('\n')).toHaveLength(1);
    expect(readdirSync(d)).toEqual([]);
    const c = await cli(
      'quantize',
      fixture('models/stories260K-Q8_0.gguf'),
      join(d, 'c.gguf'),
      'Q4_K_M',
      '--allow-requantize',
    );
    expect(c.code).toBe(0);
    expect(leftovers(d)).toEqual([]);
  });
  it('unknown flags and bad numbers are usage errors that suggest the right flag', async () => {
    const r = await cli('quantize', stories, '/tmp/x.gguf', 'Q4_0', '--thread', '2');
    expect(r.code).toBe(2);
    expect(r.err).toContain('did you mean --threads?');
    for (const t of ['0', '-1', '1.5', 'abc', '999']) {
      const e = await cli('quantize', stories, '/tmp/x.gguf', 'Q4_0', `--threads=${t}`);
      expect(e.err, t).toMatch(/--threads must be an integer in 1\.\.256/);
    }
    expect((await cli('quantize', stories, '/tmp/x.gguf')).err).toMatch(/PRESET/);
    expect((await cli('quantize', stories, '/tmp/x.gguf', 'Q4_0', '--tensor-type', 'attn_v')).err).toMatch(
      /PATTERN=TYPE/,
    );
  });
  it('--dry-run prints the sizes and writes nothing', async () => {
    const d = tmp();
    const r = await cli('quantize', stories, 'Q4_K_M', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/dry run, nothing written/);
    // Rows of 256, so Q2_K_S keeps Q2_K tensors, which need an imatrix to be written but not to be sized.
    const l8 = fixture('quantize/models/l8-gqa8-untied-f16.gguf');
    const j = JSON.parse((await cli('quantize', l8, join(d, 'never.gguf'), 'Q2_K_S', '--dry-run', '--json')).out);
    expect(j.warnings.join(' ')).toMatch(/importance matrix/);
    expect(existsSync(join(d, 'never.gguf'))).toBe(false);
  });
  it('says when there is nothing to quantize', async () => {
    const d = tmp();
    const sink = blobSink();
    const w = new GgufWriter(sink);
    w.metadata.setString('general.architecture', 'llama');
    w.addTensor({ name: 'output_norm.weight', dtype: 'f32', shape: [64] });
    await w.writeTensor('output_norm.weight', new Float32Array(64));
    await w.finish();
    await writeFile(join(d, 'norms.gguf'), new Uint8Array(await sink.blob().arrayBuffer()));
    const r = await cli('quantize', join(d, 'norms.gguf'), join(d, 'out.gguf'), 'Q4_0');
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/nothing to quantize/);
  });
});

describe('nibble imatrix, then quantize --imatrix', () => {
  it('writes a GGUF imatrix that quantize reads and records', async () => {
    const d = tmp();
    const im = join(d, 'im.gguf');
    const r = await cli(
      'imatrix',
      stories,
      fixture('text/tinyshakespeare.txt'),
      '-o',
      im,
      '--ctx',
      '64',
      '--chunks',
      '4',
    );
    expect(r.code).toBe(0);
    const m = readImatrix(new Uint8Array(readFileSync(im)));
    expect(m.size).toBe(35);
    expect(m.chunkCount).toBe(4);
    expect(m.datasets).toEqual(['tinyshakespeare.txt']);
    const q = await cli('quantize', stories, join(d, 'q.gguf'), 'IQ4_NL', '--imatrix', im);
    expect(q.code).toBe(0);
    const out = parseGguf(new Uint8Array(readFileSync(join(d, 'q.gguf'))));
    expect(out.metadata.get('quantize.imatrix.file')).toBe(im);
    expect(out.metadata.get('quantize.imatrix.entries_count')).toBe(35);
    expect(out.metadata.get('quantize.imatrix.chunks_count')).toBe(4);
  });
  it('refuses a text shorter than two chunks', async () => {
    const d = tmp();
    const r = await cli('imatrix', stories, fixture('text/cs336-address.txt'), '-o', join(d, 'x.gguf'), '--ctx', '512');
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/needs at least 1024/);
    expect(readdirSync(d)).toEqual([]);
  });
});

describe('nibble perplexity --kl-base', () => {
  it('Q4_0 against F32: a KLD, the top-token agreement and both perplexities', async () => {
    const r = await cli(
      'perplexity',
      fixture('models/stories260K-Q4_0.gguf'),
      fixture('text/cs336-tinystories_sample.txt'),
      '--kl-base',
      stories,
      '--ctx',
      '128',
      '--json',
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as {
      meanKld: number;
      p99Kld: number;
      topTokenAgreement: number;
      deltaPerplexity: number;
      count: number;
    };
    expect(j.count).toBe(1804);
    expect(j.meanKld).toBeGreaterThan(0);
    expect(j.p99Kld).toBeGreaterThan(j.meanKld);
    expect(j.topTokenAgreement).toBeGreaterThan(0.5);
    expect(j.deltaPerplexity).toBeGreaterThan(0);
    const t = await cli(
      'perplexity',
      fixture('models/stories260K-Q4_0.gguf'),
      fixture('text/cs336-tinystories_sample.txt'),
      '--kl-base',
      stories,
      '--ctx',
      '128',
    );
    expect(t.out).toMatch(/Mean KLD/);
    expect(t.out).toMatch(/99\.0% KLD/);
    expect(t.out).toMatch(/Same top token/);
  });
});

describe('nibble sizes', () => {
  it('prints every preset beside the published figures', async () => {
    const r = await cli('sizes', '--model', 'llama-3.1-8b');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Q4_K_M\s+4\.58/);
    expect(r.out).toMatch(/4\.58G \(llama-quantize\)/);
    expect(r.out).toMatch(/Why llama\.cpp's figures differ/);
    expect((await cli('sizes', '--model', 'llama-9b')).code).not.toBe(0);
  });
});
