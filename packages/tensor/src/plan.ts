/**
 * The backend-independent half of running a graph: memory planning (what ggml-alloc does), per-run validation of
 * inputs and params, the capability check, and the small index helpers every kernel needs. A backend is memory plus
 * kernels on top of these (see {@link KernelBackend} and docs/backend-guide.md).
 */
import type { BackendCapabilities, BackendLimits, InputArray, OpName, RunInputs } from './backend.js';
import { unlimited } from './backend.js';
import {
  dimMax,
  dimValue,
  type Graph,
  GraphError,
  type GraphNode,
  isTensor,
  type Positions,
  type TensorRef,
} from './graph.js';

/** Where one node result lives: a byte range of one of the plan's buffers, shared over time with other values. */
export interface ValuePlan {
  readonly tensor: TensorRef;
  /** The tensor id that owns the storage: the value itself, or the value a chain of `reshape`s views. */
  readonly root: number;
  /** Elements at the params' maxima. */
  readonly elements: number;
  /** Bytes of the storage (the root's, rounded up to the plan's alignment). */
  readonly bytes: number;
  /** Index into {@link GraphPlan.buffers}. */
  readonly buffer: number;
  /** Byte offset in that buffer (a multiple of the alignment). */
  readonly offset: number;
  /** First and last node index (in {@link GraphPlan.nodes}) during which the storage holds this value's data. */
  readonly firstNode: number;
  readonly lastNode: number;
}

/**
 * Two adjacent nodes a backend may run as one kernel: the first's result is read only by the second and is not a
 * graph output, so it need never be written. `kind` is `'<op>+<op>'`, e.g. `'matmul+rope'` (rope in the q/k matmul
 * epilogue), `'rope+copy'` (the KV write), `'matmul+copy'` (v straight into the cache).
 */
export interface Fusion {
  readonly kind: `${OpName}+${OpName}`;
  /** Node index of the producer; the consumer is `first + 1`. */
  readonly first: number;
}

/** The plan of one graph: execution order, buffers and every value's place in them. */
export interface GraphPlan {
  readonly graph: Graph;
  /** Execution order (the builder appends in dependency order, so this is `graph.nodes`). */
  readonly nodes: readonly GraphNode[];
  /** Per tensor id: the value's storage, undefined for inputs, weights and state. */
  readonly values: readonly (ValuePlan | undefined)[];
  /** Buffers to allocate once; each at most the backend's `maxBufferBytes`. */
  readonly buffers: readonly { readonly bytes: number }[];
  /** Per tensor id: the indices of the nodes that read it, ascending. */
  readonly consumers: readonly (readonly number[])[];
  /** Adjacent producer/consumer pairs a backend may fuse. */
  readonly fusions: readonly Fusion[];
  /** The byte alignment of every offset. */
  readonly alignment: number;
}

/** Options of {@link planGraph}. */
export interface PlanOptions {
  /** Memory limits; default none. */
  limits?: BackendLimits;
  /** Byte alignment of each value's offset (WebGPU needs 256 for storage bindings). Default 256. */
  alignment?: number;
}

/** Bytes per element of a value dtype. */
export function valueBytes(dtype: string): number {
  if (dtype === 'f32') return 4;
  if (dtype === 'f16') return 2;
  throw new GraphError(dtype, `not a value dtype (f32 or f16)`);
}

/**
 * Plans a graph's memory like ggml-alloc: every node result gets a byte range, and results whose lifetimes do not
 * overlap share memory (best fit over freed blocks; a node never writes over its own inputs). Sizes are taken at the
 * params' maxima, so one plan serves every step. A `reshape` result shares its input's storage. Buffers are split so
 * none exceeds `limits.maxBufferBytes`; a single value above `limits.maxBindingBytes` is a {@link GraphError}.
 *
 * @example
 * ```ts
 * const plan = planGraph(graph, { limits: backend.capabilities.limits });
 * const buffers = plan.buffers.map((b) => new ArrayBuffer(b.bytes));
 * const logits = plan.values[graph.outputs[0].tensor.id]!; // { buffer, offset, bytes, ... }
 * ```
 */
