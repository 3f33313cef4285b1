/**
 * A float64 interpreter of the graph IR: the oracle of the conformance suite's multi-node tests. It shares no code
 * with any backend or with the kit's kernel helpers (rope angles, YaRN ramps and attention are written out here from
 * the op definitions in graph.ts), keeps every value in its own array (no buffer reuse), and models storage rounding
 * only where the IR defines it: a `copy` into a state stores what the state's dtype can hold.
 */
import type { BackendTensor, RunInputs } from './backend.js';
import { dimValue, type Graph, type GraphNode, isTensor, type Positions, type TensorRef } from './graph.js';

/** Where the reference reads weights and keeps states. */
export interface ReferenceEnv {
  /** Decoded values of a weight, row-major. */
  weight(handle: BackendTensor): Float64Array | Float32Array;
  /** The decoded contents of a state (a KV cache), updated in place by `copy` nodes across runs. */
  state(handle: BackendTensor): Float64Array;
  /** What one row becomes when stored in a state of `dtype` (quantize then decode); identity for f32 up to rounding. */
  store(dtype: string, row: Float64Array): Float64Array;
}

/**
 * Runs `graph` in float64 and returns every output.
 *
 * @example
 * ```ts
 * const caches = new Map<BackendTensor, Float64Array>();
 * const out = referenceRun(graph, { tokens, nTokens: 3, pos: 0 }, env); // out.logits: Float64Array
 * ```
 */
export function referenceRun(graph: Graph, inputs: RunInputs, env: ReferenceEnv): Record<string, Float64Array> {
  const params: Record<string, number> = {};
  for (const p of graph.params) params[p.name] = inputs[p.name] as number;
  const vals = new Map<number, Float64Array>();
  const get = (t: TensorRef): Float64Array => {
    if (t.kind === 'value') return vals.get(t.id) as Float64Array;
    if (t.kind === 'input') return Float64Array.from(inputs[t.name] as ArrayLike<number>);
    if (t.kind === 'weight') return Float64Array.from(env.weight(t.handle as BackendTensor));
    return env.state(t.handle as BackendTensor);
  };
  const dims = (t: TensorRef) => t.shape.map((d) => dimValue(d, params));
  const colsOf = (t: TensorRef) => dims(t)[t.shape.length - 1];
  const rowsOf = (t: TensorRef) => dims(t).reduce((a, b) => a * b, 1) / colsOf(t);
  const posOf = (p: Positions, r: number): number =>
    isTensor(p) ? (inputs[p.name] as Int32Array)[r] : params[p.name] + r;
  for (const node of graph.nodes) {
    const out = evalNode(node, get, rowsOf, colsOf, posOf, env);
    if (node.out !== undefined && out !== undefined) vals.set(node.out.id, out);
  }
  const result: Record<string, Float64Array> = {};
  for (const o of graph.outputs) result[o.name] = vals.get(o.tensor.id) as Float64Array;
  return result;
}

