/// <reference types="@webgpu/types" />
/**
 * The WebGPU backend on the backend kit: memory (weights as raw GGUF blocks in u32 storage buffers, split by rows
 * when a tensor exceeds the largest binding) and one WGSL kernel per op, with the plan's fusions turned into kernel
 * epilogues. `prepare` makes every pipeline, buffer and bind group of a graph once; `execute` writes one small step
 * buffer (params, inputs, rope cos/sin), encodes one compute pass, submits once and reads back only the outputs.
 */
import {
  type BackendCapabilities,
  BackendError,
  type BackendOptions,
  type BackendTensor,
  type BoundRun,
  byteLength,
  DTypeError,
  type DTypeName,
  dimMax,
  type Graph,
  GraphError,
  type GraphNode,
  type GraphPlan,
  type HostTensor,
  hostTensor,
  isTensor,
  KernelBackend,
  type MatmulNode,
  numelAt,
  type OpName,
  type Positions,
  type RopeNode,
  type RunInputs,
  type RunOptions,
  type RunOutputs,
  ropeTables,
  rowBytes,
  type Shape,
  type TensorOptions,
  type TensorRef,
} from '@nibble/tensor';
import {
  type DeviceOptions,
  GpuDeviceLostError,
  type GpuInfo,
  GpuOutOfMemoryError,
  openDevice,
  Usage,
} from './device.js';
import { type GpuFormat, gpuFormats, joinBlocks, splitBlocks, splitBytes, splitFormats } from './wgsl/formats.js';
import {
  argmaxKernel,
  attentionChunk,
  attentionCombineKernel,
  attentionKernel,
  attentionSplitKernel,
  copyKernel,
  type Elementwise,
  elementwiseKernel,
  getRowsKernel,
  type KernelEnv,
  type MatvecEpilogue,
  type MatvecShape,
  matvecKernel,
  normKernel,
  quantizeQ8Kernel,
  ropeKernel,
  softmaxKernel,
  tiledKernel,
  tileShape,
} from './wgsl/kernels.js';

/**
 * Options of the WebGPU backend.
 *
 * @example
 * ```ts
 * const backend = await WebGpuBackend.create({ gpu: navigator.gpu, timestamps: true });
 * ```
 */
export interface WebGpuBackendOptions extends BackendOptions, DeviceOptions {
  /** Matmuls with at most this many tokens take the matrix-vector kernel (and its fused epilogues). Default 4. */
  matvecMaxTokens?: number;
  /**
   * Matrix-vector grid: threads per workgroup (default 256), most threads per row group (256), rows per group (4);
   * for the word-sliced formats (Q4_0, Q8_0) also quant words per thread and block (`wpp`, default 1; 0 turns the
   * path off), the threads a dispatch aims for (`threads`, default 131072: row groups widen until it has them) and
   * the parts each loop iteration reads (`unroll`, default 2: their loads in flight together).
   * `int8` (default false): Q4_0/Q8_0 matvecs on the word-sliced path quantize their activations to q8 blocks
   * first (one small kernel per matvec input, which also takes a fused rms_norm) and dot the quants as integers
   * (dot4I8Packed), as llama.cpp's mmvq; ignored where WGSL lacks packed_4x8_integer_dot_product.
   * `split` (default false): every Q4_0/Q8_0 matrix uploaded is stored in a split layout instead of the GGUF one (a
   * 16-byte header, each block's quant bytes back to back, 16-byte aligned, then the f16 scales: the GGUF bytes
   * themselves, only placed apart; same size plus 32 bytes), which the word-sliced matvec reads with whole `vec4<u32>`
   * loads at `wpp` 4 or 8; get_rows, the prompt path and attention read it too, `download` returns the GGUF bytes.
   * Set at upload: tensors uploaded with it cannot be copy destinations (KV caches come from `alloc`).
   * `x4` (default false): with `int8` and `wpp` a multiple of 4, the matvec reads the q8 activations as `vec4<u32>`
   * (where K is a multiple of 128).
   * With `int8` and `split` both left unset (and packed integer dots available), the backend chooses per matrix:
   * Q4_0/Q8_0 matrices of 8 MiB or more are stored split and their matvecs run on q8 activations with
   * `{ wpp: 4, rows: 4, x4: true }` (the fastest grid measured on an H200; big models decode faster that way),
   * smaller ones keep the GGUF layout and f32 activations (for them the extra quantize dispatch costs more than it
   * saves). Set `int8: false` to keep every matvec on f32 activations.
   */
  matvec?: {
    wg?: number;
    maxTpr?: number;
    rows?: number;
    wpp?: number;
    threads?: number;
    unroll?: number;
    int8?: boolean;
    split?: boolean;
    x4?: boolean;
  };
  /** Measure GPU time per step with timestamp queries when the adapter has them (see `lastStep`). Default false. */
  timestamps?: boolean;
  /** Run the plan's fusions as single kernels. Default true. */
  fuse?: boolean;
  /** Largest buffer binding to use (default: the device's `maxStorageBufferBindingSize`); larger weights are split. */
  maxBindingBytes?: number;
  /**
   * Attention: keys per chunk (threads per workgroup; default 128, 32 on software adapters) and the workgroups a
   * decode step's attention aims for by splitting the positions (default 256).
   */
  attention?: { chunk?: number; workgroups?: number };
}

/** What the last run did: dispatches in its pass and, with `timestamps`, the pass's GPU time. */
export interface StepStats {
  readonly dispatches: number;
  /** GPU time of the compute pass in milliseconds, or undefined without timestamps. */
  readonly gpuMs: number | undefined;
  /** Host time from the start of the run to the return of `submit` (checks, step buffer, encoding), in ms. */
  readonly hostMs: number;
  /** Host time from `submit` until the outputs were read (GPU work, readback, event latency), in ms. */
  readonly waitMs: number;
}

/**
 * Options of {@link WebGpuBackend.greedy}.
 *
 * @example
 * ```ts
 * const opts: GreedyOptions = { steps: 128, depth: 3 };
 * ```
 */
export interface GreedyOptions {
  /** Steps (ids) to generate at most. */
  readonly steps: number;
  /** The i32 input `[1]` that takes each step's id (default `'tokens'`). */
  readonly feed?: string;
  /** The param that grows by one per step (default `'pos'`). */
  readonly advance?: string;
  /** Steps submitted before the oldest id is read back (default 3). */
  readonly depth?: number;
}

/** GPU time of one kernel of a profiled step ({@link WebGpuBackend.profileStep}). */
export interface KernelTime {
  /** Kernel, e.g. `'matvec q4_0+q4_0+q4_0 norm'`. */
  readonly label: string;
  /** GPU time of the kernel alone in a pass (timestamps). */
  readonly ms: number;
  /** With `reps`: host time per dispatch of `reps` back-to-back dispatches in one pass and submit. */
  readonly wallMs?: number;
  /** With `reps`: GPU time per dispatch of that pass (timestamps), when the adapter has them. */
  readonly repMs?: number;
}

/** A tensor on the GPU: whole rows per buffer, each buffer within the largest binding. */
export class GpuTensor implements BackendTensor {
  readonly backend = 'webgpu';
  readonly rows: number;
  readonly cols: number;
  readonly rowBytes: number;
  constructor(
    readonly name: string,
    readonly dtype: DTypeName,
    readonly shape: Shape,
    /** Row ranges and their buffers (one chunk unless the tensor exceeds a binding). */
    readonly chunks: readonly { readonly buffer: GPUBuffer; readonly row0: number; readonly rows: number }[],
    /** Blocks stored in the split layout (matvec option `split`: uploaded Q4_0/Q8_0 matrices). */
    readonly split = false,
  ) {
    this.cols = shape.length === 0 ? 1 : shape[shape.length - 1];
    this.rows = shape.length <= 1 ? 1 : shape.slice(0, -1).reduce((a, b) => a * b, 1);
    this.rowBytes = rowBytes(dtype, this.cols);
  }
}

const matmulTypes: DTypeName[] = Object.keys(gpuFormats).filter((k) => k !== 'q8_1' && k !== 'q8_K') as DTypeName[];
const cacheTypes: DTypeName[] = ['f32', 'f16', 'bf16', 'q8_0'];

/**
 * The WebGPU backend's capabilities: matmul/get_rows for every format with a WGSL decoder, KV caches in f32, f16,
 * bf16 and q8_0, f32 values.
 *
 * @example
 * ```ts
 * webgpuCapabilities(1 << 30).ops.matmul.includes('q4_K'); // true
 * ```
 */
export function webgpuCapabilities(maxBinding: number, maxBuffer: number = maxBinding): BackendCapabilities {
  const f32: readonly DTypeName[] = Object.freeze(['f32']);
  const ops: Record<OpName, readonly DTypeName[]> = {
    matmul: Object.freeze([...matmulTypes]),
    get_rows: Object.freeze([...matmulTypes]),
    rms_norm: f32,
    layer_norm: f32,
    rope: f32,
    attention: Object.freeze([...cacheTypes]),
    softmax: f32,
    silu: f32,
    gelu: f32,
    glu: f32,
    softcap: f32,
    reshape: f32,
    add: f32,
    mul: f32,
    scale: f32,
    copy: Object.freeze([...cacheTypes]),
  };
  return Object.freeze({
    ops: Object.freeze(ops),
    matmulActivations: Object.freeze(['f32'] as const),
    valueDTypes: Object.freeze(['f32'] as const),
    limits: Object.freeze({ maxBufferBytes: maxBuffer, maxBindingBytes: maxBinding }),
  });
}

/** A buffer range bound to one binding. */
interface Range {
  readonly buffer: GPUBuffer;
  readonly offset: number;
  readonly size: number;
}

/** One dispatch of a prepared graph; `grid` gives its workgroup counts for this run (0: skipped). */
interface Dispatch {
  /** Made on first use (so a graph compiles only the kernels its runs need). */
  pipeline: GPUComputePipeline | undefined;
  bindGroup: GPUBindGroup | undefined;
  readonly build: () => Promise<void>;
  /** Fills `out[0..1]` (and `out[2]`, preset to 1) with the grid for these params. */
  readonly grid: (p: Readonly<Record<string, number>>, out: Uint32Array) => void;
  /** Runs only when the matmul it belongs to has at most / more than matvecMaxTokens rows. */
  readonly when: 'always' | 'small' | 'large';
  /** The rows (tokens) that decide `when`. */
  readonly tokens?: TensorRef;
  /** Kernel name and node, for profiles. */
  readonly label: string;
}

/** A cos/sin table the host fills per step for one rope configuration and positions. */
interface RopeTable {
  readonly key: string;
  readonly node: RopeNode;
  readonly theta: Float64Array;
  readonly mscale: number;
  readonly offset: number;
  readonly bytes: number;
  readonly pairs: number;
}

