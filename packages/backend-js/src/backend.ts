import { bf16ToFp32, type Codec, formats, fp16Table, fp32ToBf16, fp32ToFp16 } from '@nibble/formats';
import {
  type AttentionNode,
  type Backend,
  type BackendCapabilities,
  BackendError,
  type BackendOptions,
  type BackendTensor,
  byteLength,
  type CopyNode,
  DTypeError,
  type DTypeName,
  dimMax,
  dimValue,
  dtypes,
  type Graph,
  GraphError,
  type GraphNode,
  type HostTensor,
  hostTensor,
  isTensor,
  type MatmulActivations,
  type MatmulNode,
  type OpName,
  type Positions,
  type RopeNode,
  type RunInputs,
  type RunOptions,
  type RunOutputs,
  rowBytes,
  type Shape,
  SizeError,
  type TensorOptions,
  type TensorRef,
} from '@nibble/tensor';
import {
  buildHighBitLut,
  buildNibbleLut,
  dotF16u,
  dotF32,
  dotQ8_0i,
  type FusedKernels,
  fused,
  lutLength,
  tileF32,
} from './kernels.js';
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
    add: f32,
    mul: f32,
    scale: f32,
    copy: all,
  };
  return Object.freeze({ ops: Object.freeze(ops), matmulActivations: Object.freeze(['f32', 'ggml'] as const) });
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
  /** freqScale · freqBase^(-2j/nRot) per rotated pair j. */
  readonly theta: Float64Array;
  readonly cos: Float64Array;
  readonly sin: Float64Array;
}

/** What one graph needs on this backend: buffers (shared by liveness), scratch, per-node preparation. */
interface Plan {
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
export class JsBackend implements Backend {
  readonly name = 'js';
  readonly capabilities: BackendCapabilities = jsCapabilities();
  readonly #defaultActivations: MatmulActivations;
  readonly #plans = new WeakMap<Graph, Plan>();
  readonly #id = nextId++;
  #disposed = false;

  constructor(options: JsBackendOptions = {}) {
    const a = options.matmulActivations ?? 'f32';
    if (a !== 'f32' && a !== 'ggml') throw new BackendError(`js backend: unknown matmulActivations '${String(a)}'`);
    this.#defaultActivations = a;
  }

  async upload(tensor: HostTensor, options: TensorOptions = {}): Promise<BackendTensor> {
    this.#alive();
    const name = options.name ?? `tensor_${this.#id}`;
    // Validates dtype and size; the result views the same bytes.
    const t = hostTensor(tensor.dtype, tensor.shape, tensor.data);
    if (t.dtype !== 'f32' && !Object.hasOwn(formats, t.dtype)) {
      throw new DTypeError(`js backend: cannot upload ${name}: no codec for ${t.dtype}`);
    }
    let bytes = t.data;
    // An f32 view needs 4-byte alignment; only then is a copy made.
    if (t.dtype === 'f32' && bytes.byteOffset % 4 !== 0) bytes = bytes.slice();
    return new JsTensor(this, name, t.dtype, t.shape, bytes);
  }

  async alloc(dtype: DTypeName, shape: Shape, options: TensorOptions = {}): Promise<BackendTensor> {
    this.#alive();
    const name = options.name ?? `state_${this.#id}`;
    if (!Object.hasOwn(formats, dtype))
      throw new DTypeError(`js backend: cannot allocate ${name}: no codec for ${dtype}`);
    return new JsTensor(this, name, dtype, shape, new Uint8Array(byteLength(dtype, shape)));
  }

  async download(tensor: BackendTensor): Promise<HostTensor> {
    this.#alive();
    const t = this.#own(tensor, 'download');
    return hostTensor(t.dtype, t.shape, t.bytes.slice());
  }

  dispose(): void {
    this.#disposed = true;
  }

  async run(graph: Graph, inputs: RunInputs, options: RunOptions = {}): Promise<RunOutputs> {
    return this.runSync(graph, inputs, options);
  }

