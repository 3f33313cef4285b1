/**
 * WGSL decoders of the ggml block formats, reading the raw GGUF bytes from a `array<u32>` storage binding.
 *
 * Every format gives two functions, generated for a binding name `W` (a kernel may bind several weights):
 * - `W_get(blk, j) -> f32`: element j of the block that starts at byte `blk` (get_rows, tiles, KV caches);
 * - `W_dot(blk, u, xv) -> f32`: the dot of 32 consecutive elements (unit `u` of the block) with `xv`, eight vec4s of
 *   activations. Block formats have 32-element units (a 256-block has 8); the hot formats decode a whole u32 of
 *   quants at a time, the others fall back to `W_get` per element.
 *
 * Byte offsets need not be 4-aligned (Q4_0 blocks are 18 bytes): `W_b32` joins two words.
 */
import type { DTypeName } from '@nibble/tensor';

/** Layout facts the kernels need: elements per block and bytes per block (scalar types: 1 element). */
export interface GpuFormat {
  readonly dtype: DTypeName;
  readonly blockSize: number;
  readonly blockBytes: number;
  /** Whether `dot` decodes words at a time (else it loops over `get`). */
  readonly fastDot: boolean;
  /** WGSL for binding `W` (the name is substituted). */
  code(w: string): string;
  /**
   * The word-sliced matrix-vector path (Q4_0, Q8_0): a block's quants are `words` u32 words; a thread takes `wpp`
   * consecutive words of one block (a "part") and `W_part(blk, j, xp)` returns the scaled dot of part j with the
   * activations in `xp`, which the kernel loads as the vec4s at `xOffsets(wpp)` (relative to `8·block + wpp·j`).
   * `W_vals(blk, j)` returns the part's weights themselves, as the vec4s of elements `4·(wpp·j + offset)..`.
   */
  readonly sliced?: {
    readonly words: number;
    xOffsets(wpp: number): number[];
    code(w: string, wpp: number): string;
    /**
     * The same part against q8 activations (`xq`: the int8 quants of the same elements, four to a word, as
     * `xOffsets` places them): `${w}_part8(blk, j, xq)` returns the weight scale times the integer dot (dot4I8Packed),
     * to be multiplied by the activations' block scale. Needs WGSL's packed_4x8_integer_dot_product.
     */
    int8(w: string, wpp: number): string;
    /**
     * The same parts over the split layout (matvec option `split`, {@link splitBlocks}): `${w}_spart(bi, j, sbw, xp)`
     * (or `${w}_spart8(bi, j, sbw, xq)` with `int8`) for block index `bi` of the chunk, whose scales start at u32
     * word `sbw`. With `vec4` (wpp a multiple of 4) the binding is `array<vec4u>` and a part's quants are whole
     * 16-byte loads.
     */
    split?(w: string, wpp: number, int8: boolean, vec4: boolean): string;
  };
}

/** Byte access helpers over a u32 array. */
function bytes(w: string): string {
  return `
fn ${w}_b8(o: u32) -> u32 { return (${w}[o >> 2u] >> ((o & 3u) << 3u)) & 0xffu; }
fn ${w}_b16(o: u32) -> u32 { return (${w}[o >> 2u] >> ((o & 2u) << 3u)) & 0xffffu; }
fn ${w}_b32(o: u32) -> u32 {
  let i = o >> 2u;
  let s = (o & 3u) << 3u;
  if (s == 0u) { return ${w}[i]; }
  return (${w}[i] >> s) | (${w}[i + 1u] << (32u - s));
}
fn ${w}_h(o: u32) -> f32 { return unpack2x16float(${w}_b16(o)).x; }
fn ${w}_i8(o: u32) -> f32 { return f32(bitcast<i32>(${w}_b8(o) << 24u) >> 24u); }`;
}

/** The generic unit dot: 32 elements through `get`. */
function slowDot(w: string, unitsPerBlock: number): string {
  return `
fn ${w}_dot(blk: u32, u: u32, xv: ptr<function, array<vec4f, 8>>) -> f32 {
  var s = 0.0;
  let j0 = ${unitsPerBlock === 1 ? '0u' : 'u * 32u'};
  for (var k = 0u; k < 8u; k++) {
    let w4 = vec4f(${w}_get(blk, j0 + 4u * k), ${w}_get(blk, j0 + 4u * k + 1u), ${w}_get(blk, j0 + 4u * k + 2u), ${w}_get(blk, j0 + 4u * k + 3u));
    s += dot(w4, (*xv)[k]);
  }
  return s;
}`;
}

/** Four unsigned bytes of a word as a vec4u. */
const unpackU8 = `fn u8x4(q: u32) -> vec4u { return (vec4u(q) >> vec4u(0u, 8u, 16u, 24u)) & vec4u(255u); }
fn i8x4(q: u32) -> vec4f { return vec4f(bitcast<vec4i>(vec4u(q) << vec4u(24u, 16u, 8u, 0u)) >> vec4u(24u)); }`;