interface Prepared {
  readonly plan: GraphPlan;
  readonly values: GPUBuffer[];
  readonly step: GPUBuffer;
  /** Host image of the step buffer (params, inputs, tables), written with one writeBuffer per run. */
  readonly stage: ArrayBuffer;
  readonly stageU32: Uint32Array;
  readonly stageF32: Float32Array;
  readonly stageI32: Int32Array;
  readonly inputOffsets: Map<number, number>;
  /** u32 slots at the start of the step buffer: the graph's params, then values the host computes per step. */
  readonly slots: number;
  /** Fill the host-computed slots from this step's params (before the step buffer is written). */
  readonly prestep: ((p: Readonly<Record<string, number>>, u32: Uint32Array) => void)[];
  readonly tables: RopeTable[];
  readonly args: GPUBuffer;
  readonly dispatches: Dispatch[];
  readonly outputs: { name: string; tensor: TensorRef; range: Range; readback: GPUBuffer; host: Float32Array }[];
  readonly grid: Uint32Array;
  readonly argmax: { dispatch: Dispatch; result: GPUBuffer; readback: GPUBuffer } | undefined;
  /** Readback buffers of the steps in flight of {@link WebGpuBackend.greedy} (made on first use). */
  ring?: GPUBuffer[];
  readonly timer: { query: GPUQuerySet; resolve: GPUBuffer; readback: GPUBuffer } | undefined;
  /** Made by the first profiled run: two timestamps per dispatch. */
  profiler?: { query: GPUQuerySet; resolve: GPUBuffer; readback: GPUBuffer; count: number };
  /** Checks done on the host before a run: ids in range, positions inside caches. */
  readonly checks: ((run: BoundRun) => void)[];
}

const maxGroups = 65535;
/** The decoders of a tensor's stored layout. */
const formatOf = (t: GpuTensor): GpuFormat => (t.split ? splitFormats : gpuFormats)[t.dtype] as GpuFormat;
/** Bytes after every tensor's rows in its buffer (and its bindings). */
const tensorPad = 16;

/**
 * With `matvec.int8` and `matvec.split` unset, Q4_0/Q8_0 matrices of at least this many bytes are stored split and
 * their matvecs run on q8 activations with the grid {@link AUTO_INT8_GRID}. Measured on an H200: a 7B-shaped Q4_0
 * decode step took 2.99 ms of GPU time that way against 4.06 ms on f32 activations (314 vs 195-243 tok/s), while
 * the TinyLlama shape (few matrices over 8 MiB) lost: each int8 input costs a quantize dispatch, and its small
 * matvecs gain less than that costs (342 vs 810 tok/s with every matvec on int8).
 */
const AUTO_INT8_BYTES = 8 * 2 ** 20;
/** The matvec grid of the automatic int8 units: the best of the H200 sweep at 11008x4096 for Q4_0 and Q8_0. */
const AUTO_INT8_GRID = { wpp: 4, rows: 4, x4: true } as const;
let nextId = 0;

/**
 * The WebGPU backend. Create it with {@link WebGpuBackend.create} (or `createBackend('webgpu')` after importing this
 * package, or `@nibble/backend-webgpu/node` in Node).
 *
 * @example
 * ```ts
 * import { WebGpuBackend } from '@nibble/backend-webgpu';
 * const backend = await WebGpuBackend.create({ gpu: navigator.gpu });
 * console.log(backend.info.adapter, backend.lastStep.dispatches);
 * ```
 */
export class WebGpuBackend extends KernelBackend<Prepared> {
  readonly name = 'webgpu';
  readonly capabilities: BackendCapabilities;
  /** Adapter, features and limits of the device in use. */
  readonly info: GpuInfo;
  readonly device: GPUDevice;
  protected override readonly alignment: number;
  readonly #env: KernelEnv;
  readonly #options: WebGpuBackendOptions;
  /** `matvec.int8` and `matvec.split` left unset: big Q4_0/Q8_0 matrices get both (see {@link AUTO_INT8_BYTES}). */
  readonly #autoInt8: boolean;
  readonly #pipelines = new Map<string, Promise<GPUComputePipeline>>();
  readonly #buffers = new Set<GPUBuffer>();
  readonly #graphBuffers = new Map<GPUBuffer, true>();
  readonly #binding: number;
  #lost: GpuDeviceLostError | undefined;
  #stats: StepStats = { dispatches: 0, gpuMs: undefined, hostMs: 0, waitMs: 0 };
  #lastArgmax = -1;
  #lastProfile: KernelTime[] = [];
  readonly #id = nextId++;

  /**
   * Opens a device (the adapter's highest limits) and makes a backend on it.
   *
   * @example
   * ```ts
   * const backend = await WebGpuBackend.create({ gpu: navigator.gpu });
   * ```
   */
  static async create(options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
    if (options.matmulActivations !== undefined && options.matmulActivations !== 'f32') {
      throw new BackendError(
        `webgpu backend: matmulActivations '${String(options.matmulActivations)}' is not supported`,
      );
    }
    const { device, info } = await openDevice(options);
    return new WebGpuBackend(device, info, options);
  }