export function planGraph(graph: Graph, options: PlanOptions = {}): GraphPlan {
  const limits = options.limits ?? unlimited;
  const alignment = options.alignment ?? 256;
  if (!Number.isSafeInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new GraphError('plan', `alignment ${alignment} must be a power of two`);
  }
  const nodes = graph.nodes;
  const nT = graph.tensors.length;

  const consumers: number[][] = Array.from({ length: nT }, () => []);
  nodes.forEach((node, i) => {
    for (const t of node.inputs) {
      const c = consumers[t.id];
      if (c[c.length - 1] !== i) c.push(i);
    }
  });

  // Storage roots: a reshape views its input's storage.
  const root = new Int32Array(nT).fill(-1);
  const producer = new Int32Array(nT).fill(-1);
  nodes.forEach((node, i) => {
    if (node.out === undefined) return;
    producer[node.out.id] = i;
    root[node.out.id] = node.op === 'reshape' ? root[node.x.id] : node.out.id;
  });
  // A root lives from its producer to the last read of it or of any view of it; outputs live to the end.
  const lastUse = new Array<number>(nT).fill(-1);
  const end = nodes.length;
  for (let id = 0; id < nT; id++) {
    const r = root[id];
    if (r < 0) continue;
    const last = consumers[id].length > 0 ? consumers[id][consumers[id].length - 1] : producer[id];
    lastUse[r] = Math.max(lastUse[r], last);
  }
  for (const o of graph.outputs) lastUse[root[o.tensor.id]] = end;

  const arenas: Arena[] = [];
  const place = new Map<number, { buffer: number; offset: number; bytes: number }>();
  const values: (ValuePlan | undefined)[] = new Array(nT).fill(undefined);
  const dying: number[][] = Array.from({ length: end + 1 }, () => []);
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i];
    const out = node.out;
    if (out !== undefined) {
      const elements = out.shape.reduce<number>((p, d) => p * dimMax(d), 1);
      const r = root[out.id];
      let at = place.get(r);
      if (at === undefined) {
        const raw = Math.max(1, elements) * valueBytes(out.dtype);
        if (raw > limits.maxBindingBytes) {
          throw new GraphError(
            node.name,
            `result needs ${raw} bytes at the params' maxima, above the backend's largest binding (${limits.maxBindingBytes} bytes): lower the maximum tokens per run`,
          );
        }
        const bytes = Math.ceil(raw / alignment) * alignment;
        at = allocate(arenas, bytes, limits.maxBufferBytes);
        place.set(r, at);
        dying[Math.max(i, lastUse[r])].push(r);
      }
      values[out.id] = Object.freeze({
        tensor: out,
        root: r,
        elements,
        bytes: at.bytes,
        buffer: at.buffer,
        offset: at.offset,
        firstNode: producer[r],
        lastNode: lastUse[r],
      });
    }
    // Free after the node ran: its output never overlaps its inputs.
    for (const r of dying[i]) {
      const at = place.get(r);
      if (at !== undefined) release(arenas[at.buffer], at.offset, at.bytes);
    }
  }

  const outputs = new Set(graph.outputs.map((o) => o.tensor.id));
  const fusions: Fusion[] = [];
  for (let i = 0; i + 1 < nodes.length; i++) {
    const out = nodes[i].out;
    if (out === undefined || nodes[i].op === 'reshape' || outputs.has(out.id)) continue;
    const c = consumers[out.id];
    if (c.length === 1 && c[0] === i + 1 && nodes[i + 1].op !== 'reshape') {
      fusions.push(Object.freeze({ kind: `${nodes[i].op}+${nodes[i + 1].op}` as Fusion['kind'], first: i }));
    }
  }

  return Object.freeze({
    graph,
    nodes,
    values: Object.freeze(values),
    buffers: Object.freeze(arenas.map((a) => Object.freeze({ bytes: a.end }))),
    consumers: Object.freeze(consumers.map((c) => Object.freeze(c))),
    fusions: Object.freeze(fusions),
    alignment,
  });
}

interface Arena {
  end: number;
  /** Free blocks below `end`, sorted by offset, never adjacent (merged). */
  free: { offset: number; size: number }[];
}