/**
 * `wpp` words of quants starting at byte `q0` (2-aligned: Q4_0/Q8_0 blocks are 18/34 bytes), each joined from two
 * aligned loads, into `w0..`; a 16-bit shift when q0 is not 4-aligned. The scale is the f16 at byte `blk`.
 */
function slicedWords(w: string, wpp: number): string {
  const lines = [
    `let dword = ${w}[blk >> 2u];`,
    `let d = unpack2x16float(dword >> ((blk & 2u) * 8u)).x;`,
    `let i0 = q0 >> 2u;`,
    `let sh = (q0 & 2u) * 8u;`,
    `let sl = 16u - sh;`,
    `var lo = ${w}[i0];`,
  ];
  for (let i = 0; i < wpp; i++) {
    lines.push(`let n${i} = ${w}[i0 + ${i + 1}u];`);
    // sh = 16: (lo >> 16) | (n << 16); sh = 0: lo (the << 16 << 16 clears n).
    lines.push(`let w${i} = (${i === 0 ? 'lo' : `n${i - 1}`} >> sh) | ((n${i} << 16u) << sl);`);
  }
  return lines.join('\n  ');
}

/**
 * Nibbles and bytes to floats without integer conversions (a quarter-rate instruction on NVIDIA): OR a small integer
 * into the mantissa of 2^23 and subtract. Q4_0: 2^23 + 8 takes the offset too; Q8_0: bytes flipped to unsigned + 128.
 */
const magic = `fn nib4(q: u32) -> vec4f { return bitcast<vec4f>(((vec4u(q) >> vec4u(0u, 8u, 16u, 24u)) & vec4u(15u)) | vec4u(0x4b000000u)) - vec4f(8388616.0); }
fn sb4(q: u32) -> vec4f { return bitcast<vec4f>(((vec4u(q ^ 0x80808080u) >> vec4u(0u, 8u, 16u, 24u)) & vec4u(255u)) | vec4u(0x4b000000u)) - vec4f(8388736.0); }`;

/** Shared helpers every kernel that decodes includes once. */
export const formatPrelude = `${unpackU8}
${magic}
const IQ4NL = array<f32, 16>(-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0, 1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
const MXFP4 = array<f32, 16>(0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 0.0, -1.0, -2.0, -3.0, -4.0, -6.0, -8.0, -12.0);
fn e8m0_half(e: u32) -> f32 { if (e < 2u) { return bitcast<f32>(0x00200000u << e); } return bitcast<f32>((e - 1u) << 23u); }
/** 6-bit scale and min j of a Q4_K/Q5_K block whose 12 scale bytes start at byte sc. */
fn ksm(b0: u32, b4: u32, b8: u32, j: u32) -> vec2u {
  if (j < 4u) { return vec2u(b0 & 63u, b4 & 63u); }
  return vec2u((b8 & 15u) | ((b0 >> 6u) << 4u), (b8 >> 4u) | ((b4 >> 6u) << 4u));
}`;

function q4_0(w: string): string {
  return `${bytes(w)}
fn ${w}_get(blk: u32, j: u32) -> f32 {
  let q = ${w}_b8(blk + 2u + (j & 15u));
  return ${w}_h(blk) * (f32(select(q & 15u, q >> 4u, j >= 16u)) - 8.0);
}
fn ${w}_dot(blk: u32, u: u32, xv: ptr<function, array<vec4f, 8>>) -> f32 {
  var s = 0.0;
  for (var k = 0u; k < 4u; k++) {
    let q = u8x4(${w}_b32(blk + 2u + 4u * k));
    s += dot(vec4f(q & vec4u(15u)) - 8.0, (*xv)[k]) + dot(vec4f(q >> vec4u(4u)) - 8.0, (*xv)[k + 4u]);
  }
  return ${w}_h(blk) * s;
}`;
}

/** Q4_0 part j: words j·wpp.. of the 4; lows are elements 4i..4i+3, highs 16 + 4i..; xp = lows then highs. */
const q4_0Dot = (wpp: number) => `var s = 0.0;
  ${Array.from({ length: wpp }, (_, i) => `s += dot(nib4(w${i}), (*xp)[${i}]) + dot(nib4(w${i} >> 4u), (*xp)[${wpp + i}]);`).join('\n  ')}
  return d * s;`;
const q4_0Dot8 = (wpp: number) => `var s = 0i;
  ${Array.from({ length: wpp }, (_, i) => `s += dot4I8Packed(nib_s8(w${i} & 0x0f0f0f0fu), (*xq)[${i}]) + dot4I8Packed(nib_s8((w${i} >> 4u) & 0x0f0f0f0fu), (*xq)[${wpp + i}]);`).join('\n  ')}
  return d * f32(s);`;
