import { bf16ToFp32, type Codec, formats, fp16Table, fp32ToBf16, fp32ToFp16 } from '@nibble/formats';
import {
  type AttentionNode,
  type BackendCapabilities,
  BackendError,
  type BackendOptions,
  type BackendTensor,
  type BoundRun,
  byteLength,
  type CopyNode,
  DTypeError,
  type DTypeName,
  dtypes,
  GraphError,
  type GraphNode,
  type GraphPlan,
  type HostTensor,
  hostTensor,
  KernelBackend,
  type MatmulActivations,
  type MatmulNode,
  numelAt,
  type OpName,
  positionAt,
  type RopeNode,
  type RunOptions,
  type RunOutputs,
  ropeTables,
  rowBytes,
  rowsAt,
  rowsMax,
  type Shape,
  type TensorOptions,
  type TensorRef,
  unlimited,
} from '@nibble/tensor';
import { buildHighBitLut, buildNibbleLut, dotF32, type FusedKernels, fused, lutLength, tileF32 } from './kernels.js';
import { JsTensor } from './tensor.js';

/**
 * Options of the JS backend (see {@link BackendOptions}).
 *
 * @example
 * ```ts
 * new JsBackend({ matmulActivations: 'ggml' } satisfies JsBackendOptions);
 * ```
 */
export interface JsBackendOptions extends BackendOptions {
  /** Default matmul activation mode. Default `'f32'`. */
  matmulActivations?: MatmulActivations;
}

const half = /* @__PURE__ */ fp16Table();
/** Below this many weight rows, building the 4-bit lookup table costs more than it saves. */
const lutMinRows = 64;
/**
 * 32-blocks per lookup-table group. Measured: one table for the whole row (2.5 MiB for 4096 columns) beats groups
 * that fit L2 (8 blocks: -20%, 32 blocks: -50%), because a group walks every weight row in short strided pieces.
 */
const lutGroupBlocks = 1 << 20;

/** Weight formats: every codec of `@nibble/formats`, so new formats are covered as they are added. */
function weightDTypes(): DTypeName[] {
  return Object.keys(formats).filter((k) => Object.hasOwn(dtypes, k)) as DTypeName[];
}

/**
 * The JS backend's capabilities: every format for matmul/get_rows/attention/copy, f32 elsewhere.
 *
 * @example
 * ```ts
 * jsCapabilities().ops.matmul.includes('q6_K'); // true
 * ```
 */
export function jsCapabilities(): BackendCapabilities {
  const all = Object.freeze(weightDTypes());
  const f32: readonly DTypeName[] = Object.freeze(['f32']);
  const ops: Record<OpName, readonly DTypeName[]> = {
    matmul: all,
    get_rows: all,
    rms_norm: f32,
    layer_norm: f32,
    rope: f32,
    attention: all,
    softmax: f32,
    silu: f32,
    gelu: f32,
    glu: f32,
    softcap: f32,
    reshape: f32,
    add: f32,
    mul: f32,
    scale: f32,
    copy: all,
  };
  return Object.freeze({
    ops: Object.freeze(ops),
    matmulActivations: Object.freeze(['f32', 'ggml'] as const),
    valueDTypes: Object.freeze(['f32'] as const),
    limits: unlimited,
  });
}

/** Per-node data prepared once per graph. */
interface MatmulPrep {
  /** vec_dot codec in ggml mode for quantized weights; undefined in f32 mode. */
  readonly vdt: Codec | undefined;
  readonly vdtRowBytes: number;
  /** ggml mode on f16/bf16 weights: round activations to this dtype first. */
  readonly round: 'f16' | 'bf16' | undefined;
}
interface RopePrep {
  /** Angle per position of each rotated pair (see `ropeTables`). */
  readonly theta: Float64Array;
  /** cos/sin magnitude. */
  readonly mscale: number;
  readonly cos: Float64Array;
  readonly sin: Float64Array;
}

