/**
 * Robustness: mutate the real GGUF files in fixtures/ (bit flips, byte runs, truncation, grown counts, oversized
 * lengths) and check that reading them only ever throws GgufError, never hangs, and never asks for an allocation
 * larger than the file. CI runs a few hundred cases; `pnpm --filter @nibble/gguf fuzz` runs 10,000 (FUZZ_RUNS).
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ByteSource, GgufError, llamaHyperparams, openGgufSource, parseGguf, tokenizerMetadata } from './index.js';

const seed = Number(process.env.FC_SEED ?? 20261125);
const numRuns = Number(process.env.FUZZ_RUNS ?? 300);

const fixtures = [
  'fixtures/models/stories260K-Q4_0.gguf',
  'fixtures/models/stories260K-F16.gguf',
  'fixtures/vocab/ggml-vocab-bert-bge.gguf',
  'fixtures/vocab/ggml-vocab-llama-spm.gguf',
].map((path) => {
  const bytes = new Uint8Array(readFileSync(path));
  return { path, bytes, dataOffset: Math.min(bytes.length, parseGguf(bytes).dataOffset), fields: lengthFields(bytes) };
});

/**
 * Offsets of the length, count, type and dimension fields of a valid file, found by walking its layout (spec §6.1)
 * independently of the reader, so mutations can hit them on purpose. Long arrays contribute their first elements.
 */
function lengthFields(b: Uint8Array): number[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: number[] = [8, 16];
  let p = 24;
  const u64 = (at: number) => Number(dv.getBigUint64(at, true));
  const str = () => {
    out.push(p);
    p += 8 + u64(p);
  };
  const sizes = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8];
  const value = (type: number): void => {
    if (type === 8) {
      str();
      return;
    }
    if (type !== 9) {
      p += sizes[type];
      return;
    }
    out.push(p); // element type
    const elem = dv.getUint32(p, true);
    out.push(p + 4); // length
    const n = u64(p + 4);
    p += 12;
    if (elem === 8 || elem === 9) {
      for (let i = 0; i < n; i++) {
        if (i < 8) out.push(p);
        value(elem);
      }
    } else p += n * sizes[elem];
  };
  const tensors = u64(8);
  const kvs = u64(16);
  for (let i = 0; i < kvs; i++) {
    str();
    out.push(p);
    const type = dv.getUint32(p, true);
    p += 4;
    value(type);
  }
  for (let i = 0; i < tensors; i++) {
    str();
    out.push(p); // n_dims
    const nd = dv.getUint32(p, true);
    p += 4;
    for (let d = 0; d < nd; d++) out.push(p + 8 * d);
    p += 8 * nd;
    out.push(p, p + 4); // type, offset
    p += 12;
  }
  return out;
}

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'run'; at: number; len: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'count'; which: 0 | 1; value: bigint }
  | { kind: 'length'; at: number; value: bigint }
  | { kind: 'field'; index: number; value: bigint; narrow: boolean }
  | { kind: 'u32'; at: number; value: number };

/** A position: sometimes near the start (version and counts), mostly anywhere in the header. */
const position = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 31 }), weight: 1 },
  { arbitrary: fc.noBias(fc.integer({ min: 0, max: 2 ** 30 - 1 })).map((x) => x / 2 ** 30), weight: 6 },
);
const big = fc.oneof(
  fc.constantFrom(1n << 30n, (1n << 30n) + 1n, 1n << 32n, 1n << 53n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: position, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    kind: fc.constant('run' as const),
    at: position,
    len: fc.integer({ min: 1, max: 24 }),
    value: fc.oneof(fc.constantFrom(0, 0xff), fc.integer({ min: 0, max: 255 })),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: position }),
  fc.record({ kind: fc.constant('count' as const), which: fc.constantFrom(0 as const, 1 as const), value: big }),
  fc.record({ kind: fc.constant('length' as const), at: position, value: big }),
  fc.record({ kind: fc.constant('u32' as const), at: position, value: fc.integer({ min: 0, max: 64 }) }),
  fc.record({
    kind: fc.constant('field' as const),
    index: fc.noBias(fc.nat()),
    value: fc.oneof(big, fc.bigInt({ min: 0n, max: 70n })),
    narrow: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('field' as const),
    index: fc.noBias(fc.nat()),
    value: fc.oneof(big, fc.bigInt({ min: 0n, max: 70n })),
    narrow: fc.boolean(),
  }),
) as fc.Arbitrary<Mutation>;