const q4_0Sliced = {
  words: 4,
  xOffsets: (wpp: number) => [
    ...Array.from({ length: wpp }, (_, i) => i),
    ...Array.from({ length: wpp }, (_, i) => 4 + i),
  ],
  code: (w: string, wpp: number) => `
fn ${w}_part(blk: u32, j: u32, xp: ptr<function, array<vec4f, ${2 * wpp}>>) -> f32 {
  let q0 = blk + 2u + ${4 * wpp}u * j;
  ${slicedWords(w, wpp)}
  ${q4_0Dot(wpp)}
}
fn ${w}_vals(blk: u32, j: u32) -> array<vec4f, ${2 * wpp}> {
  let q0 = blk + 2u + ${4 * wpp}u * j;
  ${slicedWords(w, wpp)}
  return array<vec4f, ${2 * wpp}>(${[...Array.from({ length: wpp }, (_, i) => `d * nib4(w${i})`), ...Array.from({ length: wpp }, (_, i) => `d * nib4(w${i} >> 4u)`)].join(', ')});
}`,
  int8: (w: string, wpp: number) => `
fn ${w}_part8(blk: u32, j: u32, xq: ptr<function, array<u32, ${2 * wpp}>>) -> f32 {
  let q0 = blk + 2u + ${4 * wpp}u * j;
  ${slicedWords(w, wpp)}
  ${q4_0Dot8(wpp)}
}`,
};

/** Q8_0 part j: words j·wpp.. of the 8, elements 4i..4i+3 each. */
const q8_0Dot = (wpp: number) => `var s = 0.0;
  ${Array.from({ length: wpp }, (_, i) => `s += dot(sb4(w${i}), (*xp)[${i}]);`).join('\n  ')}
  return d * s;`;
const q8_0Dot8 = (wpp: number) => `var s = 0i;
  ${Array.from({ length: wpp }, (_, i) => `s += dot4I8Packed(w${i}, (*xq)[${i}]);`).join('\n  ')}
  return d * f32(s);`;
const q8_0Sliced = {
  words: 8,
  xOffsets: (wpp: number) => Array.from({ length: wpp }, (_, i) => i),
  code: (w: string, wpp: number) => `
fn ${w}_part(blk: u32, j: u32, xp: ptr<function, array<vec4f, ${wpp}>>) -> f32 {
  let q0 = blk + 2u + ${4 * wpp}u * j;
  ${slicedWords(w, wpp)}
  ${q8_0Dot(wpp)}
}
fn ${w}_vals(blk: u32, j: u32) -> array<vec4f, ${wpp}> {
  let q0 = blk + 2u + ${4 * wpp}u * j;
  ${slicedWords(w, wpp)}
  return array<vec4f, ${wpp}>(${Array.from({ length: wpp }, (_, i) => `d * sb4(w${i})`).join(', ')});
}`,
  int8: (w: string, wpp: number) => `
fn ${w}_part8(blk: u32, j: u32, xq: ptr<function, array<u32, ${wpp}>>) -> f32 {
  let q0 = blk + 2u + ${4 * wpp}u * j;
  ${slicedWords(w, wpp)}
  ${q8_0Dot8(wpp)}
}`,
};

/**
 * The split layout of a chunk of `nblk` Q4_0/Q8_0 blocks (matvec option `split`): a 16-byte header (u32 word 0: the
 * word index of the scales), every block's quant bytes (`blockBytes - 2`) back to back from byte 16, then every
 * block's f16 scale (2 bytes each), zero-padded to 16 bytes. The bytes of each block are the GGUF bytes, only placed
 * apart, so quants are 16-byte aligned; {@link joinBlocks} undoes it.
 */
export function splitBlocks(data: Uint8Array, blockBytes: number, nblk: number): Uint8Array {
  const qb = blockBytes - 2;
  const out = new Uint8Array(splitBytes(blockBytes, nblk));
  const sc = 16 + nblk * qb;
  new DataView(out.buffer).setUint32(0, sc / 4, true);
  for (let b = 0; b < nblk; b++) {
    const o = b * blockBytes;
    out[sc + 2 * b] = data[o];
    out[sc + 2 * b + 1] = data[o + 1];
    out.set(data.subarray(o + 2, o + blockBytes), 16 + b * qb);
  }
  return out;
}

/** The GGUF bytes of {@link splitBlocks}'s layout. */
export function joinBlocks(split: Uint8Array, blockBytes: number, nblk: number): Uint8Array {
  const qb = blockBytes - 2;
  const out = new Uint8Array(nblk * blockBytes);
  const sc = 16 + nblk * qb;
  for (let b = 0; b < nblk; b++) {
    const o = b * blockBytes;
    out[o] = split[sc + 2 * b];
    out[o + 1] = split[sc + 2 * b + 1];
    out.set(split.subarray(16 + b * qb, 16 + (b + 1) * qb), o + 2);
  }
  return out;
}

/** Bytes of {@link splitBlocks}'s layout: header, quants, scales, rounded up to 16. */
export function splitBytes(blockBytes: number, nblk: number): number {
  return 16 + Math.ceil((nblk * blockBytes) / 16) * 16;
}

/**
 * A part over the split layout for the split matvec: block `bi`'s quants are u32 words `4 + words·bi..` (16- or
 * 32-byte aligned), its scale the f16 half `bi & 1` of word `sbw + bi / 2`; with `vec4` the binding is
 * `array<vec4u>` and the part's words come as wpp / 4 whole vec4 loads.
 */