/** What one graph needs on this backend: the planned buffers as f32 views, scratch, per-node preparation. */
export interface Plan {
  readonly plan: GraphPlan;
  /** Per tensor id: the value's f32 view into the planned buffers (reshapes share their input's). */
  readonly bufs: (Float32Array | undefined)[];
  readonly prep: Map<GraphNode, unknown>;
  /** Activation scratch, the largest any matmul needs. */
  readonly xDeq: Float32Array;
  readonly xq: Uint8Array;
  readonly xqI8: Int8Array;
  /** Row views into xq per vec_dot row length. */
  readonly xqViews: Map<number, Uint8Array[]>;
  /** Exact-length row scratch per length (codec calls take whole arrays). */
  readonly rowOf: Map<number, Float32Array>;
  /** Decoded K and V caches for attention (largest cache). */
  readonly kDec: Float32Array;
  readonly vDec: Float32Array;
  readonly scores: Float64Array;
  /** Row scratch for decoding a weight row, the largest row length. */
  readonly wRow: Float32Array;
  /** Nibble lookup table and block sums for one activation row (4-bit formats, see kernels). */
  readonly lut: Float32Array;
  readonly xsum: Float64Array;
  /** Per-output accumulators of the table-lookup matvec. */
  readonly acc: Float64Array;
  /** Several activation rows: 4 decoded weight rows for the register tile. */
  readonly wRows: Float32Array;
  /** ggml mode, several rows, q8_1 activations: per token and 32-block, stored s minus the decoded block's sum. */
  readonly sFix: Float64Array;
}

let nextId = 0;

/** Weights and state with f32 rows, read in place (norm weights, biases, rope factors, f32 caches). */
function f32Of(t: TensorRef): Float32Array {
  return (t.handle as JsTensor).f32!;
}

/**
 * The reference backend: plain TypeScript on typed arrays, every op for every format. Weights are used where they lie
 * (upload copies nothing); matmul works on blocks directly, or decodes one row (or a small chunk of rows through the
 * format's codec) at a time; no allocation per step beyond the output views.
 *
 * @example
 * ```ts
 * import { JsBackend } from '@nibble/backend-js';
 * const backend = new JsBackend({ matmulActivations: 'ggml' });
 * ```
 */
export class JsBackend extends KernelBackend<Plan> {
  readonly name = 'js';
  readonly capabilities: BackendCapabilities = jsCapabilities();
  readonly #defaultActivations: MatmulActivations;
  readonly #id = nextId++;

  constructor(options: JsBackendOptions = {}) {
    super();
    const a = options.matmulActivations ?? 'f32';
    if (a !== 'f32' && a !== 'ggml') throw new BackendError(`js backend: unknown matmulActivations '${String(a)}'`);
    this.#defaultActivations = a;
  }

  async upload(tensor: HostTensor, options: TensorOptions = {}): Promise<BackendTensor> {
    this.alive();
    const name = options.name ?? `tensor_${this.#id}`;
    // Validates dtype and size; the result views the same bytes.
    const t = hostTensor(tensor.dtype, tensor.shape, tensor.data);
    if (t.dtype !== 'f32' && !Object.hasOwn(formats, t.dtype)) {
      throw new DTypeError(`js backend: cannot upload ${name}: no codec for ${t.dtype}`);
    }
    let bytes = t.data;
    // An f32 view needs 4-byte alignment; only then is a copy made.
    if (t.dtype === 'f32' && bytes.byteOffset % 4 !== 0) bytes = bytes.slice();
    return this.adopt(new JsTensor(this, name, t.dtype, t.shape, bytes));
  }

  async alloc(dtype: DTypeName, shape: Shape, options: TensorOptions = {}): Promise<BackendTensor> {
    this.alive();
    const name = options.name ?? `state_${this.#id}`;
    if (!Object.hasOwn(formats, dtype))
      throw new DTypeError(`js backend: cannot allocate ${name}: no codec for ${dtype}`);
    return this.adopt(new JsTensor(this, name, dtype, shape, new Uint8Array(byteLength(dtype, shape))));
  }

  async download(tensor: BackendTensor): Promise<HostTensor> {
    const t = this.own<JsTensor>(tensor, 'download');
    return hostTensor(t.dtype, t.shape, t.bytes.slice());
  }

  /** Host memory: dropping the references is the release; the garbage collector does the rest. */
  protected releaseTensor(): void {}
  protected releaseAll(): void {}

  // ---- planning -------------------------------------------------------------------------------------------------