  /** {@link run} without the promise, for callers that want no microtask per step. */
  runSync(graph: Graph, inputs: RunInputs, options: RunOptions = {}): RunOutputs {
    this.#alive();
    let plan = this.#plans.get(graph);
    if (plan === undefined) {
      plan = this.#plan(graph);
      this.#plans.set(graph, plan);
    }
    const env = this.#bind(graph, inputs);
    for (const node of graph.nodes) this.#exec(node, plan, env);
    const out: Record<string, Float32Array> = {};
    for (const o of graph.outputs) {
      const n = numelAt(o.tensor, env.values);
      const buf = plan.bufs[o.tensor.id]!;
      const dst = options.outputs?.[o.name];
      if (dst !== undefined) {
        if (dst.length < n) throw new SizeError(`output ${o.name}: destination has ${dst.length} floats, needs ${n}`);
        for (let i = 0; i < n; i++) dst[i] = buf[i];
        out[o.name] = dst;
      } else {
        out[o.name] = buf.subarray(0, n);
      }
    }
    return out;
  }

  #alive(): void {
    if (this.#disposed) throw new BackendError('js backend: used after dispose()');
  }

  #own(t: BackendTensor | undefined, where: string): JsTensor {
    if (!(t instanceof JsTensor) || t.owner !== this) {
      throw new BackendError(`js backend: ${where}: tensor ${t?.name} was not made by this backend`);
    }
    return t;
  }

  // ---- planning -------------------------------------------------------------------------------------------------

