/**
 * WGSL kernel generators. Each returns the source of one compute shader; the backend compiles each distinct source
 * once (a pipeline cache keyed by the text), so the 22 layers of a model share their pipelines.
 *
 * Every kernel binds, at group 0:
 *   0: `A`  uniform, the node's static arguments (64 u32, written once at prepare);
 *   1: `P`  storage u32, this step's params (written once per step with the inputs);
 * then its operands. Sizes that change per step (rows = tokens) are computed from `P` with `rows_of`.
 */
import { formatPrelude, type GpuFormat } from './formats.js';

/** Facts about the device that change the generated code. */
export interface KernelEnv {
  /** `enable subgroups;` and subgroupAdd reductions. */
  readonly subgroups: boolean;
  /** Smallest subgroup size the adapter reports (reductions assume threads per row are a multiple of it). */
  readonly subgroupMin: number;
  /** A software adapter (SwiftShader): small workgroups. */
  readonly software: boolean;
}

const header = `
struct Args { v: array<vec4u, 16> }
@group(0) @binding(0) var<uniform> A: Args;
@group(0) @binding(1) var<storage, read_write> P: array<u32>;
fn a(i: u32) -> u32 { return A.v[i >> 2u][i & 3u]; }
fn af(i: u32) -> f32 { return bitcast<f32>(a(i)); }
/** rows = fixed · P[p1] · P[p2] (a param index + 1, or 0 for none), arguments at i, i+1, i+2. */
fn rows_of(i: u32) -> u32 {
  var r = a(i);
  if (a(i + 1u) != 0u) { r *= P[a(i + 1u) - 1u]; }
  if (a(i + 2u) != 0u) { r *= P[a(i + 2u) - 1u]; }
  return r;
}
/** Linear workgroup index of a 2-D grid (large element counts spill into y). */
fn wg_index(wid: vec3u, nwg: vec3u) -> u32 { return wid.y * nwg.x + wid.x; }
fn f2h(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  let sign = (b >> 16u) & 0x8000u;
  let e = (b >> 23u) & 0xffu;
  var m = b & 0x7fffffu;
  if (e == 255u) { return sign | select(0x7c00u, 0x7e00u, m != 0u); }
  let ee = i32(e) - 112;
  if (ee >= 31) { return sign | 0x7c00u; }
  if (ee <= 0) {
    if (ee < -10) { return sign; }
    m = m | 0x800000u;
    let sh = u32(14 - ee);
    var h = m >> sh;
    let rem = m & ((1u << sh) - 1u);
    let half = 1u << (sh - 1u);
    if (rem > half || (rem == half && (h & 1u) != 0u)) { h += 1u; }
    return sign | h;
  }
  var h = (u32(ee) << 10u) | (m >> 13u);
  let rem = m & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0u)) { h += 1u; }
  return sign | h;
}
fn f2bf(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return ((b >> 16u) | 64u) & 0xffffu; }
  return ((b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u) & 0xffffu;
}
/** Correctly rounded a / b in the cases that matter (one Newton step on the GPU's approximate division). */
fn div_rn(x: f32, y: f32) -> f32 {
  let q = x / y;
  let r = fma(-q, y, x);
  return fma(r, 1.0 / y, q);
}
`;

function enableSubgroups(env: KernelEnv): string {
  return env.subgroups ? 'enable subgroups;\ndiagnostic(off, subgroup_uniformity);\n' : '';
}

/** Positions of rows: a param (`P[off] + r`, stride 0) or binding `Pos` (i32, `Pos[off + r]`, stride 1), args i, i+1. */
const positions = `
fn pos_of(i: u32, r: u32) -> u32 {
  if (a(i + 1u) == 0u) { return P[a(i)] + r; }
  return u32(Pos[a(i) + r]);
}`;

// ---- matrix-vector -------------------------------------------------------------------------------------------------

/** How a matvec writes its rows. */
export interface MatvecEpilogue {
  readonly bias: boolean;
  readonly residual: boolean;
  /** Rotate row pairs (normal rope) with the cos/sin table `T`. */
  readonly rope: boolean;
  /** Write into a KV cache at the row's position instead of a value. */
  readonly cache: 'none' | 'f32' | 'f16';
}

/** Shape of the matvec thread grid. */
export interface MatvecShape {
  /** Threads per workgroup. */
  readonly wg: number;
  /** Threads that share one group of rows (a power of two dividing wg). */
  readonly tpr: number;
  /** Rows each thread group computes (even). */
  readonly rows: number;
  /**
   * Word-sliced formats (Q4_0, Q8_0): quant words per thread and block (a power of two dividing the block's words);
   * 0 or absent: 32-element units per thread.
   */
  readonly wpp?: number;
  /** Word-sliced: parts per loop iteration (their loads in flight together; default 1). */
  readonly unroll?: number;
  /**
   * Word-sliced Q4_0/Q8_0 only: `X` holds the activations as q8 blocks ({@link quantizeQ8Kernel}'s layout) and
   * parts are integer dots (dot4I8Packed), as llama.cpp's mmvq. Needs WGSL's packed_4x8_integer_dot_product;
   * the norm prologue is then the quantize kernel's.
   */
  readonly int8?: boolean;
  /**
   * Word-sliced Q4_0/Q8_0 only: the weights are bound in the split layout (`splitBlocks`: quants back to back, then
   * the scales), so a part's quants are aligned words; with wpp a multiple of 4, whole vec4<u32> loads.
   */
  readonly split?: boolean;
  /**
   * With `int8` and wpp a multiple of 4: the q8 activations bound as `array<vec4u>`, a part's quants read as whole
   * 16-byte loads (the host sets it only where K is a multiple of 128, so every row's quants are 16-byte aligned).
   */
  readonly x4?: boolean;
}

/** One weight of a fused matvec and how its rows are written. */
export interface MatvecSegment {
  readonly f: GpuFormat;
  readonly epi: MatvecEpilogue;
}

/** What one matvec dispatch computes. */
export interface MatvecSpec {
  /** 1-3 weights over the same activations (q, k, v), each with its own rows, output and epilogue. */
  readonly segs: readonly MatvecSegment[];
  /** Two weights (gate, up) of equal shape whose rows combine into `act(gate) · up` (a GLU); `segs` has both. */
  readonly glu?: 'silu' | 'gelu';
  /** rms_norm of the activations (times weight `NW`) computed in the prologue, replacing a norm kernel. */
  readonly norm: boolean;
}

/**
 * Matrix-vector (one activation row per workgroup row of the grid: `wid.y` is the token). A workgroup has
 * `wg / tpr` thread groups; each computes `rows` weight rows, every thread striding over 32-element units and keeping
 * one accumulator per row, so the 32 activations of a unit are loaded once for all rows. Word-sliced formats (Q4_0,
 * Q8_0, `shape.wpp`) stride over parts of blocks instead: neighbouring threads read neighbouring quant words of one
 * row (coalesced) and the vec4s of activations those words multiply. Rows are then summed with
 * subgroupAdd (or a shared-memory tree) and one thread per row pair runs the epilogue (bias, rope, residual, store or
 * KV write). Several weights over the same activations (q, k, v) share one dispatch: the grid's workgroups are split
 * between them. With `norm`, every workgroup first computes the activation row's rms and normalises as it loads.
 *
 * Bindings: 2 X, 3 Y0, 4 Bias, 5 Res, 6 T, 7 Pos, 8 NW, 9-11 W0-W2, 12-13 Y1-Y2.
 * Args: 0 K, 1 eps, 12/13 positions; per segment s at 16 + 8s: N, rowBytes, first row of the chunk, chunk rows,
 * first workgroup, headDim, nRot, rope pairs.
 */