  protected prepare(gp: GraphPlan): Plan {
    const graph = gp.graph;
    let xDeqLen = 0;
    let xqLen = 0;
    let kvLen = 0;
    let ctxMax = 0;
    let wCols = 0;
    let lutLen = 0;
    let accLen = 0;
    let sFixLen = 0;
    const prep = new Map<GraphNode, unknown>();
    for (const node of graph.nodes) {
      if (node.op === 'matmul') {
        const w = node.weight.handle as JsTensor;
        const inF = w.cols;
        const nMax = rowsMax(node.x);
        wCols = Math.max(wCols, inF);
        const mode = node.activations ?? this.#defaultActivations;
        const info = dtypes[w.dtype];
        let vdt: Codec | undefined;
        let round: 'f16' | 'bf16' | undefined;
        if (mode === 'ggml' && (w.dtype === 'f16' || w.dtype === 'bf16')) round = w.dtype;
        else if (mode === 'ggml' && info.quantized) {
          vdt = Object.hasOwn(formats, info.vecDotType) ? formats[info.vecDotType] : undefined;
          if (vdt === undefined) {
            throw new GraphError(
              node.name,
              `js backend: ggml mode needs a ${info.vecDotType} codec for ${w.dtype} weights`,
            );
          }
        }
        const vdtRowBytes = vdt ? rowBytes(vdt.name, inF) : 0;
        xqLen = Math.max(xqLen, nMax * vdtRowBytes);
        if (vdt?.name === 'q8_1' && nMax > 1) sFixLen = Math.max(sFixLen, (nMax * inF) / 32);
        // Rounded or decoded activations exist only in ggml mode.
        if (round !== undefined || vdt !== undefined) xDeqLen = Math.max(xDeqLen, nMax * inF);
        if (fused[w.dtype]?.dotLut !== undefined && w.rows >= lutMinRows) {
          lutLen = Math.max(lutLen, lutLength(Math.min(inF, 32 * lutGroupBlocks)));
          accLen = Math.max(accLen, w.rows);
        }
        prep.set(node, { vdt, vdtRowBytes, round } satisfies MatmulPrep);
      } else if (node.op === 'rope') {
        const half = node.nRot / 2;
        const factors = node.freqFactors ? f32Of(node.freqFactors) : undefined;
        const { theta, mscale } = ropeTables(node, factors);
        prep.set(node, {
          theta,
          mscale,
          cos: new Float64Array(half),
          sin: new Float64Array(half),
        } satisfies RopePrep);
      } else if (node.op === 'attention') {
        const k = node.k.handle as JsTensor;
        // f32 caches are read in place; others are decoded into scratch.
        if (k.f32 === undefined || (node.v.handle as JsTensor).f32 === undefined)
          kvLen = Math.max(kvLen, k.rows * k.cols);
        ctxMax = Math.max(ctxMax, k.rows);
      } else if (node.op === 'get_rows') wCols = Math.max(wCols, (node.table.handle as JsTensor).cols);
    }
    // The planner's buffers as f32 views; values that share storage share a view's memory.
    const arenas = gp.buffers.map((b) => new ArrayBuffer(b.bytes));
    const bufs: (Float32Array | undefined)[] = gp.values.map((v) =>
      v === undefined ? undefined : new Float32Array(arenas[v.buffer], v.offset, v.elements),
    );
    const xq = new Uint8Array(xqLen);
    return {
      plan: gp,
      bufs,
      prep,
      xDeq: new Float32Array(xDeqLen),
      xq,
      xqI8: new Int8Array(xq.buffer),
      xqViews: new Map(),
      rowOf: new Map(),
      kDec: new Float32Array(kvLen),
      vDec: new Float32Array(kvLen),
      scores: new Float64Array(ctxMax),
      wRow: new Float32Array(wCols),
      lut: new Float32Array(lutLen),
      xsum: new Float64Array(Math.ceil(wCols / 32)),
      acc: new Float64Array(accLen),
      wRows: new Float32Array(4 * wCols),
      sFix: new Float64Array(sFixLen),
    };
  }

  protected execute(plan: Plan, env: BoundRun, options: RunOptions): RunOutputs {
    const graph = plan.plan.graph;
    for (const node of graph.nodes) this.#exec(node, plan, env);
    const out: Record<string, Float32Array> = {};
    for (const o of graph.outputs) {
      out[o.name] = this.deliver(options, o.name, plan.bufs[o.tensor.id]!, numelAt(o.tensor, env.params));
    }
    return out;
  }

  // ---- execution -----------------------------------------------------------------------------------------------