function splitPart(
  w: string,
  words: number,
  wpp: number,
  int8: boolean,
  vec4: boolean,
  nx: number,
  body: string,
): string {
  const lines = ['let sw = sbw + (bi >> 1u);'];
  lines.push(
    vec4
      ? `let d = unpack2x16float(${w}[sw >> 2u][sw & 3u] >> ((bi & 1u) * 16u)).x;`
      : `let d = unpack2x16float(${w}[sw] >> ((bi & 1u) * 16u)).x;`,
  );
  if (vec4) {
    lines.push(`let v0i = 1u + bi * ${words / 4}u + ${wpp / 4}u * j;`);
    for (let k = 0; k < wpp / 4; k++) {
      lines.push(`let v${k} = ${w}[v0i + ${k}u];`);
      for (let c = 0; c < 4; c++) lines.push(`let w${4 * k + c} = v${k}.${'xyzw'[c]};`);
    }
  } else {
    lines.push(`let q0 = 4u + bi * ${words}u + ${wpp}u * j;`);
    for (let i = 0; i < wpp; i++) lines.push(`let w${i} = ${w}[q0 + ${i}u];`);
  }
  const xt = int8 ? `xq: ptr<function, array<u32, ${nx}>>` : `xp: ptr<function, array<vec4f, ${nx}>>`;
  return `
fn ${w}_spart${int8 ? '8' : ''}(bi: u32, j: u32, sbw: u32, ${xt}) -> f32 {
  ${lines.join('\n  ')}
  ${body}
}`;
}

/**
 * Q4_0/Q8_0 decoders over the split layout for every other kernel (get_rows, tiles, the GGUF-offset matvec parts):
 * `blk` is still the GGUF byte offset of the block in its chunk, so block index `blk / blockBytes`; the scales' word
 * index is the header's word 0.
 */
function splitFormat(base: GpuFormat): GpuFormat {
  const sl = base.sliced!;
  const words = sl.words;
  const bb = base.blockBytes;
  const q4 = base.dtype === 'q4_0';
  const nx = (wpp: number) => (q4 ? 2 * wpp : wpp);
  const dot = (wpp: number) => (q4 ? q4_0Dot(wpp) : q8_0Dot(wpp));
  const dot8 = (wpp: number) => (q4 ? q4_0Dot8(wpp) : q8_0Dot8(wpp));
  // Word k of block bi's quants and the block's scale.
  const words_ = (w: string, wpp: number) =>
    [
      `let bi = blk / ${bb}u;`,
      `let d = ${w}_sd(bi);`,
      `let q0 = 4u + bi * ${words}u + ${wpp}u * j;`,
      ...Array.from({ length: wpp }, (_, i) => `let w${i} = ${w}[q0 + ${i}u];`),
    ].join('\n  ');
  const code = (w: string) => `
fn ${w}_sd(bi: u32) -> f32 { let sw = ${w}[0] + (bi >> 1u); return unpack2x16float(${w}[sw] >> ((bi & 1u) * 16u)).x; }
fn ${w}_qw(bi: u32, k: u32) -> u32 { return ${w}[4u + bi * ${words}u + k]; }
fn ${w}_get(blk: u32, j: u32) -> f32 {
  let bi = blk / ${bb}u;
  ${
    q4
      ? `let k = j & 15u;
  let q = (${w}_qw(bi, k >> 2u) >> ((k & 3u) * 8u)) & 0xffu;
  return ${w}_sd(bi) * (f32(select(q & 15u, q >> 4u, j >= 16u)) - 8.0);`
      : `let q = (${w}_qw(bi, j >> 2u) >> ((j & 3u) * 8u)) & 0xffu;
  return ${w}_sd(bi) * f32(bitcast<i32>(q << 24u) >> 24u);`
  }
}
fn ${w}_dot(blk: u32, u: u32, xv: ptr<function, array<vec4f, 8>>) -> f32 {
  let bi = blk / ${bb}u;
  var s = 0.0;
  ${
    q4
      ? `for (var k = 0u; k < 4u; k++) {
    let q = u8x4(${w}_qw(bi, k));
    s += dot(vec4f(q & vec4u(15u)) - 8.0, (*xv)[k]) + dot(vec4f(q >> vec4u(4u)) - 8.0, (*xv)[k + 4u]);
  }`
      : `for (var k = 0u; k < 8u; k++) { s += dot(i8x4(${w}_qw(bi, k)), (*xv)[k]); }`
  }
  return ${w}_sd(bi) * s;
}`;
  const vals = (wpp: number) =>
    q4
      ? [
          ...Array.from({ length: wpp }, (_, i) => `d * nib4(w${i})`),
          ...Array.from({ length: wpp }, (_, i) => `d * nib4(w${i} >> 4u)`),
        ]
      : Array.from({ length: wpp }, (_, i) => `d * sb4(w${i})`);
  return Object.freeze({
    ...base,
    code,
    sliced: {
      words,
      xOffsets: sl.xOffsets,
      code: (w: string, wpp: number) => `
fn ${w}_part(blk: u32, j: u32, xp: ptr<function, array<vec4f, ${nx(wpp)}>>) -> f32 {
  ${words_(w, wpp)}
  ${dot(wpp)}
}
fn ${w}_vals(blk: u32, j: u32) -> array<vec4f, ${nx(wpp)}> {
  ${words_(w, wpp)}
  return array<vec4f, ${nx(wpp)}>(${vals(wpp).join(', ')});
}`,
      int8: (w: string, wpp: number) => `
fn ${w}_part8(blk: u32, j: u32, xq: ptr<function, array<u32, ${nx(wpp)}>>) -> f32 {
  ${words_(w, wpp)}
  ${dot8(wpp)}
}`,
      split: (w: string, wpp: number, int8: boolean, vec4: boolean) =>
        splitPart(w, words, wpp, int8, vec4, nx(wpp), int8 ? dot8(wpp) : dot(wpp)),
    },
  });
}