export function matvecKernel(spec: MatvecSpec, env: KernelEnv, s: MatvecShape): string {
  const { segs, glu, norm } = spec;
  const f0 = segs[0].f;
  const scalar = f0.blockSize === 1;
  const groups = s.wg / s.tpr;
  const R = s.rows;
  const useSg = env.subgroups && s.tpr % env.subgroupMin === 0 && s.tpr >= env.subgroupMin;
  const anyRope = segs.some((g) => g.epi.rope);
  const anyCache = segs.some((g) => g.epi.cache !== 'none');
  const e0 = segs[0].epi;
  const outs = glu ? 1 : segs.length;
  const bind: string[] = [
    scalar
      ? '@group(0) @binding(2) var<storage, read_write> X: array<f32>;'
      : '@group(0) @binding(2) var<storage, read_write> X: array<vec4f>;',
  ];
  for (let i = 0; i < outs; i++) {
    const b = i === 0 ? 3 : 11 + i;
    const t = segs[i].epi.cache === 'f16' ? 'u32' : 'f32';
    bind.push(`@group(0) @binding(${b}) var<storage, read_write> Y${i}: array<${t}>;`);
  }
  if (e0.bias) bind.push('@group(0) @binding(4) var<storage, read_write> Bias: array<f32>;');
  if (e0.residual) bind.push('@group(0) @binding(5) var<storage, read_write> Res: array<f32>;');
  if (anyRope) bind.push('@group(0) @binding(6) var<storage, read_write> T: array<vec2f>;');
  if (anyCache) bind.push('@group(0) @binding(7) var<storage, read_write> Pos: array<i32>;');
  if (norm) bind.push(`@group(0) @binding(8) var<storage, read_write> NW: array<${scalar ? 'f32' : 'vec4f'}>;`);
  // Word-sliced only when every weight of the dispatch has the path (q, k, v may differ in format).
  const wpp = s.wpp !== undefined && s.wpp > 0 && segs.every((g) => g.f.sliced !== undefined) ? s.wpp : 0;
  const int8 = s.int8 === true && wpp > 0;
  const split = s.split === true && wpp > 0 && segs.every((g) => g.f.sliced?.split !== undefined);
  const vec4 = split && wpp % 4 === 0;
  for (let i = 0; i < segs.length; i++)
    bind.push(`@group(0) @binding(${9 + i}) var<storage, read> W${i}: array<${vec4 ? 'vec4u' : 'u32'}>;`);
  if (int8 && norm) throw new Error('matvecKernel: int8 activations come normalised (quantizeQ8Kernel)');
  const x4 = s.x4 === true && int8 && wpp % 4 === 0;
  if (int8) bind[0] = `@group(0) @binding(2) var<storage, read_write> X: array<${x4 ? 'vec4u' : 'u32'}>;`;
  // The split layout has only the parts (the GGUF-layout decoders would not even type-check on vec4 bindings).
  const codes = new Set(split ? [] : segs.map((g, i) => g.f.code(`W${i}`)));
  if (wpp > 0) {
    for (const [i, g] of segs.entries())
      codes.add(
        split
          ? g.f.sliced!.split!(`W${i}`, wpp, int8, vec4)
          : int8
            ? g.f.sliced!.int8(`W${i}`, wpp)
            : g.f.sliced!.code(`W${i}`, wpp),
      );
  }
  if (int8) codes.add(nibS8);

  // Per segment: N, rowBytes, row0, chunkRows, wg0, headDim, nRot, pairs.
  const sa = (i: string | number, k: number) =>
    `a(${typeof i === 'number' ? `${16 + 8 * i + k}u` : `16u + 8u * ${i} + ${k}u`})`;
  const acc = glu ? 2 * R : R;
  const rep = (n: number, f: (r: number) => string, sep = '\n    ') =>
    Array.from({ length: n }, (_, r) => f(r)).join(sep);
  const xload = norm ? (scalar ? 'X[xb + i] * inv * NW[i]' : '') : 'X[xb + i]';
  // The unit loop of weight i (glu: both weights in one loop).
  const loop = (i: number): string => {
    const f = segs[i].f;
    const upb = f.blockSize / 32;
    const ws = glu ? [0, 1] : [i];
    const dots = ws
      .map((w, wi) =>
        rep(R, (r) =>
          scalar
            ? `acc${wi * R + r} += W${w}_get(ro${r} + i * ${segs[w].f.blockBytes}u, 0u) * xi;`
            : `acc${wi * R + r} += W${w}_dot(ro${r} + blk, sub, &xv);`,
        ),
      )
      .join('\n    ');
    if (wpp > 0) {
      // Parts: (block, j) with j < words / wpp; a part's activations are the vec4s at 8·block + wpp·j + offsets.
      const sl = f.sliced!;
      const per = sl.words / wpp;
      const offs = sl.xOffsets(wpp);
      // One part (suffix q: several parts in one iteration, so their loads are in flight together).
      const part = (q: string, u: string) => {
        let loads = offs
          .map((o, m) => `xp${q}[${m}] = X[xb + xo${q} + ${o}u]${norm ? ` * inv * NW[xo${q} + ${o}u]` : ''};`)
          .join('\n    ');
        if (x4) {
          // Runs of 4 aligned words: one vec4 load each (xb and xo are multiples of 4).
          const l: string[] = [];
          for (let m = 0; m < offs.length; m += 4) {
            if (offs[m] % 4 !== 0 || [1, 2, 3].some((c) => offs[m + c] !== offs[m] + c))
              throw new Error('matvecKernel: x4 needs runs of 4 aligned activation words');
            l.push(`let xv${q}_${m} = X[(xb + xo${q} + ${offs[m]}u) >> 2u];`);
            for (let c = 0; c < 4; c++) l.push(`xp${q}[${m + c}] = xv${q}_${m}.${'xyzw'[c]};`);
          }
          loads = l.join('\n    ');
        }
        const dxi = `xb + K / 4u + b${q}`;
        const dx = x4 ? `X[(${dxi}) >> 2u][(${dxi}) & 3u]` : `X[${dxi}]`;
        // int8: the part's dot times the activations' block scale (after the quant words of the row).
        const pdots = ws
          .map((w, wi) =>
            rep(R, (r) =>
              split
                ? `acc${wi * R + r} += W${w}_spart${int8 ? '8' : ''}(rb${r} + b${q}, j${q}, sbw${w}, &xp${q})${int8 ? ` * dx${q}` : ''};`
                : `acc${wi * R + r} += W${w}_part${int8 ? '8' : ''}(ro${r} + b${q} * ${segs[w].f.blockBytes}u, j${q}, &xp${q})${int8 ? ` * dx${q}` : ''};`,
            ),
          )
          .join('\n    ');
        return `let b${q} = (${u}) / ${per}u;
    let j${q} = (${u}) % ${per}u;
    let xo${q} = 8u * b${q} + ${wpp}u * j${q};
    var xp${q}: array<${int8 ? 'u32' : 'vec4f'}, ${offs.length}>;
    ${loads}
    ${int8 ? `let dx${q} = bitcast<f32>(${dx});` : ''}
    ${pdots}`;
      };
      const un = Math.max(1, s.unroll ?? 1);
      const T = s.tpr;
      // Split: rows as block indices; weight w's scales follow the header and the chunk's quants (chunkRows·K/32).
      const splitLets = split
        ? `${rep(R, (r) => `let rb${r} = min(local0 + ${r}u, chunkRows - 1u) * (K / 32u);`, '\n  ')}
  ${ws.map((w) => `let sbw${w} = 4u + chunkRows * (K / 32u) * ${segs[w].f.sliced!.words}u;`).join('\n  ')}`
        : '';
      return `
  ${splitLets}
  let np = (K / 32u) * ${per}u;
  var u = t;
  ${
    un > 1
      ? `for (; u + ${(un - 1) * T}u < np; u += ${un * T}u) {
    ${Array.from({ length: un }, (_, q) => part(`_${q}`, `u + ${q * T}u`)).join('\n    ')}
  }`
      : ''
  }
  for (; u < np; u += ${T}u) {
    ${part('', 'u')}
  }`;
    }
    if (scalar) {
      return `
  for (var i = t; i < K; i += ${s.tpr}u) {
    let xi = ${xload};
    ${dots}
  }`;
    }
    const nx = norm
      ? Array.from({ length: 8 }, (_, k) => `xv[${k}] = X[xo + ${k}u] * inv * NW[u * 8u + ${k}u];`).join('\n    ')
      : Array.from({ length: 8 }, (_, k) => `xv[${k}] = X[xo + ${k}u];`).join(' ');
    return `
  for (var u = t; u < nu; u += ${s.tpr}u) {
    let xo = xb + u * 8u;
    ${nx}
    let blk = (u / ${upb}u) * ${f.blockBytes}u;
    let sub = u % ${upb}u;
    ${dots}
  }`;
  };
  const loops =
    glu || segs.length === 1
      ? loop(0)
      : segs.map((_, i) => `${i === 0 ? '' : ' else '}if (seg == ${i}u) {${loop(i)}\n  }`).join('');

  const reduce = useSg
    ? `
  let slot = (lid / sgs) * ${acc}u;
  ${rep(acc, (r) => `let s${r} = subgroupAdd(acc${r});`)}
  if (sgi == 0u) { ${rep(acc, (r) => `red[slot + ${r}u] = s${r};`, ' ')} }
  workgroupBarrier();`
    : `
  ${rep(acc, (r) => `red[lid * ${acc}u + ${r}u] = acc${r};`)}
  workgroupBarrier();
  for (var st = ${Math.floor(s.tpr / 2)}u; st > 0u; st >>= 1u) {
    if (t < st) { for (var r = 0u; r < ${acc}u; r++) { red[lid * ${acc}u + r] += red[(lid + st) * ${acc}u + r]; } }
    workgroupBarrier();
  }`;
  const total = useSg
    ? `fn total(gg: u32, r: u32, sgs: u32) -> f32 {
  let n = ${s.tpr}u / sgs;
  var v = 0.0;
  for (var k = 0u; k < n; k++) { v += red[(gg * n + k) * ${acc}u + r]; }
  return v;
}`
    : `fn total(gg: u32, r: u32, sgs: u32) -> f32 { return red[gg * ${s.tpr * acc}u + r]; }`;

  const act = glu === 'gelu' ? 'gelu' : 'silu';
  const epilogue = (i: number): string => {
    const e = segs[i].epi;
    const Y = `Y${i}`;
    const store =
      e.cache === 'none'
        ? `${Y}[tok * N + o] = v0; if (has1) { ${Y}[tok * N + o + 1u] = v1; }`
        : e.cache === 'f32'
          ? `let p = pos_of(12u, tok); ${Y}[p * N + o] = v0; if (has1) { ${Y}[p * N + o + 1u] = v1; }`
          : `let p = pos_of(12u, tok); ${Y}[(p * N + o) >> 1u] = f2h(v0) | (f2h(v1) << 16u);`;
    const sg = useSg ? 'sgs' : '0u';
    return `
    var v0 = total(gg, r, ${sg});
    var v1 = total(gg, r + 1u, ${sg});
    ${glu ? `v0 = ${act}(v0) * total(gg, r + ${R}u, ${sg}); v1 = ${act}(v1) * total(gg, r + ${R + 1}u, ${sg});` : ''}
    ${e.bias ? 'v0 += Bias[o]; if (has1) { v1 += Bias[o + 1u]; }' : ''}
    ${
      e.rope
        ? `let hi = o % ${sa(i, 5)};
    if (hi < ${sa(i, 6)}) {
      let cs = T[tok * ${sa(i, 7)} + hi / 2u];
      let x0 = v0;
      v0 = x0 * cs.x - v1 * cs.y;
      v1 = x0 * cs.y + v1 * cs.x;
    }`
        : ''
    }
    ${e.residual ? 'v0 += Res[tok * N + o]; if (has1) { v1 += Res[tok * N + o + 1u]; }' : ''}
    ${store}`;
  };
  const epilogues =
    outs === 1
      ? epilogue(0)
      : segs.map((_, i) => `${i === 0 ? '' : ' else '}if (seg == ${i}u) {${epilogue(i)}\n    }`).join('');
  const segOf =
    segs.length === 1 || glu
      ? 'let seg = 0u;'
      : `var seg = 0u;
  ${segs
    .slice(1)
    .map((_, i) => `if (wid.x >= ${sa(i + 1, 4)}) { seg = ${i + 1}u; }`)
    .join('\n  ')}`;

  const normPrologue = norm
    ? `
  // rms of this token's activations, by the whole workgroup.
  var ss = 0.0;
  for (var i = lid; i < ${scalar ? 'K' : 'K / 4u'}; i += ${s.wg}u) { let v = X[${scalar ? 'tok * K' : 'tok * (K / 4u)'} + i]; ss += ${scalar ? 'v * v' : 'dot(v, v)'}; }
  ${
    useSg
      ? `let ssg = subgroupAdd(ss);
  if (sgi == 0u) { nred[lid / sgs] = ssg; }
  workgroupBarrier();
  var sst = 0.0;
  for (var k = 0u; k < ${s.wg}u / sgs; k++) { sst += nred[k]; }`
      : `nred[lid] = ss;
  workgroupBarrier();
  for (var st = ${s.wg / 2}u; st > 0u; st >>= 1u) {
    if (lid < st) { nred[lid] += nred[lid + st]; }
    workgroupBarrier();
  }
  let sst = nred[0];`
  }
  let inv = 1.0 / sqrt(sst / f32(K) + af(1u));`
    : '';

  return `${int8 ? 'requires packed_4x8_integer_dot_product;\n' : ''}${enableSubgroups(env)}${header}${formatPrelude}${glu ? actFns : ''}
${bind.join('\n')}
${[...codes].join('\n')}
${anyCache ? positions : ''}
var<workgroup> red: array<f32, ${s.wg * acc}>;
${norm ? `var<workgroup> nred: array<f32, ${s.wg}>;` : ''}
${total}
@compute @workgroup_size(${s.wg})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u${useSg ? ', @builtin(subgroup_size) sgs: u32, @builtin(subgroup_invocation_id) sgi: u32' : ''}) {
  _ = P[0];
  let K = a(0u);
  let tok = wid.y;
  ${segOf}
  let N = ${sa('seg', 0)};
  let rowBytes = ${sa('seg', 1)};
  let chunkRows = ${sa('seg', 3)};
  let wx = wid.x - ${sa('seg', 4)};
  let g = lid / ${s.tpr}u;
  let t = lid % ${s.tpr}u;
  let local0 = (wx * ${groups}u + g) * ${R}u;
  ${rep(R, (r) => `let ro${r} = min(local0 + ${r}u, chunkRows - 1u) * rowBytes;`)}
  ${rep(acc, (r) => `var acc${r} = 0.0;`)}
  ${normPrologue}
  ${scalar ? 'let xb = tok * K;' : int8 ? 'let xb = tok * (9u * K / 32u);' : 'let nu = K / 32u;\n  let xb = tok * (K / 4u);\n  var xv: array<vec4f, 8>;'}
  ${loops}
  ${reduce}
  if (lid < ${(groups * R) / 2}u) {
    let l0 = lid * 2u;
    let gg = l0 / ${R}u;
    let r = l0 % ${R}u;
    let local = wx * ${groups * R}u + l0;
    if (local >= chunkRows) { return; }
    let has1 = local + 1u < chunkRows;
    let o = ${sa('seg', 2)} + local;
    ${epilogues}
  }
}`;
}