  #f32(t: TensorRef, plan: Plan, env: BoundRun): Float32Array {
    if (t.kind === 'value') return plan.bufs[t.id]!;
    if (t.kind === 'input') return env.arrays[t.id] as Float32Array;
    return (t.handle as JsTensor).f32!;
  }

  #exec(node: GraphNode, plan: Plan, env: BoundRun): void {
    switch (node.op) {
      case 'matmul':
        this.#matmul(node, plan, env);
        return;
      case 'get_rows': {
        const table = node.table.handle as JsTensor;
        const ids = env.arrays[node.ids.id] as Int32Array;
        const out = plan.bufs[node.out.id]!;
        const n = rowsAt(node.out, env.params).rows;
        for (let r = 0; r < n; r++) {
          const id = ids[r];
          if (!(id >= 0 && id < table.rows)) {
            throw new GraphError(node.name, `row id ${id} at ${r} is outside [0, ${table.rows}) of ${table.name}`);
          }
          table.decodeRow(id, out, r * table.cols);
        }
        return;
      }
      case 'rms_norm':
      case 'layer_norm': {
        const x = this.#f32(node.x, plan, env);
        const out = plan.bufs[node.out.id]!;
        const { rows, cols } = rowsAt(node.x, env.params);
        const w = node.weight ? f32Of(node.weight) : undefined;
        const bias = node.op === 'layer_norm' && node.bias ? f32Of(node.bias) : undefined;
        for (let r = 0; r < rows; r++) {
          const o = r * cols;
          let mean = 0;
          if (node.op === 'layer_norm') {
            for (let i = 0; i < cols; i++) mean += x[o + i];
            mean /= cols;
          }
          let ss = 0;
          for (let i = 0; i < cols; i++) ss += (x[o + i] - mean) * (x[o + i] - mean);
          const s = 1 / Math.sqrt(ss / cols + node.eps);
          for (let i = 0; i < cols; i++) out[o + i] = (x[o + i] - mean) * s;
          // The weight multiplies the f32-rounded normalised value, as a separate mul node would.
          if (w !== undefined) for (let i = 0; i < cols; i++) out[o + i] *= w[i];
          if (bias !== undefined) for (let i = 0; i < cols; i++) out[o + i] += bias[i];
        }
        return;
      }
      case 'rope':
        this.#rope(node, plan.prep.get(node) as RopePrep, plan, env);
        return;
      case 'attention':
        this.#attention(node, plan, env);
        return;
      case 'softmax': {
        const x = this.#f32(node.x, plan, env);
        const out = plan.bufs[node.out.id]!;
        const { rows, cols } = rowsAt(node.x, env.params);
        for (let r = 0; r < rows; r++) {
          const o = r * cols;
          let max = Number.NEGATIVE_INFINITY;
          for (let i = 0; i < cols; i++) if (x[o + i] > max) max = x[o + i];
          let sum = 0;
          for (let i = 0; i < cols; i++) {
            const e = Math.exp(x[o + i] - max);
            out[o + i] = e;
            sum += e;
          }
          const inv = 1 / sum;
          for (let i = 0; i < cols; i++) out[o + i] *= inv;
        }
        return;
      }
      case 'silu':
      case 'gelu':
      case 'scale':
      case 'softcap': {
        const x = this.#f32(node.x, plan, env);
        const out = plan.bufs[node.out.id]!;
        const n = numelAt(node.x, env.params);
        if (node.op === 'silu') for (let i = 0; i < n; i++) out[i] = silu(x[i]);
        else if (node.op === 'scale') for (let i = 0; i < n; i++) out[i] = x[i] * node.factor;
        else if (node.op === 'softcap') {
          const c = node.cap;
          for (let i = 0; i < n; i++) out[i] = c * Math.tanh(x[i] / c);
        } else for (let i = 0; i < n; i++) out[i] = gelu(x[i]);
        return;
      }
      case 'glu': {
        const g = this.#f32(node.gate, plan, env);
        const out = plan.bufs[node.out.id]!;
        const act = node.activation === 'silu' ? silu : gelu;
        if (node.up !== undefined) {
          const u = this.#f32(node.up, plan, env);
          const n = numelAt(node.gate, env.params);
          // act(gate) is rounded to f32 first, as a separate activation node would store it.
          for (let i = 0; i < n; i++) out[i] = Math.fround(act(g[i])) * u[i];
        } else {
          const { rows, cols } = rowsAt(node.out, env.params);
          for (let r = 0; r < rows; r++) {
            const o = r * 2 * cols;
            for (let i = 0; i < cols; i++) out[r * cols + i] = Math.fround(act(g[o + i])) * g[o + cols + i];
          }
        }
        return;
      }
      case 'reshape':
        // The planner gave the result its input's storage: nothing to move.
        return;
      case 'add':
      case 'mul': {
        const a = this.#f32(node.a, plan, env);
        const b = this.#f32(node.b, plan, env);
        const out = plan.bufs[node.out.id]!;
        const n = numelAt(node.a, env.params);
        const bn = numelAt(node.b, env.params);
        const add = node.op === 'add';
        if (bn === n) {
          if (add) for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
          else for (let i = 0; i < n; i++) out[i] = a[i] * b[i];
        } else {
          for (let o = 0; o < n; o += bn) {
            if (add) for (let i = 0; i < bn; i++) out[o + i] = a[o + i] + b[i];
            else for (let i = 0; i < bn; i++) out[o + i] = a[o + i] * b[i];
          }
        }
        return;
      }
      case 'copy':
        this.#copy(node, plan, env);
        return;
    }
  }

  #matmul(node: MatmulNode, plan: Plan, env: BoundRun): void {
    this.#matmulCore(node, plan, env);
    if (node.bias === undefined && node.residual === undefined) return;
    // Epilogue on the f32-rounded product, in the order separate add nodes would run.
    const y = plan.bufs[node.out.id]!;
    const { rows, cols } = rowsAt(node.out, env.params);
    if (node.bias !== undefined) {
      const b = this.#f32(node.bias, plan, env);
      for (let r = 0; r < rows; r++) for (let o = 0; o < cols; o++) y[r * cols + o] += b[o];
    }
    if (node.residual !== undefined) {
      const res = this.#f32(node.residual, plan, env);
      const n = rows * cols;
      for (let i = 0; i < n; i++) y[i] += res[i];
    }
  }

  #matmulCore(node: MatmulNode, plan: Plan, env: BoundRun): void {
    const w = node.weight.handle as JsTensor;
    const p = plan.prep.get(node) as MatmulPrep;
    let x = this.#f32(node.x, plan, env);
    const y = plan.bufs[node.out.id]!;
    const inF = w.cols;
    const outF = w.rows;
    const n = rowsAt(node.x, env.params).rows;
    if (n === 0) return;
    if (p.round !== undefined) {
      // ggml's f16/bf16 vec_dot: activations rounded to the weight's type first.
      const xr = plan.xDeq;
      const total = n * inF;
      if (p.round === 'f16') for (let i = 0; i < total; i++) xr[i] = half[fp32ToFp16(x[i])];
      else for (let i = 0; i < total; i++) xr[i] = bf16ToFp32(fp32ToBf16(x[i]));
      x = xr;
    } else if (p.vdt !== undefined) {
      const kernel = fused[w.dtype]?.dotQ;
      const views = this.#xqViews(plan, p.vdtRowBytes, rowsMax(node.x));
      const row = this.#rowOf(plan, inF);
      for (let r = 0; r < n; r++) {
        for (let i = 0; i < inF; i++) row[i] = x[r * inF + i];
        p.vdt.quantizeInto(row, views[r]);
      }
      const k = fused[w.dtype];
      if (n === 1 && k?.dotLut !== undefined && outF >= lutMinRows) {
        // The table over the decoded q8 activations gives exactly ggml's per-block integer sums times the activation
        // scale: every table entry (nibble·qa·da pairs of one block) is exact in float32 and sums exactly in double.
        p.vdt.dequantizeInto(views[0], row);
        // q8_1 carries s = fp16(d·Σqa) per block, which ggml uses for the min term: use it too.
        lutMatvec(w, k, row, y, plan, p.vdt.name === 'q8_1' ? plan.xq : undefined);
        return;
      }
      // The integer kernel serves one token only. q8_0 x q8_0 is as exact through the decoded activations, and
      // faster; several tokens take the f32 tile on the decoded weights and activations, which shares each decoded
      // weight row among all tokens (products of decoded values are exact in double, as ggml's integer sums are).
      if (n === 1 && kernel !== undefined && w.dtype !== 'q8_0') {
        const wb = w.bytes;
        const rb = w.rowBytes;
        const vb = p.vdtRowBytes;
        for (let o = 0; o < outF; o++) {
          for (let r = 0; r < n; r++) y[r * outF + o] = kernel(wb, o * rb, plan.xq, plan.xqI8, r * vb, inF);
        }
        return;
      }
      // No integer kernel: the dot of the decoded weight with the decoded vec_dot activations (same math, other order).
      const xr = plan.xDeq;
      for (let r = 0; r < n; r++) {
        p.vdt.dequantizeInto(views[r], row);
        for (let i = 0; i < inF; i++) xr[r * inF + i] = row[i];
      }
      x = xr;
      if (p.vdt.name === 'q8_1' && n > 1) {
        // q4_1/q5_1 (x q8_1): ggml's min term is m·s with the block's stored s, not m·Σ(decoded activations).
        matmulF32(w, x, y, n, plan);
        minTermFix(w, plan.xq, x, y, n, plan.sFix);
        return;
      }
    }
    matmulF32(w, x, y, n, plan);
  }

  #xqViews(plan: Plan, vb: number, nMax: number): Uint8Array[] {
    let v = plan.xqViews.get(vb);
    if (v === undefined) {
      v = [];
      for (let r = 0; r < nMax; r++) v.push(plan.xq.subarray(r * vb, (r + 1) * vb));
      plan.xqViews.set(vb, v);
    }
    return v;
  }

  #rowOf(plan: Plan, n: number): Float32Array {
    let v = plan.rowOf.get(n);
    if (v === undefined) {
      v = new Float32Array(n);
      plan.rowOf.set(n, v);
    }
    return v;
  }

  #rope(node: RopeNode, p: RopePrep, plan: Plan, env: BoundRun): void {
    const x = this.#f32(node.x, plan, env);
    const out = plan.bufs[node.out.id]!;
    const { rows, cols } = rowsAt(node.x, env.params);
    const { nHeads, headDim, nRot } = node;
    const pairs = nRot / 2;
    const neox = node.mode === 'neox';
    for (let r = 0; r < rows; r++) {
      const pos = positionAt(node.positions, r, env);
      for (let j = 0; j < pairs; j++) {
        const a = pos * p.theta[j];
        p.cos[j] = Math.cos(a) * p.mscale;
        p.sin[j] = Math.sin(a) * p.mscale;
      }
      for (let h = 0; h < nHeads; h++) {
        const o = r * cols + h * headDim;
        for (let j = 0; j < pairs; j++) {
          const i0 = neox ? o + j : o + 2 * j;
          const i1 = neox ? i0 + pairs : i0 + 1;
          const x0 = x[i0];
          const x1 = x[i1];
          out[i0] = x0 * p.cos[j] - x1 * p.sin[j];
          out[i1] = x0 * p.sin[j] + x1 * p.cos[j];
        }
        for (let i = nRot; i < headDim; i++) out[o + i] = x[o + i];
      }
    }
  }

  #attention(node: AttentionNode, plan: Plan, env: BoundRun): void {
    const q = this.#f32(node.q, plan, env);
    const out = plan.bufs[node.out.id]!;
    const k = node.k.handle as JsTensor;
    const v = node.v.handle as JsTensor;
    const n = rowsAt(node.q, env.params).rows;
    const { nHeads, nKvHeads, headDim, scale, softcap, window } = node;
    const kvDim = nKvHeads * headDim;
    const qDim = nHeads * headDim;
    const group = nHeads / nKvHeads;
    let maxPos = -1;
    for (let r = 0; r < n; r++) {
      const pos = positionAt(node.positions, r, env);
      if (!(pos >= 0 && pos < k.rows)) {
        throw new GraphError(node.name, `position ${pos} of row ${r} is outside the cache [0, ${k.rows})`);
      }
      if (pos > maxPos) maxPos = pos;
    }
    // Decode the cache rows that will be read, once per node (f32 caches are read in place).
    const kd = k.f32 ?? decodeRows(k, maxPos + 1, plan.kDec);
    const vd = v.f32 ?? decodeRows(v, maxPos + 1, plan.vDec);
    const s = plan.scores;
    for (let r = 0; r < n; r++) {
      const pos = positionAt(node.positions, r, env);
      // Keys in (pos - window, pos]; the whole prefix without a window.
      const t0 = window > 0 ? Math.max(0, pos - window + 1) : 0;
      for (let h = 0; h < nHeads; h++) {
        const qo = r * qDim + h * headDim;
        const ko = Math.floor(h / group) * headDim;
        let max = Number.NEGATIVE_INFINITY;
        for (let t = t0; t <= pos; t++) {
          let d = 0;
          const kt = t * kvDim + ko;
          for (let i = 0; i < headDim; i++) d += q[qo + i] * kd[kt + i];
          d *= scale;
          if (softcap > 0) d = softcap * Math.tanh(d / softcap);
          s[t] = d;
          if (d > max) max = d;
        }
        let sum = 0;
        for (let t = t0; t <= pos; t++) {
          s[t] = Math.exp(s[t] - max);
          sum += s[t];
        }
        const inv = 1 / sum;
        for (let i = 0; i < headDim; i++) out[qo + i] = 0;
        for (let t = t0; t <= pos; t++) {
          const wt = s[t] * inv;
          const vt = t * kvDim + ko;
          for (let i = 0; i < headDim; i++) out[qo + i] += wt * vd[vt + i];
        }
      }
    }
  }

  #copy(node: CopyNode, plan: Plan, env: BoundRun): void {
    const src = this.#f32(node.src, plan, env);
    const dst = node.dst.handle as JsTensor;
    const n = rowsAt(node.src, env.params).rows;
    const cols = dst.cols;
    for (let r = 0; r < n; r++) {
      const pos = positionAt(node.positions, r, env);
      if (!(pos >= 0 && pos < dst.rows)) {
        throw new GraphError(node.name, `position ${pos} of row ${r} is outside ${dst.name} [0, ${dst.rows})`);
      }
      const so = r * cols;
      if (dst.f32 !== undefined) {
        const d = dst.f32;
        for (let i = 0; i < cols; i++) d[pos * cols + i] = src[so + i];
      } else if (dst.dtype === 'f16' || dst.dtype === 'bf16') {
        const b = dst.bytes;
        const o = pos * dst.rowBytes;
        const f16 = dst.dtype === 'f16';
        for (let i = 0; i < cols; i++) {
          const h = f16 ? fp32ToFp16(src[so + i]) : fp32ToBf16(src[so + i]);
          b[o + 2 * i] = h & 0xff;
          b[o + 2 * i + 1] = h >>> 8;
        }
      } else {
        const row = this.#rowOf(plan, cols);
        for (let i = 0; i < cols; i++) row[i] = src[so + i];
        dst.codec!.quantizeInto(row, dst.rowView(pos));
      }
    }
  }
}

