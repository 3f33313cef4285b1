// The traits objects: the formats table and `usesImportance` follow from them, each codec's layout is the dtype row,
// the offset-based row calls agree with the whole-array ones, and the CPU kernels agree with the dequantizer (which
// golden.test.ts checks against ggml's own floats).
import { readFileSync } from 'node:fs';
import { dtypes } from '@nibble/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Codec } from './codec.js';
import * as barrel from './codecs.js';
import { fp16ToFp32 } from './half.js';
import { formats, getFormat, usesImportance } from './index.js';
import { iq4_nlRef } from './iq4.js';
import { buildHighBitLut, buildNibbleLut, lutLength } from './lut.js';
import { readF32 } from './test/fixtures.js';

const seed = Number(process.env.FC_SEED ?? 20261125);
const runs = (n: number) => ({ seed, numRuns: n });
const all: Codec[] = [...Object.values(formats), iq4_nlRef];

describe('the formats table', () => {
  it('holds every codec the barrel exports under its dtype name, in the order of the dtype table', () => {
    const exported = Object.entries(barrel)
      .filter(([key, v]) => typeof v === 'object' && v !== null && 'dequantizeRows' in v && (v as Codec).name === key)
      .map(([key]) => key);
    expect(Object.keys(formats).sort()).toEqual(exported.sort());
    const order = Object.keys(dtypes).filter((d) => Object.hasOwn(formats, d));
    expect(Object.keys(formats)).toEqual(order);
    expect(Object.keys(formats).length).toBe(21);
  });

  it('has the view-based dots where the backend had its faster copies (f16 words, q8_0 int8)', () => {
    const owners = (key: 'dotU16' | 'dotI8') =>
      Object.values(formats)
        .filter((c) => c.kernels?.[key] !== undefined)
        .map((c) => c.name);
    expect([owners('dotU16'), owners('dotI8')]).toEqual([['f16'], ['q8_0']]);
  });

  it("has each codec's layout as the dtype row itself, and its vec_dot type from it", () => {
    for (const c of all) {
      expect(c.layout).toBe(dtypes[c.name]);
      expect(c.info).toBe(c.layout);
      expect(c.vecDotType).toBe(c.layout.vecDotType);
      expect(getFormat(c.name.toUpperCase())).toBe(formats[c.name]);
    }
  });

  // Importance weights change the bytes of a real weight row iff the codec says it uses them.
  const emb = readF32('golden/ggml-real/stories260K-token_embd.f32').subarray(0, 8 * 256);
  const importance = readF32('golden/ggml-imatrix/importance-lognormal256.f32');
  it.each(all.filter((c) => c.layout.blockSize > 1))('%s: importance mode matches what the quantizer does', (c) => {
    const plain = c.quantize(emb, { rowLength: 256 });
    const weighted = c.quantize(emb, { rowLength: 256, importance });
    expect(c.importance === 'ignored', `${c.name} says ${c.importance}`).toBe(plain.every((b, i) => b === weighted[i]));
    expect(usesImportance.includes(c.name)).toBe(c.importance !== 'ignored');
  });

  it('lists as using importance exactly the codecs that do not ignore it', () => {
    expect([...usesImportance].sort()).toEqual(
      Object.values(formats)
        .filter((c) => c.importance !== 'ignored')
        .map((c) => c.name)
        .sort(),
    );
    expect(usesImportance).toContain('q4_K');
    expect(usesImportance).not.toContain('q8_0');
  });
});