/** Q4_0 nibbles (one per byte) as signed int8 quants minus 8, four at once, without carries between bytes. */
const nibS8 = 'fn nib_s8(n: u32) -> u32 { return ((n | 0x80808080u) - 0x08080808u) ^ 0x80808080u; }';

/**
 * Activations to q8 blocks for the int8 matvec (`MatvecShape.int8`), as ggml's `quantize_row_q8_0`: per 32 values
 * d = amax / 127 (rounded to fp16 for the dot, as ggml stores it), quants roundf(x / d) with the unrounded d.
 * A workgroup per row; with `norm` the row is first rms-normalised (times weight `NW`), which then replaces the
 * matvec's norm prologue. Row r of `Q` (9·K/32 words): K/4 words of packed int8 quants, then K/32 f32 scales.
 *
 * Bindings: 2 X (f32 rows), 3 Q, 4 NW. Args: 0-2 rows, 3 K, 4 eps.
 */
export function quantizeQ8Kernel(env: KernelEnv, norm: boolean): string {
  const wg = rowWg(env);
  return `requires packed_4x8_integer_dot_product;
${header}${wgSum(env)}
@group(0) @binding(2) var<storage, read_write> X: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> Q: array<u32>;
${norm ? '@group(0) @binding(4) var<storage, read_write> NW: array<vec4f>;' : ''}
/** C roundf (half away from zero), exact: v - trunc(v) is exact in f32. */
fn roundf(v: f32) -> f32 {
  let t = trunc(v);
  return t + select(0.0, sign(v), abs(v - t) >= 0.5);
}
@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  _ = P[0];
  let K = a(3u);
  let row = wg_index(wid, nwg);
  if (lid == 0u) { wrows = rows_of(0u); }
  if (row >= workgroupUniformLoad(&wrows)) { return; }
  let xb = row * (K / 4u);
  var sc = 1.0;
  ${
    norm
      ? `var ss = 0.0;
  for (var i = lid; i < K / 4u; i += ${wg}u) { let v = X[xb + i]; ss += dot(v, v); }
  sc = 1.0 / sqrt(wg_sum(ss, lid) / f32(K) + af(4u));`
      : ''
  }
  let qb = row * (9u * K / 32u);
  for (var b = lid; b < K / 32u; b += ${wg}u) {
    var v: array<vec4f, 8>;
    var m = 0.0;
    for (var k = 0u; k < 8u; k++) {
      v[k] = X[xb + 8u * b + k]${norm ? ' * sc * NW[8u * b + k]' : ''};
      let av = abs(v[k]);
      m = max(m, max(max(av.x, av.y), max(av.z, av.w)));
    }
    let d = div_rn(m, 127.0);
    let id = select(0.0, div_rn(1.0, d), d > 0.0);
    for (var k = 0u; k < 8u; k++) {
      let s = v[k] * id;
      Q[qb + 8u * b + k] = pack4xI8(vec4i(vec4f(roundf(s.x), roundf(s.y), roundf(s.z), roundf(s.w))));
    }
    Q[qb + K / 4u + b] = bitcast<u32>(unpack2x16float(f2h(d)).x);
  }
}`;
}