/**
 * Matrix-vector product through the nibble lookup table (see kernels), built from the activation row once (in groups
 * of `lutGroupBlocks` 32-blocks) and read by every weight row. `q81`: the activation's q8_1 bytes, whose stored block
 * sums replace the exact ones as in ggml.
 */
function lutMatvec(
  w: JsTensor,
  k: FusedKernels,
  x: Float32Array,
  y: Float32Array,
  plan: Plan,
  q81: Uint8Array | undefined,
): void {
  const inF = w.cols;
  const outF = w.rows;
  const nb = inF / 32;
  const bpb = dtypes[w.dtype].bytesPerBlock;
  const rb = w.rowBytes;
  const wb = w.bytes;
  const acc = plan.acc;
  const dot = k.dotLut!;
  acc.fill(0, 0, outF);
  for (let b0 = 0; b0 < nb; b0 += lutGroupBlocks) {
    const g = Math.min(lutGroupBlocks, nb - b0);
    const len = 32 * g;
    buildNibbleLut(x, 32 * b0, len, k.lutValues!, plan.lut, plan.xsum);
    if (k.lutHigh) buildHighBitLut(x, 32 * b0, len, plan.lut);
    if (q81 !== undefined)
      for (let b = 0; b < g; b++) plan.xsum[b] = half[q81[36 * (b0 + b) + 2] | (q81[36 * (b0 + b) + 3] << 8)];
    const off = b0 * bpb;
    for (let o = 0; o < outF; o++) acc[o] += dot(wb, o * rb + off, plan.lut, plan.xsum, len);
  }
  for (let o = 0; o < outF; o++) y[o] = acc[o];
}