describe("the README's format table", () => {
  const md = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = md.slice(md.indexOf('\n## Formats'), md.indexOf('\n### IQ4_NL has two quantizers'));
  const rows = new Map<string, string[]>();
  for (const line of section.split('\n')) {
    if (!line.startsWith('| ') || line.startsWith('| format')) continue;
    const cells = line
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((c) => c.trim().replace(/\\\|/g, '|'));
    rows.set(cells[0], cells);
  }

  it('says for every codec what its traits say', () => {
    for (const c of Object.values(formats)) {
      const { ggmlType, blockSize, bytesPerBlock, bitsPerWeight, description } = c.layout;
      const imatrix =
        c.importance === 'ignored' ? 'ignored' : c.importance === 'required' ? 'required by ggml' : 'used';
      expect(rows.get(c.name), c.name).toEqual([
        c.name,
        String(ggmlType),
        String(blockSize),
        String(bytesPerBlock),
        String(+bitsPerWeight.toFixed(4)),
        imatrix,
        description,
        c.errorBound,
      ]);
    }
  });

  it('lists every other block type of the layout table as out of scope, and nothing else', () => {
    const others = Object.values(dtypes).filter((d) => d.blockSize > 1 && !Object.hasOwn(formats, d.name));
    for (const d of others) expect(rows.get(d.name)?.[7], d.name).toBe('out of scope: no codec');
    expect([...rows.keys()].sort()).toEqual([...Object.keys(formats), ...others.map((d) => d.name)].sort());
  });
});

/** Finite values every format's scales hold in fp16 (|x| <= 60000), with zeros and tiny values. */
const value = fc.oneof(
  { weight: 4, arbitrary: fc.float({ min: -4, max: 4, noNaN: true, noDefaultInfinity: true }) },
  { weight: 1, arbitrary: fc.float({ min: -60000, max: 60000, noNaN: true, noDefaultInfinity: true }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -0, 1e-30) },
);

describe.each(all.map((c) => [c.name === 'iq4_nl' && c !== formats.iq4_nl ? 'iq4_nlRef' : c.name, c] as const))(
  '%s rows at offsets',
  (_, c) => {
    const bs = c.layout.blockSize === 1 ? 8 : c.layout.blockSize;
    const bpb = c.layout.blockSize === 1 ? 8 * c.layout.bytesPerBlock : c.layout.bytesPerBlock;
    const slow = c.layout.blockSize === 256;
    const shape = fc.record({
      rows: fc.integer({ min: 1, max: slow ? 2 : 3 }),
      blocks: fc.integer({ min: 1, max: slow ? 2 : 3 }),
      srcOffset: fc.integer({ min: 0, max: 9 }),
      dstOffset: fc.integer({ min: 0, max: 9 }),
    });

    it('quantizeRows and dequantizeRows write exactly their rows, equal to the whole-array calls', () => {
      fc.assert(
        fc.property(
          shape.chain((s) =>
            fc
              .array(value, { minLength: s.rows * s.blocks * bs, maxLength: s.rows * s.blocks * bs })
              .map((v) => ({ ...s, x: Float32Array.from(v) })),
          ),
          ({ rows, blocks, srcOffset, dstOffset, x }) => {
            const n = blocks * bs;
            const rowBytes = blocks * bpb;
            const want = c.quantize(x, { rowLength: n });
            const src = new Float32Array(srcOffset + x.length + 5).fill(Number.NaN);
            src.set(x, srcOffset);
            const dst = new Uint8Array(dstOffset + rows * rowBytes + 7).fill(0xa5);
            c.quantizeRows(src, srcOffset, dst, dstOffset, rows, n);
            expect(dst.subarray(dstOffset, dstOffset + rows * rowBytes)).toEqual(want);
            expect(dst.subarray(0, dstOffset).every((b) => b === 0xa5)).toBe(true);
            expect(dst.subarray(dstOffset + rows * rowBytes).every((b) => b === 0xa5)).toBe(true);

            const back = new Float32Array(srcOffset + x.length + 5).fill(-7);
            c.dequantizeRows(dst, dstOffset, back, srcOffset, rows, n);
            expect(back.subarray(srcOffset, srcOffset + x.length)).toEqual(c.dequantize(want));
            expect(back.subarray(0, srcOffset).every((v) => v === -7)).toBe(true);
            expect(back.subarray(srcOffset + x.length).every((v) => v === -7)).toBe(true);
          },
        ),
        runs(slow ? 15 : 60),
      );
    });

    it('refuses rows that do not fit, with a typed error', () => {
      const x = new Float32Array(2 * bs);
      const dst = new Uint8Array(2 * bpb);
      expect(() => c.quantizeRows(x, 1, dst, 0, 2, bs)).toThrow(/need/);
      expect(() => c.quantizeRows(x, 0, dst, 1, 2, bs)).toThrow(/destination has/);
      expect(() => c.dequantizeRows(dst, 1, x, 0, 2, bs)).toThrow(/source has/);
      expect(() => c.dequantizeRows(dst, 0, x, 0, 2, bs + (bs > 1 ? 1 : 0.5))).toThrow();
    });
  },
);

