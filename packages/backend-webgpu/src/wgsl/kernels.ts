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
 * one accumulator per row, so the 32 activations of a unit are loaded once for all rows. Rows are then summed with
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
  if (norm) bind.push('@group(0) @binding(8) var<storage, read_write> NW: array<f32>;');
  for (let i = 0; i < segs.length; i++) bind.push(`@group(0) @binding(${9 + i}) var<storage, read> W${i}: array<u32>;`);
  const codes = new Set(segs.map((g, i) => g.f.code(`W${i}`)));

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
    if (scalar) {
      return `
  for (var i = t; i < K; i += ${s.tpr}u) {
    let xi = ${xload};
    ${dots}
  }`;
    }
    const nx = norm
      ? Array.from(
          { length: 8 },
          (_, k) =>
            `xv[${k}] = X[xo + ${k}u] * inv * vec4f(NW[4u * (u * 8u + ${k}u)], NW[4u * (u * 8u + ${k}u) + 1u], NW[4u * (u * 8u + ${k}u) + 2u], NW[4u * (u * 8u + ${k}u) + 3u]);`,
        ).join('\n    ')
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

  return `${enableSubgroups(env)}${header}${formatPrelude}${glu ? actFns : ''}
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
  ${scalar ? 'let xb = tok * K;' : 'let nu = K / 32u;\n  let xb = tok * (K / 4u);\n  var xv: array<vec4f, 8>;'}
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

// ---- tiled matrix-matrix --------------------------------------------------------------------------------------------

/**
 * Tiled matrix-matrix for several tokens: a workgroup of 256 threads computes a 64 (weight rows) x 64 (tokens) tile,
 * each thread a 4x4 block of it, over K in steps of 32: the weight tile is decoded from its blocks into shared memory
 * once and used by all 64 tokens, the activation tile is loaded once and used by all 64 rows.
 *
 * Args: 0 K, 1 N, 2 rowBytes, 3 chunk's first row, 4 chunk rows, 5/6/7 tokens (rows_of).
 */
export function tiledKernel(f: GpuFormat, env: KernelEnv, e: { bias: boolean; residual: boolean }): string {
  const scalar = f.blockSize === 1;
  const bind = [
    '@group(0) @binding(2) var<storage, read_write> X: array<f32>;',
    '@group(0) @binding(3) var<storage, read> W: array<u32>;',
    '@group(0) @binding(4) var<storage, read_write> Y: array<f32>;',
  ];
  if (e.bias) bind.push('@group(0) @binding(5) var<storage, read_write> Bias: array<f32>;');
  if (e.residual) bind.push('@group(0) @binding(6) var<storage, read_write> Res: array<f32>;');
  // Weight element (row rr of the chunk, column kk): scalar formats address elements, block formats blocks.
  const wget = scalar
    ? `W_get(rr * rowBytes + kk * ${f.blockBytes}u, 0u)`
    : `W_get(rr * rowBytes + (kk / ${f.blockSize}u) * ${f.blockBytes}u, kk % ${f.blockSize}u)`;
  return `${enableSubgroups({ ...env, subgroups: false })}${header}${formatPrelude}
${bind.join('\n')}
${f.code('W')}
var<workgroup> Ws: array<array<f32, 65>, 32>;
var<workgroup> Xs: array<array<f32, 65>, 32>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  _ = P[0];
  let K = a(0u);
  let N = a(1u);
  let rowBytes = a(2u);
  let chunkRows = a(4u);
  let nTok = rows_of(5u);
  let row0 = wid.x * 64u;
  let tok0 = wid.y * 64u;
  let tr = (lid % 16u) * 4u;
  let tt = (lid / 16u) * 4u;
  var acc: array<vec4f, 4>;
  for (var k0 = 0u; k0 < K; k0 += 32u) {
    // 64 x 32 weights and 64 x 32 activations, 8 of each per thread.
    for (var q = 0u; q < 8u; q++) {
      let e = lid + q * 256u;
      let rl = e / 32u;
      let kl = e % 32u;
      let kk = k0 + kl;
      let rr = min(row0 + rl, chunkRows - 1u);
      var wv = 0.0;
      if (kk < K) { wv = ${wget}; }
      Ws[kl][rl] = wv;
      let tk = min(tok0 + rl, nTok - 1u);
      var xv = 0.0;
      if (kk < K) { xv = X[tk * K + kk]; }
      Xs[kl][rl] = xv;
    }
    workgroupBarrier();
    let kn = min(32u, K - k0);
    for (var k = 0u; k < kn; k++) {
      let w4 = vec4f(Ws[k][tr], Ws[k][tr + 1u], Ws[k][tr + 2u], Ws[k][tr + 3u]);
      acc[0] += w4 * Xs[k][tt];
      acc[1] += w4 * Xs[k][tt + 1u];
      acc[2] += w4 * Xs[k][tt + 2u];
      acc[3] += w4 * Xs[k][tt + 3u];
    }
    workgroupBarrier();
  }
  for (var j = 0u; j < 4u; j++) {
    let tok = tok0 + tt + j;
    if (tok >= nTok) { break; }
    for (var i = 0u; i < 4u; i++) {
      let local = row0 + tr + i;
      if (local >= chunkRows) { break; }
      let o = a(3u) + local;
      var v = acc[j][i];
      ${e.bias ? 'v += Bias[o];' : ''}
      ${e.residual ? 'v += Res[tok * N + o];' : ''}
      Y[tok * N + o] = v;
    }
  }
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

// ---- argmax -------------------------------------------------------------------------------------------------------------

/** Greedy sampling on the GPU: the index of the largest value of the last row (first wins) into Out[0]. Args: 0-2 rows, 3 cols. */
export function argmaxKernel(): string {
  return `${header}
@group(0) @binding(2) var<storage, read_write> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> Out: array<u32>;
var<workgroup> bv: array<f32, 256>;
var<workgroup> bi: array<u32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  _ = P[0];
  let n = a(3u);
  let o = (max(rows_of(0u), 1u) - 1u) * n;
  var best = -3.4e38;
  var at = 0xffffffffu;
  for (var i = lid; i < n; i += 256u) { let v = X[o + i]; if (v > best || at == 0xffffffffu) { best = v; at = i; } }
  bv[lid] = best;
  bi[lid] = at;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
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