// ---- tiled matrix-matrix --------------------------------------------------------------------------------------------

/**
 * Output tile of a tiled-matmul workgroup: 128 weight rows x 64 tokens (256 threads, 8 x 4 outputs each) on GPUs;
 * 32 x 32 (64 threads, 4 x 4) on software adapters, where compiling a kernel takes time in proportion to its
 * workgroup arrays (seconds for the GPU tile on SwiftShader). The same code either way.
 */
export function tileShape(env: KernelEnv): { rows: number; tokens: number } {
  return env.software ? { rows: 32, tokens: 32 } : { rows: 128, tokens: 64 };
}

/**
 * Tiled matrix-matrix for several tokens (the prompt path): a workgroup computes a TR (weight rows) x TT (tokens)
 * tile ({@link tileShape}), each thread RV·4 rows (RV vec4 groups TR/(4·RV) apart) x 4 tokens, over K in steps of
 * 32. Per step the weight tile is decoded from its blocks into workgroup memory once (k-major, so a thread's rows
 * are vec4 loads), two threads per row (Q4_0/Q8_0: half a block each, a word at a time), and used by all TT
 * tokens; the activation tile is loaded once and used by all TR rows. Per k a thread does 16·RV FMAs for RV + 1 vec4
 * loads from workgroup memory (the activations' a broadcast).
 *
 * Args: 0 K, 1 N, 2 rowBytes, 3 chunk's first row, 4 chunk rows, 5/6/7 tokens (rows_of).
 */
export function tiledKernel(f: GpuFormat, env: KernelEnv, e: { bias: boolean; residual: boolean }): string {
  const { rows: TR, tokens: TT } = tileShape(env);
  const T = 2 * TR;
  const RV = (TR * TT) / (16 * T);
  const RG = TR / (4 * RV);
  const XK = (32 * TT) / T;
  const XS = TT / 4 + 1;
  const scalar = f.blockSize === 1;
  const bind = [
    '@group(0) @binding(2) var<storage, read_write> X: array<f32>;',
    '@group(0) @binding(3) var<storage, read> W: array<u32>;',
    '@group(0) @binding(4) var<storage, read_write> Y: array<f32>;',
  ];
  if (e.bias) bind.push('@group(0) @binding(5) var<storage, read_write> Bias: array<f32>;');
  if (e.residual) bind.push('@group(0) @binding(6) var<storage, read_write> Res: array<f32>;');
  // Weight element (row byte offset ro, column kk): scalar formats address elements, block formats blocks.
  const wget = scalar
    ? `W_get(ro + kk * ${f.blockBytes}u, 0u)`
    : `W_get(ro + (kk / ${f.blockSize}u) * ${f.blockBytes}u, kk % ${f.blockSize}u)`;
  const ws = (k: string) => `Ws[(${k}) * ${TR / 4}u + lr / 4u][lr % 4u]`;
  // Word-sliced formats decode a row's block in two halves, a word at a time.
  const sl = f.sliced;
  const wpp = sl ? sl.words / 2 : 0;
  let wload = `for (var i = 0u; i < 16u; i++) {
      let k = 16u * lh + i;
      let kk = k0 + k;
      var wv = 0.0;
      if (kk < K) { wv = ${wget}; }
      ${ws('k')} = wv;
    }`;
  if (sl) {
    const offs = sl.xOffsets(wpp);
    wload = `let wv = W_vals(ro + (k0 / 32u) * ${f.blockBytes}u, lh);
    ${offs
      .flatMap((o, m) => [0, 1, 2, 3].map((c) => `${ws(`4u * (${wpp}u * lh + ${o}u) + ${c}u`)} = wv[${m}][${c}];`))
      .join('\n    ')}`;
  }
  const fmas = Array.from({ length: RV }, (_, v) =>
    ['x', 'y', 'z', 'w'].map((c, j) => `acc[${4 * v + j}] += w${v} * x.${c};`).join(' '),
  ).join('\n      ');
  return `${enableSubgroups({ ...env, subgroups: false })}${header}${formatPrelude}
${bind.join('\n')}
${f.code('W')}
${sl ? sl.code('W', wpp) : ''}
fn store(v4: vec4f, tok: u32, r0: u32, nTok: u32, chunkRows: u32, N: u32) {
  if (tok >= nTok) { return; }
  for (var i = 0u; i < 4u; i++) {
    let local = r0 + i;
    if (local >= chunkRows) { return; }
    let o = a(3u) + local;
    var v = v4[i];
    ${e.bias ? 'v += Bias[o];' : ''}
    ${e.residual ? 'v += Res[tok * N + o];' : ''}
    Y[tok * N + o] = v;
  }
}
// [32 k][${TR} rows] and [32 k][${TT} tokens + 4 of padding against bank conflicts], as vec4s.
var<workgroup> Ws: array<vec4f, ${8 * TR}>;
var<workgroup> Xs: array<vec4f, ${32 * XS}>;
@compute @workgroup_size(${T})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  _ = P[0];
  let K = a(0u);
  let N = a(1u);
  let rowBytes = a(2u);
  let chunkRows = a(4u);
  let nTok = rows_of(5u);
  let row0 = wid.x * ${TR}u;
  let tok0 = wid.y * ${TT}u;
  // Compute: row vec4 groups rg, rg + ${RG}, ..; tokens 4·tg...
  let rg = lid % ${RG}u;
  let tg = lid / ${RG}u;
  // Loads: weights of row lr, k 16·lh..; activations of token lt, k ${XK}·lq...
  let lr = lid % ${TR}u;
  let lh = lid / ${TR}u;
  let ro = min(row0 + lr, chunkRows - 1u) * rowBytes;
  let lt = lid / ${32 / XK}u;
  let lq = lid % ${32 / XK}u;
  let xrow = min(tok0 + lt, nTok - 1u) * K;
  var acc: array<vec4f, ${4 * RV}>;
  for (var k0 = 0u; k0 < K; k0 += 32u) {
    ${wload}
    let xk = k0 + ${XK}u * lq;
    for (var i = 0u; i < ${XK}u; i++) {
      var xv = 0.0;
      if (xk + i < K) { xv = X[xrow + xk + i]; }
      Xs[(${XK}u * lq + i) * ${XS}u + lt / 4u][lt % 4u] = xv;
    }
    workgroupBarrier();
    for (var k = 0u; k < 32u; k++) {
      ${Array.from({ length: RV }, (_, v) => `let w${v} = Ws[k * ${TR / 4}u + ${v * RG}u + rg];`).join('\n      ')}
      let x = Xs[k * ${XS}u + tg];
      ${fmas}
    }
    workgroupBarrier();
  }
  ${Array.from({ length: 4 * RV }, (_, q) => `store(acc[${q}], tok0 + 4u * tg + ${q % 4}u, row0 + ${4 * RG * Math.floor(q / 4)}u + 4u * rg, nTok, chunkRows, N);`).join('\n  ')}
}`;
}

