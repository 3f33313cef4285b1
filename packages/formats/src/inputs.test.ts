// Arrays of the wrong kind get a typed error: a Float64Array read as binary32 words would quantize into wrong bytes.
import { runInNewContext } from 'node:vm';
import { DTypeError } from '@nibble/tensor';
import { describe, expect, it } from 'vitest';
import type { Codec } from './codec.js';
import { formats } from './index.js';
import { int8 } from './int8.js';
import { iq4_nlRef } from './iq4.js';

const codecs: [string, Codec][] = [...Object.entries(formats), ['iq4_nlRef', iq4_nlRef]];

function dtypeError(f: () => unknown, found: string): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(DTypeError);
  expect((err as DTypeError).code).toBe('E_DTYPE');
  expect((err as Error).message).toContain(`got ${found}`);
}

describe.each(codecs)('%s rejects arrays of the wrong kind', (_, codec) => {
  const n = codec.layout.blockSize === 1 ? 32 : codec.layout.blockSize;
  const f64 = Float64Array.from({ length: n }, (_, i) => i / n - 0.5);
  const f32 = Float32Array.from(f64);
  const bytes = codec.quantize(f32);

  it('as the input to quantize, quantizeInto and quantizeRows', () => {
    dtypeError(() => codec.quantize(f64 as unknown as Float32Array), 'Float64Array');
    dtypeError(() => codec.quantizeInto(f64 as unknown as Float32Array, new Uint8Array(bytes.length)), 'Float64Array');
    dtypeError(
      () => codec.quantizeRows(f64 as unknown as Float32Array, 0, new Uint8Array(bytes.length), 0, 1, n),
      'Float64Array',
    );
    dtypeError(() => codec.quantize([...f32] as unknown as Float32Array), 'Array');
  });

  it('as the destination or the source of the other calls', () => {
    dtypeError(
      () => codec.quantizeInto(f32, new Uint16Array(bytes.length / 2) as unknown as Uint8Array),
      'Uint16Array',
    );
    dtypeError(() => codec.dequantizeInto(bytes, new Float64Array(n) as unknown as Float32Array), 'Float64Array');
    dtypeError(
      () => codec.dequantizeRows(bytes, 0, new Float64Array(n) as unknown as Float32Array, 0, 1, n),
      'Float64Array',
    );
    dtypeError(() => codec.dequantize(new Int8Array(bytes.buffer) as unknown as Uint8Array), 'Int8Array');
    dtypeError(() => codec.firstOverflow([...bytes] as unknown as Uint8Array), 'Array');
  });

  it('as the importance vector', () => {
    dtypeError(
      () => codec.quantize(f32, { importance: new Float64Array(n) as unknown as Float32Array }),
      'Float64Array',
    );
  });

  it('and takes a Node Buffer and arrays from another realm', () => {
    const buf = Buffer.from(bytes);
    expect(codec.dequantize(buf)).toEqual(codec.dequantize(bytes));
    const foreign = runInNewContext(`Float32Array.from(${JSON.stringify([...f32])})`) as Float32Array;
    expect(foreign instanceof Float32Array).toBe(false);
    expect(codec.quantize(foreign)).toEqual(bytes);
  });
});

describe('int8 rejects arrays of the wrong kind', () => {
  it('as the input and the destination', () => {
    const f32 = new Float32Array(64).map((_, i) => i - 32);
    dtypeError(() => int8.quantize(Float64Array.from(f32) as unknown as Float32Array), 'Float64Array');
    const bytes = int8.quantize(f32);
    dtypeError(() => int8.dequantizeInto(bytes, new Float64Array(64) as unknown as Float32Array), 'Float64Array');
    dtypeError(() => int8.dequantize(new Int8Array(bytes.buffer) as unknown as Uint8Array), 'Int8Array');
  });
});