  #plan(graph: Graph): Plan {
    const caps = this.capabilities.ops;
    for (const t of graph.tensors) if (t.handle !== undefined) this.#own(t.handle, t.name);
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
      const typed = typedOperand(node);
      if (typed !== undefined && !caps[node.op].includes(typed.dtype)) {
        throw new GraphError(node.name, `js backend: ${node.op} does not accept ${typed.dtype} (${typed.name})`);
      }
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
        const theta = new Float64Array(half);
        for (let j = 0; j < half; j++) theta[j] = node.freqScale * node.freqBase ** ((-2 * j) / node.nRot);
        prep.set(node, { theta, cos: new Float64Array(half), sin: new Float64Array(half) } satisfies RopePrep);
      } else if (node.op === 'attention') {
        const k = node.k.handle as JsTensor;
        // f32 caches are read in place; others are decoded into scratch.
        if (k.f32 === undefined || (node.v.handle as JsTensor).f32 === undefined)
          kvLen = Math.max(kvLen, k.rows * k.cols);
        ctxMax = Math.max(ctxMax, k.rows);
        if (!caps.attention.includes(node.v.dtype)) {
          throw new GraphError(node.name, `js backend: attention does not accept ${node.v.dtype} (${node.v.name})`);
        }
      } else {
        if (node.op === 'get_rows') wCols = Math.max(wCols, (node.table.handle as JsTensor).cols);
      }
    }
    const xq = new Uint8Array(xqLen);
    return {
      bufs: this.#assignBuffers(graph),
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

  /** Gives every node result a buffer; results whose lives do not overlap share one (liveness, best fit). */
  #assignBuffers(graph: Graph): (Float32Array | undefined)[] {
    const lastUse = new Array<number>(graph.tensors.length).fill(-1);
    graph.nodes.forEach((node, i) => {
      for (const t of node.inputs) if (t.kind === 'value') lastUse[t.id] = i;
    });
    for (const o of graph.outputs) lastUse[o.tensor.id] = Number.POSITIVE_INFINITY;
    const bufs: (Float32Array | undefined)[] = new Array(graph.tensors.length);
    const free: Float32Array[] = [];
    graph.nodes.forEach((node, i) => {
      const out = node.out;
      if (out !== undefined) {
        const need = Math.max(
          1,
          out.shape.reduce<number>((p, d) => p * dimMax(d), 1),
        );
        let best = -1;
        for (let j = 0; j < free.length; j++) {
          if (free[j].length >= need && (best < 0 || free[j].length < free[best].length)) best = j;
        }
        bufs[out.id] = best >= 0 ? free.splice(best, 1)[0] : new Float32Array(need);
        if (lastUse[out.id] < 0) free.push(bufs[out.id]!); // never read: reusable at once
      }
      const seen = new Set<number>();
      for (const t of node.inputs) {
        if (t.kind === 'value' && lastUse[t.id] === i && !seen.has(t.id)) {
          seen.add(t.id);
          free.push(bufs[t.id]!);
        }
      }
    });
    return bufs;
  }

  // ---- binding a run's inputs ---------------------------------------------------------------------------------------

  #bind(graph: Graph, inputs: RunInputs): Env {
    const values: Record<string, number> = {};
    for (const p of graph.params) {
      const v = inputs[p.name];
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < p.min || v > p.max) {
        throw new GraphError(p.name, `param needs an integer in [${p.min}, ${p.max}], got ${describe(v)}`);
      }
      values[p.name] = v;
    }
    const arrays: (Float32Array | Int32Array | undefined)[] = new Array(graph.tensors.length);
    for (const t of graph.inputs) {
      const v = inputs[t.name];
      const want = t.dtype === 'i32' ? Int32Array : Float32Array;
      if (!(v instanceof want)) throw new GraphError(t.name, `input needs a ${want.name}, got ${describe(v)}`);
      const n = numelAt(t, values);
      if (v.length !== n)
        throw new GraphError(t.name, `input needs ${n} elements at this step's sizes, got ${v.length}`);
      arrays[t.id] = v;
    }
    for (const key of Object.keys(inputs)) {
      if (!graph.params.some((p) => p.name === key) && !graph.inputs.some((t) => t.name === key)) {
        throw new GraphError(key, 'is neither an input nor a param of this graph');
      }
    }
    return { values, arrays };
  }

  // ---- execution -----------------------------------------------------------------------------------------------

  #f32(t: TensorRef, plan: Plan, env: Env): Float32Array {
    if (t.kind === 'value') return plan.bufs[t.id]!;
    if (t.kind === 'input') return env.arrays[t.id] as Float32Array;
    return (t.handle as JsTensor).f32!;
  }

  #exec(node: GraphNode, plan: Plan, env: Env): void {
    switch (node.op) {
      case 'matmul':
        this.#matmul(node, plan, env);
        return;
      case 'get_rows': {
        const table = node.table.handle as JsTensor;
        const ids = env.arrays[node.ids.id] as Int32Array;
        const out = plan.bufs[node.out.id]!;
        const n = ids.length;
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
        const { rows, cols } = rowsAt(node.x, env.values);
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
        const { rows, cols } = rowsAt(node.x, env.values);
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
      case 'scale': {
        const x = this.#f32(node.x, plan, env);
        const out = plan.bufs[node.out.id]!;
        const n = numelAt(node.x, env.values);
        if (node.op === 'silu') for (let i = 0; i < n; i++) out[i] = x[i] / (1 + Math.exp(-x[i]));
        else if (node.op === 'scale') for (let i = 0; i < n; i++) out[i] = x[i] * node.factor;
        else {
          for (let i = 0; i < n; i++) {
            const v = x[i];
            out[i] = 0.5 * v * (1 + Math.tanh(0.7978845608028654 * v * (1 + 0.044715 * v * v)));
          }
        }
        return;
      }
      case 'add':
      case 'mul': {
        const a = this.#f32(node.a, plan, env);
        const b = this.#f32(node.b, plan, env);
        const out = plan.bufs[node.out.id]!;
        const n = numelAt(node.a, env.values);
        const bn = numelAt(node.b, env.values);
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

  #matmul(node: MatmulNode, plan: Plan, env: Env): void {
    const w = node.weight.handle as JsTensor;
    const p = plan.prep.get(node) as MatmulPrep;
    let x = this.#f32(node.x, plan, env);
    const y = plan.bufs[node.out.id]!;
    const inF = w.cols;
    const outF = w.rows;
    const n = rowsAt(node.x, env.values).rows;
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

  #rope(node: RopeNode, p: RopePrep, plan: Plan, env: Env): void {
    const x = this.#f32(node.x, plan, env);
    const out = plan.bufs[node.out.id]!;
    const { rows, cols } = rowsAt(node.x, env.values);
    const { nHeads, headDim, nRot } = node;
    const pairs = nRot / 2;
    const neox = node.mode === 'neox';
    for (let r = 0; r < rows; r++) {
      const pos = positionAt(node.positions, r, env);
      for (let j = 0; j < pairs; j++) {
        const a = pos * p.theta[j];
        p.cos[j] = Math.cos(a);
        p.sin[j] = Math.sin(a);
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

  #attention(node: AttentionNode, plan: Plan, env: Env): void {
    const q = this.#f32(node.q, plan, env);
    const out = plan.bufs[node.out.id]!;
    const k = node.k.handle as JsTensor;
    const v = node.v.handle as JsTensor;
    const n = rowsAt(node.q, env.values).rows;
    const { nHeads, nKvHeads, headDim, scale } = node;
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
      for (let h = 0; h < nHeads; h++) {
        const qo = r * qDim + h * headDim;
        const ko = Math.floor(h / group) * headDim;
        let max = Number.NEGATIVE_INFINITY;
        for (let t = 0; t <= pos; t++) {
          let d = 0;
          const kt = t * kvDim + ko;
          for (let i = 0; i < headDim; i++) d += q[qo + i] * kd[kt + i];
          d *= scale;
          s[t] = d;
          if (d > max) max = d;
        }
        let sum = 0;
        for (let t = 0; t <= pos; t++) {
          s[t] = Math.exp(s[t] - max);
          sum += s[t];
        }
        const inv = 1 / sum;
        for (let i = 0; i < headDim; i++) out[qo + i] = 0;
        for (let t = 0; t <= pos; t++) {
          const wt = s[t] * inv;
          const vt = t * kvDim + ko;
          for (let i = 0; i < headDim; i++) out[qo + i] += wt * vd[vt + i];
        }
      }
    }
  }

  #copy(node: CopyNode, plan: Plan, env: Env): void {
    const src = this.#f32(node.src, plan, env);
    const dst = node.dst.handle as JsTensor;
    const n = rowsAt(node.src, env.values).rows;
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
    if (n === 1 && w.u16 !== undefined && w.dtype === 'f16') {
      const wu = w.u16;
      for (let o = 0; o < outF; o++) y[o] = dotF16u(wu, o * inF, x, 0, inF);
      return;
    }
    if (n === 1 && w.dtype === 'q8_0') {
      const wi = w.i8;
      for (let o = 0; o < outF; o++) y[o] = dotQ8_0i(wb, wi, o * rb, x, 0, inF);
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

interface Env {
  readonly values: Readonly<Record<string, number>>;
  readonly arrays: readonly (Float32Array | Int32Array | undefined)[];
}

function positionAt(p: Positions, r: number, env: Env): number {
  return isTensor(p) ? (env.arrays[p.id] as Int32Array)[r] : env.values[p.name] + r;
}

function numelAt(t: TensorRef, values: Readonly<Record<string, number>>): number {
  let n = 1;
  for (const d of t.shape) n *= dimValue(d, values);
  return n;
}

function rowsAt(t: TensorRef, values: Readonly<Record<string, number>>): { rows: number; cols: number } {
  const cols = dimValue(t.shape[t.shape.length - 1], values);
  let rows = 1;
  for (let i = 0; i < t.shape.length - 1; i++) rows *= dimValue(t.shape[i], values);
  return { rows, cols };
}

function rowsMax(t: TensorRef): number {
  let rows = 1;
  for (let i = 0; i < t.shape.length - 1; i++) rows *= dimMax(t.shape[i]);
  return rows;
}

/** The node's typed operand, whose dtype the capabilities list (see `BackendCapabilities`). */
function typedOperand(node: GraphNode): TensorRef | undefined {
  switch (node.op) {
    case 'matmul':
      return node.weight;
    case 'get_rows':
      return node.table;
    case 'attention':
      return node.k;
    case 'copy':
      return node.dst;
    default:
      return undefined;
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'number') return String(v);
  return (v as object)?.constructor?.name ?? typeof v;
}
