import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  blobSink,
  type GgufScalarType,
  type GgufType,
  type GgufValue,
  GgufWriter,
  openGguf,
  parseGguf,
  rewriteGguf,
  writableStreamSink,
} from './index.js';
import { createGgufFileWriter, fileSink, openGgufFile } from './node.js';

const seed = Number(process.env.FC_SEED ?? 20261125);

/** A metadata value with its stored type, generated per scalar type within that type's range. */
function scalar(type: GgufScalarType): fc.Arbitrary<GgufValue> {
  switch (type) {
    case 'u8':
      return fc.integer({ min: 0, max: 255 });
    case 'i8':
      return fc.integer({ min: -128, max: 127 });
    case 'u16':
      return fc.integer({ min: 0, max: 0xffff });
    case 'i16':
      return fc.integer({ min: -0x8000, max: 0x7fff });
    case 'u32':
      return fc.integer({ min: 0, max: 0xffffffff });
    case 'i32':
      return fc.integer({ min: -0x80000000, max: 0x7fffffff });
    case 'f32':
      return fc.float({ noNaN: true });
    case 'f64':
      return fc.double({ noNaN: true });
    case 'u64':
      return fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    case 'i64':
      return fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n });
    case 'bool':
      return fc.boolean();
    default:
      return fc.string({ unit: 'grapheme', maxLength: 12 });
  }
}

const scalarTypes: GgufScalarType[] = [
  'u8',
  'i8',
  'u16',
  'i16',
  'u32',
  'i32',
  'f32',
  'f64',
  'u64',
  'i64',
  'bool',
  'string',
];
const typed: Partial<Record<GgufScalarType, (xs: GgufValue[]) => GgufValue>> = {
  u8: (xs) => Uint8Array.from(xs as number[]),
  i8: (xs) => Int8Array.from(xs as number[]),
  u16: (xs) => Uint16Array.from(xs as number[]),
  i16: (xs) => Int16Array.from(xs as number[]),
  u32: (xs) => Uint32Array.from(xs as number[]),
  i32: (xs) => Int32Array.from(xs as number[]),
  f32: (xs) => Float32Array.from(xs as number[]),
  f64: (xs) => Float64Array.from(xs as number[]),
  u64: (xs) => BigUint64Array.from(xs as bigint[]),
  i64: (xs) => BigInt64Array.from(xs as bigint[]),
};

/** The reader's form of an array of this element type. */
function arrayOf(type: GgufScalarType): fc.Arbitrary<{ type: GgufType; value: GgufValue }> {
  return fc.array(scalar(type), { maxLength: 6 }).map((xs) => ({
    type: { array: type },
    value: typed[type] ? typed[type](xs) : (xs as GgufValue),
  }));
}

const entry: fc.Arbitrary<{ type: GgufType; value: GgufValue }> = fc.oneof(
  fc.constantFrom(...scalarTypes).chain((t) => scalar(t).map((value) => ({ type: t as GgufType, value }))),
  fc.constantFrom(...scalarTypes).chain(arrayOf),
  fc.array(fc.constantFrom(...scalarTypes).chain(arrayOf), { maxLength: 3 }).map((inner) => ({
    type: { array: 'array', items: inner.map((x) => x.type) } as GgufType,
    value: inner.map((x) => x.value),
  })),
);

const tensorSpec = fc.record({
  dtype: fc.constantFrom('f32', 'f16', 'q4_0', 'q8_0', 'q4_K', 'bf16' as const),
  rows: fc.integer({ min: 1, max: 3 }),
  blocks: fc.integer({ min: 1, max: 2 }),
  extra: fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined }),
});

const blockOf: Record<string, [number, number]> = {
  f32: [1, 4],
  f16: [1, 2],
  bf16: [1, 2],
  q4_0: [32, 18],
  q8_0: [32, 34],
  q4_K: [256, 144],
};

const model = fc.record({
  metadata: fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 10 }), entry), {
    selector: ([k]) => k,
    maxLength: 8,
  }),
  tensors: fc.array(tensorSpec, { maxLength: 5 }),
  alignment: fc.constantFrom(undefined, 8, 32, 64),
  data: fc.integer({ min: 0, max: 255 }),
});

