// Bit-exactness against ggml's own bytes: every golden case of every format in the `formats` table.
import { describe, expect, it } from 'vitest';
import type { Codec } from './codec.js';
import { formats } from './index.js';
import { bitsOf, firstDiff, readBytes, readF32, readJson, sha256 } from './test/fixtures.js';

interface SynthManifest {
  cases: { name: string; rows: number; cols: number; file: string }[];
  types: { type: string; files: { quantized: string; dequantized: string } }[];
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

describe('ggml-synthetic golden set', () => {
  const manifest = readJson<SynthManifest>('golden/ggml-synthetic/manifest.json');
  const covered = manifest.types.filter((t) => codecFor(t.type));
  it('covers the formats of this package', () => {
    expect(covered.map((t) => t.type)).toEqual(expect.arrayContaining(['f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1']));
  });
  for (const t of covered) {
    const codec = codecFor(t.type) as Codec;
    for (const c of manifest.cases) {
      it(`${t.type} ${c.name}: quantize and dequantize bit-exact`, () => {
        const input = readF32(`golden/ggml-synthetic/${c.file}`);
        const expected = readBytes(`golden/ggml-synthetic/${t.files.quantized.replace('CASE', c.name)}`);
        expectSameBytes(codec.quantize(input, { rowLength: c.cols }), expected, `${t.type}/${c.name} quantize`);
        const deq = readF32(`golden/ggml-synthetic/${t.files.dequantized.replace('CASE', c.name)}`);
        expectSameBytes(bitsOf(codec.dequantize(expected, input.length)), bitsOf(deq), `${t.type}/${c.name} dequantize`);
      });
    }
  }
});

describe('ggml-real golden set (stories260K embedding and edge rows)', () => {
  const manifest = readJson<RealManifest>('golden/ggml-real/manifest.json');
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

describe('ggml-kat known answers (from_float_ref)', () => {
  // KAT.md lists the sha256[:16] of ggml's dequantized output; the quantized bytes are files.
  const kat = new TextDecoder().decode(readBytes('golden/ggml-kat/KAT.md'));
  const deqSha = new Map<string, string>();
  let input = '';
  for (const line of kat.split('\n')) {
    const m = /^#### input (\S+)/.exec(line);
    if (m) input = m[1];
    const r = /^\| ([A-Z0-9_]+) \| \d+ \| [0-9a-f]{16} \| ([0-9a-f]{16}) \|/.exec(line);
    if (r && input) deqSha.set(`${input}.${r[1]}`, r[2]);
  }
  const inputs = { kat_input: 'kat_input.f32', generate_data_glibc: 'generate_data_0_4096_glibc.f32' };
  for (const [name, file] of Object.entries(inputs)) {
    for (const codec of Object.values(formats)) {
      const ggmlName = codec.name.toUpperCase(); // KAT files spell K-quants Q4_K, like the upper-cased name
      const refFile = `golden/ggml-kat/${name}.${ggmlName}.ref.bin`;
      let expected: Uint8Array;
      try {
        expected = readBytes(refFile);
      } catch {
        continue; // no KAT for this type (f32)
      }
      it(`${ggmlName} ${name}: bytes and dequantized sha256 equal ggml's`, () => {
        const x = readF32(`golden/ggml-kat/${file}`);
        expectSameBytes(codec.quantize(x), expected, `${ggmlName}/${name}`);
        const want = deqSha.get(`${name}.${ggmlName}`);
        if (want !== undefined) expect(sha256(codec.dequantize(expected, x.length)).slice(0, 16)).toBe(want);
      });
    }
  }
});
