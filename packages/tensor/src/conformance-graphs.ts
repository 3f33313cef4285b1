/**
 * The conformance suite's graph tests: the fused and newer ops one at a time, then whole models — a llama-style
 * block and a two-layer model with a KV cache run for several steps with varied token counts and positions — all
 * against the float64 interpreter of `reference.ts`. These are the tests that buffer reuse, aliasing, fusion and
 * state kept between runs must pass.
 */
import fc from 'fast-check';
import type { Backend, BackendTensor, MatmulActivations, OpName } from './backend.js';
import type { DTypeName } from './dtype.js';
import { type Graph, GraphBuilder, type TensorRef } from './graph.js';
import { type ReferenceEnv, referenceRun } from './reference.js';
import type { ConformanceCodec, ConformanceTolerances, TestApi, TestContext } from './testing.js';

/** What `runConformance` shares with the graph tests. */
export interface GraphTestKit {
  api: TestApi;
  backend(): Promise<Backend>;
  upload(b: Backend, dtype: DTypeName, shape: number[], bytes: Uint8Array, name: string): Promise<BackendTensor>;
  alloc(b: Backend, dtype: DTypeName, shape: number[], name: string): Promise<BackendTensor>;
  freeMade(b: Backend): void;
  claimedOrSkip(ctx: TestContext, op: OpName, what?: string): Promise<DTypeName[]>;
  needF32(ctx: TestContext, ...ops: OpName[]): Promise<Backend>;
  codecs: Readonly<Record<string, ConformanceCodec>>;
  tol: ConformanceTolerances;
  params: { seed: number; numRuns: number };
  wantOp(op: OpName): boolean;
}

/** A failed comparison. */
class GraphConformanceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConformanceError';
  }
}

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomF32(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (2 * r() - 1) * scale);
}

