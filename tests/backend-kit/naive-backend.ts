/**
 * The smallest backend on the kit: every op written as the plainest loop over the planner's buffers. It exists to
 * show the whole backend contract in one file (docs/backend-guide.md walks through it) and, with a `mutation`, to
 * prove that the conformance suite catches the mistakes real backends make.
 *
 * Weights are decoded to f32 at upload (a toy's shortcut; real backends keep the stored format), caches hold the
 * decoded values of what their dtype can store.
 */
import { formats } from '@nibble/formats';
import {
  type BackendCapabilities,
  type BackendTensor,
  type BoundRun,
  type DTypeName,
  type GraphNode,
  type GraphPlan,
  type HostTensor,
  hostTensor,
  KernelBackend,
  numelAt,
  type OpName,
  opNames,
  positionAt,
  type RunOptions,
  type RunOutputs,
  ropeTables,
  rowsAt,
  type Shape,
  type TensorRef,
  unlimited,
} from '@nibble/tensor';

/** Deliberate bugs the suite must catch. */
export type Mutation = 'rope-off-by-one' | 'gqa-head-mapping' | 'clobber-live-value' | 'kv-state-lost' | undefined;

const weightTypes: DTypeName[] = ['f32', 'f16', 'q8_0', 'q4_0'];
const cacheTypes: DTypeName[] = ['f32', 'f16', 'q8_0'];

class NaiveTensor implements BackendTensor {
  readonly backend = 'naive';
  constructor(
    readonly name: string,
    readonly dtype: DTypeName,
    readonly shape: Shape,
    /** Decoded values, row-major. */
    readonly values: Float32Array,
  ) {}
}

interface Prepared {
  readonly plan: GraphPlan;
  /** Per tensor id: a value's f32 view into the planned buffers. */
  readonly views: (Float32Array | undefined)[];
}

export class NaiveBackend extends KernelBackend<Prepared> {
  readonly name = 'naive';
  readonly capabilities: BackendCapabilities;
  readonly #mutation: Mutation;
  readonly #states = new Set<NaiveTensor>();

  constructor(mutation?: Mutation, claims: 'all' | 'nothing' = 'all') {
    super();
    this.#mutation = mutation;
    const ops = {} as Record<OpName, readonly DTypeName[]>;
    for (const op of opNames) {
      ops[op] =
        claims === 'nothing'
          ? []
          : op === 'matmul' || op === 'get_rows'
            ? weightTypes
            : op === 'attention' || op === 'copy'
              ? cacheTypes
              : ['f32'];
    }
    this.capabilities = { ops, matmulActivations: ['f32'], valueDTypes: ['f32'], limits: unlimited };
  }

  async upload(t: HostTensor, o: { name?: string } = {}): Promise<BackendTensor> {
    this.alive();
    const values = t.dtype === 'f32' ? new Float32Array(t.data.slice().buffer) : formats[t.dtype].dequantize(t.data);
    return this.adopt(new NaiveTensor(o.name ?? 'weight', t.dtype, t.shape, values));
  }

  async alloc(dtype: DTypeName, shape: Shape, o: { name?: string } = {}): Promise<BackendTensor> {
    this.alive();
    const t = new NaiveTensor(o.name ?? 'state', dtype, shape, new Float32Array(shape.reduce((a, b) => a * b, 1)));
    this.#states.add(t);
    return this.adopt(t);
  }

  async download(tensor: BackendTensor): Promise<HostTensor> {
    const t = this.own<NaiveTensor>(tensor, 'download');
    const bytes = t.dtype === 'f32' ? new Uint8Array(t.values.slice().buffer) : formats[t.dtype].quantize(t.values);
    return hostTensor(t.dtype, t.shape, bytes);
  }

  protected releaseTensor(t: BackendTensor): void {
    this.#states.delete(t as NaiveTensor);
  }
  protected releaseAll(): void {
    this.#states.clear();
  }