function allocate(
  arenas: Arena[],
  bytes: number,
  maxBuffer: number,
): { buffer: number; offset: number; bytes: number } {
  if (bytes > maxBuffer) {
    throw new GraphError('plan', `a value of ${bytes} bytes does not fit the backend's largest buffer (${maxBuffer})`);
  }
  // Best fit among freed blocks.
  let bestA = -1;
  let bestK = -1;
  for (let a = 0; a < arenas.length; a++) {
    const f = arenas[a].free;
    for (let k = 0; k < f.length; k++) {
      if (f[k].size >= bytes && (bestA < 0 || f[k].size < arenas[bestA].free[bestK].size)) {
        bestA = a;
        bestK = k;
      }
    }
  }
  if (bestA >= 0) {
    const blk = arenas[bestA].free[bestK];
    const offset = blk.offset;
    blk.offset += bytes;
    blk.size -= bytes;
    if (blk.size === 0) arenas[bestA].free.splice(bestK, 1);
    return { buffer: bestA, offset, bytes };
  }
  // Grow an arena: reuse its free tail block if it has one, least growth first.
  let growA = -1;
  let growth = Number.POSITIVE_INFINITY;
  for (let a = 0; a < arenas.length; a++) {
    const ar = arenas[a];
    const tail = ar.free[ar.free.length - 1];
    const start = tail !== undefined && tail.offset + tail.size === ar.end ? tail.offset : ar.end;
    const g = start + bytes - ar.end;
    if (start + bytes <= maxBuffer && g < growth) {
      growth = g;
      growA = a;
    }
  }
  if (growA < 0) {
    arenas.push({ end: 0, free: [] });
    growA = arenas.length - 1;
  }
  const ar = arenas[growA];
  const tail = ar.free[ar.free.length - 1];
  let offset = ar.end;
  if (tail !== undefined && tail.offset + tail.size === ar.end) {
    offset = tail.offset;
    ar.free.pop();
  }
  ar.end = offset + bytes;
  return { buffer: growA, offset, bytes };
}

function release(ar: Arena, offset: number, size: number): void {
  const f = ar.free;
  let k = 0;
  while (k < f.length && f[k].offset < offset) k++;
  f.splice(k, 0, { offset, size });
  // Merge with the next block, then with the previous one.
  if (k + 1 < f.length && f[k].offset + f[k].size === f[k + 1].offset) {
    f[k].size += f[k + 1].size;
    f.splice(k + 1, 1);
  }
  if (k > 0 && f[k - 1].offset + f[k - 1].size === f[k].offset) {
    f[k - 1].size += f[k].size;
    f.splice(k, 1);
  }
}

// ---- one run's inputs -----------------------------------------------------------------------------------------

/** A run's validated inputs: param values by name and input arrays by tensor id. */
export interface BoundRun {
  readonly params: Readonly<Record<string, number>>;
  readonly arrays: readonly (InputArray | undefined)[];
}

/** A {@link BoundRun} that {@link validateRun} fills in place, so a backend allocates nothing per step for it. */
export interface MutableRun extends BoundRun {
  readonly params: Record<string, number>;
  readonly arrays: (InputArray | undefined)[];
}

/**
 * Checks one run's inputs against a graph: every param an integer in its range, every input an array of the right
 * type and exact length at this step's sizes, nothing unknown. Throws a {@link GraphError} naming the input or param.
 *
 * @example
 * ```ts
 * const run = validateRun(graph, { tokens: Int32Array.of(1), nTokens: 1, pos: 0 });
 * run.params.nTokens; // 1
 * ```
 */
