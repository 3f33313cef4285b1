import { describe, expect, it } from 'vitest';
import { GgufError, parseGguf } from './index.js';
import { header, type Raw } from './test/raw.js';

/** Expects parseGguf to fail with this code (and optionally offset/key/tensor). */
function fails(bytes: Uint8Array, expected: Partial<Pick<GgufError, 'code' | 'offset' | 'key' | 'tensor'>>): void {
  let err: unknown;
  try {
    parseGguf(bytes);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(GgufError);
  expect(err).toMatchObject(expected);
}

/** One f32 tensor info of `n` elements at relative offset `off`. */
function f32Tensor(r: Raw, name: string, n: number, off: number): Raw {
  return r.str(name).u32(1).u64(n).u32(0).u64(off);
}

describe('header validation (spec §6.5)', () => {
  it('checks the magic', () => {
    fails(new Uint8Array([0x47, 0x47, 0x55, 0x47, 3, 0, 0, 0]), { code: 'E_GGUF_MAGIC', offset: 0 });
    fails(new Uint8Array(2), { code: 'E_GGUF_TRUNCATED' });
  });

  it('rejects v1, v0, v4 and big-endian files', () => {
    fails(header(1, 0, 0).build(), { code: 'E_GGUF_VERSION', offset: 4 });
    fails(header(0, 0, 0).build(), { code: 'E_GGUF_VERSION' });
    fails(header(4, 0, 0).build(), { code: 'E_GGUF_VERSION' });
    fails(header(0x03000000, 0, 0).build(), { code: 'E_GGUF_ENDIAN' });
  });

  it('accepts an empty v2 and v3 file', () => {
    expect(parseGguf(header(2, 0, 0).build()).version).toBe(2);
    expect(parseGguf(header(3, 0, 0).build()).tensors).toEqual([]);
  });

  it('checks counts against the remaining bytes', () => {
    fails(header(3, 0, 1n << 40n).build(), { code: 'E_GGUF_COUNT', offset: 8 });
    fails(header(3, 0xffffffffffffffffn, 0).build(), { code: 'E_GGUF_COUNT' });
  });

  it('checks string and array lengths', () => {
    fails(
      header(3, 0, 1)
        .u64(1n << 50n)
        .bytes(64)
        .build(),
      { code: 'E_GGUF_STRING_LENGTH', offset: 24 },
    );
    fails(header(3, 0, 1).str('k').u32(8).u64(100).bytes(20).build(), { code: 'E_GGUF_STRING_LENGTH', key: 'k' });
    fails(header(3, 0, 1).str('k').u32(9).u32(6).u64(1000).bytes(40).build(), {
      code: 'E_GGUF_ARRAY_LENGTH',
      key: 'k',
    });
    fails(header(3, 0, 1).str('k').u32(9).u32(8).u64(5).bytes(30).build(), { code: 'E_GGUF_ARRAY_LENGTH', key: 'k' });
  });

  it('checks keys and value types', () => {
    fails(header(3, 0, 1).str('').u32(4).u32(1).build(), { code: 'E_GGUF_KEY', offset: 24 });
    fails(header(3, 0, 2).str('a').u32(4).u32(1).str('a').u32(4).u32(2).build(), {
      code: 'E_GGUF_DUPLICATE_KEY',
      key: 'a',
    });
    fails(header(3, 0, 1).str('a').u32(13).u32(1).bytes(8).build(), { code: 'E_GGUF_VALUE_TYPE', key: 'a' });
  });

  it('reads nested arrays, and refuses deep nesting', () => {
    const ok = header(3, 0, 1).str('n').u32(9).u32(9).u64(2);
    ok.u32(5).u64(1).u32(7);
    ok.u32(8).u64(1).str('x');
    const file = parseGguf(ok.build());
    expect(file.metadata.get('n')).toEqual([new Int32Array([7]), ['x']]);
    expect(file.metadataTypes.get('n')).toEqual({ array: 'array', items: [{ array: 'i32' }, { array: 'string' }] });
    const deep = header(3, 0, 1).str('d').u32(9);
    for (let i = 0; i < 20; i++) deep.u32(9).u64(1);
    deep.u32(4).u64(0);
    fails(deep.build(), { code: 'E_GGUF_NESTING', key: 'd' });
  });

  it('keeps keys like __proto__ in the map without touching prototypes', () => {
    const file = parseGguf(header(3, 0, 1).str('__proto__').u32(8).str('x').build());
    expect(file.metadata.get('__proto__')).toBe('x');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('checks general.alignment', () => {
    fails(header(3, 0, 1).str('general.alignment').u32(4).u32(24).build(), {
      code: 'E_GGUF_ALIGNMENT',
      key: 'general.alignment',
    });
    fails(header(3, 0, 1).str('general.alignment').u32(5).u32(32).build(), { code: 'E_GGUF_ALIGNMENT' });
    const file = parseGguf(header(3, 0, 1).str('general.alignment').u32(4).u32(64).build());
    expect(file.alignment).toBe(64);
  });

  it('checks tensor names', () => {
    const long = 'x'.repeat(64);
    fails(
      f32Tensor(header(3, 1, 0), long, 8, 0)
        .padTo(32)
        .bytes(32)
        .build(),
      { code: 'E_GGUF_TENSOR_NAME' },
    );
    const ok = f32Tensor(header(3, 1, 0), 'x'.repeat(63), 8, 0)
      .padTo(32)
      .bytes(32)
      .build();
    expect(parseGguf(ok).tensors[0].name.length).toBe(63);
    const dup = f32Tensor(f32Tensor(header(3, 2, 0), 'a', 8, 0), 'a', 8, 32)
      .padTo(32)
      .bytes(64)
      .build();
    fails(dup, { code: 'E_GGUF_DUPLICATE_TENSOR', tensor: 'a' });
  });

  it('checks dims and types', () => {
    fails(header(3, 1, 0).str('t').u32(5).bytes(80).build(), { code: 'E_GGUF_DIMS', tensor: 't' });
    fails(
      header(3, 1, 0)
        .str('t')
        .u32(1)
        .u64(-1n & 0xffffffffffffffffn)
        .u32(0)
        .u64(0)
        .bytes(32)
        .build(),
      {
        code: 'E_GGUF_DIMS',
      },
    );
    fails(header(3, 1, 0).str('t').u32(1).u64(32).u32(4).u64(0).bytes(64).build(), {
      code: 'E_GGUF_TENSOR_TYPE',
      tensor: 't',
    });
    fails(header(3, 1, 0).str('t').u32(1).u64(33).u32(2).u64(0).bytes(64).build(), { code: 'E_GGUF_TENSOR_TYPE' });
  });

  it('checks offsets are sequential and the data section is complete, last padding included', () => {
    fails(
      f32Tensor(f32Tensor(header(3, 2, 0), 'a', 3, 0), 'b', 8, 12)
        .padTo(32)
        .bytes(64)
        .build(),
      {
        code: 'E_GGUF_OFFSET',
        tensor: 'b',
      },
    );
    const good = f32Tensor(f32Tensor(header(3, 2, 0), 'a', 3, 0), 'b', 3, 32).padTo(32);
    const start = good.length;
    const bytes = good.bytes(64).build();
    const file = parseGguf(bytes);
    expect(file.tensors.map((t) => t.byteOffset)).toEqual([start, start + 32]);
    // The last tensor (12 bytes) must be followed by its 20 bytes of padding, as ggml reads Σ PAD(nbytes).
    fails(bytes.subarray(0, bytes.length - 1), { code: 'E_GGUF_DATA_SIZE' });
  });
});