  private constructor(device: GPUDevice, info: GpuInfo, options: WebGpuBackendOptions) {
    super();
    this.device = device;
    this.info = info;
    this.#options = options;
    this.#autoInt8 = info.packedDot && options.matvec?.int8 === undefined && options.matvec?.split === undefined;
    this.timestamps = options.timestamps === true;
    this.alignment = Math.max(256, device.limits.minStorageBufferOffsetAlignment);
    const binding = Math.min(options.maxBindingBytes ?? Number.POSITIVE_INFINITY, info.maxStorageBufferBindingSize);
    this.#binding = binding;
    this.capabilities = webgpuCapabilities(binding, info.maxBufferSize);
    this.#env = {
      subgroups: info.subgroups,
      subgroupMin: info.subgroupMin,
      software: info.subgroups && info.subgroupMax <= 4,
    };
    device.lost.then((l) => {
      this.#lost = new GpuDeviceLostError(l.reason, l.message);
    });
  }

  /**
   * Whether runs measure their GPU time (`lastStep.gpuMs`): starts as the `timestamps` option; graphs first run
   * with it off never measure. Turn it off to time steps without the timestamp readback.
   */
  timestamps: boolean;

  /** Dispatches and GPU time of the last run. */
  get lastStep(): StepStats {
    return this.#stats;
  }

  #check(): void {
    this.alive();
    if (this.#lost) throw this.#lost;
  }

  /** Creates a buffer, turning out-of-memory and validation failures into typed errors. */
  async #buffer(what: string, size: number, usage: number): Promise<GPUBuffer> {
    this.#check();
    const d = this.device;
    d.pushErrorScope('out-of-memory');
    d.pushErrorScope('validation');
    const buffer = d.createBuffer({ size: Math.max(4, Math.ceil(size / 4) * 4), usage });
    const invalid = await d.popErrorScope();
    const oom = await d.popErrorScope();
    if (oom !== null) {
      buffer.destroy();
      throw new GpuOutOfMemoryError(what, size);
    }
    if (invalid !== null) {
      buffer.destroy();
      throw new BackendError(`webgpu backend: cannot create a buffer of ${size} bytes for ${what}: ${invalid.message}`);
    }
    this.#buffers.add(buffer);
    return buffer;
  }

  async upload(tensor: HostTensor, options: TensorOptions = {}): Promise<BackendTensor> {
    this.#check();
    const name = options.name ?? `tensor_${this.#id}`;
    const t = hostTensor(tensor.dtype, tensor.shape, tensor.data);
    if (gpuFormats[t.dtype] === undefined)
      throw new DTypeError(`webgpu backend: cannot upload ${name}: no decoder for ${t.dtype}`);
    return this.adopt(await this.#place(name, t.dtype, t.shape, t.data));
  }

  async alloc(dtype: DTypeName, shape: Shape, options: TensorOptions = {}): Promise<BackendTensor> {
    this.#check();
    const name = options.name ?? `state_${this.#id}`;
    if (!cacheTypes.includes(dtype) && gpuFormats[dtype] === undefined) {
      throw new DTypeError(`webgpu backend: cannot allocate ${name}: no kernels for ${dtype}`);
    }
    const bytes = byteLength(dtype, shape);
    if (bytes > this.#binding) {
      throw new BackendError(
        `webgpu backend: state ${name} needs ${bytes} bytes, above the largest binding (${this.#binding}); use a smaller context`,
      );
    }
    return this.adopt(await this.#place(name, dtype, shape, undefined));
  }

  /** Splits a tensor into row chunks that each fit a binding (an even number of rows, for the paired epilogues). */
  async #place(name: string, dtype: DTypeName, shape: Shape, data: Uint8Array | undefined): Promise<GpuTensor> {
    const cols = shape.length === 0 ? 1 : shape[shape.length - 1];
    const rows = shape.length <= 1 ? 1 : shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const rb = rowBytes(dtype, cols);
    // 16 bytes of padding after every tensor: kernels that read whole words may touch one past a row's end.
    const f = gpuFormats[dtype];
    const splitOn =
      (this.#options.matvec?.split === true || (this.#autoInt8 && rows * rb >= AUTO_INT8_BYTES)) &&
      data !== undefined &&
      f?.sliced !== undefined &&
      shape.length >= 2 &&
      cols % 32 === 0;
    // The split layout adds a 16-byte header and rounds up to 16.
    const limit = Math.min(this.#binding, this.info.maxBufferSize) - 4 - tensorPad - (splitOn ? 32 : 0);
    let per = Math.max(1, Math.floor(limit / Math.max(1, rb)));
    if (per < rows && per > 1) per -= per % 2;
    if (rb > limit)
      throw new BackendError(`webgpu backend: one row of ${name} (${rb} bytes) exceeds the largest binding`);
    const chunks: { buffer: GPUBuffer; row0: number; rows: number }[] = [];
    try {
      for (let r0 = 0; r0 < Math.max(rows, 1); r0 += per) {
        const n = Math.min(per, rows - r0);
        const size = n * rb;
        const nblk = (n * cols) / 32;
        const bytes = splitOn ? splitBytes(f.blockBytes, nblk) : size;
        const buffer = await this.#buffer(name, bytes + tensorPad, Usage.STORAGE | Usage.COPY_DST | Usage.COPY_SRC);
        chunks.push({ buffer, row0: r0, rows: n });
        if (splitOn) {
          this.device.queue.writeBuffer(
            buffer,
            0,
            splitBlocks(data.subarray(r0 * rb, r0 * rb + size), f.blockBytes, nblk),
          );
        } else if (data !== undefined && size > 0) {
          const src = data.subarray(r0 * rb, r0 * rb + size);
          const whole = size - (size % 4);
          if (whole > 0) this.device.queue.writeBuffer(buffer, 0, src.buffer, src.byteOffset, whole);
          if (whole < size) {
            const tail = new Uint8Array(4);
            tail.set(src.subarray(whole));
            this.device.queue.writeBuffer(buffer, whole, tail);
          }
        }
        if (rows === 0) break;
      }
    } catch (e) {
      for (const c of chunks) this.#destroy(c.buffer);
      throw e;
    }
    return new GpuTensor(name, dtype, Object.freeze([...shape]), Object.freeze(chunks), splitOn);
  }

  async download(tensor: BackendTensor): Promise<HostTensor> {
    const t = this.own<GpuTensor>(tensor, 'download');
    this.#check();
    const out = new Uint8Array(t.rows * t.rowBytes);
    for (const c of t.chunks) {
      const size = c.rows * t.rowBytes;
      if (size === 0) continue;
      const nblk = (c.rows * t.cols) / 32;
      const stored = t.split ? splitBytes(t.rowBytes / (t.cols / 32), nblk) : size;
      const padded = Math.ceil(stored / 4) * 4;
      const rb = await this.#buffer(`${t.name} readback`, padded, Usage.MAP_READ | Usage.COPY_DST);
      const enc = this.device.createCommandEncoder();
      enc.copyBufferToBuffer(c.buffer, 0, rb, 0, padded);
      this.device.queue.submit([enc.finish()]);
      await this.#map(rb);
      const got = new Uint8Array(rb.getMappedRange(), 0, stored);
      out.set(t.split ? joinBlocks(got, t.rowBytes / (t.cols / 32), nblk) : got, c.row0 * t.rowBytes);
      rb.unmap();
      this.#destroy(rb);
    }
    return hostTensor(t.dtype, t.shape, out);
  }

  async #map(b: GPUBuffer): Promise<void> {
    try {
      await b.mapAsync(1);
    } catch (e) {
      if (this.#lost) throw this.#lost;
      throw new BackendError(`webgpu backend: reading back failed: ${(e as Error).message}`, [], { cause: e });
    }
  }

  #destroy(b: GPUBuffer): void {
    this.#buffers.delete(b);
    b.destroy();
  }

  protected releaseTensor(tensor: BackendTensor): void {
    for (const c of (tensor as GpuTensor).chunks) this.#destroy(c.buffer);
  }

  protected releaseAll(): void {
    for (const b of this.#buffers) b.destroy();
    this.#buffers.clear();
    this.device.destroy();
  }

  // ---- pipelines ---------------------------------------------------------------------------------------------------

  #pipeline(code: string, label: string): Promise<GPUComputePipeline> {
    let p = this.#pipelines.get(code);
    if (p === undefined) {
      const module = this.device.createShaderModule({ code, label });
      p = (async () => {
        const info = await module.getCompilationInfo();
        const errors = info.messages.filter((m) => m.type === 'error');
        if (errors.length > 0) {
          const lines = code.split('\n');
          const detail = errors
            .map((m) => `${m.lineNum}:${m.linePos} ${m.message} | ${lines[m.lineNum - 1]?.trim() ?? ''}`)
            .join('; ');
          throw new BackendError(`webgpu backend: WGSL of ${label} does not compile: ${detail}`);
        }
        this.device.pushErrorScope('validation');
        const pipe = await this.device.createComputePipelineAsync({
          layout: 'auto',
          compute: { module, entryPoint: 'main' },
          label,
        });
        const err = await this.device.popErrorScope();
        if (err) throw new BackendError(`webgpu backend: pipeline ${label}: ${err.message}`);
        return pipe;
      })();
      this.#pipelines.set(code, p);
      p.catch(() => this.#pipelines.delete(code));
    }
    return p;
  }

  // ---- prepare -----------------------------------------------------------------------------------------------------

  /** @hidden Makes a graph's buffers, bind groups and pipelines (the kit calls it once per graph). */
  protected async prepare(plan: GraphPlan): Promise<Prepared> {
    this.#check();
    const graph = plan.graph;
    const align = this.alignment;
    const up = (n: number) => Math.ceil(n / align) * align;
    const owned: GPUBuffer[] = [];
    const make = async (what: string, size: number, usage: number) => {
      const b = await this.#buffer(what, size, usage);
      owned.push(b);
      return b;
    };
    try {
      // Values: the planner's buffers.
      const values: GPUBuffer[] = [];
      for (let i = 0; i < plan.buffers.length; i++) {
        values.push(await make(`values ${i}`, plan.buffers[i].bytes, Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST));
      }

      // The step buffer: params and one slot per split attention (its split count this step), then inputs at their
      // maxima, then rope tables. A spare range after the params stands in for positions that come from a param (no
      // binding may overlap P).
      const mvMax = this.#options.matvecMaxTokens ?? 4;
      const splitNodes = plan.nodes.filter((n) => n.op === 'attention' && splitAttention(n.headDim));
      const slots = graph.params.length + splitNodes.length;
      const spareAt = up(4 * Math.max(1, slots));
      let at = spareAt + align;
      const inputOffsets = new Map<number, number>();
      for (const t of graph.inputs) {
        inputOffsets.set(t.id, at);
        at += up(
          4 *
            Math.max(
              1,
              t.shape.reduce<number>((p, d) => p * dimMax(d), 1),
            ),
        );
      }
      const tables: RopeTable[] = [];
      const tableOf = new Map<RopeNode, RopeTable>();
      for (const node of plan.nodes) {
        if (node.op !== 'rope') continue;
        const factors = node.freqFactors ? await this.#readF32(node.freqFactors) : undefined;
        const { theta, mscale } = ropeTables(node, factors);
        const key = `${Array.from(theta).join(',')}|${mscale}|${posKey(node.positions)}`;
        let table = tables.find((t) => t.key === key);
        if (table === undefined) {
          const rowsMaxN = rowsMaxOf(node.x);
          const bytes = up(8 * Math.max(1, rowsMaxN * (node.nRot / 2)));
          table = { key, node, theta, mscale, offset: at, bytes, pairs: node.nRot / 2 };
          at += bytes;
          tables.push(table);
        }
        tableOf.set(node, table);
      }
      const stepBytes = at;
      const step = await make('step', stepBytes, Usage.STORAGE | Usage.COPY_DST);
      const stage = new ArrayBuffer(stepBytes);
      const paramIndex = new Map(graph.params.map((p, i) => [p.name, i]));

      // Ranges of tensors.
      const overrides = new Map<number, Range>();
      const rangeOf = (t: TensorRef, chunk = 0): Range => {
        const o = overrides.get(t.id);
        if (o !== undefined) return o;
        if (t.kind === 'value') {
          const v = plan.values[t.id]!;
          return { buffer: values[v.buffer], offset: v.offset, size: v.bytes };
        }
        if (t.kind === 'input') {
          const off = inputOffsets.get(t.id)!;
          return {
            buffer: step,
            offset: off,
            size: up(
              4 *
                Math.max(
                  1,
                  t.shape.reduce<number>((p, d) => p * dimMax(d), 1),
                ),
            ),
          };
        }
        const g = t.handle as GpuTensor;
        const c = g.chunks[chunk];
        return {
          buffer: c.buffer,
          offset: 0,
          size: g.split ? c.buffer.size : Math.ceil((c.rows * g.rowBytes) / 4) * 4 + tensorPad,
        };
      };
      const paramsRange: Range = { buffer: step, offset: 0, size: up(4 * Math.max(1, slots)) };
      const stageU32 = new Uint32Array(stage);
      const prestep: Prepared['prestep'] = [];
      const tableRange = (t: RopeTable): Range => ({ buffer: step, offset: t.offset, size: t.bytes });
      const spare: Range = { buffer: step, offset: spareAt, size: align };
      const posRange = (p: Positions): Range => (isTensor(p) ? rangeOf(p) : spare);
      const posArgs = (p: Positions): [number, number] => (isTensor(p) ? [0, 1] : [paramIndex.get(p.name)!, 0]);
      // rows of a tensor as (fixed, param index + 1, param index + 1).
      const rowsArgs = (t: TensorRef, withCols = false): [number, number, number] => {
        const dims = withCols ? t.shape : t.shape.slice(0, -1);
        let fixed = 1;
        const ps: number[] = [];
        for (const d of dims) {
          if (typeof d === 'number') fixed *= d;
          else ps.push(paramIndex.get(d.name)! + 1);
        }
        if (ps.length > 2) throw new GraphError(t.name, 'webgpu backend: at most two param dimensions per tensor');
        return [fixed, ps[0] ?? 0, ps[1] ?? 0];
      };

      // Static per-dispatch arguments: 256-byte slots of one uniform buffer.
      const argSlots: Uint32Array[] = [];
      const newArgs = () => {
        const a = new Uint32Array(64);
        argSlots.push(a);
        return { a, offset: (argSlots.length - 1) * 256 };
      };
      let argsBuffer: GPUBuffer | undefined;
      const dispatches: Dispatch[] = [];
      const f32bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0];
      const env = this.#env;
      const fuse = this.#options.fuse ?? true;

      const addDispatch = (
        node: string,
        label: string,
        code: string,
        bind: (Range | undefined)[],
        argv: number[],
        grid: Dispatch['grid'],
        when: Dispatch['when'] = 'always',
        tokens?: TensorRef,
      ) => {
        const { a, offset } = newArgs();
        a.set(argv.map((v) => v >>> 0));
        const d: Dispatch = {
          pipeline: undefined,
          bindGroup: undefined,
          label,
          grid,
          when,
          tokens,
          build: async () => {
            const pipeline = await this.#pipeline(code, label);
            const entries: GPUBindGroupEntry[] = [
              { binding: 0, resource: { buffer: argsBuffer!, offset, size: 256 } },
              { binding: 1, resource: { buffer: paramsRange.buffer, offset: 0, size: paramsRange.size } },
            ];
            bind.forEach((r, i) => {
              if (r !== undefined) {
                entries.push({ binding: i + 2, resource: { buffer: r.buffer, offset: r.offset, size: r.size } });
              }
            });
            this.device.pushErrorScope('validation');
            const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label });
            const err = await this.device.popErrorScope();
            if (err) throw new BackendError(`webgpu backend: bind group of ${node} (${label}): ${err.message}`);
            d.pipeline = pipeline;
            d.bindGroup = bindGroup;
          },
        };
        dispatches.push(d);
      };
      const flat = (count: (p: Readonly<Record<string, number>>) => number, per: number): Dispatch['grid'] => {
        return (p, out) => {
          const n = Math.ceil(count(p) / per);
          out[0] = Math.min(n, maxGroups);
          out[1] = n === 0 ? 0 : Math.ceil(n / maxGroups);
        };
      };
      const rowsFn = (t: TensorRef) => (p: Readonly<Record<string, number>>) => rowsOf(t, p);
      const numelFn = (t: TensorRef) => (p: Readonly<Record<string, number>>) => numelAt(t, p);
      const checks: ((run: BoundRun) => void)[] = [];

      // A fused matmul+rope reads x while it writes the rope's result, which the planner may have placed over x (x
      // dies at the matmul): such results move to buffers of their own, shared by results whose lifetimes do not meet.
      const spares: { buffer: GPUBuffer; bytes: number; free: number }[] = [];
      const separate = async (out: TensorRef, x: TensorRef) => {
        const vo = plan.values[out.id];
        const vx = x.kind === 'value' ? plan.values[x.id] : undefined;
        if (vo === undefined || vx === undefined || vo.buffer !== vx.buffer) return;
        if (vo.offset >= vx.offset + vx.bytes || vx.offset >= vo.offset + vo.bytes) return;
        if (plan.values.some((v) => v !== undefined && v.root === out.id && v.tensor.id !== out.id)) return;
        let s = spares.find((b) => b.free < vo.firstNode && b.bytes >= vo.bytes);
        if (s === undefined) {
          s = {
            buffer: await make(`fused ${out.name}`, vo.bytes, Usage.STORAGE | Usage.COPY_SRC),
            bytes: vo.bytes,
            free: -1,
          };
          spares.push(s);
        }
        s.free = vo.lastNode;
        overrides.set(out.id, { buffer: s.buffer, offset: 0, size: vo.bytes });
      };
      // Fusions, as "units" of matrix-vector work placed at their first node:
      // - matmul+rope(+copy) and matmul+copy from the plan: rope and the KV write in the epilogue;
      // - gate, up, glu: both matmuls in one kernel writing act(gate)·up;
      // - consecutive units over the same activations (q, k, v) with nothing else between them: one dispatch;
      // - an rms_norm read only by such units: computed in their prologue.
      // Above matvecMaxTokens tokens every member runs as its own kernel again (tiled matmul, rope, copy, glu, norm).
      interface Member {
        readonly mm: MatmulNode;
        readonly rope?: RopeNode;
        readonly copy?: GraphNode & { op: 'copy' };
      }
      interface Unit {
        readonly members: Member[];
        glu?: GraphNode & { op: 'glu' };
        norm?: GraphNode & { op: 'rms_norm' };
        /** Node indices the unit covers (all but the first are skipped by the walk). */
        readonly nodes: number[];
      }
      const units = new Map<number, Unit>();
      const fusedInto = new Set<number>();
      const outputIds = new Set(graph.outputs.map((o) => o.tensor.id));
      const singleUse = (t: TensorRef) => !outputIds.has(t.id) && plan.consumers[t.id].length === 1;
      const plain = (m: MatmulNode) => {
        const w = m.weight.handle as GpuTensor;
        return w.chunks.length === 1 && w.rows % 2 === 0;
      };
      if (fuse) {
        const kinds = new Map(plan.fusions.map((f) => [f.first, f.kind]));
        const nodes = plan.nodes;
        // Single units.
        const single: (Unit | undefined)[] = new Array(nodes.length);
        for (let i = 0; i < nodes.length; i++) {
          const node = nodes[i];
          if (node.op !== 'matmul' || fusedInto.has(i)) continue;
          const w = node.weight.handle as GpuTensor;
          if (w.rows % 2 !== 0) continue;
          const k = kinds.get(i);
          const unit: Unit = { members: [{ mm: node }], nodes: [i] };
          if (k === 'matmul+rope' && node.residual === undefined) {
            const rope = nodes[i + 1] as RopeNode;
            if (rope.mode === 'normal' && rope.headDim % 2 === 0) {
              let copy: (GraphNode & { op: 'copy' }) | undefined;
              const next = nodes[i + 2];
              if (kinds.get(i + 1) === 'rope+copy' && next?.op === 'copy' && isFusableCache(next.dst.dtype))
                copy = next;
              unit.members[0] = { mm: node, rope, copy };
              unit.nodes.push(i + 1);
              if (copy) unit.nodes.push(i + 2);
            }
          } else if (k === 'matmul+copy' && node.residual === undefined) {
            const next = nodes[i + 1];
            if (next.op === 'copy' && isFusableCache(next.dst.dtype)) {
              unit.members[0] = { mm: node, copy: next };
              unit.nodes.push(i + 1);
            }
          } else if (
            node.bias === undefined &&
            node.residual === undefined &&
            plain(node) &&
            nodes[i + 1]?.op === 'matmul' &&
            nodes[i + 2]?.op === 'glu'
          ) {
            const up = nodes[i + 1] as MatmulNode;
            const glu = nodes[i + 2] as GraphNode & { op: 'glu' };
            const uw = up.weight.handle as GpuTensor;
            if (
              glu.gate === node.out &&
              glu.up === up.out &&
              up.x === node.x &&
              up.bias === undefined &&
              up.residual === undefined &&
              plain(up) &&
              uw.dtype === w.dtype &&
              uw.rows === w.rows &&
              singleUse(node.out) &&
              singleUse(up.out)
            ) {
              unit.members.push({ mm: up });
              unit.glu = glu;
              unit.nodes.push(i + 1, i + 2);
            }
          }
          for (const j of unit.nodes.slice(1)) fusedInto.add(j);
          single[i] = unit;
        }
        // Merge consecutive units over the same activations (at most 3 weights, epilogues without bias/residual).
        const mergeable = (u: Unit) =>
          u.glu === undefined &&
          u.members.length === 1 &&
          u.members[0].mm.bias === undefined &&
          u.members[0].mm.residual === undefined &&
          plain(u.members[0].mm);
        const maxStorage = this.device.limits.maxStorageBuffersPerShaderStage;
        // What a matmul's single reader can add to its unit: a normal rope (then that rope's single reader, a copy
        // into an f32/f16 cache), or a copy. Such readers may come later in the graph (q, k, v, then their ropes).
        const readerOf = (t: TensorRef): number | undefined => {
          if (!singleUse(t) || plan.values.some((v) => v !== undefined && v.root === t.id && v.tensor.id !== t.id)) {
            return undefined;
          }
          return plan.consumers[t.id][0];
        };
        const absorb = (i: number): { member: Member; nodes: number[] } => {
          const mm = nodes[i] as MatmulNode;
          const member: { mm: MatmulNode; rope?: RopeNode; copy?: GraphNode & { op: 'copy' } } = { mm };
          const at: number[] = [i];
          if (mm.residual !== undefined) return { member, nodes: at };
          const r = readerOf(mm.out);
          const rn = r === undefined ? undefined : nodes[r];
          if (rn?.op === 'rope' && rn.x === mm.out && rn.mode === 'normal' && rn.headDim % 2 === 0) {
            member.rope = rn;
            at.push(r!);
            const c = readerOf(rn.out);
            const cn = c === undefined ? undefined : nodes[c];
            if (cn?.op === 'copy' && cn.src === rn.out && isFusableCache(cn.dst.dtype)) {
              member.copy = cn;
              at.push(c!);
            }
          } else if (rn?.op === 'copy' && rn.src === mm.out && isFusableCache(rn.dst.dtype)) {
            member.copy = rn;
            at.push(r!);
          }
          return { member, nodes: at };
        };
        for (let i = 0; i < nodes.length; i++) {
          const u = single[i];
          if (u === undefined) continue;
          units.set(i, u);
          if (!mergeable(u) || maxStorage < 11) continue;
          // A run of matmuls over the same x (q, k, v) and the ropes/copies that read only them: one unit when
          // together they cover a contiguous stretch of nodes (so no other kernel runs between their early writes).
          const x = u.members[0].mm.x;
          const run = [i];
          while (run.length < 3 && single[run[run.length - 1] + 1] !== undefined) {
            const j = run[run.length - 1] + 1;
            const v = single[j]!;
            if (!mergeable(v) || v.members[0].mm.x !== x || v.nodes.length !== 1) break;
            if (
              (v.members[0].mm.weight.handle as GpuTensor).cols !== (u.members[0].mm.weight.handle as GpuTensor).cols
            ) {
              break;
            }
            run.push(j);
          }
          if (u.nodes.length !== 1 || run.length < 2) {
            // Units that follow one another (k + rope + copy, then q + rope): merged as they stand.
            let end = u.nodes[u.nodes.length - 1];
            while (u.members.length < 3 && single[end + 1] !== undefined && mergeable(single[end + 1]!)) {
              const v = single[end + 1]!;
              const m = v.members[0];
              if (m.mm.x !== x) break;
              if ((m.mm.weight.handle as GpuTensor).cols !== (u.members[0].mm.weight.handle as GpuTensor).cols) break;
              const all = [...u.members, m];
              const cs = all.flatMap((q) => (q.copy ? [q.copy] : []));
              const rs = all.flatMap((q) => (q.rope ? [q.rope] : []));
              if (cs.some((c) => posKey(c.positions) !== posKey(cs[0].positions))) break;
              if (rs.some((r) => tableOf.get(r) !== tableOf.get(rs[0]))) break;
              u.members.push(m);
              u.nodes.push(...v.nodes);
              fusedInto.add(end + 1);
              units.delete(end + 1);
              single[end + 1] = undefined;
              end = v.nodes[v.nodes.length - 1];
            }
            continue;
          }
          const parts = run.map(absorb);
          const covered = parts.flatMap((q) => q.nodes).sort((p1, p2) => p1 - p2);
          const contiguous = covered.every((n, k) => n === covered[0] + k);
          const members = parts.map((q) => q.member);
          const copies = members.flatMap((m) => (m.copy ? [m.copy] : []));
          const ropes = members.flatMap((m) => (m.rope ? [m.rope] : []));
          if (!contiguous) continue;
          if (copies.some((c) => posKey(c.positions) !== posKey(copies[0].positions))) continue;
          if (ropes.some((r) => tableOf.get(r) !== tableOf.get(ropes[0]))) continue;
          const merged: Unit = { members, nodes: covered };
          units.set(i, merged);
          for (const n of covered.slice(1)) {
            fusedInto.add(n);
            single[n] = undefined;
            units.delete(n);
          }
        }
        // Norms read only by units: into their prologues.
        for (let i = 0; i < nodes.length; i++) {
          const n = nodes[i];
          if (n.op !== 'rms_norm' || n.weight === undefined || outputIds.has(n.out.id)) continue;
          if (plan.values.some((v) => v !== undefined && v.root === n.out.id && v.tensor.id !== n.out.id)) continue;
          const readers = plan.consumers[n.out.id];
          const us = [...units.values()].filter((u) => u.members[0].mm.x === n.out);
          const covered = us.reduce((c, u) => c + u.members.length, 0);
          if (us.length === 0 || covered !== readers.length) continue;
          if (us.some((u) => u.members.some((m) => m.mm.residual === n.out || m.mm.bias === n.out))) continue;
          const cols = dimMax(n.x.shape[n.x.shape.length - 1]);
          if (us.some((u) => (u.members[0].mm.weight.handle as GpuTensor).cols !== cols)) continue;
          // Every workgroup recomputes the norm: worth a dispatch only while the workgroups are few (q/k/v, gate/up;
          // not the logits, whose 32000 rows would redo it thousands of times).
          const rows = us.reduce(
            (r, u) => r + u.members.reduce((q, m) => q + (m.mm.weight.handle as GpuTensor).rows, 0),
            0,
          );
          if (rows > 6 * cols) continue;
          for (const u of us) u.norm = n;
        }
        // A fused kernel reads its activations while it writes its results: keep results off the activations.
        for (const u of units.values()) {
          const x = u.norm ? u.norm.x : u.members[0].mm.x;
          if (u.glu) await separate(u.glu.out, x);
          for (const m of u.members) {
            if (m.copy) continue;
            if (m.rope) await separate(m.rope.out, x);
            else if (!u.glu) await separate(m.mm.out, x);
          }
        }
      }
      const normSkipped = new Set<GraphNode>([...units.values()].flatMap((u) => (u.norm ? [u.norm] : [])));

      const mvCfg = this.#options.matvec ?? {};
      // Software adapters (SwiftShader: subgroups of 4 lanes) run small workgroups far faster than 256-wide ones.
      const software = this.info.subgroups && this.info.subgroupMax <= 4;
      const wgSize = Math.min(mvCfg.wg ?? (software ? 32 : 256), this.info.maxInvocations);
      const matvecShape = (
        units: number,
        fs: readonly GpuFormat[],
        totalRows: number,
        auto?: typeof AUTO_INT8_GRID,
      ): MatvecShape => {
        const rows = mvCfg.rows ?? auto?.rows ?? (wgSize <= 32 ? 2 : 4);
        const maxTpr = Math.min(mvCfg.maxTpr ?? 256, wgSize);
        const wpp = mvCfg.wpp ?? auto?.wpp ?? 1;
        if (wpp > 0 && fs.every((f) => f.sliced !== undefined && f.sliced.words % wpp === 0)) {
          // Word-sliced: a subgroup per row group, widened (splitting K) until the dispatch has enough threads to
          // keep the memory system busy, while every thread still has a part to read.
          const parts = Math.min(...fs.map((f) => (units * f.sliced!.words) / wpp));
          const target = mvCfg.threads ?? 131072;
          let tpr = Math.min(32, wgSize);
          while (tpr < maxTpr && tpr * 2 <= parts && Math.ceil(totalRows / rows) * tpr < target) tpr *= 2;
          return {
            wg: wgSize,
            tpr,
            rows,
            wpp,
            unroll: mvCfg.unroll ?? 2,
            split: mvCfg.split === true || auto !== undefined,
            x4: mvCfg.x4 ?? auto?.x4 === true,
          };
        }
        // Powers of two from 32 (a subgroup on most GPUs): few distinct kernels, so few compilations.
        let tpr = Math.min(32, wgSize);
        while (tpr < units && tpr < maxTpr) tpr *= 2;
        return { wg: wgSize, tpr, rows };
      };

      // int8 matvecs: one buffer of q8 activations, reused by every matvec input (dispatches run in order). Left
      // unset, int8 is chosen per unit: on where every weight of the unit was big enough to be stored split.
      const anySplit = plan.nodes.some((n) => n.op === 'matmul' && (n.weight.handle as GpuTensor).split);
      const int8On = (mvCfg.int8 === true || (this.#autoInt8 && anySplit)) && this.info.packedDot;
      const int8Kmax = int8On
        ? plan.nodes.reduce((k, n) => (n.op === 'matmul' ? Math.max(k, (n.weight.handle as GpuTensor).cols) : k), 0)
        : 0;
      // Whole 16 bytes (the x4 matvec binds it as vec4s).
      const q8Bytes = 16 * Math.ceil(Math.max(1, mvMax * 9 * Math.ceil(int8Kmax / 32)) / 4);
      const q8Range: Range | undefined = int8On
        ? { buffer: await make('q8 activations', q8Bytes, Usage.STORAGE), offset: 0, size: q8Bytes }
        : undefined;

      const tile = tileShape(env);
      /** The tiled matmul of one node (the prompt path), one dispatch per weight chunk. */
      const emitTiled = (node: MatmulNode, when: Dispatch['when']) => {
        const w = node.weight.handle as GpuTensor;
        const f = formatOf(w);
        const tl = tiledKernel(f, env, { bias: node.bias !== undefined, residual: node.residual !== undefined });
        const [r0, r1, r2] = rowsArgs(node.x);
        const tokens = node.x;
        w.chunks.forEach((c, ci) => {
          addDispatch(
            node.name,
            `tiled ${w.dtype}`,
            tl,
            [
              rangeOf(node.x),
              rangeOf(node.weight, ci),
              rangeOf(node.out),
              node.bias ? rangeOf(node.bias) : undefined,
              node.residual ? rangeOf(node.residual) : undefined,
            ],
            [w.cols, w.rows, w.rowBytes, c.row0, c.rows, r0, r1, r2],
            (p, out) => {
              const n = rowsOf(tokens, p);
              out[0] = n === 0 ? 0 : Math.ceil(c.rows / tile.rows);
              out[1] = Math.ceil(n / tile.tokens);
            },
            when,
            tokens,
          );
        });
      };

      /** One unit: the matvec dispatch (or one per chunk of a split weight), then its prompt-path kernels. */
      const emitUnit = (u: Unit) => {
        const ms = u.members;
        const first = ms[0].mm;
        const w0 = first.weight.handle as GpuTensor;
        const K = w0.cols;
        const f0 = formatOf(w0);
        const fs = ms.map((m) => formatOf(m.mm.weight.handle as GpuTensor));
        const totalRows = (u.glu ? [ms[0]] : ms).reduce((n, m) => n + (m.mm.weight.handle as GpuTensor).rows, 0);
        const autoUnit =
          this.#autoInt8 && ms.every((m) => (m.mm.weight.handle as GpuTensor).split) && fs.every((f) => f.sliced);
        const shape = autoUnit
          ? matvecShape(K / 32, fs, totalRows, AUTO_INT8_GRID)
          : matvecShape(f0.blockSize === 1 ? K : K / 32, fs, totalRows);
        const perWg = (shape.wg / shape.tpr) * shape.rows;
        const x = u.norm ? u.norm.x : first.x;
        const tokens = first.x;
        const segs = ms.map((m) => ({
          f: formatOf(m.mm.weight.handle as GpuTensor),
          epi: {
            bias: m.mm.bias !== undefined,
            residual: m.mm.residual !== undefined,
            rope: m.rope !== undefined,
            cache: m.copy ? (m.copy.dst.dtype as 'f32' | 'f16') : 'none',
          } satisfies MatvecEpilogue,
        }));
        const int8 =
          q8Range !== undefined &&
          (mvCfg.int8 === true || autoUnit) &&
          (shape.wpp ?? 0) > 0 &&
          K % 32 === 0 &&
          fs.every((f) => f.sliced?.int8 !== undefined);
        const x4 = int8 && shape.x4 === true && (shape.wpp ?? 0) % 4 === 0 && K % 128 === 0;
        // Split only when every weight of the unit has its split copy.
        const split = shape.split === true && ms.every((m) => (m.mm.weight.handle as GpuTensor).split);
        const code = matvecKernel({ segs, glu: u.glu?.activation, norm: u.norm !== undefined && !int8 }, env, {
          ...shape,
          int8,
          split,
          x4,
        });
        const copy = ms.find((m) => m.copy)?.copy;
        const rope = ms.find((m) => m.rope)?.rope;
        const table = rope ? tableOf.get(rope) : undefined;
        const [po, ps] = copy ? posArgs(copy.positions) : [0, 0];
        const outOf = (m: Member): Range =>
          u.glu ? rangeOf(u.glu.out) : m.copy ? rangeOf(m.copy.dst) : m.rope ? rangeOf(m.rope.out) : rangeOf(m.mm.out);
        const label = `matvec ${ms.map((m) => (m.mm.weight.handle as GpuTensor).dtype).join('+')}${u.glu ? ' glu' : ''}${u.norm && !int8 ? ' norm' : ''}${int8 ? ' int8' : ''}${split ? ' split' : ''}${x4 ? ' x4' : ''}`;
        if (int8) {
          // The activations (normalised first when the unit has the norm) as q8 blocks, a workgroup per token.
          addDispatch(
            first.name,
            `quantize q8${u.norm ? ' norm' : ''}`,
            quantizeQ8Kernel(env, u.norm !== undefined),
            [rangeOf(x), q8Range, u.norm?.weight ? rangeOf(u.norm.weight) : undefined],
            [...rowsArgs(x), K, u.norm ? f32bits(u.norm.eps) : 0],
            flat(rowsFn(x), 1),
            'small',
            tokens,
          );
        }
        const chunks = ms.length === 1 && !u.glu ? w0.chunks.length : 1;
        for (let ci = 0; ci < chunks; ci++) {
          const argv = new Array<number>(16 + 8 * ms.length).fill(0);
          argv[0] = K;
          argv[1] = u.norm ? f32bits(u.norm.eps) : 0;
          argv[12] = po;
          argv[13] = ps;
          let wgs = 0;
          const counts: number[] = [];
          (u.glu ? [ms[0]] : ms).forEach((m, i) => {
            const w = m.mm.weight.handle as GpuTensor;
            const c = w.chunks[chunks > 1 ? ci : 0];
            const b = 16 + 8 * i;
            argv[b] = w.rows;
            argv[b + 1] = w.rowBytes;
            argv[b + 2] = c.row0;
            argv[b + 3] = c.rows;
            argv[b + 4] = wgs;
            argv[b + 5] = m.rope?.headDim ?? 0;
            argv[b + 6] = m.rope?.nRot ?? 0;
            argv[b + 7] = m.rope ? table!.pairs : 0;
            const n = Math.ceil(c.rows / perWg);
            counts.push(n);
            wgs += n;
          });
          const bind: (Range | undefined)[] = new Array(12).fill(undefined);
          bind[0] = int8 ? q8Range : rangeOf(x);
          bind[1] = outOf(ms[0]);
          bind[2] = first.bias ? rangeOf(first.bias) : undefined;
          bind[3] = first.residual ? rangeOf(first.residual) : undefined;
          bind[4] = table ? tableRange(table) : undefined;
          bind[5] = copy ? posRange(copy.positions) : undefined;
          bind[6] = u.norm?.weight && !int8 ? rangeOf(u.norm.weight) : undefined;
          ms.forEach((m, i) => {
            bind[7 + i] = rangeOf(m.mm.weight, chunks > 1 ? ci : 0);
            if (i > 0 && !u.glu) bind[9 + i] = outOf(m);
          });
          const total = wgs;
          addDispatch(
            first.name,
            label,
            code,
            bind,
            argv,
            (p, out) => {
              const n = rowsOf(tokens, p);
              out[0] = n === 0 ? 0 : total;
              out[1] = n;
            },
            'small',
            tokens,
          );
        }
        // The prompt path: every member as its own kernels, in the graph's order (their storage assumes it).
        if (u.norm) emitNorm(u.norm, 'large', tokens);
        const order = new Map(plan.nodes.map((n, k) => [n, k]));
        const parts: [GraphNode, () => void][] = [];
        for (const m of ms) {
          parts.push([m.mm, () => emitTiled(m.mm, 'large')]);
          if (m.rope) parts.push([m.rope, () => emitRope(m.rope!, 'large', tokens)]);
          if (m.copy) parts.push([m.copy, () => emitCopy(m.copy!, 'large', tokens)]);
        }
        if (u.glu) parts.push([u.glu, () => emitGlu(u.glu!, 'large', tokens)]);
        parts.sort((p1, p2) => order.get(p1[0])! - order.get(p2[0])!);
        for (const [, emit] of parts) emit();
      };

      const emitNorm = (
        node: GraphNode & { op: 'rms_norm' | 'layer_norm' },
        when: Dispatch['when'],
        tokens?: TensorRef,
      ) => {
        const weight = node.weight;
        const bias = node.op === 'layer_norm' ? node.bias : undefined;
        const cols = dimMax(node.x.shape[node.x.shape.length - 1]);
        addDispatch(
          node.name,
          node.op,
          normKernel(env, node.op === 'rms_norm' ? 'rms' : 'layer', weight !== undefined, bias !== undefined),
          [rangeOf(node.x), rangeOf(node.out), weight ? rangeOf(weight) : undefined, bias ? rangeOf(bias) : undefined],
          [...rowsArgs(node.x), cols, f32bits(node.eps)],
          flat(rowsFn(node.x), 1),
          when,
          tokens,
        );
      };
      const emitGlu = (node: GraphNode & { op: 'glu' }, when: Dispatch['when'], tokens?: TensorRef) => {
        const cols = dimMax(node.out.shape[node.out.shape.length - 1]);
        const op: Elementwise = node.activation === 'silu' ? 'glu_silu' : 'glu_gelu';
        addDispatch(
          node.name,
          op,
          elementwiseKernel(op, node.up === undefined),
          [rangeOf(node.gate), rangeOf(node.out), node.up ? rangeOf(node.up) : undefined],
          [...rowsArgs(node.out), cols],
          flat(numelFn(node.out), 256),
          when,
          tokens,
        );
      };

      const emitRope = (node: RopeNode, when: Dispatch['when'], tokens?: TensorRef) => {
        const t = tableOf.get(node)!;
        addDispatch(
          node.name,
          'rope',
          ropeKernel(),
          [rangeOf(node.x), rangeOf(node.out), tableRange(t)],
          [...rowsArgs(node.x), node.nHeads, node.headDim, node.nRot, node.mode === 'neox' ? 1 : 0],
          flat(numelFn(node.x), 256),
          when,
          tokens,
        );
      };
      const emitCopy = (node: GraphNode & { op: 'copy' }, when: Dispatch['when'], tokens?: TensorRef) => {
        const dst = node.dst.handle as GpuTensor;
        const dt = node.dst.dtype as 'f32' | 'f16' | 'bf16' | 'q8_0';
        if (dst.split)
          throw new GraphError(
            node.name,
            `webgpu backend: cannot copy into ${dst.name}: uploaded with matvec.split, its blocks are in the split layout (allocate caches with alloc)`,
          );
        const [po, ps] = posArgs(node.positions);
        addDispatch(
          node.name,
          `copy ${dt}`,
          copyKernel(dt),
          [rangeOf(node.src), rangeOf(node.dst), posRange(node.positions)],
          [...rowsArgs(node.src), dst.cols, dst.rowBytes, 0, 0, 0, po, ps],
          dt === 'q8_0' ? flat((p) => rowsOf(node.src, p) * (dst.cols / 32), 64) : flat(numelFn(node.src), 256),
          when,
          tokens,
        );
      };

      // Split attention: splits of the positions when few rows leave the GPU idle (decode), merged by a second
      // kernel; the splits' partial sums go to one scratch buffer that every attention of the graph shares (they run
      // one after the other).
      const attnTarget = this.#options.attention?.workgroups ?? 256;
      const attnChunk = (hd: number) => {
        const c = this.#options.attention?.chunk;
        return c === undefined
          ? attentionChunk(env, hd)
          : Math.max(32 * Math.ceil(c / 32), attentionChunk(env, hd) / (env.software ? 1 : 4), 32);
      };
      let scratchBytes = 16;
      for (const n of splitNodes) {
        if (n.op !== 'attention') continue;
        const kr = (n.k.handle as GpuTensor).rows;
        const sMax = Math.min(64, Math.ceil(kr / attnChunk(n.headDim)));
        scratchBytes = Math.max(scratchBytes, mvMax * n.nHeads * sMax * (n.headDim / 4 + 1) * 16);
      }
      const scratch = splitNodes.length > 0 ? await make('attention splits', scratchBytes, Usage.STORAGE) : undefined;
      const emitSplitAttention = (node: GraphNode & { op: 'attention' }, po: number, ps: number) => {
        const k = node.k.handle as GpuTensor;
        const v = node.v.handle as GpuTensor;
        const f = formatOf(k);
        const fv = formatOf(v);
        const C = attnChunk(node.headDim);
        const slot = graph.params.length + splitNodes.indexOf(node);
        const sMax = Math.min(64, Math.ceil(k.rows / C));
        const posParam = isTensor(node.positions) ? undefined : node.positions.name;
        // Splits this step: enough workgroups for the GPU, at most one per chunk of keys (1 above the decode sizes).
        prestep.push((p, u32) => {
          const rows = rowsOf(node.q, p);
          let s = 1;
          if (rows > 0 && rows <= mvMax) {
            let npos = posParam === undefined ? k.rows : p[posParam] + rows;
            if (node.window > 0) npos = Math.min(npos, node.window);
            s = Math.max(1, Math.min(Math.ceil(attnTarget / (rows * node.nHeads)), Math.ceil(npos / C), sMax));
          }
          u32[slot] = s;
        });
        const label = k.dtype === v.dtype ? `attention ${k.dtype}` : `attention ${k.dtype}/${v.dtype}`;
        const heads = flat((p) => rowsOf(node.q, p) * node.nHeads, 1);
        const kr = rangeOf(node.k);
        const vr = rangeOf(node.v);
        addDispatch(
          node.name,
          label,
          attentionSplitKernel(f, fv, env, node.headDim, C),
          [
            rangeOf(node.q),
            kr,
            vr,
            rangeOf(node.out),
            posRange(node.positions),
            { buffer: scratch!, offset: 0, size: scratchBytes },
          ],
          [
            ...rowsArgs(node.q),
            node.nHeads,
            node.nKvHeads,
            node.headDim,
            f32bits(node.scale),
            f32bits(node.softcap),
            node.window,
            k.rowBytes,
            v.rowBytes,
            slot,
            po,
            ps,
          ],
          (p, out) => {
            heads(p, out);
            out[2] = stageU32[slot];
          },
        );
        addDispatch(
          node.name,
          'attention combine',
          attentionCombineKernel(node.headDim),
          [{ buffer: scratch!, offset: 0, size: scratchBytes }, rangeOf(node.out)],
          [...rowsArgs(node.q), node.nHeads, 0, 0, 0, 0, 0, 0, 0, slot],
          (p, out) => {
            if (stageU32[slot] <= 1) out[0] = 0;
            else heads(p, out);
          },
        );
      };

      for (let i = 0; i < plan.nodes.length; i++) {
        if (fusedInto.has(i)) continue;
        const node = plan.nodes[i];
        switch (node.op) {
          case 'matmul': {
            const u = units.get(i);
            if (u !== undefined) emitUnit(u);
            else {
              // Not fusable: a plain unit without epilogue fusions.
              emitUnit({ members: [{ mm: node }], nodes: [i] });
            }
            break;
          }
          case 'get_rows': {
            const table = node.table.handle as GpuTensor;
            const f = formatOf(table);
            table.chunks.forEach((c, ci) => {
              addDispatch(
                node.name,
                `get_rows ${table.dtype}`,
                getRowsKernel(f),
                [rangeOf(node.ids), rangeOf(node.out), rangeOf(node.table, ci)],
                [...rowsArgs(node.out), table.cols, table.rowBytes, c.row0, c.rows],
                flat(numelFn(node.out), 256),
              );
            });
            const ids = node.ids;
            checks.push((run) => {
              const arr = run.arrays[ids.id] as Int32Array;
              const n = numelAt(ids, run.params);
              for (let r = 0; r < n; r++) {
                const id = arr[r];
                if (!(id >= 0 && id < table.rows)) {
                  throw new GraphError(
                    node.name,
                    `row id ${id} at ${r} is outside [0, ${table.rows}) of ${table.name}`,
                  );
                }
              }
            });
            break;
          }
          case 'rms_norm':
          case 'layer_norm':
            // A norm fused into its readers' prologues runs on its own only on the prompt path (emitted there).
            if (!normSkipped.has(node)) emitNorm(node, 'always');
            break;
          case 'softmax': {
            const cols = dimMax(node.x.shape[node.x.shape.length - 1]);
            addDispatch(
              node.name,
              'softmax',
              softmaxKernel(env),
              [rangeOf(node.x), rangeOf(node.out)],
              [...rowsArgs(node.x), cols],
              flat(rowsFn(node.x), 1),
            );
            break;
          }
          case 'rope':
            emitRope(node, 'always');
            break;
          case 'attention': {
            const k = node.k.handle as GpuTensor;
            const v = node.v.handle as GpuTensor;
            const f = formatOf(k);
            const fv = formatOf(v);
            if (node.headDim > 512)
              throw new GraphError(node.name, 'webgpu backend: head dims above 512 are not supported');
            const [po, ps] = posArgs(node.positions);
            checks.push(positionCheck(node.name, node.positions, node.q, k.rows, 'the cache'));
            if (splitAttention(node.headDim)) {
              emitSplitAttention(node, po, ps);
              break;
            }
            addDispatch(
              node.name,
              k.dtype === v.dtype ? `attention ${k.dtype}` : `attention ${k.dtype}/${v.dtype}`,
              attentionKernel(f, fv, env),
              [rangeOf(node.q), rangeOf(node.k), rangeOf(node.v), rangeOf(node.out), posRange(node.positions)],
              [
                ...rowsArgs(node.q),
                node.nHeads,
                node.nKvHeads,
                node.headDim,
                f32bits(node.scale),
                f32bits(node.softcap),
                node.window,
                k.rowBytes,
                v.rowBytes,
                0,
                po,
                ps,
              ],
              flat((p) => rowsOf(node.q, p) * node.nHeads, 1),
            );
            break;
          }
          case 'copy': {
            emitCopy(node, 'always');
            const dst = node.dst.handle as GpuTensor;
            checks.push(positionCheck(node.name, node.positions, node.src, dst.rows, `${dst.name}`));
            break;
          }
          case 'reshape':
            break;
          case 'silu':
          case 'gelu':
          case 'scale':
          case 'softcap': {
            const cols = dimMax(node.out.shape[node.out.shape.length - 1]);
            const factor = node.op === 'scale' ? node.factor : node.op === 'softcap' ? node.cap : 0;
            addDispatch(
              node.name,
              node.op,
              elementwiseKernel(node.op),
              [rangeOf(node.x), rangeOf(node.out)],
              [...rowsArgs(node.out), cols, 0, f32bits(factor)],
              flat(numelFn(node.out), 256),
            );
            break;
          }
          case 'add':
          case 'mul': {
            const cols = dimMax(node.out.shape[node.out.shape.length - 1]);
            const bl = node.b.shape.length === node.a.shape.length ? 0 : cols;
            addDispatch(
              node.name,
              node.op,
              elementwiseKernel(node.op),
              [rangeOf(node.a), rangeOf(node.out), rangeOf(node.b)],
              [...rowsArgs(node.out), cols, bl],
              flat(numelFn(node.out), 256),
            );
            break;
          }
          case 'glu':
            emitGlu(node, 'always');
            break;
        }
      }
      // For logits: an argmax over the last row of the first output (greedy decoding on the GPU).
      let argmax: Prepared['argmax'];
      const first = graph.outputs[0];
      let argmaxArgs: { a: Uint32Array; offset: number } | undefined;
      let argmaxResult: GPUBuffer | undefined;
      if (first !== undefined) {
        argmaxResult = await make('argmax', 4, Usage.STORAGE | Usage.COPY_SRC);
        argmaxArgs = newArgs();
        argmaxArgs.a.set(rowsArgs(first.tensor));
        argmaxArgs.a[3] = dimMax(first.tensor.shape[first.tensor.shape.length - 1]);
      }

      argsBuffer = await make('args', argSlots.length * 256, Usage.UNIFORM | Usage.COPY_DST);
      const argData = new Uint32Array(argSlots.length * 64);
      argSlots.forEach((s, i) => {
        argData.set(s, i * 64);
      });
      this.device.queue.writeBuffer(argsBuffer, 0, argData);
      // Decode-path kernels now; the prompt-path ones (tiled matmuls) on their first use.
      await Promise.all(dispatches.filter((d) => d.when !== 'large').map((d) => d.build()));

      if (first !== undefined && argmaxArgs !== undefined && argmaxResult !== undefined) {
        const pipeline = await this.#pipeline(
          argmaxKernel(env.software ? 64 : Math.min(1024, this.info.maxInvocations)),
          'argmax',
        );
        const r = rangeOf(first.tensor);
        const bindGroup = this.device.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: [
            { binding: 0, resource: { buffer: argsBuffer, offset: argmaxArgs.offset, size: 256 } },
            { binding: 1, resource: { buffer: step, offset: 0, size: paramsRange.size } },
            { binding: 2, resource: { buffer: r.buffer, offset: r.offset, size: r.size } },
            { binding: 3, resource: { buffer: argmaxResult } },
          ],
        });
        const readback = await make('argmax readback', 4, Usage.MAP_READ | Usage.COPY_DST);
        argmax = {
          dispatch: {
            pipeline,
            bindGroup,
            label: 'argmax',
            build: async () => {},
            grid: (_p, out) => {
              out[0] = 1;
              out[1] = 1;
            },
            when: 'always',
          },
          result: argmaxResult,
          readback,
        };
      }

      const outputs: Prepared['outputs'] = [];
      for (const o of graph.outputs) {
        const range = rangeOf(o.tensor);
        const readback = await make(`output ${o.name}`, range.size, Usage.MAP_READ | Usage.COPY_DST);
        outputs.push({ name: o.name, tensor: o.tensor, range, readback, host: new Float32Array(range.size / 4) });
      }

      let timer: Prepared['timer'];
      if (this.#options.timestamps && this.info.timestamps) {
        const query = this.device.createQuerySet({ type: 'timestamp', count: 2 });
        const resolve = await make('timestamps', 16, Usage.QUERY_RESOLVE | Usage.COPY_SRC);
        const readback = await make('timestamps readback', 16, Usage.MAP_READ | Usage.COPY_DST);
        timer = { query, resolve, readback };
      }
      for (const b of owned) this.#graphBuffers.set(b, true);
      return {
        plan,
        values,
        step,
        stage,
        stageU32,
        slots,
        prestep,
        stageF32: new Float32Array(stage),
        stageI32: new Int32Array(stage),
        inputOffsets,
        tables,
        args: argsBuffer!,
        dispatches,
        outputs,
        grid: new Uint32Array(3),
        argmax,
        timer,
        checks,
      };
    } catch (e) {
      for (const b of owned) this.#destroy(b);
      if (this.#lost) throw this.#lost;
      throw e;
    }
  }

  async #readF32(t: TensorRef): Promise<Float32Array> {
    const host = await this.download(t.handle as GpuTensor);
    return new Float32Array(host.data.slice().buffer);
  }

  // ---- execute -----------------------------------------------------------------------------------------------------

  /**
   * Runs a graph and returns the id of the largest value in the last row of its first output (greedy sampling on the
   * GPU): only 4 bytes are read back.
   *
   * @example
   * ```ts
   * const id = await backend.runGreedy(decodeGraph, { tokens: Int32Array.of(1), nTokens: 1, pos: 0 });
   * ```
   */
  async runGreedy(graph: Graph, inputs: RunInputs): Promise<number> {
    await this.run(graph, inputs, { argmax: true } as RunOptions);
    return this.#lastArgmax;
  }

  /**
   * Greedy decoding with several steps in flight: each step takes the previous step's id on the GPU (copied from
   * its argmax into the `feed` input), so the host submits step t+1 before it reads step t's id, and the GPU does
   * not wait for the host between steps. `inputs` are the first step's (its `feed` holds the first token, `advance`
   * its position); step t runs at `advance + t`. Yields the ids in order; stop early by leaving the loop (at EOS):
   * the steps already in flight finish on the GPU and their ids are dropped. They have written the KV cache at the
   * positions after the stop, which is harmless: a later step writes its position before it reads it. Do not run
   * the same graph elsewhere while the generator is open.
   *
   * @example
   * ```ts
   * for await (const id of backend.greedy(graph, { tokens: Int32Array.of(1), nTokens: 1, pos: 0 }, { steps: 64 })) {
   *   if (id === eos) break;
   *   out.push(id);
   * }
   * ```
   */
  async *greedy(graph: Graph, inputs: RunInputs, options: GreedyOptions): AsyncGenerator<number, void, undefined> {
    const feed = options.feed ?? 'tokens';
    const advance = options.advance ?? 'pos';
    const depth = Math.max(1, Math.min(16, Math.floor(options.depth ?? 3)));
    const input = graph.inputs.find((t) => t.name === feed);
    if (input === undefined || input.dtype !== 'i32') {
      throw new GraphError(feed, `webgpu backend: greedy() needs an i32 input '${feed}' to feed the ids back`);
    }
    if (!graph.params.some((q) => q.name === advance)) {
      throw new GraphError(advance, `webgpu backend: greedy() needs a param '${advance}' to advance per step`);
    }
    const start = Number((inputs as Record<string, unknown>)[advance]);
    const step: Record<string, unknown> = { ...inputs };
    const pending: { map: Promise<void>; buffer: GPUBuffer }[] = [];
    const take = async (q: { map: Promise<void>; buffer: GPUBuffer }) => {
      await q.map;
      this.#check();
      const id = new Uint32Array(q.buffer.getMappedRange(0, 4))[0];
      q.buffer.unmap();
      return id;
    };
    try {
      for (let t = 0; t < options.steps; t++) {
        if (pending.length >= depth) yield await take(pending.shift()!);
        step[advance] = start + t;
        const ring: { buffer?: GPUBuffer } = {};
        await this.run(
          graph,
          step as RunInputs,
          {
            argmax: true,
            greedy: { feed: t > 0 ? input.id : -1, slot: t % depth, depth, ring },
          } as RunOptions,
        );
        pending.push({ map: this.#map(ring.buffer!), buffer: ring.buffer! });
      }
      while (pending.length > 0) yield await take(pending.shift()!);
    } finally {
      // Left early (a stop) or failed: let the steps in flight finish and release their buffers.
      for (const q of pending.splice(0)) {
        try {
          await q.map;
          q.buffer.unmap();
        } catch {
          // A failed map leaves the buffer unmapped.
        }
      }
    }
  }

  /**
   * Runs one step with every dispatch in a compute pass of its own between two timestamps, and returns each
   * kernel's GPU time (needs the adapter's `timestamp-query`). The passes add a little time of their own; use it to
   * see where a step goes, and `lastStep.gpuMs` of a normal run for the total. With `reps`, each kernel then also
   * runs `reps` times back to back in one pass (barriers between, as in a step), timed by the host and by
   * timestamps: the figures to trust for short kernels. Repeating a kernel may leave garbage in the values and KV
   * caches it writes: profile after measuring.
   *
   * @example
   * ```ts
   * const kernels = await backend.profileStep(graph, { tokens, nTokens: 1, pos: 0 }, { reps: 200 });
   * ```
   */
  async profileStep(graph: Graph, inputs: RunInputs, options: { reps?: number } = {}): Promise<KernelTime[]> {
    if (!this.info.timestamps) throw new BackendError('webgpu backend: profiling needs the timestamp-query feature');
    await this.run(graph, inputs, { profile: true, reps: Math.max(0, Math.floor(options.reps ?? 0)) } as RunOptions);
    return this.#lastProfile;
  }

  /** Each dispatch `reps` times in one pass: host time (submit to done) and GPU time per dispatch. */
  async #repeat(
    active: { d: Dispatch; grid: [number, number, number] }[],
    times: KernelTime[],
    reps: number,
  ): Promise<KernelTime[]> {
    const dev = this.device;
    const query = dev.createQuerySet({ type: 'timestamp', count: 2 });
    const resolve = await this.#buffer('repeat timestamps', 16, Usage.QUERY_RESOLVE | Usage.COPY_SRC);
    const readback = await this.#buffer('repeat readback', 16, Usage.MAP_READ | Usage.COPY_DST);
    const out: KernelTime[] = [];
    try {
      for (let k = 0; k < active.length; k++) {
        const { d, grid } = active[k];
        const enc = dev.createCommandEncoder();
        const pass = enc.beginComputePass({
          timestampWrites: { querySet: query, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
        });
        pass.setPipeline(d.pipeline!);
        pass.setBindGroup(0, d.bindGroup!);
        for (let r = 0; r < reps; r++) pass.dispatchWorkgroups(grid[0], grid[1], grid[2]);
        pass.end();
        enc.resolveQuerySet(query, 0, 2, resolve, 0);
        enc.copyBufferToBuffer(resolve, 0, readback, 0, 16);
        const cb = enc.finish();
        // Start from an idle queue, so the host time covers this work only.
        await dev.queue.onSubmittedWorkDone();
        const w0 = performance.now();
        dev.queue.submit([cb]);
        await dev.queue.onSubmittedWorkDone();
        const wallMs = (performance.now() - w0) / reps;
        await this.#map(readback);
        const ts = new BigUint64Array(readback.getMappedRange(0, 16).slice(0));
        readback.unmap();
        out.push({ ...times[k], wallMs, repMs: Number(ts[1] - ts[0]) / 1e6 / reps });
      }
    } finally {
      query.destroy();
      this.#destroy(resolve);
      this.#destroy(readback);
    }
    return out;
  }

  /** @hidden Runs one step (the kit calls it). */
  protected async execute(p: Prepared, run: BoundRun, options: RunOptions): Promise<RunOutputs> {
    const h0 = performance.now();
    this.#check();
    for (const c of p.checks) c(run);
    const graph = p.plan.graph;
    const params = run.params;
    // Step buffer: params, inputs, rope tables.
    const u32 = p.stageU32;
    graph.params.forEach((q, i) => {
      u32[i] = params[q.name];
    });
    for (const f of p.prestep) f(params, u32);
    let end = 4 * p.slots;
    for (const t of graph.inputs) {
      const arr = run.arrays[t.id]!;
      const off = p.inputOffsets.get(t.id)! / 4;
      if (arr instanceof Int32Array) p.stageI32.set(arr, off);
      else p.stageF32.set(arr, off);
      end = Math.max(end, off * 4 + arr.length * 4);
    }
    for (const t of p.tables) {
      const node = t.node;
      const rows = rowsOf(node.x, params);
      const f = p.stageF32;
      let o = t.offset / 4;
      for (let r = 0; r < rows; r++) {
        const pos = isTensor(node.positions)
          ? (run.arrays[node.positions.id] as Int32Array)[r]
          : params[node.positions.name] + r;
        for (let j = 0; j < t.pairs; j++) {
          const ang = pos * t.theta[j];
          f[o++] = Math.cos(ang) * t.mscale;
          f[o++] = Math.sin(ang) * t.mscale;
        }
      }
      end = Math.max(end, o * 4);
    }
    const dev = this.device;
    const mvMax = this.#options.matvecMaxTokens ?? 4;
    for (const d of p.dispatches) {
      if (
        d.pipeline === undefined &&
        (d.when === 'always' || rowsOf(d.tokens!, params) <= mvMax) === (d.when !== 'large')
      ) {
        await d.build();
      }
    }
    this.#check();
    if (end > 0) dev.queue.writeBuffer(p.step, 0, p.stage, 0, Math.ceil(end / 4) * 4);

    const argmax = (options as { argmax?: boolean }).argmax === true ? p.argmax : undefined;
    const greedy = (options as { greedy?: { feed: number; slot: number; depth: number; ring: { buffer?: GPUBuffer } } })
      .greedy;
    if (greedy !== undefined) {
      if (argmax === undefined) throw new BackendError('webgpu backend: greedy() needs a graph with an output');
      if (p.ring === undefined || p.ring.length < greedy.depth) {
        const ring = p.ring ?? [];
        while (ring.length < greedy.depth) {
          ring.push(await this.#buffer('greedy readback', 4, Usage.MAP_READ | Usage.COPY_DST));
        }
        p.ring = ring;
      }
      greedy.ring.buffer = p.ring[greedy.slot];
    }
    const profile = (options as { profile?: boolean }).profile === true;
    if (profile && (p.profiler === undefined || p.profiler.count < p.dispatches.length + 1)) {
      const count = p.dispatches.length + 1;
      p.profiler = {
        query: dev.createQuerySet({ type: 'timestamp', count: 2 * count }),
        resolve: await this.#buffer('profile', 16 * count, Usage.QUERY_RESOLVE | Usage.COPY_SRC),
        readback: await this.#buffer('profile readback', 16 * count, Usage.MAP_READ | Usage.COPY_DST),
        count,
      };
    }
    const enc = dev.createCommandEncoder();
    // The previous step's id (still on the GPU) into this step's token input, after the step buffer's write.
    if (greedy !== undefined && greedy.feed >= 0) {
      enc.copyBufferToBuffer(argmax!.result, 0, p.step, p.inputOffsets.get(greedy.feed)!, 4);
    }
    const profiled: string[] = [];
    const active: { d: Dispatch; grid: [number, number, number] }[] = [];
    if (profile) {
      const prof = p.profiler!;
      const grid = p.grid;
      for (const d of p.dispatches) {
        if (d.when !== 'always' && rowsOf(d.tokens!, params) <= mvMax !== (d.when === 'small')) continue;
        grid[2] = 1;
        d.grid(params, grid);
        if (grid[0] === 0 || grid[1] === 0 || grid[2] === 0) continue;
        const k = profiled.length;
        const pp = enc.beginComputePass({
          timestampWrites: { querySet: prof.query, beginningOfPassWriteIndex: 2 * k, endOfPassWriteIndex: 2 * k + 1 },
        });
        pp.setPipeline(d.pipeline!);
        pp.setBindGroup(0, d.bindGroup!);
        pp.dispatchWorkgroups(grid[0], grid[1], grid[2]);
        pp.end();
        profiled.push(d.label);
        active.push({ d, grid: [grid[0], grid[1], grid[2]] });
      }
      if (profiled.length > 0) {
        enc.resolveQuerySet(prof.query, 0, 2 * profiled.length, prof.resolve, 0);
        enc.copyBufferToBuffer(prof.resolve, 0, prof.readback, 0, 16 * profiled.length);
      }
    }
    const timer = greedy === undefined && this.timestamps ? p.timer : undefined;
    const pass = enc.beginComputePass(
      timer
        ? { timestampWrites: { querySet: timer.query, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } }
        : undefined,
    );
    let count = 0;
    let last: GPUComputePipeline | undefined;
    const grid = p.grid;
    for (const d of profile ? [] : p.dispatches) {
      if (d.when !== 'always') {
        const small = rowsOf(d.tokens!, params) <= mvMax;
        if (small !== (d.when === 'small')) continue;
      }
      grid[2] = 1;
      d.grid(params, grid);
      if (grid[0] === 0 || grid[1] === 0 || grid[2] === 0) continue;
      if (d.pipeline !== last) {
        pass.setPipeline(d.pipeline!);
        last = d.pipeline;
      }
      pass.setBindGroup(0, d.bindGroup!);
      pass.dispatchWorkgroups(grid[0], grid[1], grid[2]);
      count++;
    }
    if (argmax !== undefined) {
      pass.setPipeline(argmax.dispatch.pipeline!);
      pass.setBindGroup(0, argmax.dispatch.bindGroup!);
      pass.dispatchWorkgroups(1);
      count++;
    }
    pass.end();
    if (timer) enc.resolveQuerySet(timer.query, 0, 2, timer.resolve, 0);
    if (timer) enc.copyBufferToBuffer(timer.resolve, 0, timer.readback, 0, 16);
    const reads: { o: Prepared['outputs'][number]; bytes: number }[] = [];
    if (greedy !== undefined) enc.copyBufferToBuffer(argmax!.result, 0, greedy.ring.buffer!, 0, 4);
    else if (argmax !== undefined) enc.copyBufferToBuffer(argmax.result, 0, argmax.readback, 0, 4);
    else {
      for (const o of p.outputs) {
        const bytes = Math.ceil((numelAt(o.tensor, params) * 4) / 4) * 4;
        if (bytes > 0) enc.copyBufferToBuffer(o.range.buffer, o.range.offset, o.readback, 0, bytes);
        reads.push({ o, bytes });
      }
    }
    dev.queue.submit([enc.finish()]);
    const h1 = performance.now();
    if (greedy !== undefined) {
      // The caller maps the ring buffer; nothing else is read back.
      this.#stats = { dispatches: count, gpuMs: undefined, hostMs: h1 - h0, waitMs: 0 };
      return {};
    }

    let gpuMs: number | undefined;
    const maps: Promise<void>[] = [];
    if (argmax !== undefined) maps.push(this.#map(argmax.readback));
    for (const r of reads) if (r.bytes > 0) maps.push(this.#map(r.o.readback));
    if (timer) maps.push(this.#map(timer.readback));
    if (profiled.length > 0) maps.push(this.#map(p.profiler!.readback));
    await Promise.all(maps);
    this.#check();
    if (profiled.length > 0) {
      const ts = new BigUint64Array(p.profiler!.readback.getMappedRange(0, 16 * profiled.length).slice(0));
      p.profiler!.readback.unmap();
      this.#lastProfile = profiled.map((label, k) => ({ label, ms: Number(ts[2 * k + 1] - ts[2 * k]) / 1e6 }));
      count = profiled.length;
      const reps = (options as { reps?: number }).reps ?? 0;
      if (reps > 0) this.#lastProfile = await this.#repeat(active, this.#lastProfile, reps);
    }
    if (timer) {
      const ts = new BigUint64Array(timer.readback.getMappedRange(0, 16));
      gpuMs = Number(ts[1] - ts[0]) / 1e6;
      timer.readback.unmap();
    }
    const out: Record<string, Float32Array> = {};
    if (argmax !== undefined) {
      this.#lastArgmax = new Uint32Array(argmax.readback.getMappedRange(0, 4))[0];
      argmax.readback.unmap();
    }
    for (const r of reads) {
      const n = r.bytes / 4;
      if (n > 0) {
        r.o.host.set(new Float32Array(r.o.readback.getMappedRange(0, r.bytes)));
        r.o.readback.unmap();
      }
      out[r.o.name] = this.deliver(options, r.o.name, r.o.host, n);
    }
    this.#stats = { dispatches: count, gpuMs, hostMs: h1 - h0, waitMs: performance.now() - h1 };
    return out;
  }
}

/** Rows of a tensor (all dims but the last) at these params, without allocating (runs per dispatch per step). */
function rowsOf(t: TensorRef, p: Readonly<Record<string, number>>): number {
  let r = 1;
  const s = t.shape;
  for (let i = 0; i < s.length - 1; i++) {
    const d = s[i];
    r *= typeof d === 'number' ? d : p[d.name];
  }
  return r;
}

/** Head dims the split attention kernel takes (vec4 columns); others run the plain kernel. */
function splitAttention(headDim: number): boolean {
  return headDim % 4 === 0 && headDim <= 512;
}

function isFusableCache(d: DTypeName): boolean {
  return d === 'f32' || d === 'f16';
}

function posKey(p: Positions): string {
  return isTensor(p) ? `t${p.id}` : `p${p.name}`;
}

function rowsMaxOf(t: TensorRef): number {
  let r = 1;
  for (let i = 0; i < t.shape.length - 1; i++) r *= dimMax(t.shape[i]);
  return r;
}

function positionCheck(name: string, positions: Positions, of: TensorRef, limit: number, what: string) {
  return (run: BoundRun) => {
    const n = rowsOf(of, run.params);
    for (let r = 0; r < n; r++) {
      const pos = isTensor(positions) ? (run.arrays[positions.id] as Int32Array)[r] : run.params[positions.name] + r;
      if (!(pos >= 0 && pos < limit)) {
        throw new GraphError(name, `position ${pos} of row ${r} is outside ${what} [0, ${limit})`);
      }
    }
  };
}