function evalNode(
  node: GraphNode,
  get: (t: TensorRef) => Float64Array,
  rowsOf: (t: TensorRef) => number,
  colsOf: (t: TensorRef) => number,
  posOf: (p: Positions, r: number) => number,
  env: ReferenceEnv,
): Float64Array | undefined {
  switch (node.op) {
    case 'matmul': {
      const w = get(node.weight);
      const x = get(node.x);
      const rows = rowsOf(node.x);
      const inF = colsOf(node.x);
      const outF = node.weight.shape[0] as number;
      const bias = node.bias ? get(node.bias) : undefined;
      const res = node.residual ? get(node.residual) : undefined;
      const y = new Float64Array(rows * outF);
      for (let r = 0; r < rows; r++) {
        for (let o = 0; o < outF; o++) {
          let s = 0;
          for (let i = 0; i < inF; i++) s += w[o * inF + i] * x[r * inF + i];
          y[r * outF + o] = s + (bias ? bias[o] : 0) + (res ? res[r * outF + o] : 0);
        }
      }
      return y;
    }
    case 'get_rows': {
      const table = get(node.table);
      const ids = get(node.ids);
      const cols = node.table.shape[1] as number;
      const y = new Float64Array(ids.length * cols);
      for (let r = 0; r < ids.length; r++) y.set(table.subarray(ids[r] * cols, (ids[r] + 1) * cols), r * cols);
      return y;
    }
    case 'rms_norm':
    case 'layer_norm': {
      const x = get(node.x);
      const cols = colsOf(node.x);
      const w = node.weight ? get(node.weight) : undefined;
      const b = node.op === 'layer_norm' && node.bias ? get(node.bias) : undefined;
      const y = new Float64Array(x.length);
      for (let o = 0; o < x.length; o += cols) {
        let mean = 0;
        if (node.op === 'layer_norm') {
          for (let i = 0; i < cols; i++) mean += x[o + i];
          mean /= cols;
        }
        let ss = 0;
        for (let i = 0; i < cols; i++) ss += (x[o + i] - mean) ** 2;
        const inv = 1 / Math.sqrt(ss / cols + node.eps);
        for (let i = 0; i < cols; i++) y[o + i] = (x[o + i] - mean) * inv * (w ? w[i] : 1) + (b ? b[i] : 0);
      }
      return y;
    }
    case 'rope': {
      const x = get(node.x);
      const rows = rowsOf(node.x);
      const { nHeads, headDim, nRot } = node;
      const factors = node.freqFactors ? get(node.freqFactors) : undefined;
      // ggml's rope_yarn_corr_dims (float64 here; ggml's float32 can move a ramp edge only on exact ties).
      const corr = (beta: number) =>
        (nRot * Math.log(node.origCtx / (beta * 2 * Math.PI))) / (2 * Math.log(node.freqBase));
      const lo = Math.max(0, Math.floor(corr(node.betaFast)));
      const hi = Math.min(nRot - 1, Math.ceil(corr(node.betaSlow)));
      const y = Float64Array.from(x);
      for (let r = 0; r < rows; r++) {
        const p = posOf(node.positions, r);
        for (let j = 0; j < nRot / 2; j++) {
          const extrap = (p * node.freqBase ** ((-2 * j) / nRot)) / (factors ? factors[j] : 1);
          const interp = node.freqScale * extrap;
          let theta = interp;
          let mscale = node.attnFactor;
          if (node.extFactor !== 0) {
            const ramp = 1 - Math.min(1, Math.max(0, (j - lo) / Math.max(0.001, hi - lo)));
            const mix = ramp * node.extFactor;
            theta = interp * (1 - mix) + extrap * mix;
            mscale *= 1 + 0.1 * Math.log(1 / node.freqScale);
          }
          const c = Math.cos(theta) * mscale;
          const s = Math.sin(theta) * mscale;
          for (let h = 0; h < nHeads; h++) {
            const o = r * nHeads * headDim + h * headDim;
            const i0 = node.mode === 'neox' ? o + j : o + 2 * j;
            const i1 = node.mode === 'neox' ? i0 + nRot / 2 : i0 + 1;
            y[i0] = x[i0] * c - x[i1] * s;
            y[i1] = x[i0] * s + x[i1] * c;
          }
        }
      }
      return y;
    }
    case 'attention': {
      const q = get(node.q);
      const k = get(node.k);
      const v = get(node.v);
      const rows = rowsOf(node.q);
      const { nHeads, nKvHeads, headDim: hd } = node;
      const kvDim = nKvHeads * hd;
      const y = new Float64Array(rows * nHeads * hd);
      for (let r = 0; r < rows; r++) {
        const p = posOf(node.positions, r);
        const first = node.window > 0 ? Math.max(0, p - node.window + 1) : 0;
        for (let h = 0; h < nHeads; h++) {
          const kh = Math.floor((h * nKvHeads) / nHeads);
          const scores: number[] = [];
          for (let t = first; t <= p; t++) {
            let d = 0;
            for (let i = 0; i < hd; i++) d += q[(r * nHeads + h) * hd + i] * k[t * kvDim + kh * hd + i];
            d *= node.scale;
            scores.push(node.softcap > 0 ? node.softcap * Math.tanh(d / node.softcap) : d);
          }
          const m = Math.max(...scores);
          const e = scores.map((s) => Math.exp(s - m));
          const sum = e.reduce((a, b) => a + b, 0);
          for (let t = first; t <= p; t++) {
            for (let i = 0; i < hd; i++)
              y[(r * nHeads + h) * hd + i] += (e[t - first] / sum) * v[t * kvDim + kh * hd + i];
          }
        }
      }
      return y;
    }
    case 'softmax': {
      const x = get(node.x);
      const cols = colsOf(node.x);
      const y = new Float64Array(x.length);
      for (let o = 0; o < x.length; o += cols) {
        let m = Number.NEGATIVE_INFINITY;
        for (let i = 0; i < cols; i++) m = Math.max(m, x[o + i]);
        let s = 0;
        for (let i = 0; i < cols; i++) s += y[o + i] = Math.exp(x[o + i] - m);
        for (let i = 0; i < cols; i++) y[o + i] /= s;
      }
      return y;
    }
    case 'silu':
      return get(node.x).map(siluRef);
    case 'gelu':
      return get(node.x).map(geluRef);
    case 'softcap': {
      const c = node.cap;
      return get(node.x).map((v) => c * Math.tanh(v / c));
    }
    case 'scale': {
      const f = node.factor;
      return get(node.x).map((v) => v * f);
    }
    case 'glu': {
      const g = get(node.gate);
      const act = node.activation === 'silu' ? siluRef : geluRef;
      if (node.up !== undefined) {
        const u = get(node.up);
        return g.map((v, i) => act(v) * u[i]);
      }
      const half = colsOf(node.gate) / 2;
      const rows = rowsOf(node.gate);
      const y = new Float64Array(rows * half);
      for (let r = 0; r < rows; r++) {
        for (let i = 0; i < half; i++) y[r * half + i] = act(g[r * 2 * half + i]) * g[r * 2 * half + half + i];
      }
      return y;
    }
    case 'reshape':
      return Float64Array.from(get(node.x));
    case 'add':
    case 'mul': {
      const a = get(node.a);
      const b = get(node.b);
      return a.map((v, i) => (node.op === 'add' ? v + b[i % b.length] : v * b[i % b.length]));
    }
    case 'copy': {
      const src = get(node.src);
      const dst = env.state(node.dst.handle as BackendTensor);
      const cols = colsOf(node.src);
      for (let r = 0; r < rowsOf(node.src); r++) {
        const p = posOf(node.positions, r);
        dst.set(env.store(node.dst.dtype, src.subarray(r * cols, (r + 1) * cols)), p * cols);
      }
      return undefined;
    }
  }
}

function siluRef(v: number): number {
  return v / (1 + Math.exp(-v));
}

function geluRef(v: number): number {
  return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
}
