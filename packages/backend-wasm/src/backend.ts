import { formats } from '@nibble/formats';
import {
  type BackendCapabilities,
  BackendError,
  type BackendOptions,
  type BackendTensor,
  type BoundRun,
  byteLength,
  type Dim,
  DTypeError,
  type DTypeName,
  dtypes,
  type Graph,
  GraphError,
  type GraphPlan,
  type HostTensor,
  hostTensor,
  KernelBackend,
  type MatmulActivations,
  numelAt,
  type OpName,
  type Positions,
  type RunInputs,
  type RunOptions,
  type RunOutputs,
  ropeTables,
  rowBytes,
  rowsOf,
  type Shape,
  type TensorOptions,
  type TensorRef,
} from '@nibble/tensor';
import {
  type Count,
  ctl,
  type Kernels,
  type MatmulKernel,
  type Op,
  type Profile,
  type Program,
  runProgram,
} from './exec.js';
import { wasmPlain, wasmRelaxed, wasmRelaxedShared, wasmShared, workerSource } from './generated.js';
import { Heap, wasm32Limit } from './heap.js';
import { Pool, type WorkerSpawner } from './pool.js';
import { planBarriers } from './sync.js';

/** Format codes of the kernels (assembly/kernels.ts). */
const fmtCode: Partial<Record<DTypeName, number>> = {
  f32: 0,
  f16: 1,
  bf16: 2,
  q8_0: 3,
  q4_0: 4,
  q4_1: 5,
  q5_0: 6,
  q5_1: 7,
  q2_K: 8,
  q3_K: 9,
  q4_K: 10,
  q5_K: 11,
  q6_K: 12,
  iq4_nl: 13,
  iq4_xs: 14,
  mxfp4: 15,
};
/** Formats stored in 8-row groups (see kernels.ts), and their group bytes per block (q4_K, q6_K: per 256 columns). */
const groupBytes: Partial<Record<DTypeName, number>> = { q4_0: 144, q4_1: 160, q8_0: 272, q4_K: 1248, q6_K: 1680 };
/** Formats whose ggml-mode matmul has an integer kernel. */
const intKernel: Partial<Record<DTypeName, MatmulKernel>> = {
  q4_0: 'q4_0',
  q4_1: 'q4_1',
  q8_0: 'q8_0',
  q4_K: 'q4_K',
  q6_K: 'q6_K',
  q5_0: 'rows',
  q5_1: 'rows',
  iq4_nl: 'rows',
  mxfp4: 'rows',
  q2_K: 'rows',
  q3_K: 'rows',
  q5_K: 'rows',
  iq4_xs: 'rows',
};
/** Bytes per 32-block of a group's weights expanded for the prompt path (kernels.ts E_BLOCK). */
const expandedBlock = 576;
const cacheTypes: readonly DTypeName[] = ['f32', 'f16', 'bf16', 'q8_0'];

/**
 * Options of the WASM backend.
 *
 * @example
 * ```ts
 * const backend = await createBackend('wasm', { threads: 2, matmulActivations: 'ggml' } satisfies WasmBackendOptions);
 * ```
 */
export interface WasmBackendOptions extends BackendOptions {
  /**
   * Threads, the caller's included (default: the available cores). Above 1 needs SharedArrayBuffer (a
   * cross-origin-isolated page in browsers) and workers; without them the backend runs one thread and says why in
   * {@link WasmBackend.threadNote}.
   */
  threads?: number;
  /**
   * Default matmul activations for quantized weights. `'ggml'` (the default): activations are quantized to the
   * weight's vec_dot type (q8_0, q8_1, q8_K) and the dot products are integer sums as in ggml's CPU backend, so
   * results match llama.cpp's within ggml's own SIMD reordering. `'f32'`: the accurate mode, f32 activations against
   * the decoded weight (within 1e-6 NMSE of a float64 product).
   */
  matmulActivations?: MatmulActivations;
  /**
   * Use the kernels built with relaxed SIMD where the engine has it (default: true). They run the q4_0 and q4_1
   * decode matvecs with `i16x8.relaxed_dot_i8x16_i7x16_s` and give bit-identical results; before choosing them the backend
   * validates the module and checks the instruction's results on known bytes, falling back to the plain SIMD
   * kernels otherwise. `false` forces the plain kernels (for A/B measurements). {@link WasmBackend.simd} says which
   * run.
   */
  relaxedSimd?: boolean;
}

/** Which build of the kernels a {@link WasmBackend} runs. */
export type WasmSimd = 'simd128' | 'relaxed-simd';

/** Everything a backend instance is made from; made by {@link createWasmBackend}. */
export interface WasmEnvironment {
  /** Starts workers; undefined where there are none (then one thread). */
  readonly spawn: WorkerSpawner | undefined;
  /** Cores available (the default thread count). */
  readonly cores: number;
}

