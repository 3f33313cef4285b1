// quantizeModel's behaviour around the bytes: sinks and sources, threads, progress, abort, and the refusals and
// failures (typed errors, nothing left behind).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { blobSink, GgufWriter, openGguf, parseGguf } from '@nibble/gguf';
import { afterAll, describe, expect, it } from 'vitest';
import { QuantizeError } from './errors.js';
import { atomicFileSink, nodeWorkerPool, quantizeFile } from './node.js';
import { planQuantization, quantizeModel, quantizeToBlob } from './quantize.js';

const fixtures = fileURLToPath(new URL('../../../fixtures/', import.meta.url));
const stories = `${fixtures}models/stories260K.gguf`;
const storiesBytes = new Uint8Array(readFileSync(stories));
const manifest = JSON.parse(readFileSync(`${fixtures}quantize/manifest.json`, 'utf8')) as {
  runs: { model: string; label: string; sha256?: string }[];
};
const llamaSha = (model: string, label: string) =>
  manifest.runs.find((r) => r.model === model && r.label === label)?.sha256;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const dir = mkdtempSync(join(tmpdir(), 'nibble-quantize-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const leftovers = (d: string) => readdirSync(d).filter((f) => f.endsWith('.tmp'));

/** A small llama-like GGUF from f32 tensors (test input; only its values matter). */
async function makeModel(tensors: { name: string; shape: number[]; data: Float32Array }[]): Promise<Uint8Array> {
  const sink = blobSink();
  const w = new GgufWriter(sink);
  w.metadata.setString('general.architecture', 'llama');
  w.metadata.setU32('llama.block_count', 1);
  w.metadata.setU32('llama.attention.head_count', 4);
  for (const t of tensors) w.addTensor({ name: t.name, dtype: 'f32', shape: t.shape });
  for (const t of tensors) await w.writeTensor(t.name, t.data);
  await w.finish();
  return new Uint8Array(await sink.blob().arrayBuffer());
}

const ramp = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7) * 0.1);