function mutate(original: Uint8Array, headerEnd: number, fields: number[], ms: Mutation[]): Uint8Array {
  let b = original.slice();
  const pos = (at: number) => Math.min(b.length - 1, Number.isInteger(at) ? at : Math.floor(at * headerEnd));
  for (const m of ms) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    switch (m.kind) {
      case 'flip':
        b[pos(m.at)] ^= 1 << m.bit;
        break;
      case 'run':
        b.fill(m.value, pos(m.at), Math.min(b.length, pos(m.at) + m.len));
        break;
      case 'truncate':
        b = b.slice(0, pos(m.at));
        break;
      case 'count':
        if (b.length >= 24) dv.setBigUint64(8 + 8 * m.which, m.value, true);
        break;
      case 'length':
        if (pos(m.at) + 8 <= b.length) dv.setBigUint64(pos(m.at), m.value, true);
        break;
      case 'u32':
        if (pos(m.at) + 4 <= b.length) dv.setUint32(pos(m.at), m.value, true);
        break;
      case 'field': {
        // A field of the valid layout: a u32 (types, n_dims) gets a small value, a u64 any value.
        const at = fields[m.index % fields.length];
        if (m.narrow && at + 4 <= b.length) dv.setUint32(at, Number(m.value & 0xffffffffn), true);
        else if (at + 8 <= b.length) dv.setBigUint64(at, m.value, true);
        break;
      }
    }
  }
  return b;
}

/** Runs `fn` with every typed array, ArrayBuffer and Array constructor refusing sizes above `limit` bytes. */
async function withAllocationLimit<T>(limit: number, fn: () => Promise<T>): Promise<T> {
  const g = globalThis as unknown as Record<string, unknown>;
  const names = [
    'ArrayBuffer',
    'Array',
    'Uint8Array',
    'Int8Array',
    'Uint16Array',
    'Int16Array',
    'Uint32Array',
    'Int32Array',
    'Float32Array',
    'Float64Array',
    'BigInt64Array',
    'BigUint64Array',
  ];
  const saved = names.map((n) => g[n]);
  names.forEach((n, i) => {
    const ctor = saved[i] as { BYTES_PER_ELEMENT?: number } & (new (...a: unknown[]) => object);
    // Every array element needs at least one byte of the file.
    const unit = ctor.BYTES_PER_ELEMENT ?? 1;
    g[n] = new Proxy(ctor, {
      construct(target, args, newTarget) {
        if (typeof args[0] === 'number' && args[0] * unit > limit) {
          throw new Error(`allocation of ${args[0]} x ${unit} bytes for a ${limit}-byte file`);
        }
        return Reflect.construct(target, args, newTarget);
      },
    });
  });
  try {
    return await fn();
  } finally {
    names.forEach((n, i) => {
      g[n] = saved[i];
    });
  }
}

/** Everything a reader would do with a file; returns the GgufError code, or 'ok'. */
async function readAll(bytes: Uint8Array): Promise<string> {
  try {
    const file = parseGguf(bytes);
    for (const t of file.tensors) {
      try {
        file.readTensorSync(t.name);
      } catch (e) {
        if (!(e instanceof GgufError) || e.code !== 'E_GGUF_UNSUPPORTED_TYPE') throw e;
      }
    }
    for (const f of [tokenizerMetadata, llamaHyperparams]) {
      try {
        f(file);
      } catch (e) {
        if (!(e instanceof GgufError)) throw e;
      }
    }
    return 'ok';
  } catch (e) {
    if (e instanceof GgufError) return e.code;
    throw e;
  }
}

/** The same bytes through the incremental reader, which fetches a growing prefix. */
async function readIncrementally(bytes: Uint8Array): Promise<string> {
  const source: ByteSource = { size: bytes.length, read: async (o, n) => bytes.slice(o, o + n) };
  try {
    await openGgufSource(source, { initialReadBytes: 64 });
    return 'ok';
  } catch (e) {
    if (e instanceof GgufError) return e.code;
    throw e;
  }
}

describe('mutated fixtures', () => {
  const seen = new Map<string, number>();

  it('the allocation guard catches an oversized allocation', async () => {
    await expect(withAllocationLimit(100, async () => new Float32Array(26))).rejects.toThrow(/allocation/);
    await expect(withAllocationLimit(100, async () => new Array(101))).rejects.toThrow(/allocation/);
    expect(await withAllocationLimit(100, async () => new Float32Array(25).length)).toBe(25);
  });

  it(`only ever throw GgufError, with bounded allocations (${numRuns} cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: fixtures.length - 1 }),
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        async (which, ms) => {
          const { bytes, dataOffset, fields } = fixtures[which];
          const mutated = mutate(bytes, dataOffset, fields, ms);
          const limit = Math.max(mutated.length, 64);
          const [sync, incremental] = await withAllocationLimit(limit, async () => [
            await readAll(mutated),
            await readIncrementally(mutated),
          ]);
          expect(incremental).toBe(sync);
          seen.set(sync, (seen.get(sync) ?? 0) + 1);
        },
      ),
      { seed, numRuns },
    );
    // The mutations reach many different checks, and some mutated files stay valid.
    if (process.env.FUZZ_VERBOSE) console.log(Object.fromEntries(seen));
    expect(seen.size).toBeGreaterThan(5);
  });
});