/**
 * The weight formats this backend multiplies: every codec of `@nibble/formats`. Those with kernels here are read in
 * their stored bytes (q4_0, q4_1, q8_0, q4_K and q6_K regrouped by 8 rows); the others are decoded to f32 once at upload.
 */
function weightDTypes(): DTypeName[] {
  return Object.keys(formats).filter((k) => Object.hasOwn(dtypes, k)) as DTypeName[];
}

/**
 * The WASM backend's capabilities.
 *
 * @example
 * ```ts
 * wasmCapabilities().ops.matmul.includes('q4_K'); // true
 * ```
 */
export function wasmCapabilities(): BackendCapabilities {
  const all = Object.freeze(weightDTypes());
  const f32: readonly DTypeName[] = Object.freeze(['f32']);
  const caches = Object.freeze([...cacheTypes]);
  const ops: Record<OpName, readonly DTypeName[]> = {
    matmul: all,
    get_rows: all,
    rms_norm: f32,
    layer_norm: f32,
    rope: f32,
    attention: caches,
    softmax: f32,
    silu: f32,
    gelu: f32,
    glu: f32,
    softcap: f32,
    reshape: f32,
    add: f32,
    mul: f32,
    scale: f32,
    copy: caches,
  };
  return Object.freeze({
    ops: Object.freeze(ops),
    matmulActivations: Object.freeze(['ggml', 'f32'] as const),
    valueDTypes: Object.freeze(['f32'] as const),
    limits: Object.freeze({ maxBufferBytes: 2 ** 31, maxBindingBytes: 2 ** 31, maxTotalBytes: wasm32Limit - 2 ** 26 }),
  });
}

/**
 * A tensor in the backend's WebAssembly memory.
 *
 * @example
 * ```ts
 * const t = (await backend.upload(host)) as WasmTensor; // t.ptr: its address in the memory
 * ```
 */
export class WasmTensor implements BackendTensor {
  readonly backend = 'wasm';
  constructor(
    readonly name: string,
    readonly dtype: DTypeName,
    readonly shape: Shape,
    /** Address of the data the kernels read. */
    readonly ptr: number,
    /** Kernel format code: the dtype's, or f32 for formats decoded at upload. */
    readonly fmt: number,
    /** Bytes per row as the kernels read them (f32 rows for decoded formats; the file's otherwise). */
    readonly rowBytes: number,
    readonly rows: number,
    readonly cols: number,
    /** Stored in 8-row groups. */
    readonly grouped: boolean,
    /** For formats decoded at upload: the address of the stored bytes (for download). */
    readonly raw: number,
  ) {}
}

interface Prepared {
  readonly prog: Program;
  /** Graph inputs: where each run's arrays are copied. */
  readonly inputs: readonly { readonly t: TensorRef; readonly ptr: number }[];
  readonly outputs: readonly { readonly name: string; readonly t: TensorRef; readonly ptr: number }[];
  /** Checks of one run's ids and positions (kernels never see an index out of range). */
  readonly checks: readonly ((run: BoundRun) => void)[];
  /** Every block this plan allocated. */
  readonly blocks: number[];
  /** Param names in the program's param order. */
  readonly params: readonly string[];
  /** Row counters of the program's dynamically shared matmuls (zeroed before each step). */
  readonly tickets: number;
  released: boolean;
}

let nextId = 0;
let warnedThreads = false;

/**
 * The WASM backend: kernels in AssemblyScript with 128-bit SIMD over one WebAssembly memory that holds the weights
 * (copied in once at upload), the KV caches and the planner's buffers; a worker pool over the same memory when
 * threads > 1. Create it with `createBackend('wasm')` after importing this package (`@nibble/backend-wasm/node` in
 * Node for worker threads).
 *
 * @example
 * ```ts
 * import '@nibble/backend-wasm/node';
 * const backend = await createBackend('wasm', { threads: 2 });
 * ```
 */
export class WasmBackend extends KernelBackend<Prepared> {
  readonly name = 'wasm';
  readonly capabilities: BackendCapabilities = wasmCapabilities();
  protected override readonly alignment = 64;
  /** Threads each step runs on. */
  readonly threads: number;
  /** Why fewer threads than asked for run, or undefined. */
  readonly threadNote: string | undefined;
  /** The kernels running: the plain 128-bit SIMD build or the relaxed-SIMD one (see {@link WasmBackendOptions}). */
  readonly simd: WasmSimd;
  readonly #k: Kernels;
  readonly #heap: Heap;
  readonly #pool: Pool | undefined;
  readonly #ctl: number;
  readonly #defaultActivations: MatmulActivations;
  readonly #users = new Map<WasmTensor, Set<Prepared>>();
  readonly #plans = new Set<Prepared>();
  readonly #id = nextId++;
  #progIds = 0;
  #inflight = 0;
  readonly #pending: Prepared[] = [];