describe('sources and sinks', () => {
  it('reads a Blob and writes a WritableStream: the same bytes as llama.cpp', async () => {
    const chunks: Uint8Array[] = [];
    const stream = new WritableStream<Uint8Array>({ write: (c) => void chunks.push(c.slice()) });
    await quantizeModel(new Blob([storiesBytes]), stream, { preset: 'Q4_K_M' });
    const out = Buffer.concat(chunks);
    expect(sha(out)).toBe(llamaSha('stories260K', 'Q4_K_M'));
  });
  it('quantizeToBlob gives a Blob of the same bytes', async () => {
    const { blob, result } = await quantizeToBlob(storiesBytes, { preset: 'Q8_0' });
    expect(sha(new Uint8Array(await blob.arrayBuffer()))).toBe(llamaSha('stories260K', 'Q8_0'));
    expect(result.fileBytes).toBe(blob.size);
  });
  it('quantizeFile writes the path atomically, llama.cpp bytes, and refuses to overwrite', async () => {
    const out = join(dir, 'q4_0.gguf');
    await quantizeFile(stories, out, { preset: 'Q4_0' });
    expect(sha(new Uint8Array(readFileSync(out)))).toBe(llamaSha('stories260K', 'Q4_0'));
    const err = await quantizeFile(stories, out, { preset: 'Q4_0' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuantizeError);
    expect((err as QuantizeError).cliMessage()).toContain('--force');
    await quantizeFile(stories, out, { preset: 'Q8_0', overwrite: true });
    expect(sha(new Uint8Array(readFileSync(out)))).toBe(llamaSha('stories260K', 'Q8_0'));
    expect(leftovers(dir)).toEqual([]);
  });
});

describe('threads', () => {
  it('a worker pool writes the same bytes as one thread', async () => {
    const model = `${fixtures}quantize/models/l8-gqa8-untied-f16.gguf`;
    const bytes = new Uint8Array(readFileSync(model));
    const pool = await nodeWorkerPool(2);
    try {
      for (const preset of ['Q4_K_M', 'IQ4_NL', 'Q6_K']) {
        const sink = blobSink();
        const r = await quantizeModel(parseGguf(bytes), sink, { preset, pool });
        expect(r.threads).toBe(2);
        expect(sha(new Uint8Array(await sink.blob().arrayBuffer())), preset).toBe(
          llamaSha('l8-gqa8-untied-f16', preset),
        );
      }
    } finally {
      await pool.close();
    }
  });
  it('quantizeFile with threads makes and closes its own pool', async () => {
    const out = join(dir, 'q5.gguf');
    const r = await quantizeFile(stories, out, { preset: 'Q5_K_M', threads: 2 });
    expect(r.threads).toBe(2);
    expect(sha(new Uint8Array(readFileSync(out)))).toBe(llamaSha('stories260K', 'Q5_K_M'));
  });
  it('refuses threads it cannot run', async () => {
    for (const threads of [0, -1, 1.5, 999]) {
      const err = await quantizeModel(storiesBytes, blobSink(), { preset: 'Q4_0', threads }).catch((e: unknown) => e);
      expect((err as QuantizeError).code, String(threads)).toBe('E_QUANT_OPTION');
    }
  });
});

describe('progress and abort', () => {
  it('reports every tensor, bytes growing to the total', async () => {
    const seen: number[] = [];
    let last = { bytesDone: 0, bytesTotal: -1, count: 0 };
    await quantizeModel(storiesBytes, blobSink(), {
      preset: 'Q4_0',
      onProgress: (p) => {
        seen.push(p.bytesDone);
        last = p;
      },
    });
    expect(seen.length).toBeGreaterThanOrEqual(last.count);
    expect(seen.every((v, i) => i === 0 || v >= seen[i - 1])).toBe(true);
    expect(last.bytesDone).toBe(last.bytesTotal);
  });
  it('an aborted run removes its temporary file', async () => {
    const out = join(dir, 'aborted.gguf');
    const ac = new AbortController();
    const err = await quantizeFile(stories, out, {
      preset: 'Q4_K_M',
      signal: ac.signal,
      onProgress: (p) => p.index === 3 && ac.abort(new Error('stop')),
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('stop');
    expect(existsSync(out)).toBe(false);
    expect(leftovers(dir)).toEqual([]);
  });
});

describe('refusals leave nothing behind', () => {
  it('an unknown preset: typed error, no temporary file', async () => {
    const out = join(dir, 'unknown.gguf');
    const err = await quantizeFile(stories, out, { preset: 'Q4_Z' }).catch((e: unknown) => e);
    expect((err as QuantizeError).code).toBe('E_QUANT_PRESET');
    expect((err as Error).message).toContain('Q4_K_M');
    expect(existsSync(out)).toBe(false);
    expect(leftovers(dir)).toEqual([]);
  });
  it('a refused requantize names the flag in the CLI message and the option in the API one', async () => {
    const q8 = join(dir, 'for-requant.gguf');
    await quantizeFile(stories, q8, { preset: 'Q8_0' });
    const out = join(dir, 'requant.gguf');
    const err = (await quantizeFile(q8, out, { preset: 'Q4_K_M' }).catch((e: unknown) => e)) as QuantizeError;
    expect(err.code).toBe('E_QUANT_REQUANTIZE');
    expect(err.tensor).toBe('token_embd.weight');
    expect(err.message).toContain('allowRequantize');
    expect(err.cliMessage()).toContain('--allow-requantize');
    expect(err.cliMessage()).not.toContain('allowRequantize');
    expect(existsSync(out)).toBe(false);
    expect(leftovers(dir)).toEqual([]);
  });
  it('a failed rename removes the full temporary file', async () => {
    const target = join(dir, 'is-a-dir.gguf');
    mkdirSync(target);
    writeFileSync(join(target, 'keep'), 'x'); // renaming a file onto a non-empty directory fails
    const err = await quantizeFile(stories, target, { preset: 'Q4_0', overwrite: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(leftovers(dir)).toEqual([]);
    expect(readdirSync(target)).toEqual(['keep']);
  });
  it('atomicFileSink creates nothing before the first write', async () => {
    const sink = atomicFileSink(join(dir, 'never.gguf'));
    await sink.abort?.();
    expect(leftovers(dir)).toEqual([]);
  });
});

describe('bad values', () => {
  for (const [preset, pool] of [
    ['Q4_0', false],
    ['Q4_K_M', false],
    ['F16', false],
    ['Q6_K', true],
  ] as const) {
    it(`a NaN names the tensor, row and column (${preset}${pool ? ', worker pool' : ''})`, async () => {
      // 5000 rows: several jobs, so the row must be counted from the tensor's start, not the job's.
      const w = ramp(256 * 5000);
      w[256 * 4321 + 77] = Number.NaN;
      const bytes = await makeModel([
        { name: 'token_embd.weight', shape: [4, 256], data: ramp(1024) },
        { name: 'blk.0.attn_q.weight', shape: [5000, 256], data: w },
      ]);
      const p = pool ? await nodeWorkerPool(2) : undefined;
      try {
        const err = (await quantizeModel(bytes, blobSink(), { preset, pool: p }).catch(
          (e: unknown) => e,
        )) as QuantizeError;
        expect(err).toBeInstanceOf(QuantizeError);
        expect(err.code).toBe('E_QUANT_VALUE');
        expect(err.tensor).toBe('blk.0.attn_q.weight');
        expect(err.message).toMatch(/blk\.0\.attn_q\.weight: cannot quantize NaN at row 4321, column 77/);
      } finally {
        await p?.close();
      }
    });
  }
  it('says when there is nothing to quantize', async () => {
    const bytes = await makeModel([
      { name: 'output_norm.weight', shape: [256], data: ramp(256) },
      { name: 'blk.0.attn_norm.weight', shape: [256], data: ramp(256) },
    ]);
    const plan = planQuantization(await openGguf(bytes), { preset: 'Q4_0' });
    expect(plan.warnings.join('\n')).toMatch(/nothing to quantize/);
    const r = await quantizeModel(bytes, blobSink(), { preset: 'Q4_0' });
    expect(r.warnings.join('\n')).toMatch(/nothing to quantize/);
  });
  it('refuses an output type whose block does not fit the rows', async () => {
    const err = await quantizeModel(storiesBytes, blobSink(), { preset: 'Q4_0', tokenEmbeddingType: 'q4_K' }).catch(
      (e: unknown) => e,
    );
    expect((err as QuantizeError).code).toBe('E_QUANT_TYPE');
    expect((err as QuantizeError).tensor).toBe('token_embd.weight');
  });
  it('refuses both and neither of preset and type, and activation-only types', async () => {
    for (const o of [{}, { preset: 'Q4_0', type: 'q4_0' }, { type: 'q8_K' }, { type: 'nope' }]) {
      const err = await quantizeModel(storiesBytes, blobSink(), o).catch((e: unknown) => e);
      expect(err, JSON.stringify(o)).toBeInstanceOf(QuantizeError);
    }
  });
  it('type: a preset of that name, or that type everywhere', async () => {
    const a = await quantizeToBlob(storiesBytes, { type: 'q4_0' });
    expect(sha(new Uint8Array(await a.blob.arrayBuffer()))).toBe(llamaSha('stories260K', 'Q4_0'));
    // Every weight gets mxfp4, as with --pure, except rows its block does not divide (llama.cpp's F16 fallback).
    const b = planQuantization(parseGguf(storiesBytes), { type: 'mxfp4' });
    for (const t of b.tensors.filter((x) => x.convert))
      expect(t.to, t.name).toBe(t.shape[t.shape.length - 1] % 32 === 0 ? 'mxfp4' : 'f16');
    expect(b.tensors.some((t) => t.to === 'mxfp4')).toBe(true);
  });
});