function close(what: string, got: Float32Array, want: Float64Array, rtol: number, atol: number): void {
  if (got.length < want.length)
    throw new GraphConformanceError(`${what}: got ${got.length} values, want ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= atol + rtol * Math.abs(want[i]))) {
      throw new GraphConformanceError(
        `${what}: element ${i} is ${got[i]}, expected ${want[i]} (|diff| ${d.toExponential(3)})`,
      );
    }
  }
}

function nmse(what: string, got: Float32Array, want: Float64Array, max: number): void {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(got[i])) throw new GraphConformanceError(`${what}: NaN at ${i}`);
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  const e = den === 0 ? num : num / den;
  if (!(e <= max)) throw new GraphConformanceError(`${what}: NMSE ${e.toExponential(3)} > ${max}`);
}

/**
 * Operands made for one test: uploads through the kit (so they are freed), and the reference's view of them: the
 * decoded weights and float64 states that `copy` nodes update.
 */
class Operands {
  readonly #kit: GraphTestKit;
  readonly #b: Backend;
  readonly #weights = new Map<BackendTensor, Float32Array>();
  readonly #states = new Map<BackendTensor, Float64Array>();
  constructor(kit: GraphTestKit, b: Backend) {
    this.#kit = kit;
    this.#b = b;
  }
  /** Uploads `values` (quantized to `dtype` first); the reference sees the decoded values. */
  async weight(dtype: DTypeName, shape: number[], values: Float32Array, name: string): Promise<BackendTensor> {
    const cols = shape[shape.length - 1];
    const codec = this.#kit.codecs[dtype];
    if (codec === undefined) throw new GraphConformanceError(`no codec for ${dtype} was given to the suite`);
    const bytes = codec.quantize(values, { rowLength: cols });
    const t = await this.#kit.upload(this.#b, dtype, shape, bytes, name);
    this.#weights.set(t, codec.dequantize(bytes, values.length));
    return t;
  }
  async state(dtype: DTypeName, shape: number[], name: string): Promise<BackendTensor> {
    const t = await this.#kit.alloc(this.#b, dtype, shape, name);
    this.#states.set(t, new Float64Array(shape.reduce((a, b) => a * b, 1)));
    return t;
  }
  // ReferenceEnv
  readonly env: ReferenceEnv = {
    weight: (h) => this.#weights.get(h) as Float32Array,
    state: (h) => this.#states.get(h) as Float64Array,
    store: (dtype, row) => {
      const c = this.#kit.codecs[dtype];
      const f = Float32Array.from(row);
      return Float64Array.from(c.dequantize(c.quantize(f, { rowLength: f.length }), f.length));
    },
  };
}

/** Registers the graph tests. */
export function registerGraphTests(kit: GraphTestKit): void {
  const { api, tol, params } = kit;
  const single = (
    name: string,
    ops: OpName[],
    property: (b: Backend, ops: Operands, seed: number) => Promise<void>,
  ): void => {
    if (!ops.every(kit.wantOp)) return;
    api.it(name, async (ctx) => {
      const b = await kit.needF32(ctx, ...ops);
      await fc.assert(
        fc.asyncProperty(fc.integer(), async (seed) => {
          await property(b, new Operands(kit, b), seed);
          kit.freeMade(b);
        }),
        params,
      );
    });
  };
  const runBoth = async (
    b: Backend,
    ops: Operands,
    graph: Graph,
    inputs: Record<string, Float32Array | Int32Array | number>,
    what: string,
    scale = 1,
  ) => {
    const got = await b.run(graph, inputs);
    const want = referenceRun(graph, inputs, ops.env);
    for (const o of graph.outputs)
      close(`${what} (${o.name})`, got[o.name], want[o.name], tol.rtol * scale, tol.atol * scale);
  };

  single('matmul: fused bias and residual (f32 weights)', ['matmul'], async (b, ops, seed) => {
    const r = rng(seed);
    const inF = 1 + Math.floor(r() * 40);
    const outF = 1 + Math.floor(r() * 20);
    const rows = Math.floor(r() * 4);
    const w = await ops.weight('f32', [outF, inF], randomF32(outF * inF, seed), 'w');
    const bias = await ops.weight('f32', [outF], randomF32(outF, seed + 1), 'bias');
    const g = new GraphBuilder();
    const n = g.param('n', { max: 3 });
    const x = g.input('x', 'f32', [n, inF]);
    const res = g.input('res', 'f32', [n, outF]);
    // The residual must be a value: pass the input through a scale by 1.
    const resV = g.scale(res, 1);
    const useBias = r() < 0.7;
    g.output('y', g.matmul(g.weight(w), x, { bias: useBias ? g.weight(bias) : undefined, residual: resV }));
    const inputs = { x: randomF32(rows * inF, seed + 2), res: randomF32(rows * outF, seed + 3), n: rows };
    await runBoth(b, ops, g.build(), inputs, `matmul+bias+residual [${outF}, ${inF}] x ${rows}`, 10);
  });

  single(
    'rms_norm and layer_norm: fused weight and bias, rank 3 rows',
    ['rms_norm', 'layer_norm'],
    async (b, ops, seed) => {
      const r = rng(seed);
      const heads = 1 + Math.floor(r() * 3);
      const hd = 1 + Math.floor(r() * 40);
      const rows = Math.floor(r() * 4);
      const w = await ops.weight('f32', [hd], randomF32(hd, seed, 2), 'w');
      const bias = await ops.weight('f32', [hd], randomF32(hd, seed + 1), 'b');
      const g = new GraphBuilder();
      const n = g.param('n', { max: 3 });
      const x = g.input('x', 'f32', [n, heads, hd]);
      g.output('rms', g.rmsNorm(x, 1e-6, { weight: g.weight(w) }));
      g.output('ln', g.layerNorm(x, 1e-5, { weight: g.weight(w), bias: g.weight(bias) }));
      await runBoth(b, ops, g.build(), { x: randomF32(rows * heads * hd, seed + 2, 3), n: rows }, 'norms');
    },
  );

  single('glu: silu and gelu, separate and fused [gate | up] rows', ['glu'], async (b, ops, seed) => {
    const r = rng(seed);
    const cols = 1 + Math.floor(r() * 60);
    const rows = Math.floor(r() * 4);
    const g = new GraphBuilder();
    const n = g.param('n', { max: 3 });
    const gate = g.scale(g.input('gate', 'f32', [n, cols]), 1);
    const up = g.scale(g.input('up', 'f32', [n, cols]), 1);
    const both = g.scale(g.input('both', 'f32', [n, 2 * cols]), 1);
    g.output('silu', g.glu(gate, up, { activation: 'silu' }));
    g.output('gelu', g.glu(gate, up, { activation: 'gelu' }));
    g.output('fused', g.glu(both, undefined, { activation: r() < 0.5 ? 'silu' : 'gelu' }));
    const inputs = {
      gate: randomF32(rows * cols, seed, 4),
      up: randomF32(rows * cols, seed + 1, 2),
      both: randomF32(rows * 2 * cols, seed + 2, 3),
      n: rows,
    };
    await runBoth(b, ops, g.build(), inputs, `glu [${rows}, ${cols}]`);
  });

  single(
    'softcap and reshape (a view shared with its input)',
    ['softcap', 'reshape', 'scale'],
    async (b, ops, seed) => {
      const r = rng(seed);
      const a = 1 + Math.floor(r() * 5);
      const c = 1 + Math.floor(r() * 30);
      const rows = Math.floor(r() * 4);
      const g = new GraphBuilder();
      const n = g.param('n', { max: 3 });
      const x = g.scale(g.input('x', 'f32', [n, a * c]), 3);
      const v = g.reshape(x, [n, a, c]);
      // Read the view and its source after it: an aliasing mistake shows in either.
      g.output('capped', g.softcap(v, 5));
      g.output('back', g.scale(g.reshape(v, [n, a * c]), -1));
      g.output('src', g.scale(x, 0.5));
      await runBoth(
        b,
        ops,
        g.build(),
        { x: randomF32(rows * a * c, seed, 4), n: rows },
        `softcap/reshape [${rows}, ${a}x${c}]`,
      );
    },
  );

  single('rope: frequency factors, YaRN and the attention factor', ['rope'], async (b, ops, seed) => {
    const r = rng(seed);
    const nHeads = 1 + Math.floor(r() * 3);
    const headDim = 2 * (2 + Math.floor(r() * 16));
    const nRot = r() < 0.5 ? headDim : 2 * Math.max(1, Math.floor(headDim / 4));
    const rows = Math.floor(r() * 4);
    const factors = await ops.weight(
      'f32',
      [nRot / 2],
      Float32Array.from({ length: nRot / 2 }, () => 1 + 7 * r()),
      'f',
    );
    const g = new GraphBuilder();
    const n = g.param('n', { max: 3 });
    const start = g.param('start', { max: 5000 });
    const x = g.input('x', 'f32', [n, nHeads * headDim]);
    const mode = r() < 0.5 ? 'normal' : 'neox';
    g.output('factors', g.rope(x, start, { nHeads, nRot, mode, freqBase: 500000, freqFactors: g.weight(factors) }));
    g.output(
      'yarn',
      g.rope(x, start, {
        nHeads,
        nRot,
        mode,
        freqBase: 10000,
        freqScale: 0.25,
        extFactor: 1,
        origCtx: 4096,
        attnFactor: 1.2,
      }),
    );
    const st = Math.floor(r() * 4997);
    await runBoth(
      b,
      ops,
      g.build(),
      { x: randomF32(rows * nHeads * headDim, seed, 2), n: rows, start: st },
      `rope at ${st}`,
      10,
    );
  });

  if (kit.wantOp('attention')) {
    api.it('attention: sliding window and score soft-capping', async (ctx) => {
      const b = await kit.needF32(ctx, 'attention', 'copy');
      await fc.assert(
        fc.asyncProperty(fc.integer(), async (seed) => {
          const r = rng(seed);
          const ops = new Operands(kit, b);
          const nKv = 1 + Math.floor(r() * 2);
          const group = 1 + Math.floor(r() * 3);
          const hd = 8 * (1 + Math.floor(r() * 2));
          const ctxLen = 2 + Math.floor(r() * 10);
          const nHeads = nKv * group;
          const kc = await ops.state('f32', [ctxLen, nKv * hd], 'k');
          const vc = await ops.state('f32', [ctxLen, nKv * hd], 'v');
          const g = new GraphBuilder();
          const n = g.param('n', { min: 1, max: ctxLen });
          const pos = g.param('pos', { max: ctxLen - 1 });
          g.copy(g.scale(g.input('kin', 'f32', [n, nKv * hd]), 1), g.state(kc), pos);
          g.copy(g.scale(g.input('vin', 'f32', [n, nKv * hd]), 1), g.state(vc), pos);
          const q = g.scale(g.input('q', 'f32', [n, nHeads * hd]), 1);
          const window = 1 + Math.floor(r() * 4);
          const opts = { nHeads, nKvHeads: nKv, window, softcap: r() < 0.5 ? 0 : 0.7 };
          g.output('y', g.attention(q, g.state(kc), g.state(vc), pos, opts));
          const rows = ctxLen;
          await runBoth(
            b,
            ops,
            g.build(),
            {
              kin: randomF32(rows * nKv * hd, seed, 2),
              vin: randomF32(rows * nKv * hd, seed + 1),
              q: randomF32(rows * nHeads * hd, seed + 2, 2),
              n: rows,
              pos: 0,
            },
            `attention window ${window} softcap ${opts.softcap} heads ${nHeads}/${nKv}`,
            10,
          );
          kit.freeMade(b);
        }),
        params,
      );
    });
  }

  // ---- whole models ----------------------------------------------------------------------------------------------

  const modelOps: OpName[] = [
    'get_rows',
    'matmul',
    'rms_norm',
    'layer_norm',
    'rope',
    'attention',
    'copy',
    'glu',
    'softcap',
    'reshape',
    'scale',
    'add',
    'mul',
    'softmax',
  ];
  if (modelOps.every(kit.wantOp)) registerModelTest();

  function registerModelTest(): void {
    api.it('a llama block and a two-layer model with a KV cache, several steps, vs float64', async (ctx) => {
      const b = await kit.needF32(
        ctx,
        ...modelOps.filter((op) => !['matmul', 'get_rows', 'attention', 'copy'].includes(op)),
      );
      const claims = b.capabilities.ops;
      // Weight/cache dtype pairs this backend claims: f32 (exact), then quantized ones if claimed.
      const combos = (
        [
          ['f32', 'f32'],
          ['q8_0', 'f16'],
          ['q4_0', 'q8_0'],
          ['f16', 'f32'],
        ] as const
      ).filter(
        ([w, c]) =>
          claims.matmul.includes(w) &&
          claims.get_rows.includes(w) &&
          claims.attention.includes(c) &&
          claims.copy.includes(c) &&
          kit.codecs[w] !== undefined &&
          kit.codecs[c] !== undefined,
      );
      if (combos.length === 0) {
        ctx.skip(`${b.name} claims no weight/cache dtype pair of f32, q8_0/f16, q4_0/q8_0, f16/f32`);
        return;
      }
      for (const [wType, cType] of combos) {
        for (const mode of b.capabilities.matmulActivations) {
          for (const layers of [1, 2]) {
            await runModel(kit, b, wType, cType, mode, layers, params.seed);
            kit.freeMade(b);
          }
        }
      }
    });
  }

  /** One model: build, then run steps of varied sizes at growing positions and compare logits every step. */
  async function runModel(
    k: GraphTestKit,
    b: Backend,
    wType: DTypeName,
    cType: DTypeName,
    mode: MatmulActivations,
    nLayers: number,
    seed: number,
  ): Promise<void> {
    const dim = 64;
    const nHeads = 4;
    const nKv = 2;
    const hd = 16;
    const hidden = 64;
    const vocab = 48;
    const ctx = 16;
    const ops = new Operands(k, b);
    let s = seed;
    const rand = (n: number, scale: number) => randomF32(n, s++, scale);
    const mat = (rows: number, cols: number, name: string, scale = 0.25) =>
      ops.weight(wType, [rows, cols], rand(rows * cols, scale), name);
    const vec = (n: number, name: string, scale = 0.2, base = 1) =>
      ops.weight(
        'f32',
        [n],
        rand(n, scale).map((v) => v + base),
        name,
      );
    const emb = await mat(vocab, dim, 'token_embd', 1);
    const out = await mat(vocab, dim, 'output');
    const outNorm = await vec(dim, 'output_norm');
    const lnW = await vec(dim, 'ln_w');
    const lnB = await vec(dim, 'ln_b', 0.1, 0);
    const L = [];
    for (let l = 0; l < nLayers; l++) {
      L.push({
        attnNorm: await vec(dim, `${l}.attn_norm`),
        wq: await mat(nHeads * hd, dim, `${l}.q`),
        wk: await mat(nKv * hd, dim, `${l}.k`),
        wv: await mat(nKv * hd, dim, `${l}.v`),
        bq: await vec(nHeads * hd, `${l}.bq`, 0.1, 0),
        qNorm: await vec(hd, `${l}.q_norm`),
        factors: await vec(hd / 2, `${l}.rope_freqs`, 0.5, 2),
        wo: await mat(dim, nHeads * hd, `${l}.o`),
        ffnNorm: await vec(dim, `${l}.ffn_norm`),
        wg: await mat(hidden, dim, `${l}.gate`),
        wu: await mat(hidden, dim, `${l}.up`),
        wgu: await mat(2 * hidden, dim, `${l}.gate_up`),
        wd: await mat(dim, hidden, `${l}.down`),
        kc: await ops.state(cType, [ctx, nKv * hd], `${l}.cache_k`),
        vc: await ops.state(cType, [ctx, nKv * hd], `${l}.cache_v`),
      });
    }
    const g = new GraphBuilder();
    const n = g.param('nTokens', { min: 1, max: 4 });
    const pos = g.param('pos', { max: ctx - 1 });
    const tokens = g.input('tokens', 'i32', [n]);
    const mm = (w: BackendTensor, x: TensorRef, o: { bias?: TensorRef; residual?: TensorRef } = {}) =>
      g.matmul(g.weight(w), x, { ...o, activations: mode });
    // Gemma-style embedding scale; then per layer the llama block, with a Qwen 3 q-norm, a Qwen 2 bias, Llama 3
    // rope factors and a sliding, soft-capped attention in the second layer.
    let x = g.scale(g.getRows(g.weight(emb), tokens), Math.sqrt(dim)); // [n, dim]
    for (let l = 0; l < nLayers; l++) {
      const W = L[l];
      const h = g.rmsNorm(x, 1e-5, { weight: g.weight(W.attnNorm) }); // [n, dim]
      let q = mm(W.wq, h, { bias: g.weight(W.bq) }); // [n, nHeads * hd]
      if (l === 1)
        q = g.reshape(g.rmsNorm(g.reshape(q, [n, nHeads, hd]), 1e-6, { weight: g.weight(W.qNorm) }), [n, nHeads * hd]);
      const rope = l === 0 ? { mode: 'normal' as const, freqFactors: g.weight(W.factors) } : { mode: 'neox' as const };
      q = g.rope(q, pos, { nHeads, ...rope });
      const kk = g.rope(mm(W.wk, h), pos, { nHeads: nKv, ...rope }); // [n, nKv * hd]
      g.copy(kk, g.state(W.kc), pos);
      g.copy(mm(W.wv, h), g.state(W.vc), pos);
      const att = g.attention(q, g.state(W.kc), g.state(W.vc), pos, {
        nHeads,
        nKvHeads: nKv,
        ...(l === 1 ? { window: 3, softcap: 2 } : {}),
      });
      x = mm(W.wo, att, { residual: x }); // [n, dim]
      const f = g.rmsNorm(x, 1e-5, { weight: g.weight(W.ffnNorm) });
      const act = l === 0 ? g.glu(mm(W.wg, f), mm(W.wu, f)) : g.glu(mm(W.wgu, f), undefined, { activation: 'gelu' });
      x = mm(W.wd, act, { residual: x }); // [n, dim]
    }
    // A layer norm and an explicit mul/add on the way out, so every op appears in one graph.
    const xl = g.add(g.mul(g.layerNorm(x, 1e-5, { weight: g.weight(lnW), bias: g.weight(lnB) }), g.weight(outNorm)), x);
    const logits = g.softcap(mm(out, g.rmsNorm(xl, 1e-5)), 15); // [n, vocab]
    g.output('logits', logits);
    g.output('probs', g.softmax(logits));
    const graph = g.build();

    const steps = [3, 1, 4, 2, 1, 3];
    let p = 0;
    for (const [i, count] of steps.entries()) {
      const ids = Int32Array.from({ length: count }, (_, j) => (seed + 7 * (p + j) + 3 * i) % vocab);
      const inputs = { tokens: ids, nTokens: count, pos: p };
      const got = await b.run(graph, inputs);
      const want = referenceRun(graph, inputs, ops.env);
      const what = `${nLayers}-layer model, ${wType} weights, ${cType} cache, ${mode} activations, step ${i} (${count} at ${p})`;
      if (mode === 'f32' && wType === 'f32' && cType === 'f32') {
        close(what, got.logits, want.logits, tol.rtol * 10, tol.atol * 10);
      } else {
        nmse(what, got.logits, want.logits, mode === 'f32' ? tol.matmulNmseF32 * 10 : tol.matmulNmseGgml);
      }
      p += count;
    }
  }
}