  /** @hidden Use `createBackend('wasm')`. */
  constructor(
    k: Kernels,
    heap: Heap,
    ctlPtr: number,
    pool: Pool | undefined,
    options: WasmBackendOptions,
    note?: string,
    simd: WasmSimd = 'simd128',
  ) {
    super();
    this.simd = simd;
    this.#k = k;
    this.#heap = heap;
    this.#ctl = ctlPtr;
    this.#pool = pool;
    this.threads = pool?.threads ?? 1;
    this.threadNote = note;
    const a = options.matmulActivations ?? 'ggml';
    if (a !== 'f32' && a !== 'ggml') throw new BackendError(`wasm backend: unknown matmulActivations '${String(a)}'`);
    this.#defaultActivations = a;
  }

  /**
   * Set to an object to collect the time per op kind of every later run (the calling thread's view: its share of
   * each op plus the wait for the others); undefined (the default) measures nothing.
   *
   * @example
   * ```ts
   * backend.profile = {};
   * await backend.run(graph, inputs);
   * console.table(backend.profile); // { 'matmul q4_0': { ms, calls }, attention: { ... }, ... }
   * ```
   */
  profile: Profile | undefined;

  /**
   * The backend in words, with its kernel build, e.g. `'wasm (relaxed-simd)'`.
   *
   * @example
   * ```ts
   * console.log((backend as WasmBackend).info); // 'wasm (simd128)'
   * ```
   */
  get info(): string {
    return `${this.name} (${this.simd})`;
  }

  /** Bytes of WebAssembly memory in use (weights, caches, plans). */
  get memoryBytes(): number {
    return this.#heap.used;
  }

  #u8(ptr: number, n: number): Uint8Array {
    return new Uint8Array(this.#heap.memory.buffer, ptr, n);
  }

  async upload(tensor: HostTensor, options: TensorOptions = {}): Promise<BackendTensor> {
    this.alive();
    const name = options.name ?? `tensor_${this.#id}`;
    const t = hostTensor(tensor.dtype, tensor.shape, tensor.data);
    const { rows, cols } = rowsOf(t.shape);
    const code = fmtCode[t.dtype];
    const heap = this.#heap;
    if (code !== undefined) {
      const rb = rowBytes(t.dtype, cols);
      const gb = groupBytes[t.dtype];
      if (gb === undefined) {
        const ptr = heap.alloc(t.data.byteLength, name);
        this.#u8(ptr, t.data.byteLength).set(t.data);
        return this.adopt(new WasmTensor(name, t.dtype, t.shape, ptr, code, rb, rows, cols, false, 0));
      }
      // Regroup by 8 rows: the file bytes go to a staging block, the kernels repack them into place.
      const packed = Math.ceil(rows / 8) * (cols / dtypes[t.dtype].blockSize) * gb;
      const ptr = heap.alloc(Math.max(packed, 1), name);
      const staging = heap.alloc(t.data.byteLength, name);
      this.#u8(staging, t.data.byteLength).set(t.data);
      this.#k.repack8(code, staging, ptr, rows, cols, 0);
      heap.free(staging);
      return this.adopt(new WasmTensor(name, t.dtype, t.shape, ptr, code, rb, rows, cols, true, 0));
    }
    const codec = Object.hasOwn(formats, t.dtype) ? formats[t.dtype] : undefined;
    if (codec === undefined) throw new DTypeError(`wasm backend: cannot upload ${name}: no codec for ${t.dtype}`);
    // No kernel for this format: decoded to f32 once; the stored bytes are kept for download.
    const f = codec.dequantize(t.data, rows * cols);
    const ptr = heap.alloc(f.byteLength, name);
    new Float32Array(heap.memory.buffer, ptr, f.length).set(f);
    const raw = heap.alloc(t.data.byteLength, name);
    this.#u8(raw, t.data.byteLength).set(t.data);
    return this.adopt(new WasmTensor(name, t.dtype, t.shape, ptr, 0, cols * 4, rows, cols, false, raw));
  }

  async alloc(dtype: DTypeName, shape: Shape, options: TensorOptions = {}): Promise<BackendTensor> {
    this.alive();
    const name = options.name ?? `state_${this.#id}`;
    if (!cacheTypes.includes(dtype)) {
      throw new DTypeError(`wasm backend: cannot allocate ${name} as ${dtype}: state is f32, f16, bf16 or q8_0`);
    }
    const { rows, cols } = rowsOf(shape);
    const bytes = byteLength(dtype, shape);
    const ptr = this.#heap.alloc(bytes, name);
    this.#u8(ptr, bytes).fill(0);
    return this.adopt(
      new WasmTensor(name, dtype, shape, ptr, fmtCode[dtype] as number, rowBytes(dtype, cols), rows, cols, false, 0),
    );
  }

