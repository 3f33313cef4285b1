// Bit-exactness against ggml's own bytes: every golden case of every format in the `formats` table.
//
// The golden sets hold every type ggml has. Out of scope for nibble (no codec, listed in the README's format
// table): the grid IQ types (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M; three of them require an
// imatrix in ggml) and ggml's newest types NVFP4 and Q2_0. Any other golden type without a codec fails below, and so
// does a type listed here that has a codec after all.
import { describe, expect, it } from 'vitest';
import type { Codec } from './codec.js';
import { formats } from './index.js';
import { iq4_nl, iq4_nlRef } from './iq4.js';
import { bitsOf, firstDiff, readBytes, readF32, readJson, sha256 } from './test/fixtures.js';

const OUT_OF_SCOPE = new Set(['iq2_xxs', 'iq2_xs', 'iq2_s', 'iq3_xxs', 'iq3_s', 'iq1_s', 'iq1_m', 'nvfp4', 'q2_0']);

interface SynthManifest {
  cases: { name: string; rows: number; cols: number; file: string }[];
  types: {
    type: string;
    vecDotType: string;
    files: { quantized: string; dequantized: string; activationQuantized: string };
  }[];
}
interface RealManifest {
  inputs: Record<string, { file: string; n_rows: number }>;
  n_per_row: number;
  types: Record<string, { results: Record<string, { q_sha256: string; deq_sha256: string }> }>;
}

function codecFor(ggmlName: string): Codec | undefined {
  const lower = ggmlName.toLowerCase();
  return Object.values(formats).find((c) => c.name.toLowerCase() === lower);
}

function expectSameBytes(ours: Uint8Array, theirs: Uint8Array, what: string): void {
  const at = firstDiff(ours, theirs);
  expect(at, `${what}: first differing byte at ${at} (ours ${ours[at]}, ggml ${theirs[at]})`).toBe(-1);
}

function expectCovered(types: string[]): void {
  const missing = types.filter((t) => !codecFor(t) && !OUT_OF_SCOPE.has(t.toLowerCase()));
  expect(
    [...OUT_OF_SCOPE].filter((t) => codecFor(t)),
    'out-of-scope types that have a codec',
  ).toEqual([]);
  expect(missing, 'golden types with neither a codec nor an out-of-scope note').toEqual([]);
}

describe('ggml-synthetic golden set', () => {
  const manifest = readJson<SynthManifest>('golden/ggml-synthetic/manifest.json');
  it('covers every type of the set', () => expectCovered(manifest.types.map((t) => t.type)));
  for (const t of manifest.types) {
    const codec = codecFor(t.type);
    if (!codec) continue;
    for (const c of manifest.cases) {
      it(`${t.type} ${c.name}: quantize and dequantize bit-exact`, () => {
        const input = readF32(`golden/ggml-synthetic/${c.file}`);
        const expected = readBytes(`golden/ggml-synthetic/${t.files.quantized.replace('CASE', c.name)}`);
        expectSameBytes(codec.quantize(input, { rowLength: c.cols }), expected, `${t.type}/${c.name} quantize`);
        const deq = readF32(`golden/ggml-synthetic/${t.files.dequantized.replace('CASE', c.name)}`);
        expectSameBytes(
          bitsOf(codec.dequantize(expected, input.length)),
          bitsOf(deq),
          `${t.type}/${c.name} dequantize`,
        );
      });
    }
  }
  // The activation rows ggml's CPU matmul quantizes for each weight type (Q8_K for the K-quants, ...).
  const activation = readF32('golden/ggml-synthetic/inputs/activation.f32');
  const seen = new Set<string>();
  for (const t of manifest.types) {
    const vdt = codecFor(t.vecDotType);
    if (!vdt || seen.has(t.vecDotType)) continue;
    seen.add(t.vecDotType);
    it(`${t.vecDotType} activation row (from ${t.type}'s files) bit-exact`, () => {
      const expected = readBytes(`golden/ggml-synthetic/${t.files.activationQuantized}`);
      expectSameBytes(
        vdt.quantize(activation, { rowLength: manifest.cases[0].cols }),
        expected,
        `${t.vecDotType} activation`,
      );
    });
  }
});