describe('read(write(x)) = x', () => {
  it('holds for generated metadata and tensors', async () => {
    await fc.assert(
      fc.asyncProperty(model, async ({ metadata, tensors, alignment, data }) => {
        const out = blobSink();
        const w = new GgufWriter(out, { alignment });
        for (const [k, { type, value }] of metadata) w.metadata.set(k, value, type);
        const specs = tensors.map((t, i) => {
          const [blk, size] = blockOf[t.dtype];
          const shape = t.extra === undefined ? [t.rows, t.blocks * blk] : [t.extra, t.rows, t.blocks * blk];
          const bytes = new Uint8Array((shape.reduce((a, b) => a * b, 1) / blk) * size);
          for (let j = 0; j < bytes.length; j++) bytes[j] = (data + j * 31 + i) & 0xff;
          return { name: `t.${i}`, dtype: t.dtype, shape, bytes };
        });
        for (const s of specs) w.addTensor(s);
        for (const s of specs) await w.writeTensor(s.name, s.bytes);
        await w.finish();
        const blob = out.blob();
        const file = await openGguf(blob, { initialReadBytes: 64 });
        expect(file.alignment).toBe(alignment ?? 32);
        expect(blob.size % file.alignment).toBe(0);
        const userKeys = [...file.metadata.keys()].filter((k) => !(alignment && k === 'general.alignment'));
        expect(userKeys).toEqual(metadata.map(([k]) => k).filter((k) => !(alignment && k === 'general.alignment')));
        for (const [k, { type, value }] of metadata) {
          if (alignment && k === 'general.alignment') continue;
          expect(file.metadataTypes.get(k)).toEqual(type);
          const got = file.metadata.get(k);
          if (type === 'f32') expect(got).toBe(Math.fround(value as number));
          else expect(got).toEqual(value);
        }
        expect(file.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(
          specs.map((s) => [s.name, s.dtype, s.shape]),
        );
        for (const s of specs) expect((await file.readTensor(s.name)).data).toEqual(s.bytes);
      }),
      { seed, numRuns: 150 },
    );
  });

  it('refuses values that do not fit their type, and misuse', async () => {
    const w = new GgufWriter(blobSink());
    expect(() => w.metadata.set('a', 256, 'u8')).toThrow(expect.objectContaining({ code: 'E_GGUF_WRITE', key: 'a' }));
    expect(() => w.metadata.set('a', 1.5, 'i32')).toThrow(/does not fit/);
    expect(() => w.metadata.set('a', 1)).toThrow(/stored type/);
    expect(() => w.addTensor({ name: 'x'.repeat(64), dtype: 'f32', shape: [1] })).toThrow(/63 bytes/);
    expect(() => w.addTensor({ name: 'q', dtype: 'q4_0', shape: [2, 33] })).toThrow(/block size/);
    w.addTensor({ name: 'a', dtype: 'f32', shape: [2] });
    await expect(w.writeTensor('a', new Uint8Array(4))).rejects.toMatchObject({ code: 'E_GGUF_WRITE', tensor: 'a' });
  });
});

describe('rewriting the fixtures', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nibble-gguf-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const files = [
    ...readdirSync('fixtures/models')
      .filter((f) => f.endsWith('.gguf'))
      .map((f) => `fixtures/models/${f}`),
    ...readdirSync('fixtures/vocab')
      .filter((f) => f.endsWith('.gguf'))
      .map((f) => `fixtures/vocab/${f}`),
  ];

  it.each(files)('%s keeps its metadata and tensor bytes', async (path) => {
    const original = await readFile(path);
    const src = await openGgufFile(path);
    const out = join(dir, 'out.gguf');
    await rewriteGguf(src, await fileSink(out));
    await src.close();
    const rewritten = await readFile(out);
    const a = parseGguf(new Uint8Array(original));
    const b = parseGguf(new Uint8Array(rewritten));
    // The metadata section (after the 24-byte preamble, up to the tensor infos) is byte-identical.
    expect(Buffer.compare(rewritten.subarray(0, a.headerByteLength), original.subarray(0, a.headerByteLength))).toBe(0);
    expect(b.tensors).toEqual(a.tensors);
    for (const t of a.tensors) {
      expect(Buffer.compare(b.readTensorSync(t.name).data, a.readTensorSync(t.name).data)).toBe(0);
    }
    if (a.tensors.length > 0) expect(rewritten.equals(original)).toBe(true);
  });
});

describe('sinks', () => {
  it('writes to a WritableStream and to a path atomically', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nibble-gguf-'));
    try {
      const chunks: Uint8Array[] = [];
      const stream = new WritableStream<Uint8Array>({ write: (c) => void chunks.push(c.slice()) });
      const w = new GgufWriter(writableStreamSink(stream));
      w.metadata.setString('general.architecture', 'llama');
      w.addTensor({ name: 'n', dtype: 'f32', shape: [3] });
      await w.writeTensor('n', new Float32Array([1, 2, 3]));
      await w.finish();
      const bytes = new Uint8Array(Buffer.concat(chunks));
      expect(parseGguf(bytes).readTensorSync('n').data).toEqual(new Uint8Array(new Float32Array([1, 2, 3]).buffer));

      const path = join(dir, 'a.gguf');
      const fw = await createGgufFileWriter(path);
      fw.metadata.setString('general.architecture', 'llama');
      fw.addTensor({ name: 'n', dtype: 'f32', shape: [3] });
      expect(readdirSync(dir).length).toBe(1); // only the temporary file
      expect(readdirSync(dir)).not.toContain('a.gguf');
      await fw.writeTensor('n', new Float32Array([1, 2, 3]));
      await fw.finish();
      expect(readdirSync(dir)).toEqual(['a.gguf']);
      expect(Buffer.compare(readFileSync(path), bytes)).toBe(0);

      const bad = await createGgufFileWriter(join(dir, 'b.gguf'));
      bad.addTensor({ name: 'n', dtype: 'f32', shape: [3] });
      await expect(bad.finish()).rejects.toMatchObject({ code: 'E_GGUF_WRITE' });
      expect(readdirSync(dir)).toEqual(['a.gguf']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