// ---- element-wise ---------------------------------------------------------------------------------------------------

/** Element-wise ops over n = rows_of(0) · a(3) elements; `b` operands broadcast when a(4) (its length) is smaller. */
export type Elementwise = 'silu' | 'gelu' | 'scale' | 'softcap' | 'add' | 'mul' | 'glu_silu' | 'glu_gelu';

const actFns = `
fn silu(v: f32) -> f32 { return v / (1.0 + exp(-v)); }
fn tanh_s(v: f32) -> f32 { let c = clamp(v, -15.0, 15.0); let e = exp(2.0 * c); return (e - 1.0) / (e + 1.0); }
fn gelu(v: f32) -> f32 { return 0.5 * v * (1.0 + tanh_s(0.7978845608028654 * v * (1.0 + 0.044715 * v * v))); }`;

/**
 * Args: 0-2 rows, 3 cols (of the output), 4 length of b (0: b has the output's shape), 5 factor/cap.
 * `packedGlu`: the gate holds [g | u] in one row (no `up`).
 */
export function elementwiseKernel(op: Elementwise, packedGlu = false): string {
  const two = op === 'add' || op === 'mul' || (op.startsWith('glu') && !packedGlu);
  const expr: Record<Elementwise, string> = {
    silu: 'silu(x)',
    gelu: 'gelu(x)',
    scale: 'x * af(5u)',
    softcap: 'af(5u) * tanh_s(x / af(5u))',
    add: 'x + y',
    mul: 'x * y',
    glu_silu: 'silu(x) * y',
    glu_gelu: 'gelu(x) * y',
  };
  const load = op.startsWith('glu')
    ? packedGlu
      ? 'let r = i / cols; let c = i % cols; let x = X[r * 2u * cols + c]; let y = X[r * 2u * cols + cols + c];'
      : 'let x = X[i]; let y = B[i];'
    : two
      ? `let x = X[i]; let bl = a(4u); let y = B[select(i, i % bl, bl != 0u)];`
      : 'let x = X[i];';
  return `${header}${actFns}
@group(0) @binding(2) var<storage, read_write> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
${two ? '@group(0) @binding(4) var<storage, read_write> B: array<f32>;' : ''}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  _ = P[0];
  let cols = a(3u);
  let n = rows_of(0u) * cols;
  let i = wg_index(wid, nwg) * 256u + lid;
  if (i >= n) { return; }
  ${load}
  Y[i] = ${expr[op]};
}`;
}

// ---- row-wise: norms, softmax ----------------------------------------------------------------------------------------

/** Workgroup-wide sum and max of one f32 per thread (256 threads) in two levels of 16: three barriers. */
function wgSum(env: KernelEnv): string {
  if (rowWg(env) !== 256) return smallSum(rowWg(env));
  const level = (op: string) => `
  workgroupBarrier();
  wsum[lid] = v;
  workgroupBarrier();
  if (lid < 16u) {
    var r = wsum[lid * 16u];
    for (var k = 1u; k < 16u; k++) { r = ${op.replace('A', 'r').replace('B', 'wsum[lid * 16u + k]')}; }
    wpart[lid] = r;
  }
  workgroupBarrier();
  var t = wpart[0];
  for (var k = 1u; k < 16u; k++) { t = ${op.replace('A', 't').replace('B', 'wpart[k]')}; }
  return t;`;
  return `
var<workgroup> wsum: array<f32, 256>;
var<workgroup> wpart: array<f32, 16>;
var<workgroup> wrows: u32;
fn wg_sum(v: f32, lid: u32) -> f32 {${level('A + B')}
}
fn wg_max(v: f32, lid: u32) -> f32 {${level('max(A, B)')}
}`;
}

/** Threads per row of the row-wise kernels: 32 on software adapters (many idle threads cost there), 256 elsewhere. */
function rowWg(env: KernelEnv): number {
  return env.software ? 32 : 256;
}

function smallSum(w: number): string {
  const level = (op: string) => `
  workgroupBarrier();
  wsum[lid] = v;
  workgroupBarrier();
  var t = wsum[0];
  for (var k = 1u; k < ${w}u; k++) { t = ${op.replace('A', 't').replace('B', 'wsum[k]')}; }
  return t;`;
  return `
var<workgroup> wsum: array<f32, ${w}>;
var<workgroup> wrows: u32;
fn wg_sum(v: f32, lid: u32) -> f32 {${level('A + B')}
}
fn wg_max(v: f32, lid: u32) -> f32 {${level('max(A, B)')}
}`;
}

/** rms_norm / layer_norm: a workgroup per row. Args: 0-2 rows, 3 cols, 4 eps. */
export function normKernel(env: KernelEnv, kind: 'rms' | 'layer', weight: boolean, bias: boolean): string {
  return `${header}${wgSum(env)}
@group(0) @binding(2) var<storage, read_write> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
${weight ? '@group(0) @binding(4) var<storage, read_write> Wt: array<f32>;' : ''}
${bias ? '@group(0) @binding(5) var<storage, read_write> Bs: array<f32>;' : ''}
@compute @workgroup_size(${rowWg(env)})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  _ = P[0];
  let cols = a(3u);
  let row = wg_index(wid, nwg);
  if (lid == 0u) { wrows = rows_of(0u); }
  if (row >= workgroupUniformLoad(&wrows)) { return; }
  let o = row * cols;
  var mean = 0.0;
  ${
    kind === 'layer'
      ? `var s0 = 0.0;
  for (var i = lid; i < cols; i += ${rowWg(env)}u) { s0 += X[o + i]; }
  mean = wg_sum(s0, lid) / f32(cols);`
      : ''
  }
  var ss = 0.0;
  for (var i = lid; i < cols; i += ${rowWg(env)}u) { let d = X[o + i] - mean; ss += d * d; }
  let sc = 1.0 / sqrt(wg_sum(ss, lid) / f32(cols) + af(4u));
  for (var i = lid; i < cols; i += ${rowWg(env)}u) {
    var v = (X[o + i] - mean) * sc;
    ${weight ? 'v *= Wt[i];' : ''}
    ${bias ? 'v += Bs[i];' : ''}
    Y[o + i] = v;
  }
}`;
}

/** softmax along rows. Args: 0-2 rows, 3 cols. */
export function softmaxKernel(env: KernelEnv): string {
  return `${header}${wgSum(env)}
@group(0) @binding(2) var<storage, read_write> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
@compute @workgroup_size(${rowWg(env)})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  _ = P[0];
  let cols = a(3u);
  let row = wg_index(wid, nwg);
  if (lid == 0u) { wrows = rows_of(0u); }
  if (row >= workgroupUniformLoad(&wrows)) { return; }
  let o = row * cols;
  var m = -3.4e38;
  for (var i = lid; i < cols; i += ${rowWg(env)}u) { m = max(m, X[o + i]); }
  m = wg_max(m, lid);
  var s = 0.0;
  for (var i = lid; i < cols; i += ${rowWg(env)}u) { let e = exp(X[o + i] - m); Y[o + i] = e; s += e; }
  let inv = 1.0 / wg_sum(s, lid);
  for (var i = lid; i < cols; i += ${rowWg(env)}u) { Y[o + i] *= inv; }
}`;
}

// ---- rope -------------------------------------------------------------------------------------------------------------

/**
 * Rope with the step's cos/sin table `T` [rows, pairs] (computed on the host in double per step). One thread per
 * (row, head, pair) and one per passed-through element. Args: 0-2 rows, 3 nHeads, 4 headDim, 5 nRot, 6 neox.
 */