describe('ggml-real golden set (stories260K embedding and edge rows)', () => {
  const manifest = readJson<RealManifest>('golden/ggml-real/manifest.json');
  it('covers every type of the set', () => expectCovered(Object.keys(manifest.types)));
  for (const [type, entry] of Object.entries(manifest.types)) {
    const codec = codecFor(type);
    if (!codec) continue;
    for (const [input, spec] of Object.entries(manifest.inputs)) {
      it(`${type} ${input}: quantize and dequantize bit-exact`, () => {
        const x = readF32(`golden/ggml-real/${spec.file}`);
        const q = readBytes(`golden/ggml-real/${input}.${type}.q`);
        expect(sha256(q)).toBe(entry.results[input].q_sha256);
        expectSameBytes(codec.quantize(x, { rowLength: manifest.n_per_row }), q, `${type}/${input} quantize`);
        const deq = readBytes(`golden/ggml-real/${input}.${type}.deq.f32`);
        expectSameBytes(bitsOf(codec.dequantize(q, x.length)), deq, `${type}/${input} dequantize`);
      });
    }
  }
});

describe('ggml-imatrix golden set (ggml_quantize_chunk with an importance matrix)', () => {
  interface ImatrixManifest {
    importance: Record<string, string>;
    cases: {
      input: string;
      rows: number;
      cols: number;
      importance: string;
      type: string;
      sha256: string;
      file?: string;
    }[];
  }
  const manifest = readJson<ImatrixManifest>('golden/ggml-imatrix/manifest.json');
  const weights = new Map(
    Object.entries(manifest.importance).map(([k, f]) => [k, readF32(`golden/ggml-imatrix/${f}`)] as const),
  );
  const byInput = new Map<string, typeof manifest.cases>();
  for (const c of manifest.cases)
    byInput.set(`${c.input} ${c.importance}`, [...(byInput.get(`${c.input} ${c.importance}`) ?? []), c]);
  for (const [key, cases] of byInput) {
    it(`${key}: every type's bytes equal ggml's`, () => {
      const [input, imp] = key.split(' ');
      const x = readF32(`golden/${input}`);
      const importance = weights.get(imp);
      for (const c of cases) {
        const codec = codecFor(c.type) as Codec;
        expect(codec, c.type).toBeDefined();
        const ours = codec.quantize(x, { rowLength: c.cols, importance });
        if (c.file) expectSameBytes(ours, readBytes(`golden/ggml-imatrix/${c.file}`), `${c.type}/${key}`);
        expect(sha256(ours), `${c.type}/${key}`).toBe(c.sha256);
      }
    });
  }
});

describe('ggml-kat known answers (from_float_ref)', () => {
  // KAT.md lists the sha256[:16] of ggml's dequantized output; the quantized bytes are files.
  const kat = new TextDecoder().decode(readBytes('golden/ggml-kat/KAT.md'));
  const deqSha = new Map<string, string>();
  const katTypes = new Set<string>();
  let input = '';
  for (const line of kat.split('\n')) {
    const m = /^#### input (\S+)/.exec(line);
    if (m) input = m[1];
    const r = /^\| ([A-Z0-9_]+) \| \d+ \| [0-9a-f]{16} \| ([0-9a-f]{16}|-) \|/.exec(line);
    if (r && input) {
      katTypes.add(r[1]);
      if (r[2] !== '-') deqSha.set(`${input}.${r[1]}`, r[2]);
    }
  }
  it('covers every type of the set', () => expectCovered([...katTypes]));
  const inputs = { kat_input: 'kat_input.f32', generate_data_glibc: 'generate_data_0_4096_glibc.f32' };
  for (const [name, file] of Object.entries(inputs)) {
    for (const ggmlName of katTypes) {
      // The ref file is from_float_ref; for IQ4_NL that is the ntry = -1 path, not the default codec.
      const codec = ggmlName === 'IQ4_NL' ? iq4_nlRef : codecFor(ggmlName);
      if (!codec) continue;
      it(`${ggmlName} ${name}: bytes and dequantized sha256 equal ggml's`, () => {
        const x = readF32(`golden/ggml-kat/${file}`);
        const expected = readBytes(`golden/ggml-kat/${name}.${ggmlName}.ref.bin`);
        expectSameBytes(codec.quantize(x), expected, `${ggmlName}/${name}`);
        const want = deqSha.get(`${name}.${ggmlName}`);
        if (want !== undefined) expect(sha256(codec.dequantize(expected, x.length)).slice(0, 16)).toBe(want);
      });
    }
    it(`IQ4_NL ${name}: the ggml_quantize_chunk path (ntry = 7) equals ggml's chunk bytes`, () => {
      const x = readF32(`golden/ggml-kat/${file}`);
      expectSameBytes(
        iq4_nl.quantize(x),
        readBytes(`golden/ggml-kat/${name}.IQ4_NL.chunk.bin`),
        `IQ4_NL chunk/${name}`,
      );
    });
  }
});