// ---- CPU kernels against the dequantizer -----------------------------------------------------------------------

const withKernels = Object.values(formats).filter((c) => c.kernels !== undefined);
const n = 512;

/** Deterministic values in [-1, 1). */
function values(count: number, s: number): Float32Array {
  const a = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 4294967296) * 2 - 1;
  }
  return a;
}

/** A weight row of the format at an odd byte offset of a larger buffer: quantized values, or arbitrary bytes. */
function weightRow(c: Codec, s: number, raw: boolean): { w: Uint8Array; off: number } {
  const rb = (n / c.layout.blockSize) * c.layout.bytesPerBlock;
  const w = new Uint8Array(rb + 8);
  const off = 3;
  if (raw) {
    const r = values(rb, s);
    for (let i = 0; i < rb; i++) w[off + i] = (r[i] * 128 + 128) & 0xff;
    // Keep every fp16 scale finite (clear its top exponent bit): NaN would make every comparison vacuous.
    for (let b = 0; b < rb / c.layout.bytesPerBlock; b++) {
      for (const o of c.scaleOffsets) w[off + b * c.layout.bytesPerBlock + o + 1] &= 0xbf;
    }
    if (c.name === 'f16' || c.name === 'bf16') for (let i = 1; i < rb; i += 2) w[off + i] &= 0xbf;
    // MXFP4's E8M0 scale: below 2^0, so that the decoded binary32 values stay finite.
    if (c.name === 'mxfp4') for (let b = 0; b < n / 32; b++) w[off + 17 * b] &= 0x7f;
  } else {
    w.set(c.quantize(values(n, s).map((v) => v * 3)), off);
  }
  return { w, off };
}