export function ropeKernel(): string {
  return `${header}
@group(0) @binding(2) var<storage, read_write> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
@group(0) @binding(4) var<storage, read_write> T: array<vec2f>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  _ = P[0];
  let heads = a(3u);
  let hd = a(4u);
  let nRot = a(5u);
  let pairs = nRot / 2u;
  let cols = heads * hd;
  let i = wg_index(wid, nwg) * 256u + lid;
  // Each thread owns element e of a row; the first of each pair rotates both.
  let n = rows_of(0u) * cols;
  if (i >= n) { return; }
  let r = i / cols;
  let c = i % cols;
  let d = c % hd;
  let base = r * cols + (c - d);
  if (d >= nRot) { Y[i] = X[i]; return; }
  var j = 0u;
  var i0 = 0u;
  var i1 = 0u;
  if (a(6u) == 1u) { if (d >= pairs) { return; } j = d; i0 = base + d; i1 = i0 + pairs; }
  else { if ((d & 1u) == 1u) { return; } j = d / 2u; i0 = base + d; i1 = i0 + 1u; }
  let cs = T[r * pairs + j];
  let x0 = X[i0];
  let x1 = X[i1];
  Y[i0] = x0 * cs.x - x1 * cs.y;
  Y[i1] = x0 * cs.y + x1 * cs.x;
}`;
}

// ---- get_rows, copy ---------------------------------------------------------------------------------------------------

/** out[r, :] = decode(table[ids[r] - row0]) for ids in this chunk. Args: 0-2 rows, 3 cols, 4 rowBytes, 5 row0, 6 chunkRows. */
export function getRowsKernel(f: GpuFormat): string {
  const get =
    f.blockSize === 1
      ? `W_get(off + c * ${f.blockBytes}u, 0u)`
      : `W_get(off + (c / ${f.blockSize}u) * ${f.blockBytes}u, c % ${f.blockSize}u)`;
  return `${header}${formatPrelude}
@group(0) @binding(2) var<storage, read_write> Ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
@group(0) @binding(4) var<storage, read> W: array<u32>;
${f.code('W')}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  _ = P[0];
  let cols = a(3u);
  let i = wg_index(wid, nwg) * 256u + lid;
  if (i >= rows_of(0u) * cols) { return; }
  let r = i / cols;
  let c = i % cols;
  let id = u32(Ids[r]);
  if (id < a(5u) || id >= a(5u) + a(6u)) { return; }
  let off = (id - a(5u)) * a(4u);
  Y[i] = ${get};
}`;
}

/**
 * Writes rows of src into a cache at positions, converting: f32 directly, f16/bf16 one element per thread through
 * atomics (rows may start mid-word), q8_0 one block per thread (ggml's quantize_row_q8_0: d = amax/127, round half
 * away from zero), its 34 bytes merged into the words with atomics. Args: 0-2 rows, 3 cols, 4 rowBytes, 8/9 positions.
 */
export function copyKernel(dtype: 'f32' | 'f16' | 'bf16' | 'q8_0'): string {
  const dst =
    dtype === 'f32'
      ? '@group(0) @binding(3) var<storage, read_write> C: array<f32>;'
      : '@group(0) @binding(3) var<storage, read_write> C: array<atomic<u32>>;';
  let body: string;
  if (dtype === 'f32') {
    body = `let r = i / cols; let c = i % cols; C[pos_of(8u, r) * cols + c] = X[i];`;
  } else if (dtype === 'f16' || dtype === 'bf16') {
    body = `let r = i / cols; let c = i % cols;
  let byte = pos_of(8u, r) * a(4u) + c * 2u;
  let h = ${dtype === 'f16' ? 'f2h' : 'f2bf'}(X[i]);
  let sh = (byte & 2u) * 8u;
  atomicAnd(&C[byte >> 2u], ~(0xffffu << sh));
  atomicOr(&C[byte >> 2u], h << sh);`;
  } else {
    body = `let nb = cols / 32u;
  if (i >= rows_of(0u) * nb) { return; }
  let r = i / nb;
  let b = i % nb;
  let src = r * cols + b * 32u;
  var amax = 0.0;
  for (var j = 0u; j < 32u; j++) { amax = max(amax, abs(X[src + j])); }
  let d = div_rn(amax, 127.0);
  var id = 0.0;
  if (d != 0.0) { id = div_rn(1.0, d); }
  let blk = pos_of(8u, r) * a(4u) + b * 34u;
  put_byte(blk, f2h(d) & 255u);
  put_byte(blk + 1u, f2h(d) >> 8u);
  for (var j = 0u; j < 32u; j++) {
    let v = X[src + j] * id;
    let t = trunc(v);
    var q = t;
    if (abs(v - t) >= 0.5) { q = t + sign(v); }
    put_byte(blk + 2u + j, u32(i32(q)) & 255u);
  }`;
  }
  const count = dtype === 'q8_0' ? '' : 'if (i >= rows_of(0u) * cols) { return; }';
  return `${header}
@group(0) @binding(2) var<storage, read_write> X: array<f32>;
${dst}
@group(0) @binding(4) var<storage, read_write> Pos: array<i32>;
${positions}
${
  dtype === 'q8_0'
    ? `fn put_byte(o: u32, v: u32) {
  let sh = (o & 3u) * 8u;
  atomicAnd(&C[o >> 2u], ~(255u << sh));
  atomicOr(&C[o >> 2u], v << sh);
}`
    : ''
}
@compute @workgroup_size(${dtype === 'q8_0' ? 64 : 256})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  _ = P[0];
  let cols = a(3u);
  let i = wg_index(wid, nwg) * ${dtype === 'q8_0' ? 64 : 256}u + lid;
  ${count}
  ${body}
}`;
}

// ---- attention ------------------------------------------------------------------------------------------------------

/**
 * Causal GQA attention, one workgroup of 64 threads per (query row, head), online softmax over chunks of 64 keys:
 * each thread scores one key of the chunk, then each thread accumulates `headDim / 64` output dims.
 * Args: 0-2 rows, 3 nHeads, 4 nKvHeads, 5 headDim, 6 scale, 7 softcap, 8 window, 9/10 rowBytes of the K/V caches,
 * 12/13 positions.
 */
