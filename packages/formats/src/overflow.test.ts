// Blocks whose fp16 scale overflows: ggml stores ±Inf and dequantizes the block to ±Inf/NaN without a word. nibble
// throws by default, and with `onOverflow: 'keep'` (or a callback) gives ggml's bytes and floats exactly. Which
// blocks overflow comes from ggml's own floats (fixtures/golden/ggml-overflow), not from the code under test.
import { ValueError } from '@nibble/tensor';
import { describe, expect, it } from 'vitest';
import { type ScaleOverflow, ScaleOverflowError } from './codec.js';
import { formats } from './index.js';
import { firstDiff, readBytes, readF32, readJson } from './test/fixtures.js';

interface Manifest {
  rows: number;
  cols: number;
  types: Record<string, { quantized: string; dequantized: string; nonFiniteValues: number }>;
}
const dir = 'golden/ggml-overflow';
const manifest = readJson<Manifest>(`${dir}/manifest.json`);
const x = readF32(`${dir}/input.f32`);
const { rows, cols } = manifest;

/** [row, block] of every block whose ggml-dequantized values are not all finite, in order. */
function badBlocks(y: Float32Array, blockSize: number): [number, number][] {
  const out: [number, number][] = [];
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < cols / blockSize; b++) {
      const o = r * cols + b * blockSize;
      if (y.subarray(o, o + blockSize).some((v) => !Number.isFinite(v))) out.push([r, b]);
    }
  }
  return out;
}

function sameFloats(a: Float32Array, b: Float32Array): number {
  for (let i = 0; i < a.length; i++)
    if (!Object.is(a[i], b[i]) && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  return a.length === b.length ? -1 : a.length;
}

describe.each(Object.entries(manifest.types))('%s with overflowing scales', (name, t) => {
  const codec = formats[name];
  const { blockSize } = codec.layout;
  const ggmlBytes = readBytes(`${dir}/${t.quantized}`);
  const ggmlFloats = readF32(`${dir}/${t.dequantized}`);
  const bad = badBlocks(ggmlFloats, blockSize);

  it('the fixture has the overflows it claims', () => {
    expect(ggmlFloats.filter((v) => !Number.isFinite(v)).length).toBe(t.nonFiniteValues);
    if (name === 'mxfp4') expect(bad).toEqual([]);
    else expect(bad.length).toBeGreaterThan(0);
  });

  it("quantize throws a ScaleOverflowError at ggml's first overflowing block by default", () => {
    if (bad.length === 0) expect(firstDiff(codec.quantize(x, { rowLength: cols }), ggmlBytes)).toBe(-1);
    else expectQuantizeThrows();
  });

  function expectQuantizeThrows(): void {
    let err: unknown;
    try {
      codec.quantize(x, { rowLength: cols });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ScaleOverflowError);
    expect(err).toBeInstanceOf(ValueError);
    const e = err as ScaleOverflowError;
    expect(e.code).toBe('E_VALUE');
    expect([e.overflow.row, e.overflow.block]).toEqual(bad[0]);
    expect([e.row, e.column]).toEqual([bad[0][0], bad[0][1] * blockSize]);
    expect(e.message).toMatch(new RegExp(`^${name}: row ${bad[0][0]}, block ${bad[0][1]} .*onOverflow: 'keep'`));
  }

  it("onOverflow 'keep' gives ggml's bytes; a callback gets them too and hears of every overflowing block", () => {
    const kept = codec.quantize(x, { rowLength: cols, onOverflow: 'keep' });
    expect(firstDiff(kept, ggmlBytes)).toBe(-1);
    const heard: ScaleOverflow[] = [];
    const reported = codec.quantize(x, { rowLength: cols, onOverflow: (o) => heard.push(o) });
    expect(firstDiff(reported, ggmlBytes)).toBe(-1);
    expect(heard.map((o) => [o.row, o.block])).toEqual(bad);
    for (const o of heard) {
      expect(o.format).toBe(name);
      expect(Number.isFinite(o.scale)).toBe(false);
    }
  });

  it("dequantize of ggml's bytes throws by default, leaving the destination as it was", () => {
    const dst = new Float32Array(rows * cols).fill(7);
    if (bad.length === 0) {
      codec.dequantizeInto(ggmlBytes, dst);
      expect(sameFloats(dst, ggmlFloats)).toBe(-1);
    } else expectDequantizeThrows(dst);
  });

  function expectDequantizeThrows(dst: Float32Array): void {
    expect(() => codec.dequantizeRows(ggmlBytes, 0, dst, 0, rows, cols)).toThrow(ScaleOverflowError);
    expect(dst.every((v) => v === 7)).toBe(true);
    try {
      codec.dequantizeRows(ggmlBytes, 0, dst, 0, rows, cols);
    } catch (e) {
      const o = (e as ScaleOverflowError).overflow;
      expect([o.row, o.block]).toEqual(bad[0]);
    }
    expect(() => codec.dequantize(ggmlBytes)).toThrow(/dequantizes to ±Inf\/NaN/);
  }

  it("dequantize with onOverflow 'keep' or a callback gives ggml's floats bit for bit", () => {
    expect(sameFloats(codec.dequantize(ggmlBytes, undefined, { onOverflow: 'keep' }), ggmlFloats)).toBe(-1);
    const heard: [number, number][] = [];
    const dst = new Float32Array(rows * cols);
    codec.dequantizeRows(ggmlBytes, 0, dst, 0, rows, cols, { onOverflow: (o) => heard.push([o.row, o.block]) });
    expect(sameFloats(dst, ggmlFloats)).toBe(-1);
    expect(heard).toEqual(bad);
  });

  it("firstOverflow finds ggml's first overflowing block without decoding", () => {
    const perRow = cols / blockSize;
    expect(codec.firstOverflow(ggmlBytes)).toBe(bad.length ? bad[0][0] * perRow + bad[0][1] : -1);
    const clean = codec.quantize(x.subarray(0, cols));
    expect(codec.firstOverflow(clean)).toBe(-1);
  });
});