  protected prepare(plan: GraphPlan): Prepared {
    const buffers = plan.buffers.map((b) => new ArrayBuffer(b.bytes));
    const views = plan.values.map((v) => v && new Float32Array(buffers[v.buffer], v.offset, v.elements));
    if (this.#mutation === 'clobber-live-value') {
      // Bug: write a node's result over an input that dies at that node, while the kernel still reads it.
      plan.nodes.forEach((node, i) => {
        const victim = node.inputs.find((t) => t.kind === 'value' && plan.values[t.id]?.lastNode === i);
        if (node.out && victim && node.op !== 'reshape') views[node.out.id] = views[victim.id];
      });
    }
    return { plan, views };
  }

  protected execute(p: Prepared, run: BoundRun, options: RunOptions): RunOutputs {
    if (this.#mutation === 'kv-state-lost') for (const s of this.#states) s.values.fill(0);
    for (const node of p.plan.nodes) this.#node(node, p, run);
    const out: Record<string, Float32Array> = {};
    for (const o of p.plan.graph.outputs) {
      out[o.name] = this.deliver(options, o.name, p.views[o.tensor.id] as Float32Array, numelAt(o.tensor, run.params));
    }
    return out;
  }

  #node(node: GraphNode, p: Prepared, run: BoundRun): void {
    const v = (t: TensorRef): Float32Array =>
      t.kind === 'value'
        ? (p.views[t.id] as Float32Array)
        : t.kind === 'input'
          ? (run.arrays[t.id] as Float32Array)
          : (t.handle as NaiveTensor).values;
    const y = node.out ? v(node.out) : new Float32Array(0);
    const each = (x: Float32Array, f: (a: number, i: number) => number) => {
      for (let i = 0; i < numelAt(node.out as TensorRef, run.params); i++) y[i] = f(x[i], i);
    };
    const silu = (a: number) => a / (1 + Math.exp(-a));
    const gelu = (a: number) => 0.5 * a * (1 + Math.tanh(0.7978845608028654 * (a + 0.044715 * a * a * a)));
    switch (node.op) {
      case 'matmul': {
        const [w, x] = [v(node.weight), v(node.x)];
        const { rows, cols: inF } = rowsAt(node.x, run.params);
        const outF = node.weight.shape[0] as number;
        const bias = node.bias && v(node.bias);
        const res = node.residual && v(node.residual);
        for (let r = 0; r < rows; r++) {
          for (let o = 0; o < outF; o++) {
            let s = 0;
            for (let i = 0; i < inF; i++) s += w[o * inF + i] * x[r * inF + i];
            y[r * outF + o] = Math.fround(s) + (bias ? bias[o] : 0) + (res ? res[r * outF + o] : 0);
          }
        }
        return;
      }
      case 'get_rows': {
        const [table, ids] = [v(node.table), run.arrays[node.ids.id] as Int32Array];
        const cols = node.table.shape[1] as number;
        for (let r = 0; r < rowsAt(node.out, run.params).rows; r++) {
          y.set(table.subarray(ids[r] * cols, (ids[r] + 1) * cols), r * cols);
        }
        return;
      }
      case 'rms_norm':
      case 'layer_norm': {
        const x = v(node.x);
        const { rows, cols } = rowsAt(node.x, run.params);
        const [w, b] = [node.weight && v(node.weight), node.op === 'layer_norm' && node.bias && v(node.bias)];
        for (let r = 0; r < rows; r++) {
          let mean = 0;
          if (node.op === 'layer_norm') for (let i = 0; i < cols; i++) mean += x[r * cols + i] / cols;
          let ss = 0;
          for (let i = 0; i < cols; i++) ss += (x[r * cols + i] - mean) ** 2;
          const inv = 1 / Math.sqrt(ss / cols + node.eps);
          for (let i = 0; i < cols; i++)
            y[r * cols + i] = (x[r * cols + i] - mean) * inv * (w ? w[i] : 1) + (b ? b[i] : 0);
        }
        return;
      }
      case 'rope': {
        const x = v(node.x);
        const { theta, mscale } = ropeTables(node, node.freqFactors && v(node.freqFactors));
        const { rows, cols } = rowsAt(node.x, run.params);
        y.set(x.subarray(0, rows * cols));
        for (let r = 0; r < rows; r++) {
          const pos = positionAt(node.positions, r, run) + (this.#mutation === 'rope-off-by-one' ? 1 : 0);
          for (let h = 0; h < node.nHeads; h++) {
            for (let j = 0; j < node.nRot / 2; j++) {
              const o = r * cols + h * node.headDim;
              const i0 = node.mode === 'neox' ? o + j : o + 2 * j;
              const i1 = node.mode === 'neox' ? i0 + node.nRot / 2 : i0 + 1;
              const [c, s] = [Math.cos(pos * theta[j]) * mscale, Math.sin(pos * theta[j]) * mscale];
              [y[i0], y[i1]] = [x[i0] * c - x[i1] * s, x[i0] * s + x[i1] * c];
            }
          }
        }
        return;
      }
      case 'attention': {
        const [q, k, val] = [v(node.q), v(node.k), v(node.v)];
        const { nHeads, nKvHeads, headDim: hd } = node;
        for (let r = 0; r < rowsAt(node.q, run.params).rows; r++) {
          const pos = positionAt(node.positions, r, run);
          const first = node.window > 0 ? Math.max(0, pos - node.window + 1) : 0;
          for (let h = 0; h < nHeads; h++) {
            const kh = this.#mutation === 'gqa-head-mapping' ? h % nKvHeads : Math.floor(h / (nHeads / nKvHeads));
            const sc: number[] = [];
            for (let t = first; t <= pos; t++) {
              let d = 0;
              for (let i = 0; i < hd; i++) d += q[(r * nHeads + h) * hd + i] * k[(t * nKvHeads + kh) * hd + i];
              d *= node.scale;
              sc.push(node.softcap > 0 ? node.softcap * Math.tanh(d / node.softcap) : d);
            }
            const m = Math.max(...sc);
            const e = sc.map((s) => Math.exp(s - m));
            const sum = e.reduce((a, b) => a + b, 0);
            for (let i = 0; i < hd; i++) {
              let acc = 0;
              for (let t = first; t <= pos; t++) acc += (e[t - first] / sum) * val[(t * nKvHeads + kh) * hd + i];
              y[(r * nHeads + h) * hd + i] = acc;
            }
          }
        }
        return;
      }
      case 'softmax': {
        const x = v(node.x);
        const { rows, cols } = rowsAt(node.x, run.params);
        for (let r = 0; r < rows; r++) {
          const row = x.subarray(r * cols, (r + 1) * cols);
          const m = Math.max(...row);
          const sum = row.reduce((a, b) => a + Math.exp(b - m), 0);
          for (let i = 0; i < cols; i++) y[r * cols + i] = Math.exp(row[i] - m) / sum;
        }
        return;
      }
      case 'silu':
        each(v(node.x), silu);
        return;
      case 'gelu':
        each(v(node.x), gelu);
        return;
      case 'softcap':
        each(v(node.x), (a) => node.cap * Math.tanh(a / node.cap));
        return;
      case 'scale':
        each(v(node.x), (a) => a * node.factor);
        return;
      case 'glu': {
        const act = node.activation === 'silu' ? silu : gelu;
        const g = v(node.gate);
        const { rows, cols } = rowsAt(node.out, run.params);
        const up = node.up ? v(node.up) : g;
        // Separate up: same index; fused [g | u] rows: the halves of each row.
        const [gs, us] = node.up ? [cols, cols] : [2 * cols, 2 * cols];
        for (let r = 0; r < rows; r++) {
          for (let i = 0; i < cols; i++) y[r * cols + i] = act(g[r * gs + i]) * up[r * us + (node.up ? 0 : cols) + i];
        }
        return;
      }
      case 'reshape':
        return; // the planner gave the view its input's storage
      case 'add':
      case 'mul': {
        const [a, b] = [v(node.a), v(node.b)];
        const bn = numelAt(node.b, run.params);
        each(a, (x, i) => (node.op === 'add' ? x + b[i % bn] : x * b[i % bn]));
        return;
      }
      case 'copy': {
        const src = v(node.src);
        const dst = node.dst.handle as NaiveTensor;
        const { rows, cols } = rowsAt(node.src, run.params);
        for (let r = 0; r < rows; r++) {
          const row = src.slice(r * cols, (r + 1) * cols);
          const stored = dst.dtype === 'f32' ? row : formats[dst.dtype].dequantize(formats[dst.dtype].quantize(row));
          dst.values.set(stored, positionAt(node.positions, r, run) * cols);
        }
        return;
      }
    }
  }
}