export function attentionKernel(f: GpuFormat, fv: GpuFormat, env: KernelEnv): string {
  // Keys per chunk = threads (32 measured slower on SwiftShader than 64).
  const C = env.software ? 64 : 64;
  const D = 512 / C;
  // K and V may be of different types (a q8_0 K cache beside an f16 V cache): each gets its own decoder and row size.
  const getOf =
    (g: GpuFormat, rb: string) =>
    (w: string, row: string, c: string): string =>
      g.blockSize === 1
        ? `${w}_get(${row} * ${rb} + (${c}) * ${g.blockBytes}u, 0u)`
        : `${w}_get(${row} * ${rb} + ((${c}) / ${g.blockSize}u) * ${g.blockBytes}u, (${c}) % ${g.blockSize}u)`;
  const getK = getOf(f, 'rb');
  const getV = getOf(fv, 'rbv');
  return `${header}${formatPrelude}
@group(0) @binding(2) var<storage, read_write> Q: array<f32>;
@group(0) @binding(3) var<storage, read> Kc: array<u32>;
@group(0) @binding(4) var<storage, read> Vc: array<u32>;
@group(0) @binding(5) var<storage, read_write> O: array<f32>;
@group(0) @binding(6) var<storage, read_write> Pos: array<i32>;
${f.code('Kc')}
${fv.code('Vc')}
${positions}
${actFns}
var<workgroup> qs: array<f32, 512>;
var<workgroup> wrows: u32;
var<workgroup> sc: array<f32, ${C}>;
@compute @workgroup_size(${C})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  _ = P[0];
  let heads = a(3u);
  let hd = a(5u);
  let rb = a(9u);
  let rbv = a(10u);
  let idx = wg_index(wid, nwg);
  let r = idx / heads;
  let h = idx % heads;
  if (lid == 0u) { wrows = rows_of(0u); }
  if (r >= workgroupUniformLoad(&wrows)) { return; }
  let kh = h / (heads / a(4u));
  let ko = kh * hd;
  let qo = r * heads * hd + h * hd;
  for (var i = lid; i < hd; i += ${C}u) { qs[i] = Q[qo + i]; }
  if (lid == 0u) { wrows = pos_of(12u, r); }
  let p = workgroupUniformLoad(&wrows);
  let win = a(8u);
  var t0 = 0u;
  if (win > 0u && p + 1u > win) { t0 = p + 1u - win; }
  let scale = af(6u);
  let cap = af(7u);
  var m = -3.4e38;
  var l = 0.0;
  // This thread's output dims: lid, lid + 64, ... (headDim <= 512).
  var acc: array<f32, ${D}>;
  workgroupBarrier();
  for (var c0 = t0; c0 <= p; c0 += ${C}u) {
    let t = c0 + lid;
    var sv = -3.4e38;
    if (t <= p) {
      var d = 0.0;
      for (var i = 0u; i < hd; i++) { d += qs[i] * ${getK('Kc', 't', 'ko + i')}; }
      sv = d * scale;
      if (cap > 0.0) { sv = cap * tanh_s(sv / cap); }
    }
    sc[lid] = sv;
    workgroupBarrier();
    // Every thread reads the chunk's 64 scores (a broadcast): two barriers per chunk instead of two trees.
    let cnt = min(${C}u, p + 1u - c0);
    var mc = m;
    for (var j = 0u; j < cnt; j++) { mc = max(mc, sc[j]); }
    let corr = exp(m - mc);
    workgroupBarrier();
    sc[lid] = select(0.0, exp(sv - mc), t <= p);
    workgroupBarrier();
    var sum = 0.0;
    for (var j = 0u; j < cnt; j++) { sum += sc[j]; }
    l = l * corr + sum;
    m = mc;
    for (var k = 0u; k < ${D}u; k++) {
      let i = lid + ${C}u * k;
      if (i >= hd) { break; }
      var v = acc[k] * corr;
      for (var j = 0u; j < cnt; j++) { v += sc[j] * ${getV('Vc', '(c0 + j)', 'ko + i')}; }
      acc[k] = v;
    }
    workgroupBarrier();
  }
  let inv = 1.0 / l;
  for (var k = 0u; k < ${D}u; k++) {
    let i = lid + ${C}u * k;
    if (i >= hd) { break; }
    O[qo + i] = acc[k] * inv;
  }
}`;
}

/**
 * Four consecutive elements (from element `e`, a multiple of 4) of the cache row starting at byte `row`, and the
 * binding's element type: f32/f16/bf16 caches read as vectors (their rows are whole vectors), others as u32 words
 * through the format's decoders.
 */
function cacheGet4(g: GpuFormat, w: string): { type: string; code: string } {
  switch (g.dtype) {
    case 'f32':
      return {
        type: 'vec4u',
        code: `fn ${w}_get4(row: u32, e: u32) -> vec4f { return bitcast<vec4f>(${w}[(row >> 4u) + (e >> 2u)]); }`,
      };
    case 'f16':
      return {
        type: 'vec2u',
        code: `fn ${w}_get4(row: u32, e: u32) -> vec4f { let v = ${w}[(row >> 3u) + (e >> 2u)]; return vec4f(unpack2x16float(v.x), unpack2x16float(v.y)); }`,
      };
    case 'bf16':
      return {
        type: 'vec2u',
        code: `fn ${w}_get4(row: u32, e: u32) -> vec4f {
  let v = ${w}[(row >> 3u) + (e >> 2u)];
  return bitcast<vec4f>(vec4u(v.x << 16u, v.x & 0xffff0000u, v.y << 16u, v.y & 0xffff0000u));
}`,
      };
    case 'q8_0':
      return {
        type: 'u32',
        code: `${g.code(w)}
fn ${w}_get4(row: u32, e: u32) -> vec4f { let blk = row + (e >> 5u) * 34u; return ${w}_h(blk) * i8x4(${w}_b32(blk + 2u + (e & 31u))); }`,
      };
    default: {
      const get = (k: number) =>
        g.blockSize === 1
          ? `${w}_get(row + (e + ${k}u) * ${g.blockBytes}u, 0u)`
          : `${w}_get(row + ((e + ${k}u) / ${g.blockSize}u) * ${g.blockBytes}u, (e + ${k}u) % ${g.blockSize}u)`;
      return {
        type: 'u32',
        code: `${g.code(w)}
fn ${w}_get4(row: u32, e: u32) -> vec4f { return vec4f(${get(0)}, ${get(1)}, ${get(2)}, ${get(3)}); }`,
      };
    }
  }
}

/** Keys per chunk (= threads) of the split attention: 128 on GPUs, 32 on software adapters (idle lanes cost there). */
export function attentionChunk(env: KernelEnv, headDim: number): number {
  const min = Math.max(32, 2 ** Math.ceil(Math.log2(Math.max(1, headDim / 4))));
  return env.software ? min : Math.max(128, min);
}

/**
 * Causal GQA attention for head dims that are a multiple of 4 (up to 4 · chunk): a workgroup per (query row, head,
 * split of the positions), `C` threads. Per chunk of C keys, each thread scores one key (q · k, q pre-scaled, held in
 * workgroup memory), the workgroup takes the chunk's max and sum (online softmax), then each thread accumulates one
 * vec4 of output dims over every G-th key of the chunk (G = C / (headDim / 4) key groups), reduced at the end. With one
 * split (num_workgroups.z = 1) it writes the output; with several, each split writes its unnormalised sums, max and
 * sum to the scratch `Scr` and {@link attentionCombineKernel} merges them (flash-decoding).
 *
 * Bindings: 2 Q, 3 Kc, 4 Vc, 5 O, 6 Pos, 7 Scr (seven storage buffers: WebGPU's default limit is eight).
 * Args: 0-2 rows, 3 nHeads, 4 nKvHeads, 6 scale, 7 softcap, 8 window, 9/10 rowBytes of the K/V caches,
 * 12/13 positions. Grid: x, y over (row, head) (`wg_index`), z the splits.
 */