export function validateRun(graph: Graph, inputs: RunInputs, into?: MutableRun): BoundRun {
  if (inputs === null || typeof inputs !== 'object') throw new GraphError('inputs', 'run needs an object of inputs');
  const params: Record<string, number> = into?.params ?? {};
  for (const p of graph.params) {
    const v = inputs[p.name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < p.min || v > p.max) {
      throw new GraphError(p.name, `param needs an integer in [${p.min}, ${p.max}], got ${describe(v)}`);
    }
    params[p.name] = v;
  }
  const arrays: (InputArray | undefined)[] = into?.arrays ?? new Array(graph.tensors.length);
  for (const t of graph.inputs) {
    const v = inputs[t.name];
    const want = t.dtype === 'i32' ? Int32Array : Float32Array;
    if (!(v instanceof want)) throw new GraphError(t.name, `input needs a ${want.name}, got ${describe(v)}`);
    const n = numelAt(t, params);
    if (v.length !== n) throw new GraphError(t.name, `input needs ${n} elements at this step's sizes, got ${v.length}`);
    arrays[t.id] = v;
  }
  // Unknown keys: counted rather than listed, so a correct run allocates nothing here.
  let known = 0;
  for (const p of graph.params) if (Object.hasOwn(inputs, p.name)) known++;
  for (const t of graph.inputs) if (Object.hasOwn(inputs, t.name)) known++;
  let count = 0;
  for (const _ in inputs) count++;
  if (count !== known) {
    for (const key of Object.keys(inputs)) {
      if (!graph.params.some((p) => p.name === key) && !graph.inputs.some((t) => t.name === key)) {
        throw new GraphError(key, 'is neither an input nor a param of this graph');
      }
    }
  }
  return into ?? { params, arrays };
}

/**
 * Checks every node against a backend's capabilities before anything runs: the typed operand's dtype (weight, table,
 * KV cache, copy destination), value dtypes and matmul activation modes. Throws a {@link GraphError} naming the node,
 * the op, the dtype and the tensor.
 *
 * @example
 * ```ts
 * checkCapabilities(graph, backend); // GraphError: l0.q: backend 'wasm' has no matmul for q3_K (blk.0.attn_q.weight)
 * ```
 */
export function checkCapabilities(
  graph: Graph,
  backend: { readonly name: string; readonly capabilities: BackendCapabilities },
): void {
  const caps = backend.capabilities;
  for (const node of graph.nodes) {
    const accepted = caps.ops[node.op] ?? [];
    for (const t of typedOperands(node)) {
      if (!accepted.includes(t.dtype)) {
        throw new GraphError(node.name, `backend '${backend.name}' has no ${node.op} for ${t.dtype} (${t.name})`);
      }
    }
    for (const t of [...node.inputs, ...(node.out ? [node.out] : [])]) {
      if (t.kind !== 'value') continue;
      if (!caps.valueDTypes.includes(t.dtype as 'f32') || (!isTyped(node) && !accepted.includes(t.dtype))) {
        throw new GraphError(node.name, `backend '${backend.name}' has no ${node.op} on ${t.dtype} values (${t.name})`);
      }
    }
    if (node.op === 'matmul' && node.activations !== undefined && !caps.matmulActivations.includes(node.activations)) {
      throw new GraphError(
        node.name,
        `backend '${backend.name}' has no '${node.activations}' matmul activations (${node.weight.name})`,
      );
    }
  }
}

function isTyped(node: GraphNode): boolean {
  return node.op === 'matmul' || node.op === 'get_rows' || node.op === 'attention' || node.op === 'copy';
}

/**
 * The operands whose dtype `capabilities.ops[op]` lists: the weight of a matmul, the table of get_rows, the K and V
 * caches of attention, the destination of copy. Other ops have none (their values are checked against
 * `valueDTypes`).
 *
 * @example
 * ```ts
 * typedOperands(node).map((t) => t.dtype); // ['q4_0'] for a q4_0 matmul
 * ```
 */
export function typedOperands(node: GraphNode): readonly TensorRef[] {
  switch (node.op) {
    case 'matmul':
      return [node.weight];
    case 'get_rows':
      return [node.table];
    case 'attention':
      return [node.k, node.v];
    case 'copy':
      return [node.dst];
    default:
      return [];
  }
}

// ---- index helpers for kernels -------------------------------------------------------------------------------------

/**
 * Elements of a tensor at a run's param values.
 *
 * @example
 * ```ts
 * numelAt(x, run.params); // nTokens * 64 for x [nTokens, 64]
 * ```
 */
export function numelAt(t: TensorRef, params: Readonly<Record<string, number>>): number {
  let n = 1;
  for (const d of t.shape) n *= dimValue(d, params);
  return n;
}

/**
 * A tensor as rows of its last dimension at a run's param values.
 *
 * @example
 * ```ts
 * const { rows, cols } = rowsAt(node.x, run.params);
 * ```
 */