function iq4_nl(w: string): string {
  return `${bytes(w)}
fn ${w}_get(blk: u32, j: u32) -> f32 {
  let q = ${w}_b8(blk + 2u + (j & 15u));
  return ${w}_h(blk) * IQ4NL[select(q & 15u, q >> 4u, j >= 16u)];
}
fn ${w}_dot(blk: u32, u: u32, xv: ptr<function, array<vec4f, 8>>) -> f32 {
  var s = 0.0;
  for (var k = 0u; k < 4u; k++) {
    let q = u8x4(${w}_b32(blk + 2u + 4u * k));
    let lo = q & vec4u(15u);
    let hi = q >> vec4u(4u);
    s += dot(vec4f(IQ4NL[lo.x], IQ4NL[lo.y], IQ4NL[lo.z], IQ4NL[lo.w]), (*xv)[k]);
    s += dot(vec4f(IQ4NL[hi.x], IQ4NL[hi.y], IQ4NL[hi.z], IQ4NL[hi.w]), (*xv)[k + 4u]);
  }
  return ${w}_h(blk) * s;
}`;
}

function mxfp4(w: string): string {
  return `${bytes(w)}
fn ${w}_get(blk: u32, j: u32) -> f32 {
  let q = ${w}_b8(blk + 1u + (j & 15u));
  return e8m0_half(${w}_b8(blk)) * MXFP4[select(q & 15u, q >> 4u, j >= 16u)];
}
fn ${w}_dot(blk: u32, u: u32, xv: ptr<function, array<vec4f, 8>>) -> f32 {
  var s = 0.0;
  for (var k = 0u; k < 4u; k++) {
    let q = u8x4(${w}_b32(blk + 1u + 4u * k));
    let lo = q & vec4u(15u);
    let hi = q >> vec4u(4u);
    s += dot(vec4f(MXFP4[lo.x], MXFP4[lo.y], MXFP4[lo.z], MXFP4[lo.w]), (*xv)[k]);
    s += dot(vec4f(MXFP4[hi.x], MXFP4[hi.y], MXFP4[hi.z], MXFP4[hi.w]), (*xv)[k + 4u]);
  }
  return e8m0_half(${w}_b8(blk)) * s;
}`;
}

function q4_1(w: string): string {
  return `${bytes(w)}
fn ${w}_get(blk: u32, j: u32) -> f32 {
  let q = ${w}_b8(blk + 4u + (j & 15u));
  return ${w}_h(blk) * f32(select(q & 15u, q >> 4u, j >= 16u)) + ${w}_h(blk + 2u);
}
fn ${w}_dot(blk: u32, u: u32, xv: ptr<function, array<vec4f, 8>>) -> f32 {
  var s = 0.0;
  var sx = vec4f(0.0);
  for (var k = 0u; k < 4u; k++) {
    let q = u8x4(${w}_b32(blk + 4u + 4u * k));
    s += dot(vec4f(q & vec4u(15u)), (*xv)[k]) + dot(vec4f(q >> vec4u(4u)), (*xv)[k + 4u]);
    sx += (*xv)[k] + (*xv)[k + 4u];
  }
  return ${w}_h(blk) * s + ${w}_h(blk + 2u) * (sx.x + sx.y + sx.z + sx.w);
}`;
}