describe.each(withKernels.map((c) => [c.name, c] as const))('%s CPU kernels', (_, c) => {
  const k = c.kernels!;
  const cases = [1, 2, 3, 4].map((s) => ({ s, raw: s > 2 }));

  it('decode gives the dequantizer’s floats bit for bit, at any offset', () => {
    for (const { s, raw } of cases) {
      const { w, off } = weightRow(c, s, raw);
      const want = new Float32Array(n);
      c.dequantizeRows(w, off, want, 0, 1, n, { onOverflow: 'keep' });
      const got = new Float32Array(n + 5).fill(9);
      k.decode(w, off, got, 5, n);
      expect(got.subarray(5)).toEqual(want);
      expect(got.subarray(0, 5).every((v) => v === 9)).toBe(true);
    }
  });

  // The formats with a min round d·q − m to binary32 once when decoding; the fused dots keep it exact in double, so
  // they differ from Σ decoded·x by up to half an ulp per element (2^-24 of Σ|w·x|). The others decode exactly, and
  // only the order of the double sums differs (2^-52).
  const withMin = ['q4_1', 'q5_1', 'q2_K', 'q4_K', 'q5_K'].includes(c.name);
  const rel = withMin ? 2 ** -24 : 2 ** -52;

  it('the fused dot equals Σ decoded·x (up to the binary32 rounding of decoded values with a min)', () => {
    for (const { s, raw } of cases) {
      const { w, off } = weightRow(c, s, raw);
      const wd = c.dequantize(w.subarray(off), n, { onOverflow: 'keep' });
      const x = values(n + 7, s + 100);
      let ref = 0;
      let mag = 0;
      for (let i = 0; i < n; i++) {
        ref += wd[i] * x[7 + i];
        mag += Math.abs(wd[i] * x[7 + i]);
      }
      if (k.dot) expect(Math.abs(k.dot(w, off, x, 7, n) - ref)).toBeLessThanOrEqual(rel * mag);
      if (k.dotLut) {
        // Table entries are binary32 (2^-24 each) of sums at most 4x the decoded products (nibbles before their
        // offset): <= 2^-22 of Σ|w·x|.
        const lut = new Float32Array(lutLength(n));
        const xsum = new Float64Array(n / 32);
        buildNibbleLut(x, 7, n, k.lutValues!, lut, xsum);
        if (k.lutHigh) buildHighBitLut(x, 7, n, lut);
        expect(Math.abs(k.dotLut(w, off, lut, xsum, n) - ref)).toBeLessThanOrEqual((2 ** -22 + rel) * mag);
      }
    }
    expect(k.dot !== undefined || k.dotLut !== undefined || c.name === 'tq2_0').toBe(true);
  });
  const viewDots = (['dotU16', 'dotI8'] as const).filter((v) => k[v] !== undefined);
  it.each(viewDots)('%s, on a view made once, gives the same bits as dot', (which) => {
    for (const { s, raw } of cases) {
      // The row at an odd byte offset (dot's byte path), and a copy at an even offset of a larger buffer (a tensor
      // inside a file) for the view.
      const { w: w3, off: off3 } = weightRow(c, s, raw);
      const w = new Uint8Array(w3.length + 5).subarray(4, 4 + w3.length - off3);
      w.set(w3.subarray(off3));
      const x = values(n, s + 300);
      const want = k.dot!(w3, off3, x, 0, n);
      const got =
        which === 'dotU16'
          ? k.dotU16!(new Uint16Array(w.buffer, w.byteOffset, w.length >> 1), 0, x, 0, n)
          : k.dotI8!(w, new Int8Array(w.buffer, w.byteOffset, w.length), 0, x, 0, n);
      expect(Object.is(got, want), `${got} vs ${want}`).toBe(true);
    }
  });
});

describe.each(withKernels.filter((c) => c.kernels?.dotQ !== undefined).map((c) => [c.name, c] as const))(
  '%s ggml-mode CPU kernel',
  (_, c) => {
    const k = c.kernels!;
    const cases = [1, 2, 3, 4].map((s) => ({ s, raw: s > 2 }));
    it("the ggml-mode dot equals ggml's formula on the decoded weights and activations", () => {
      const vdt = formats[c.vecDotType];
      const q81 = vdt.name === 'q8_1';
      const bpb = c.layout.bytesPerBlock;
      for (const { s, raw } of cases) {
        const { w, off } = weightRow(c, s, raw);
        const a = vdt.quantize(values(n, s + 200));
        const ai = new Int8Array(a.buffer);
        // With q8_1 activations the min term is m·s with the activation block's stored sum s (fp16), so the
        // reference decodes the weight with its min cleared (q·d exactly) and adds m·s per block.
        const wq = w.slice(off, off + (n / 32) * bpb);
        if (q81) for (let b = 0; b < n / 32; b++) wq.fill(0, b * bpb + 2, b * bpb + 4);
        const wd = c.dequantize(wq, n, { onOverflow: 'keep' });
        const xd = vdt.dequantize(a);
        let ref = 0;
        let mag = 0;
        for (let i = 0; i < n; i++) {
          ref += wd[i] * xd[i];
          mag += Math.abs(wd[i] * xd[i]);
        }
        if (q81) {
          for (let b = 0; b < n / 32; b++) {
            const m = fp16ToFp32(w[off + b * bpb + 2] | (w[off + b * bpb + 3] << 8));
            const sa = fp16ToFp32(a[36 * b + 2] | (a[36 * b + 3] << 8));
            ref += m * sa;
            mag += Math.abs(m * sa);
          }
        }
        expect(Math.abs(k.dotQ!(w, off, a, ai, 0, n) - ref)).toBeLessThanOrEqual(2 ** -52 * mag);
      }
    });
  },
);
