// The CLI end to end through main(): output on good input, one-line errors and exit codes on bad input.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseGguf } from '@nibble/gguf';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from './main.js';
import { specs } from './specs.js';
import { Scratch } from './test/bad-models.js';

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

  it('an unknown command exits 2, with a suggestion when one is close', async () => {
    expect((await cli('frobnicate')).code).toBe(2);
    const r = await cli('perplexty');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/did you mean 'perplexity'\?/);
  });

  it('help documents the exit codes', async () => {
    const r = await cli('help');
    expect(r.out).toMatch(/exit status:\n\s+0\s+done\n\s+1\s+runtime failure.*\n\s+2\s+usage error/);
  });

  it('every command answers --help and -h with its usage and exit 0', async () => {
    for (const spec of specs) {
      for (const h of ['--help', '-h']) {
        const r = await cli(spec.name, h);
        expect(r.code, `${spec.name} ${h}`).toBe(0);
        expect(r.out.startsWith(`usage: nibble ${spec.name}`)).toBe(true);
      }
    }
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
    expect(refused.code).toBe(2);
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

  it('run --json from BOS gives llama2.c greedy ids, on the backend auto picks (wasm in Node)', async () => {
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
    const j = JSON.parse(r.out) as { ids: number[]; generatedTokens: number; backend: string; backendInfo: string };
    expect(j.backend).toBe('wasm');
    // The kernel build this engine validates: plain SIMD on Node 20, relaxed SIMD on Node 22+ and in Chromium.
    expect(j.backendInfo).toMatch(/^wasm \((simd128|relaxed-simd)\)$/);
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

describe('nibble on bad command lines: one line, exit 2, before any work', () => {
  const model = fixture('models/stories260K.gguf');
  const text = fixture('text/cs336-tinystories_sample.txt');
  const template = fixture('templates/google-gemma-2-2b-it.jinja');
  const cases: [string[], RegExp][] = [
    [['run', model, '--max-token', '5', '--temp', '0'], /unknown flag --max-token; did you mean --max-tokens\?/],
    [['perplexity', model, text, '--stride', '0'], /--stride must be an integer >= 1, got '0'/],
    [['perplexity', model, text, '--stride', '-1'], /--stride must be an integer >= 1, got '-1'/],
    [['perplexity', model, text, '--stride', 'abc'], /--stride must be an integer >= 1, got 'abc'/],
    [['perplexity', model, text, '--ctx', '64', '--stride', '65'], /--stride must be an integer in 1\.\.64/],
    [
      ['run', model, '--ctx', '100000000'],
      /--ctx 100000000 is above the model's trained context of 2048 tokens \(llama\.context_length\)/,
    ],
    [['run', model, '--ctx', '2049'], /--ctx 2049 is above the model's trained context of 2048/],
    [['run', model, '--ctx', '1'], /--ctx must be an integer >= 2, got '1'/],
    [['run', model, '--threads', '0'], /--threads must be an integer in 1\.\./],
    [['run', model, '--threads', '-1'], /--threads must be an integer in 1\.\./],
    [['run', model, '--threads', '999'], /--threads must be an integer in 1\.\./],
    [['run', model, '--threads', '1.5'], /--threads must be an integer in 1\.\./],
    [['run', model, '--backend', 'nope'], /--backend: 'nope' is not available/],
    [['demo', '--model'], /--model needs a value/],
    [['perplexity', model, text, '--separator', ''], /--separator must not be empty/],
    [['run', model, '--min-p', '1'], /--min-p must be a number >= 0 and < 1, got '1'/],
    [['chat', model, '--max-token', '5'], /unknown flag --max-token; did you mean --max-tokens\?/],
    [['chat', model, '--prompt', 'x', '--top-p', '0'], /--top-p must be a number > 0 and <= 1, got '0'/],
    [['chat', model, '--prompt', 'x', '--ctx', '2049'], /--ctx 2049 is above the model's trained context of 2048/],
    [['chat', model, '--threads', '0'], /--threads must be an integer in 1\.\./],
    [['chat', model, '--context-full', 'sometimes'], /--context-full must be one of error, drop-oldest/],
    [['chat', model, '--json'], /--json answers one turn/],
    [['chat', model, '--prompt', 'x', '--messages', 'y.json'], /give --prompt or --messages, not both/],
    [['chat', model, '--backend', 'nope'], /--backend: 'nope' is not available/],
    [['chat-template', template, '--messags', 'x'], /unknown flag --messags; did you mean --messages\?/],
    [['chat-template', template], /--messages CONVERSATION\.json is required/],
    [['chat-template', template, '--messages', 'x', '--bos'], /unknown flag --bos; did you mean --bos-token\?/],
    [['chat-template'], /expected MODEL\.gguf\|TEMPLATE\.jinja, got 0/],
    [['formats', 'extra'], /unexpected argument 'extra'/],
    [['inspect'], /expected FILE\|URL/],
  ];
  for (const [argv, message] of cases) {
    it(argv.slice(2).join(' ') || argv.join(' '), async () => {
      const r = await cli(...argv);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(message);
      expect(r.err).toMatch(new RegExp(`^nibble ${argv[0]}: `));
      expect(r.err).not.toMatch(/\n\s+at /);
      expect(r.out).toBe('');
    });
  }
});

describe('nibble on bad files: a typed error in one line, exit 1, nothing printed as a result', () => {
  const scratch = new Scratch();
  const text = fixture('text/cs336-tinystories_sample.txt');
  let hugeBlocks: string;
  let nanWeight: string;
  let badBos: string;
  let vocabOnly: string;
  beforeAll(async () => {
    hugeBlocks = await scratch.stories('blocks.gguf', { metadata: (m) => m.setU32('llama.block_count', 0xffffffff) });
    // One NaN in output.weight (f32 [512, 64]): the logit of token 7 is NaN at every position.
    nanWeight = await scratch.stories('nan.gguf', {
      tensorBytes: (name, b) => {
        if (name === 'output.weight') new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4)[7 * 64] = Number.NaN;
      },
    });
    badBos = await scratch.stories('bos.gguf', { metadata: (m) => m.setU32('tokenizer.ggml.bos_token_id', 600) });
    vocabOnly = await scratch.stories('vocab.gguf', { keepTensor: () => false });
  });
  afterAll(() => scratch.dispose());

  const failed = (r: { code: number; out: string; err: string }, command: string, message: RegExp) => {
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^nibble ${command}: `));
    expect(r.err).toMatch(message);
    expect(r.err.split('\n')).toHaveLength(1);
    expect(r.out).not.toMatch(/NaN/);
  };

  it('a block_count of 0xFFFFFFFF is refused from the header, before planning 9 tensors per block', async () => {
    failed(await cli('run', hugeBlocks, '-n', '1'), 'run', /found 4294967295 \(key 'llama\.block_count'\)/);
  });

  it('a NaN weight is a non-finite-logits error, not ids [0, 0, ...] or a NaN perplexity', async () => {
    failed(
      await cli('run', nanWeight, '-n', '5', '--temperature', '0', '--json'),
      'run',
      /non-finite logits at position 0/,
    );
    failed(await cli('perplexity', nanWeight, text, '--json'), 'perplexity', /non-finite logits at position 0/);
  });

  it('perplexity of an empty text is an error, not NaN over 0 predictions', async () => {
    const empty = scratch.write('empty.txt', '');
    failed(await cli('perplexity', fixture('models/stories260K.gguf'), empty), 'perplexity', /nothing to score/);
  });

  it('demo --model of a vocabulary-only file says so instead of printing NaNs', async () => {
    failed(await cli('demo', '--model', vocabOnly, '--table-only'), 'demo', /no 2-D weight tensors.*vocabulary-only/);
  });

  it('a BOS id outside the vocabulary is an error, not dropped', async () => {
    failed(
      await cli('run', badBos, '-n', '1'),
      'run',
      /'tokenizer\.ggml\.bos_token_id' is 600, outside the vocabulary/,
    );
  });

  it('a missing input file exits 1 with the system error', async () => {
    failed(
      await cli('perplexity', fixture('models/stories260K.gguf'), `${scratch.dir}/nope.txt`),
      'perplexity',
      /ENOENT/,
    );
  });
});