/** Q5_0 (qh at 2, qs at 6, offset -16) and Q5_1 (m at 2, qh at 4, qs at 8, + m). */
function q5(w: string, one: boolean): string {
  const qh = one ? 4 : 2;
  const qs = one ? 8 : 6;
  const tail = one ? `+ ${w}_h(blk + 2u)` : '';
  const off = one ? '' : ' - 16.0';
  return `${bytes(w)}
fn ${w}_get(blk: u32, j: u32) -> f32 {
  let q = ${w}_b8(blk + ${qs}u + (j & 15u));
  let h = (${w}_b32(blk + ${qh}u) >> j) & 1u;
  return ${w}_h(blk) * (f32(select(q & 15u, q >> 4u, j >= 16u) | (h << 4u))${off}) ${tail};
}
fn ${w}_dot(blk: u32, u: u32, xv: ptr<function, array<vec4f, 8>>) -> f32 {
  var s = 0.0;
  let qh = ${w}_b32(blk + ${qh}u);
  ${one ? 'var sx = vec4f(0.0);' : ''}
  for (var k = 0u; k < 4u; k++) {
    let q = u8x4(${w}_b32(blk + ${qs}u + 4u * k));
    let hl = ((vec4u(qh) >> (vec4u(0u, 1u, 2u, 3u) + 4u * k)) & vec4u(1u)) << vec4u(4u);
    let hh = ((vec4u(qh) >> (vec4u(16u, 17u, 18u, 19u) + 4u * k)) & vec4u(1u)) << vec4u(4u);
    s += dot(vec4f((q & vec4u(15u)) | hl)${off}, (*xv)[k]) + dot(vec4f((q >> vec4u(4u)) | hh)${off}, (*xv)[k + 4u]);
    ${one ? 'sx += (*xv)[k] + (*xv)[k + 4u];' : ''}
  }
  return ${w}_h(blk) * s ${one ? `+ ${w}_h(blk + 2u) * (sx.x + sx.y + sx.z + sx.w)` : ''};
}`;
}

function q8_0(w: string): string {
  return `${bytes(w)}
fn ${w}_get(blk: u32, j: u32) -> f32 { return ${w}_h(blk) * ${w}_i8(blk + 2u + j); }
fn ${w}_dot(blk: u32, u: u32, xv: ptr<function, array<vec4f, 8>>) -> f32 {
  var s = 0.0;
  for (var k = 0u; k < 8u; k++) { s += dot(i8x4(${w}_b32(blk + 2u + 4u * k)), (*xv)[k]); }
  return ${w}_h(blk) * s;
}`;
}

function q8_1(w: string): string {
  return `${bytes(w)}
fn ${w}_get(blk: u32, j: u32) -> f32 { return ${w}_h(blk) * ${w}_i8(blk + 4u + j); }
fn ${w}_dot(blk: u32, u: u32, xv: ptr<function, array<vec4f, 8>>) -> f32 {
  var s = 0.0;
  for (var k = 0u; k < 8u; k++) { s += dot(i8x4(${w}[(blk >> 2u) + 1u + k]), (*xv)[k]); }
  return ${w}_h(blk) * s;
}`;
}

function q8_K(w: string): string {
  return `${bytes(w)}
fn ${w}_get(blk: u32, j: u32) -> f32 { return bitcast<f32>(${w}[blk >> 2u]) * ${w}_i8(blk + 4u + j); }
fn ${w}_dot(blk: u32, u: u32, xv: ptr<function, array<vec4f, 8>>) -> f32 {
  var s = 0.0;
  let q0 = (blk >> 2u) + 1u + 8u * u;
  for (var k = 0u; k < 8u; k++) { s += dot(i8x4(${w}[q0 + k]), (*xv)[k]); }
  return bitcast<f32>(${w}[blk >> 2u]) * s;
}`;
}

function q4_K(w: string): string {
  return `${bytes(w)}
fn ${w}_sm(blk: u32, sb: u32) -> vec2f {
  let j = sb;
  let lo = select(j, j - 4u, j >= 4u);
  let sm = ksm(${w}_b8(blk + 4u + lo), ${w}_b8(blk + 8u + lo), ${w}_b8(blk + 12u + lo), j);
  return vec2f(${w}_h(blk) * f32(sm.x), ${w}_h(blk + 2u) * f32(sm.y));
}
fn ${w}_get(blk: u32, j: u32) -> f32 {
  let sb = j >> 5u;
  let q = ${w}_b8(blk + 16u + (sb >> 1u) * 32u + (j & 31u));
  let sm = ${w}_sm(blk, sb);
  return sm.x * f32(select(q & 15u, q >> 4u, (sb & 1u) == 1u)) - sm.y;
}
fn ${w}_dot(blk: u32, u: u32, xv: ptr<function, array<vec4f, 8>>) -> f32 {
  var s = 0.0;
  var sx = vec4f(0.0);
  let base = (blk >> 2u) + 4u + (u >> 1u) * 8u;
  let sh = (u & 1u) * 4u;
  for (var k = 0u; k < 8u; k++) {
    let q = (u8x4(${w}[base + k]) >> vec4u(sh)) & vec4u(15u);
    s += dot(vec4f(q), (*xv)[k]);
    sx += (*xv)[k];
  }
  let sm = ${w}_sm(blk, u);
  return sm.x * s - sm.y * (sx.x + sx.y + sx.z + sx.w);
}`;
}