export function rowsAt(t: TensorRef, params: Readonly<Record<string, number>>): { rows: number; cols: number } {
  const cols = dimValue(t.shape[t.shape.length - 1], params);
  let rows = 1;
  for (let i = 0; i < t.shape.length - 1; i++) rows *= dimValue(t.shape[i], params);
  return { rows, cols };
}

/**
 * Rows of a tensor at the params' maxima (to size scratch once).
 *
 * @example
 * ```ts
 * const scratch = new Float32Array(rowsMax(node.x) * cols);
 * ```
 */
export function rowsMax(t: TensorRef): number {
  let rows = 1;
  for (let i = 0; i < t.shape.length - 1; i++) rows *= dimMax(t.shape[i]);
  return rows;
}

/**
 * The position of row `r` of a rope/attention/copy node: the i32 positions input, or start param + r.
 *
 * @example
 * ```ts
 * const p = positionAt(node.positions, r, run);
 * ```
 */
export function positionAt(p: Positions, r: number, run: BoundRun): number {
  return isTensor(p) ? (run.arrays[p.id] as Int32Array)[r] : run.params[p.name] + r;
}

/**
 * ggml's `rope_yarn_corr_dims`: the pair range [lo, hi] over which YaRN ramps from extrapolation to interpolation.
 * Computed in float32 like ggml.
 *
 * @example
 * ```ts
 * const [lo, hi] = ropeYarnCorrDims(128, 8192, 500000, 32, 1);
 * ```
 */
export function ropeYarnCorrDims(
  nRot: number,
  origCtx: number,
  freqBase: number,
  betaFast: number,
  betaSlow: number,
): [number, number] {
  const f = Math.fround;
  const corr = (beta: number) =>
    f(f(nRot * f(Math.log(f(origCtx / f(f(beta * 2) * f(Math.PI)))))) / f(2 * f(Math.log(freqBase))));
  const start = Math.floor(corr(betaFast));
  const end = Math.ceil(corr(betaSlow));
  return [Math.max(0, start), Math.min(nRot - 1, end)];
}

/**
 * The angle per unit of position of each rotated pair of a rope node, and the cos/sin magnitude: pair j of a row at
 * position p turns by `p · theta[j]` and both cos and sin are multiplied by `mscale`. This folds ggml's YaRN mix
 * `interp · (1 - r) + extrap · r` into one factor per pair (see {@link RopeNode}); without YaRN,
 * `theta[j] = freqScale · freqBase^(-2j/nRot) / freqFactors[j]`.
 *
 * @example
 * ```ts
 * const { theta, mscale } = ropeTables(node, factors); // once per node
 * const c = Math.cos(pos * theta[j]) * mscale;          // per row and pair
 * ```
 */
export function ropeTables(
  node: {
    readonly nRot: number;
    readonly freqBase: number;
    readonly freqScale: number;
    readonly extFactor: number;
    readonly attnFactor: number;
    readonly betaFast: number;
    readonly betaSlow: number;
    readonly origCtx: number;
  },
  factors: Float32Array | undefined,
): { theta: Float64Array; mscale: number } {
  const half = node.nRot / 2;
  const theta = new Float64Array(half);
  let lo = 0;
  let hi = 0;
  if (node.extFactor !== 0)
    [lo, hi] = ropeYarnCorrDims(node.nRot, node.origCtx, node.freqBase, node.betaFast, node.betaSlow);
  for (let j = 0; j < half; j++) {
    const extrap = node.freqBase ** ((-2 * j) / node.nRot) / (factors ? factors[j] : 1);
    let mix = 0;
    if (node.extFactor !== 0) {
      const y = (j - lo) / Math.max(0.001, hi - lo);
      mix = (1 - Math.min(1, Math.max(0, y))) * node.extFactor;
    }
    theta[j] = extrap * (node.freqScale * (1 - mix) + mix);
  }
  const mscale = node.extFactor !== 0 ? node.attnFactor * (1 + 0.1 * Math.log(1 / node.freqScale)) : node.attnFactor;
  return { theta, mscale };
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'number') return String(v);
  return (v as object)?.constructor?.name ?? typeof v;
}