  async download(tensor: BackendTensor): Promise<HostTensor> {
    const t = this.own<WasmTensor>(tensor, 'download');
    const bytes = byteLength(t.dtype, t.shape);
    if (t.raw !== 0) return hostTensor(t.dtype, t.shape, this.#u8(t.raw, bytes).slice());
    if (!t.grouped) return hostTensor(t.dtype, t.shape, this.#u8(t.ptr, bytes).slice());
    const staging = this.#heap.alloc(bytes, t.name);
    this.#k.repack8(t.fmt, t.ptr, staging, t.rows, t.cols, 1);
    const out = this.#u8(staging, bytes).slice();
    this.#heap.free(staging);
    return hostTensor(t.dtype, t.shape, out);
  }

  protected releaseTensor(tensor: BackendTensor): void {
    const t = tensor as WasmTensor;
    // Graphs that use it can no longer run: give their memory back now.
    for (const p of this.#users.get(t) ?? []) this.#release(p);
    this.#users.delete(t);
    this.#heap.free(t.ptr);
    if (t.raw !== 0) this.#heap.free(t.raw);
  }

  protected releaseAll(): void {
    this.#pool?.dispose();
    this.#users.clear();
    this.#plans.clear();
  }

  #release(p: Prepared): void {
    if (p.released) return;
    p.released = true;
    this.#plans.delete(p);
    for (const b of p.blocks) this.#heap.free(b);
    if (!this.disposed) this.#pool?.drop(p.prog.id);
  }

  // ---- compiling a plan -----------------------------------------------------------------------------------------

  /** @hidden */
  protected prepare(gp: GraphPlan): Prepared {
    const graph = gp.graph;
    const heap = this.#heap;
    const blocks: number[] = [];
    const alloc = (bytes: number, what: string) => {
      const p = heap.alloc(bytes, what);
      blocks.push(p);
      return p;
    };
    const params = graph.params.map((p) => p.name);
    const paramIndex = (name: string) => params.indexOf(name);
    const nth = this.threads;
    try {
      const bufs = gp.buffers.map((b, i) => alloc(b.bytes, `plan buffer ${i}`));
      const addr = new Map<number, number>();
      gp.values.forEach((v, id) => {
        if (v !== undefined) addr.set(id, bufs[v.buffer] + v.offset);
      });
      const inputs = graph.inputs.map((t) => {
        const n = t.shape.reduce<number>((p, d) => p * (typeof d === 'number' ? d : d.max), 1);
        const ptr = alloc(Math.max(4, n * 4), `input ${t.name}`);
        addr.set(t.id, ptr);
        return { t, ptr };
      });
      const ptrOf = (t: TensorRef): number => {
        if (t.kind === 'weight' || t.kind === 'state') return (t.handle as WasmTensor).ptr;
        const a = addr.get(t.id);
        if (a === undefined) throw new GraphError(t.name, 'wasm backend: no storage planned for this tensor');
        return a;
      };
      const rowsCount = (t: TensorRef): Count => countOf(t.shape.slice(0, -1), paramIndex);
      const elemCount = (t: TensorRef): Count => countOf(t.shape, paramIndex);
      const posOf = (p: Positions): { pos: number; startParam: number } =>
        (p as TensorRef).kind !== undefined && (p as { kind: string }).kind !== 'param'
          ? { pos: ptrOf(p as TensorRef), startParam: -1 }
          : { pos: 0, startParam: paramIndex((p as { name: string }).name) };
      const checks: ((run: BoundRun) => void)[] = [];

      // Scratch sizes over all nodes, allocated once below; quantized activations per class.
      let rowScratch = 0;
      let expandScratch = 0;
      let ctxMax = 0;
      let tmpMax = 0;
      let ropeMax = 0;
      interface ActClass {
        bytesQ: number;
        bytesS: number;
        bytesDeq: number;
        q: number;
        d: number;
        s: number;
        deq: number;
        s81: number;
        last: number;
      }
      const classes = new Map<string, ActClass>();
      const pending: { node: number; build: () => Op }[] = [];
      const ops: Op[] = [];
      for (const node of graph.nodes) {
        switch (node.op) {
          case 'matmul': {
            const w = node.weight.handle as WasmTensor;
            const mode = node.activations ?? this.#defaultActivations;
            const n = w.cols;
            const tokens = rowsCount(node.x);
            const nMax = tokens.m * tokens.p.reduce((a, p) => a * graph.params[p].max, 1);
            const info = dtypes[w.dtype];
            let kernel: MatmulKernel = 'f32';
            let quant = 0;
            let layout = 0;
            if (mode === 'ggml' && (w.dtype === 'f16' || w.dtype === 'bf16')) quant = w.dtype === 'f16' ? 4 : 5;
            else if (mode === 'ggml' && info.quantized) {
              const vdt = info.vecDotType;
              quant = vdt === 'q8_0' ? 1 : vdt === 'q8_K' ? 2 : vdt === 'q8_1' ? 3 : 0;
              if (quant === 0) throw new GraphError(node.name, `wasm backend: no ${vdt} activations for ${w.dtype}`);
              kernel = intKernel[w.dtype] ?? 'f32';
              layout = kernel === 'q4_0' || kernel === 'q4_1' ? 3 : kernel === 'q4_K' ? 5 : kernel === 'q6_K' ? 6 : 0;
            }
            rowScratch = Math.max(rowScratch, n);
            // The prompt path of the 32-column groups expands them per thread (the K-quant groups are read as they are).
            if ((kernel === 'q4_0' || kernel === 'q4_1' || kernel === 'q8_0') && nMax >= 4) {
              expandScratch = Math.max(expandScratch, (n / 32) * expandedBlock);
            }
            const key = `${quant}/${layout}/${kernel === 'f32' ? 'deq' : 'int'}`;
            let cls = classes.get(key);
            if (quant !== 0) {
              if (cls === undefined) {
                cls = {
                  bytesQ: 0,
                  bytesS: 0,
                  bytesDeq: 0,
                  q: 0,
                  d: 0,
                  s: 0,
                  deq: 0,
                  s81: quant === 3 ? -1 : 0,
                  last: -1,
                };
                classes.set(key, cls);
              }
              const per = quant === 2 ? 16 : 32;
              cls.bytesQ = Math.max(cls.bytesQ, nMax * n * 2);
              cls.bytesS = Math.max(cls.bytesS, nMax * Math.ceil(n / per) * 4);
              if (kernel === 'f32') cls.bytesDeq = Math.max(cls.bytesDeq, nMax * n * 4);
            }
            const reuse = cls !== undefined && cls.last === node.x.id;
            if (cls !== undefined) cls.last = node.x.id;
            const c = cls;
            const fix81 = quant === 3 && kernel === 'f32' && (w.dtype === 'q4_1' || w.dtype === 'q5_1');
            const x = ptrOf(node.x);
            const y = ptrOf(node.out);
            const bias = node.bias ? ptrOf(node.bias) : 0;
            const res = node.residual ? ptrOf(node.residual) : 0;
            pending.push({
              node: ops.length,
              build: () => ({
                k: 'matmul',
                kernel,
                fmt: w.fmt,
                w: w.ptr,
                rowBytes: w.rowBytes,
                x,
                y,
                n,
                outF: w.rows,
                tokens,
                quant,
                layout,
                reuse,
                aq: c?.q ?? 0,
                ad: c?.d ?? 0,
                as: c?.s ?? 0,
                deq: kernel === 'f32' ? (c?.deq ?? 0) : 0,
                s81: quant === 3 ? (c?.s81 ?? 0) : 0,
                expand: 0,
                expandStride: 0,
                fix81,
                bias,
                res,
                scratch: 0,
                scratchStride: 0,
              }),
            });
            ops.push(undefined as unknown as Op);
            break;
          }
          case 'get_rows': {
            const w = node.table.handle as WasmTensor;
            const ids = node.ids;
            checks.push((run) => {
              const a = run.arrays[ids.id] as Int32Array;
              const n = numelAt(ids, run.params);
              for (let r = 0; r < n; r++) {
                if (!(a[r] >= 0 && a[r] < w.rows)) {
                  throw new GraphError(node.name, `row id ${a[r]} at ${r} is outside [0, ${w.rows}) of ${w.name}`);
                }
              }
            });
            rowScratch = Math.max(rowScratch, w.cols);
            ops.push({
              k: 'get_rows',
              fmt: w.fmt,
              w: w.ptr,
              rowBytes: w.rowBytes,
              ids: ptrOf(ids),
              out: ptrOf(node.out),
              n: w.cols,
              rows: elemCount(ids),
            });
            break;
          }
          case 'rms_norm':
          case 'layer_norm':
            ops.push({
              k: 'norm',
              x: ptrOf(node.x),
              out: ptrOf(node.out),
              w: node.weight ? ptrOf(node.weight) : 0,
              b: node.op === 'layer_norm' && node.bias ? ptrOf(node.bias) : 0,
              n: lastDim(node.x),
              eps: node.eps,
              layer: node.op === 'layer_norm' ? 1 : 0,
              rows: rowsCount(node.x),
            });
            break;
          case 'softmax':
            ops.push({
              k: 'softmax',
              x: ptrOf(node.x),
              out: ptrOf(node.out),
              n: lastDim(node.x),
              rows: rowsCount(node.x),
            });
            break;
          case 'silu':
          case 'gelu':
          case 'scale':
          case 'softcap': {
            const op = node.op === 'silu' ? 0 : node.op === 'gelu' ? 1 : node.op === 'scale' ? 2 : 3;
            const f = node.op === 'scale' ? node.factor : node.op === 'softcap' ? node.cap : 0;
            ops.push({
              k: 'eltwise',
              op,
              a: ptrOf(node.x),
              b: 0,
              out: ptrOf(node.out),
              f,
              bn: 0,
              elements: elemCount(node.x),
            });
            break;
          }
          case 'add':
          case 'mul': {
            const same = node.b.shape.length === node.a.shape.length;
            ops.push({
              k: 'eltwise',
              op: node.op === 'add' ? 4 : 5,
              a: ptrOf(node.a),
              b: ptrOf(node.b),
              out: ptrOf(node.out),
              f: 0,
              bn: same ? 0 : lastDim(node.a),
              elements: elemCount(node.a),
            });
            break;
          }
          case 'glu':
            ops.push({
              k: 'eltwise',
              op: node.activation === 'silu' ? 6 : 7,
              a: ptrOf(node.gate),
              b: node.up ? ptrOf(node.up) : 0,
              out: ptrOf(node.out),
              f: 0,
              bn: node.up ? 0 : lastDim(node.out),
              elements: elemCount(node.out),
            });
            break;
          case 'reshape':
            break;
          case 'rope': {
            const factors = node.freqFactors ? (node.freqFactors.handle as WasmTensor) : undefined;
            const f =
              factors === undefined
                ? undefined
                : new Float32Array(heap.memory.buffer, factors.ptr, node.nRot / 2).slice();
            const { theta, mscale } = ropeTables(node, f);
            const th = alloc(theta.byteLength, `${node.name} theta`);
            new Float64Array(heap.memory.buffer, th, theta.length).set(theta);
            ropeMax = Math.max(ropeMax, node.nRot);
            const { pos, startParam } = posOf(node.positions);
            ops.push({
              k: 'rope',
              x: ptrOf(node.x),
              out: ptrOf(node.out),
              nHeads: node.nHeads,
              headDim: node.headDim,
              nRot: node.nRot,
              neox: node.mode === 'neox' ? 1 : 0,
              theta: th,
              mscale,
              pos,
              startParam,
              scratch: 0,
              scratchStride: 0,
              rows: rowsCount(node.x),
            });
            break;
          }
          case 'copy': {
            const dst = node.dst.handle as WasmTensor;
            checks.push(positionCheck(node.name, node.positions, node.src, dst.rows, `${dst.name} [0, ${dst.rows})`));
            const { pos, startParam } = posOf(node.positions);
            ops.push({
              k: 'copy',
              fmt: dst.fmt,
              src: ptrOf(node.src),
              dst: dst.ptr,
              dstBytes: byteLength(dst.dtype, dst.shape),
              n: dst.cols,
              pos,
              startParam,
              rows: rowsCount(node.src),
            });
            break;
          }
          case 'attention': {
            const kc = node.k.handle as WasmTensor;
            const vc = node.v.handle as WasmTensor;
            if (kc.dtype !== vc.dtype) {
              throw new GraphError(
                node.name,
                `wasm backend: K and V caches must share a dtype (${kc.dtype}, ${vc.dtype})`,
              );
            }
            checks.push(positionCheck(node.name, node.positions, node.q, kc.rows, `the cache [0, ${kc.rows})`));
            ctxMax = Math.max(ctxMax, kc.rows);
            tmpMax = Math.max(tmpMax, node.headDim + 64);
            const { pos, startParam } = posOf(node.positions);
            ops.push({
              k: 'attention',
              q: ptrOf(node.q),
              kc: kc.ptr,
              vc: vc.ptr,
              cacheBytes: byteLength(kc.dtype, kc.shape),
              fmt: kc.fmt,
              out: ptrOf(node.out),
              nHeads: node.nHeads,
              nKv: node.nKvHeads,
              hd: node.headDim,
              scale: node.scale,
              softcap: node.softcap,
              window: node.window,
              pos,
              startParam,
              sc: 0,
              scStride: 0,
              tmp: 0,
              tmpStride: 0,
              rows: rowsCount(node.q),
            });
            break;
          }
        }
      }
      // Scratch per thread, then the matmul ops that point into it.
      for (const cls of classes.values()) {
        cls.q = alloc(cls.bytesQ, 'activations');
        cls.d = alloc(cls.bytesS, 'activation scales');
        cls.s = alloc(cls.bytesS, 'activation sums');
        if (cls.bytesDeq > 0) {
          cls.deq = alloc(cls.bytesDeq, 'decoded activations');
        }
        if (cls.s81 === -1) cls.s81 = alloc(cls.bytesS, 'q8_1 sums');
      }
      const rowStride = Math.ceil((rowScratch * 4) / 64) * 64;
      const rowBase = alloc(Math.max(64, rowStride * nth), 'row scratch');
      const expandStride = Math.ceil(expandScratch / 64) * 64;
      const expandBase = expandStride > 0 ? alloc(expandStride * nth, 'expanded weights') : 0;
      const scStride = Math.ceil((ctxMax * 4) / 64) * 64;
      const scBase = alloc(Math.max(64, scStride * nth), 'attention scores');
      const tmpStride = Math.ceil((tmpMax * 4) / 64) * 64;
      const tmpBase = alloc(Math.max(64, tmpStride * nth), 'attention rows');
      const ropeStride = Math.ceil((ropeMax * 8) / 64) * 64;
      const ropeBase = alloc(Math.max(64, ropeStride * nth), 'rope tables');
      for (const p of pending) {
        const op = p.build();
        ops[p.node] = { ...op, scratch: rowBase, scratchStride: rowStride, expand: expandBase, expandStride } as Op;
      }
      let tickets = 0;
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i];
        if (op.k === 'attention') ops[i] = { ...op, sc: scBase, scStride, tmp: tmpBase, tmpStride };
        else if (op.k === 'rope') ops[i] = { ...op, scratch: ropeBase, scratchStride: ropeStride };
        else if (op.k === 'matmul' && nth > 1 && tickets < ctl.maxTickets) {
          // About 8 chunks per thread, whole 8-row groups: enough to even out a slowed thread, few enough that
          // taking a chunk (one atomic add) costs nothing next to computing it.
          const groups = Math.ceil(op.outF / 8);
          ops[i] = { ...op, ticket: tickets++, chunk: 8 * Math.max(1, Math.ceil(groups / (nth * 8))) };
        }
      }
      const maxOf = (c: Count) => c.p.reduce((a, p) => a * graph.params[p].max, c.m);
      const prog: Program = { id: this.#progIds++, ops: planBarriers(ops, maxOf) };
      if (this.#pool !== undefined) {
        const json = new TextEncoder().encode(JSON.stringify(prog));
        const at = heap.alloc(json.length, 'program');
        this.#u8(at, json.length).set(json);
        try {
          this.#pool.load(prog.id, at, json.length);
        } finally {
          heap.free(at);
        }
      }
      const outputs = graph.outputs.map((o) => ({ name: o.name, t: o.tensor, ptr: ptrOf(o.tensor) }));
      const prepared: Prepared = { prog, inputs, outputs, checks, blocks, params, tickets, released: false };
      this.#plans.add(prepared);
      for (const t of graph.tensors) {
        if (t.handle === undefined) continue;
        const h = t.handle as WasmTensor;
        let set = this.#users.get(h);
        if (set === undefined) this.#users.set(h, (set = new Set()));
        set.add(prepared);
      }
      graphRegistry.register(graph, { backend: new WeakRef(this), prepared });
      return prepared;
    } catch (e) {
      for (const b of blocks) heap.free(b);
      throw e;
    }
  }

  /**
   * @hidden A graph was garbage collected: its plan's memory goes back once no run is in flight (a graph can be
   * collected while its own run awaits its plan, and that run still needs the memory).
   */
  collect(p: Prepared): void {
    this.#pending.push(p);
    if (this.#inflight === 0) this.#flush();
  }

  #flush(): void {
    if (this.disposed) return;
    for (const p of this.#pending.splice(0)) this.#release(p);
  }

  override async run(graph: Graph, inputs: RunInputs, options?: RunOptions): Promise<RunOutputs> {
    this.#inflight++;
    try {
      return await super.run(graph, inputs, options);
    } finally {
      if (--this.#inflight === 0 && this.#pending.length > 0) this.#flush();
    }
  }

  /** @hidden */
  protected execute(p: Prepared, run: BoundRun, options: RunOptions): RunOutputs {
    if (p.released) throw new BackendError('wasm backend: this graph was released (a tensor it uses was freed)');
    for (const check of p.checks) check(run);
    const buf = this.#heap.memory.buffer;
    for (const { t, ptr } of p.inputs) {
      const a = run.arrays[t.id];
      if (a === undefined) continue;
      if (a instanceof Int32Array) new Int32Array(buf, ptr, a.length).set(a);
      else new Float32Array(buf, ptr, a.length).set(a);
    }
    const c = this.#pool?.control() ?? new Int32Array(buf, this.#ctl, ctl.bytes / 4);
    p.params.forEach((name, i) => {
      c[ctl.params + i] = run.params[name];
    });
    // Plain stores: posting the step (an atomic add) publishes them to the workers.
    if (p.tickets > 0) c.fill(0, ctl.tickets, ctl.tickets + p.tickets);
    if (this.#pool !== undefined) this.#pool.run(p.prog, this.#k, this.profile);
    else runProgram(p.prog, this.#k, c, 0, 1, true, this.profile);
    const out: Record<string, Float32Array> = {};
    const now = this.#heap.memory.buffer;
    for (const o of p.outputs) {
      const n = numelAt(o.t, run.params);
      out[o.name] = this.deliver(options, o.name, new Float32Array(now, o.ptr, n), n);
    }
    return out;
  }
}

const graphRegistry = new FinalizationRegistry<{ backend: WeakRef<WasmBackend>; prepared: Prepared }>((h) => {
  h.backend.deref()?.collect(h.prepared);
});

function lastDim(t: TensorRef): number {
  return t.shape[t.shape.length - 1] as number;
}

/** A product of dims as `m · Π params`. */
function countOf(dims: readonly Dim[], paramIndex: (name: string) => number): Count {
  let m = 1;
  const p: number[] = [];
  for (const d of dims) {
    if (typeof d === 'number') m *= d;
    else p.push(paramIndex(d.name));
  }
  return { m, p };
}

/** Checks that every row's position is inside a cache of `limit` rows. */
function positionCheck(
  node: string,
  positions: Positions,
  rowsOfT: TensorRef,
  limit: number,
  what: string,
): (run: BoundRun) => void {
  return (run) => {
    const rows = rowsOfT.shape
      .slice(0, -1)
      .reduce<number>((a, d) => a * (typeof d === 'number' ? d : run.params[d.name]), 1);
    const isParam = (positions as { kind: string }).kind === 'param';
    for (let r = 0; r < rows; r++) {
      const pos = isParam
        ? run.params[(positions as { name: string }).name] + r
        : (run.arrays[(positions as TensorRef).id] as Int32Array)[r];
      if (!(pos >= 0 && pos < limit)) throw new GraphError(node, `position ${pos} of row ${r} is outside ${what}`);
    }
  };
}

/**
 * Creates a WASM backend: compiles the kernels (the shared-memory build when threads > 1 can run), allocates the
 * memory and starts the pool.
 *
 * @example
 * ```ts
 * const backend = await createWasmBackend({ threads: 1 }, { spawn: undefined, cores: 1 });
 * ```
 */
export async function createWasmBackend(options: WasmBackendOptions = {}, env: WasmEnvironment): Promise<WasmBackend> {
  if (typeof WebAssembly !== 'object') throw new BackendError('wasm backend: no WebAssembly in this environment');
  const asked = options.threads ?? env.cores;
  if (!Number.isSafeInteger(asked) || asked < 1 || asked > 256) {
    throw new BackendError(`wasm backend: threads must be an integer in 1..256, got ${String(options.threads)}`);
  }
  let note: string | undefined;
  let threads = asked;
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated;
  if (threads > 1 && (typeof SharedArrayBuffer === 'undefined' || isolated === false)) {
    note = `running 1 thread instead of ${asked}: SharedArrayBuffer is not available (the page is not cross-origin isolated: serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)`;
    threads = 1;
  } else if (threads > 1 && env.spawn === undefined) {
    note = `running 1 thread instead of ${asked}: no worker support here (in Node, import '@nibble/backend-wasm/node')`;
    threads = 1;
  }
  if (note !== undefined && !warnedThreads) {
    warnedThreads = true;
    console.warn(`nibble: ${note}`);
  }
  if (!simdSupported()) throw new BackendError('wasm backend: this engine has no WebAssembly SIMD (128-bit)');
  const shared = threads > 1;
  const memory = new WebAssembly.Memory(
    shared ? { initial: 2, maximum: 65536, shared: true } : { initial: 2, maximum: 65536 },
  );
  if (options.relaxedSimd !== undefined && typeof options.relaxedSimd !== 'boolean') {
    throw new BackendError(`wasm backend: relaxedSimd must be true or false, got ${String(options.relaxedSimd)}`);
  }
  const simd: WasmSimd = options.relaxedSimd !== false && (await relaxedSupported()) ? 'relaxed-simd' : 'simd128';
  const relaxed = simd === 'relaxed-simd';
  const module = await WebAssembly.compile(
    base64(shared ? (relaxed ? wasmRelaxedShared : wasmShared) : relaxed ? wasmRelaxed : wasmPlain),
  );
  const instance = await WebAssembly.instantiate(module, {
    env: {
      memory,
      abort() {
        throw new BackendError('wasm backend: kernel abort');
      },
    },
  });
  const k = instance.exports as unknown as Kernels;
  const heap = new Heap(memory, k.heapBase());
  const ctlPtr = heap.alloc(ctl.bytes, 'control block');
  new Int32Array(memory.buffer, ctlPtr, ctl.bytes / 4).fill(0);
  const pool =
    shared && env.spawn !== undefined
      ? await Pool.create(threads, module, memory, ctlPtr, env.spawn, workerSource)
      : undefined;
  return new WasmBackend(k, heap, ctlPtr, pool, options, note, simd);
}

let relaxedOk: Promise<boolean> | undefined;

/**
 * Whether the relaxed-SIMD kernels can run here: the module validates (engines without relaxed SIMD refuse it) and
 * its probe of the relaxed dot product gives the standard sums (an early draft in old engines gives others).
 * Checked once, on a throwaway memory.
 */
function relaxedSupported(): Promise<boolean> {
  relaxedOk ??= (async () => {
    const bytes = base64(wasmRelaxed);
    if (!WebAssembly.validate(bytes)) return false;
    try {
      const memory = new WebAssembly.Memory({ initial: 2, maximum: 65536 });
      const { instance } = await WebAssembly.instantiate(bytes, { env: { memory, abort() {} } });
      return (instance.exports as { relaxedProbe(): number }).relaxedProbe() === 1;
    } catch {
      return false;
    }
  })();
  return relaxedOk;
}

/** A tiny module with one v128 op: validates only where SIMD is supported. */
function simdSupported(): boolean {
  return WebAssembly.validate(
    Uint8Array.of(0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 8, 1, 6, 0, 65, 0, 253, 15, 11),
  );
}

function base64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