function q5_K(w: string): string {
  return `${bytes(w)}
fn ${w}_sm(blk: u32, sb: u32) -> vec2f {
  let lo = select(sb, sb - 4u, sb >= 4u);
  let sm = ksm(${w}_b8(blk + 4u + lo), ${w}_b8(blk + 8u + lo), ${w}_b8(blk + 12u + lo), sb);
  return vec2f(${w}_h(blk) * f32(sm.x), ${w}_h(blk + 2u) * f32(sm.y));
}
fn ${w}_get(blk: u32, j: u32) -> f32 {
  let sb = j >> 5u;
  let l = j & 31u;
  let q = ${w}_b8(blk + 48u + (sb >> 1u) * 32u + l);
  let h = (${w}_b8(blk + 16u + l) >> sb) & 1u;
  let sm = ${w}_sm(blk, sb);
  return sm.x * f32(select(q & 15u, q >> 4u, (sb & 1u) == 1u) | (h << 4u)) - sm.y;
}
fn ${w}_dot(blk: u32, u: u32, xv: ptr<function, array<vec4f, 8>>) -> f32 {
  var s = 0.0;
  var sx = vec4f(0.0);
  let base = (blk >> 2u) + 12u + (u >> 1u) * 8u;
  let hb = (blk >> 2u) + 4u;
  let sh = (u & 1u) * 4u;
  for (var k = 0u; k < 8u; k++) {
    let h = ((u8x4(${w}[hb + k]) >> vec4u(u)) & vec4u(1u)) << vec4u(4u);
    let q = ((u8x4(${w}[base + k]) >> vec4u(sh)) & vec4u(15u)) | h;
    s += dot(vec4f(q), (*xv)[k]);
    sx += (*xv)[k];
  }
  let sm = ${w}_sm(blk, u);
  return sm.x * s - sm.y * (sx.x + sx.y + sx.z + sx.w);
}`;
}

function q6_K(w: string): string {
  return `${bytes(w)}
fn ${w}_get(blk: u32, j: u32) -> f32 {
  let n = j >> 7u;
  let qt = (j >> 5u) & 3u;
  let l = j & 31u;
  let ql = ${w}_b8(blk + n * 64u + l + (qt & 1u) * 32u);
  let nib = select(ql & 15u, ql >> 4u, qt >= 2u);
  let h = (${w}_b8(blk + 128u + n * 32u + l) >> (2u * qt)) & 3u;
  let sc = ${w}_i8(blk + 192u + n * 8u + (l >> 4u) + 2u * qt);
  return ${w}_h(blk + 208u) * sc * (f32(nib | (h << 4u)) - 32.0);
}
fn ${w}_dot(blk: u32, u: u32, xv: ptr<function, array<vec4f, 8>>) -> f32 {
  let n = u >> 2u;
  let qt = u & 3u;
  let lo = blk + n * 64u + (qt & 1u) * 32u;
  let hi = blk + 128u + n * 32u;
  let sh = select(0u, 4u, qt >= 2u);
  var s0 = 0.0;
  var s1 = 0.0;
  for (var k = 0u; k < 8u; k++) {
    let nib = (u8x4(${w}_b32(lo + 4u * k)) >> vec4u(sh)) & vec4u(15u);
    let h = ((u8x4(${w}_b32(hi + 4u * k)) >> vec4u(2u * qt)) & vec4u(3u)) << vec4u(4u);
    let d = dot(vec4f(nib | h) - 32.0, (*xv)[k]);
    if (k < 4u) { s0 += d; } else { s1 += d; }
  }
  let sc = blk + 192u + n * 8u + 2u * qt;
  return ${w}_h(blk + 208u) * (${w}_i8(sc) * s0 + ${w}_i8(sc + 1u) * s1);
}`;
}

function q2_K(w: string): string {
  return `${bytes(w)}
fn ${w}_get(blk: u32, j: u32) -> f32 {
  let n = j >> 7u;
  let jj = (j >> 5u) & 3u;
  let half = (j >> 4u) & 1u;
  let l = j & 15u;
  let sc = ${w}_b8(blk + n * 8u + jj * 2u + half);
  let q = (${w}_b8(blk + 16u + n * 32u + half * 16u + l) >> (2u * jj)) & 3u;
  return ${w}_h(blk + 80u) * f32(sc & 15u) * f32(q) - ${w}_h(blk + 82u) * f32(sc >> 4u);
}
${slowDot(w, 8)}`;
}

function q3_K(w: string): string {
  return `${bytes(w)}
fn ${w}_get(blk: u32, j: u32) -> f32 {
  let n = j >> 7u;
  let jj = (j >> 5u) & 3u;
  let half = (j >> 4u) & 1u;
  let l = j & 15u;
  let is = n * 8u + jj * 2u + half;
  let low = select(${w}_b8(blk + 96u + is) & 15u, ${w}_b8(blk + 96u + is - 8u) >> 4u, is >= 8u);
  let high = (${w}_b8(blk + 104u + (is & 3u)) >> (2u * (is >> 2u))) & 3u;
  let sc = f32(low | (high << 4u)) - 32.0;
  let q = (${w}_b8(blk + 32u + n * 32u + half * 16u + l) >> (2u * jj)) & 3u;
  let hb = (${w}_b8(blk + half * 16u + l) >> (n * 4u + jj)) & 1u;
  return ${w}_h(blk + 108u) * sc * (f32(q) - select(4.0, 0.0, hb == 1u));
}
${slowDot(w, 8)}`;
}