export function attentionSplitKernel(
  f: GpuFormat,
  fv: GpuFormat,
  env: KernelEnv,
  headDim: number,
  C = attentionChunk(env, headDim),
): string {
  const D4 = headDim / 4;
  if (C < D4 || C % 32 !== 0) throw new Error(`attention chunk ${C} must be a multiple of 32 and >= headDim / 4`);
  const G = Math.floor(C / D4);
  const gk = cacheGet4(f, 'Kc');
  const gv = cacheGet4(fv, 'Vc');
  const useSg = env.subgroups;
  // Workgroup max / sum of one value per thread: subgroup reductions then the subgroups' partials, or a tree.
  const reduce = (op: 'max' | 'add') => {
    const comb = op === 'max' ? (a: string, b: string) => `max(${a}, ${b})` : (a: string, b: string) => `${a} + ${b}`;
    return useSg
      ? `fn wg_${op}(v: f32, lid: u32, sgi: u32, sgs: u32) -> f32 {
  let s = subgroup${op === 'max' ? 'Max' : 'Add'}(v);
  workgroupBarrier();
  if (sgi == 0u) { red[lid / sgs] = s; }
  workgroupBarrier();
  var t = red[0];
  for (var k = 1u; k < ${C}u / sgs; k++) { t = ${comb('t', 'red[k]')}; }
  return t;
}`
      : `fn wg_${op}(v: f32, lid: u32, sgi: u32, sgs: u32) -> f32 {
  workgroupBarrier();
  red[lid] = v;
  workgroupBarrier();
  for (var st = ${C / 2}u; st > 0u; st >>= 1u) {
    if (lid < st) { red[lid] = ${comb('red[lid]', 'red[lid + st]')}; }
    workgroupBarrier();
  }
  return red[0];
}`;
  };
  return `${enableSubgroups(env)}${header}${formatPrelude}
@group(0) @binding(2) var<storage, read_write> Q: array<vec4f>;
@group(0) @binding(3) var<storage, read> Kc: array<${gk.type}>;
@group(0) @binding(4) var<storage, read> Vc: array<${gv.type}>;
@group(0) @binding(5) var<storage, read_write> O: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> Pos: array<i32>;
@group(0) @binding(7) var<storage, read_write> Scr: array<vec4f>;
${gk.code}
${gv.code}
${positions}
${actFns}
var<workgroup> qs: array<vec4f, ${D4}>;
var<workgroup> pr: array<f32, ${C}>;
var<workgroup> red: array<f32, ${C}>;
var<workgroup> part: array<vec4f, ${G * D4}>;
var<workgroup> wu: u32;
var<workgroup> wp: u32;
${reduce('max')}
${reduce('add')}
@compute @workgroup_size(${C})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u${useSg ? ', @builtin(subgroup_invocation_id) sgi: u32, @builtin(subgroup_size) sgs: u32' : ''}) {
  ${useSg ? '' : 'let sgi = 0u; let sgs = 1u;'}
  _ = P[0];
  _ = Kc[0];
  _ = Vc[0];
  _ = Pos[0];
  _ = Scr[0];
  let heads = a(3u);
  let idx = wid.y * nwg.x + wid.x;
  let r = idx / heads;
  let h = idx % heads;
  if (lid == 0u) { wu = rows_of(0u); }
  if (r >= workgroupUniformLoad(&wu)) { return; }
  let kh = h / (heads / a(4u));
  let ko = kh * ${headDim}u;
  let qo = (r * heads + h) * ${D4}u;
  let scale = af(6u);
  let cap = af(7u);
  if (lid < ${D4}u) { qs[lid] = Q[qo + lid] * scale; }
  if (lid == 0u) { wp = pos_of(12u, r); }
  let p = workgroupUniformLoad(&wp);
  let win = a(8u);
  var t0 = 0u;
  if (win > 0u && p + 1u > win) { t0 = p + 1u - win; }
  // This split's keys [a0, a1): the positions cut into nwg.z ranges of whole chunks.
  let ns = nwg.z;
  let per = ((p + 1u - t0 + ns - 1u) / ns + ${C - 1}u) / ${C}u * ${C}u;
  let a0 = t0 + wid.z * per;
  let a1 = min(p + 1u, a0 + per);
  let rbk = a(9u);
  let rbv = a(10u);
  // Output vec4 column c over key group g.
  let c = lid % ${D4}u;
  let g = lid / ${D4}u;
  var m = -3.4e38;
  var l = 0.0;
  var acc = vec4f(0.0);
  for (var c0 = a0; c0 < a1; c0 += ${C}u) {
    let t = c0 + lid;
    var sv = -3.4e38;
    if (t < a1) {
      let row = t * rbk;
      var d = vec4f(0.0);
      for (var i = 0u; i < ${D4}u; i++) { d += qs[i] * Kc_get4(row, ko + 4u * i); }
      sv = d.x + d.y + d.z + d.w;
      if (cap > 0.0) { sv = cap * tanh_s(sv / cap); }
    }
    let mc = max(m, wg_max(sv, lid, sgi, sgs));
    let e = select(0.0, exp(sv - mc), t < a1);
    let corr = exp(m - mc);
    pr[lid] = e;
    let sum = wg_add(e, lid, sgi, sgs);
    l = l * corr + sum;
    m = mc;
    acc *= corr;
    let cnt = min(${C}u, a1 - c0);
    if (g < ${G}u) {
      // Four keys per iteration: their loads in flight together.
      var j = g;
      for (; j + ${3 * G}u < cnt; j += ${4 * G}u) {
        let v0 = Vc_get4((c0 + j) * rbv, ko + 4u * c);
        let v1 = Vc_get4((c0 + j + ${G}u) * rbv, ko + 4u * c);
        let v2 = Vc_get4((c0 + j + ${2 * G}u) * rbv, ko + 4u * c);
        let v3 = Vc_get4((c0 + j + ${3 * G}u) * rbv, ko + 4u * c);
        acc += pr[j] * v0 + pr[j + ${G}u] * v1 + pr[j + ${2 * G}u] * v2 + pr[j + ${3 * G}u] * v3;
      }
      for (; j < cnt; j += ${G}u) { acc += pr[j] * Vc_get4((c0 + j) * rbv, ko + 4u * c); }
    }
    workgroupBarrier();
  }
  if (g < ${G}u) { part[lid] = acc; }
  workgroupBarrier();
  if (lid < ${D4}u) {
    var o = part[lid];
    for (var k = 1u; k < ${G}u; k++) { o += part[k * ${D4}u + lid]; }
    if (ns == 1u) {
      O[qo + lid] = o / l;
    } else {
      // Scratch slot of (row, head, split): the sums, then (max, sum).
      let so = (idx * ns + wid.z) * ${D4 + 1}u;
      Scr[so + lid] = o;
      if (lid == 0u) { Scr[so + ${D4}u] = vec4f(m, l, 0.0, 0.0); }
    }
  }
}`;
}

/**
 * Merges the splits of {@link attentionSplitKernel}: a workgroup per (row, head), a thread per vec4 of output dims.
 * The split count is `P[a(11)]` (written with the step's params). Bindings: 2 Scr, 3 O. Args: 0-2 rows, 3 nHeads,
 * 11 the split count's slot in P.
 */
export function attentionCombineKernel(headDim: number): string {
  const D4 = headDim / 4;
  const T = Math.max(32, 2 ** Math.ceil(Math.log2(D4)));
  return `${header}
@group(0) @binding(2) var<storage, read_write> Scr: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> O: array<vec4f>;
@compute @workgroup_size(${T})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = wg_index(wid, nwg);
  if (idx >= rows_of(0u) * a(3u) || lid >= ${D4}u) { return; }
  let ns = P[a(11u)];
  var mx = -3.4e38;
  for (var s = 0u; s < ns; s++) { mx = max(mx, Scr[(idx * ns + s) * ${D4 + 1}u + ${D4}u].x); }
  var o = vec4f(0.0);
  var l = 0.0;
  for (var s = 0u; s < ns; s++) {
    let so = (idx * ns + s) * ${D4 + 1}u;
    let ml = Scr[so + ${D4}u];
    let w = exp(ml.x - mx);
    o += Scr[so + lid] * w;
    l += ml.y * w;
  }
  O[idx * ${D4}u + lid] = o / l;
}`;
}

// ---- argmax -------------------------------------------------------------------------------------------------------------

/**
 * Greedy sampling on the GPU: the index of the largest value of the last row (first wins) into Out[0], by one
 * workgroup of `wg` threads (a power of two), each reading every wg-th value four at a time.
 * Args: 0-2 rows, 3 cols.
 */
export function argmaxKernel(wg = 256): string {
  return `${header}
@group(0) @binding(2) var<storage, read_write> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> Out: array<u32>;
var<workgroup> bv: array<f32, ${wg}>;
var<workgroup> bi: array<u32, ${wg}>;
@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_index) lid: u32) {
  _ = P[0];
  let n = a(3u);
  let o = (max(rows_of(0u), 1u) - 1u) * n;
  var best = -3.4e38;
  var at = 0xffffffffu;
  // Four loads in flight per thread; indices stay increasing per thread, so a strict > keeps the first maximum.
  var i = lid;
  for (; i + ${3 * wg}u < n; i += ${4 * wg}u) {
    let v0 = X[o + i];
    let v1 = X[o + i + ${wg}u];
    let v2 = X[o + i + ${2 * wg}u];
    let v3 = X[o + i + ${3 * wg}u];
    if (v0 > best || at == 0xffffffffu) { best = v0; at = i; }
    if (v1 > best) { best = v1; at = i + ${wg}u; }
    if (v2 > best) { best = v2; at = i + ${2 * wg}u; }
    if (v3 > best) { best = v3; at = i + ${3 * wg}u; }
  }
  for (; i < n; i += ${wg}u) { let v = X[o + i]; if (v > best || at == 0xffffffffu) { best = v; at = i; } }
  bv[lid] = best;
  bi[lid] = at;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let v = bv[lid + s];
      let j = bi[lid + s];
      if (j != 0xffffffffu && (bi[lid] == 0xffffffffu || v > bv[lid] || (v == bv[lid] && j < bi[lid]))) { bv[lid] = v; bi[lid] = j; }
    }
    workgroupBarrier();
  }
  if (lid == 0u) { Out[0] = bi[0]; }
}`;
}