/** Decodes rows [0, count) of a cache into `dst`. */
function decodeRows(t: JsTensor, count: number, dst: Float32Array): Float32Array {
  for (let r = 0; r < count; r++) t.decodeRow(r, dst, r * t.cols);
  return dst;
}

/**
 * y[r, o] = Σ_i W[o, i] x[r, i]. Weight rows outer so each is read from memory once; one token uses the fused dot
 * on the stored blocks, several tokens decode the row once into `wRow` and reuse it.
 */
function matmulF32(w: JsTensor, x: Float32Array, y: Float32Array, n: number, plan: Plan): void {
  const wRow = plan.wRow;
  const inF = w.cols;
  const outF = w.rows;
  if (w.f32 !== undefined) {
    const wf = w.f32;
    let o = 0;
    if (n > 1) for (; o + 3 < outF; o += 4) tileF32(wf, o * inF, x, n, inF, y, outF, o);
    for (; o < outF; o++) {
      for (let r = 0; r < n; r++) y[r * outF + o] = dotF32(wf, o * inF, x, r * inF, inF);
    }
    return;
  }
  const k = fused[w.dtype];
  if (k !== undefined) {
    const wb = w.bytes;
    const rb = w.rowBytes;
    if (n === 1 && k.dotLut !== undefined && outF >= lutMinRows) {
      lutMatvec(w, k, x, y, plan, undefined);
      return;
    }
    // The format's dots on views made once per tensor (16-bit words, int8 quants) where it has them.
    if (n === 1 && w.u16 !== undefined && k.dotU16 !== undefined) {
      const dot = k.dotU16;
      const wu = w.u16;
      for (let o = 0; o < outF; o++) y[o] = dot(wu, o * inF, x, 0, inF);
      return;
    }
    if (n === 1 && k.dotI8 !== undefined) {
      const dot = k.dotI8;
      const wi = w.i8;
      for (let o = 0; o < outF; o++) y[o] = dot(wb, wi, o * rb, x, 0, inF);
      return;
    }
    if (n === 1 && k.dot !== undefined) {
      const dot = k.dot;
      for (let o = 0; o < outF; o++) y[o] = dot(wb, o * rb, x, 0, inF);
      return;
    }
    // Several tokens: decode 4 weight rows once, then the register tile over all tokens.
    const wRows = plan.wRows;
    let o = 0;
    for (; o + 3 < outF; o += 4) {
      for (let k4 = 0; k4 < 4; k4++) k.decode(wb, (o + k4) * rb, wRows, k4 * inF, inF);
      tileF32(wRows, 0, x, n, inF, y, outF, o);
    }
    for (; o < outF; o++) {
      k.decode(wb, o * rb, wRow, 0, inF);
      for (let r = 0; r < n; r++) y[r * outF + o] = dotF32(wRow, 0, x, r * inF, inF);
    }
    return;
  }
  // Formats without fused kernels: decode a chunk of rows with the codec; several tokens gather 4 rows into scratch
  // for the tile, one token takes f32 dots on the chunk.
  const per = w.rowsPerChunk();
  const wRows = plan.wRows;
  let chunk = wRow;
  let loaded = -1; // index of the chunk in `chunk`
  let o = 0;
  if (n > 1) {
    for (; o + 3 < outF; o += 4) {
      for (let k4 = 0; k4 < 4; k4++) {
        const c = Math.floor((o + k4) / per);
        if (c !== loaded) {
          chunk = w.decodeChunk(o + k4);
          loaded = c;
        }
        const from = ((o + k4) % per) * inF;
        for (let i = 0; i < inF; i++) wRows[k4 * inF + i] = chunk[from + i];
      }
      tileF32(wRows, 0, x, n, inF, y, outF, o);
    }
  }
  for (; o < outF; o++) {
    const c = Math.floor(o / per);
    if (c !== loaded) {
      chunk = w.decodeChunk(o);
      loaded = c;
    }
    const within = o % per;
    for (let r = 0; r < n; r++) y[r * outF + o] = dotF32(chunk, within * inF, x, r * inF, inF);
  }
}