function iq4_xs(w: string): string {
  return `${bytes(w)}
fn ${w}_get(blk: u32, j: u32) -> f32 {
  let ib = j >> 5u;
  let ls = ((${w}_b8(blk + 4u + (ib >> 1u)) >> (4u * (ib & 1u))) & 15u) | (((${w}_b16(blk + 2u) >> (2u * ib)) & 3u) << 4u);
  let q = ${w}_b8(blk + 8u + ib * 16u + (j & 15u));
  return ${w}_h(blk) * (f32(ls) - 32.0) * IQ4NL[select(q & 15u, q >> 4u, (j & 16u) != 0u)];
}
${slowDot(w, 8)}`;
}

function tq2_0(w: string): string {
  return `${bytes(w)}
fn ${w}_get(blk: u32, j: u32) -> f32 {
  let q = (${w}_b8(blk + (j >> 7u) * 32u + (j & 31u)) >> (2u * ((j >> 5u) & 3u))) & 3u;
  return (f32(q) - 1.0) * ${w}_h(blk + 64u);
}
${slowDot(w, 8)}`;
}

function tq1_0(w: string): string {
  return `${bytes(w)}
const ${w}_POW3 = array<u32, 5>(1u, 3u, 9u, 27u, 81u);
fn ${w}_get(blk: u32, j: u32) -> f32 {
  var byte = 0u;
  var n = 0u;
  if (j < 160u) { n = j >> 5u; byte = ${w}_b8(blk + (j & 31u)); }
  else if (j < 240u) { let k = j - 160u; n = k >> 4u; byte = ${w}_b8(blk + 32u + (k & 15u)); }
  else { let k = j - 240u; n = k >> 2u; byte = ${w}_b8(blk + 48u + (k & 3u)); }
  let q = (byte * ${w}_POW3[n]) & 255u;
  return (f32((q * 3u) >> 8u) - 1.0) * ${w}_h(blk + 52u);
}
${slowDot(w, 8)}`;
}

/** f32, f16, bf16: `blk` is the element's byte offset, `j` is 0; units are handled by the scalar matvec. */
function scalar(w: string, dtype: 'f32' | 'f16' | 'bf16'): string {
  const get =
    dtype === 'f32'
      ? `bitcast<f32>(${w}[blk >> 2u])`
      : dtype === 'f16'
        ? `${w}_h(blk)`
        : `bitcast<f32>(${w}_b16(blk) << 16u)`;
  return `${bytes(w)}
fn ${w}_get(blk: u32, j: u32) -> f32 { return ${get}; }`;
}

function fmt(
  dtype: DTypeName,
  blockSize: number,
  blockBytes: number,
  fastDot: boolean,
  code: (w: string) => string,
  sliced?: GpuFormat['sliced'],
): GpuFormat {
  return Object.freeze({ dtype, blockSize, blockBytes, fastDot, code, ...(sliced ? { sliced } : {}) });
}

/** Every format the WebGPU backend can decode. */
export const gpuFormats: Readonly<Partial<Record<DTypeName, GpuFormat>>> = Object.freeze({
  f32: fmt('f32', 1, 4, true, (w) => scalar(w, 'f32')),
  f16: fmt('f16', 1, 2, true, (w) => scalar(w, 'f16')),
  bf16: fmt('bf16', 1, 2, true, (w) => scalar(w, 'bf16')),
  q4_0: fmt('q4_0', 32, 18, true, q4_0, q4_0Sliced),
  q4_1: fmt('q4_1', 32, 20, true, q4_1),
  q5_0: fmt('q5_0', 32, 22, true, (w) => q5(w, false)),
  q5_1: fmt('q5_1', 32, 24, true, (w) => q5(w, true)),
  q8_0: fmt('q8_0', 32, 34, true, q8_0, q8_0Sliced),
  q8_1: fmt('q8_1', 32, 36, true, q8_1),
  q2_K: fmt('q2_K', 256, 84, false, q2_K),
  q3_K: fmt('q3_K', 256, 110, false, q3_K),
  q4_K: fmt('q4_K', 256, 144, true, q4_K),
  q5_K: fmt('q5_K', 256, 176, true, q5_K),
  q6_K: fmt('q6_K', 256, 210, true, q6_K),
  q8_K: fmt('q8_K', 256, 292, true, q8_K),
  iq4_nl: fmt('iq4_nl', 32, 18, true, iq4_nl),
  iq4_xs: fmt('iq4_xs', 256, 136, false, iq4_xs),
  tq1_0: fmt('tq1_0', 256, 54, false, tq1_0),
  tq2_0: fmt('tq2_0', 256, 66, false, tq2_0),
  mxfp4: fmt('mxfp4', 32, 17, true, mxfp4),
});

/** Q4_0 and Q8_0 stored in the split layout ({@link splitBlocks}; matvec option `split`). */
export const splitFormats: Readonly<Partial<Record<DTypeName, GpuFormat>>> = Object.freeze({
  q4_0: splitFormat(gpuFormats.q4_0!),
  q8_0: splitFormat(gpuFormats.q8_0!),
});