/**
 * Swaps the min term of q4_1/q5_1 weights (bytes 2-3 of each block hold the min m) times decoded q8_1 activations:
 * y[r, o] += Σ_b m[o, b]·(s[r, b] − Σ_j x[r, 32b + j]), with `s` the activations' stored block sums, as in ggml.
 */
function minTermFix(w: JsTensor, xq: Uint8Array, x: Float32Array, y: Float32Array, n: number, fix: Float64Array): void {
  const inF = w.cols;
  const outF = w.rows;
  const nb = inF / 32;
  const wb = w.bytes;
  const rb = w.rowBytes;
  const bpb = dtypes[w.dtype].bytesPerBlock;
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < nb; b++) {
      const p = 36 * (r * nb + b);
      let sx = 0;
      for (let j = 0; j < 32; j++) sx += x[r * inF + 32 * b + j];
      fix[r * nb + b] = half[xq[p + 2] | (xq[p + 3] << 8)] - sx;
    }
  }
  for (let o = 0; o < outF; o++) {
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let b = 0; b < nb; b++) {
        const q = o * rb + bpb * b;
        s += half[wb[q + 2] | (wb[q + 3] << 8)] * fix[r * nb + b];
      }
      y[r * outF + o] += s;
    }
  }
}

function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}

/** ggml's `gelu`: the tanh approximation. */
function gelu(v: number): number {
  return 0.5 * v * (1 + Math.tanh(0.7978845608028654 * v * (1 + 0.044715 * v * v)));
}
