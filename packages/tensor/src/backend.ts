import type { DTypeName } from './dtype.js';
import { NibbleError } from './errors.js';
import type { Graph } from './graph.js';
import type { HostTensor } from './host-tensor.js';
import type { Shape } from './shape.js';

/**
 * The backend contract: one model implementation, any backend, any weight format.
 *
 * A backend owns memory (weights, KV caches, intermediates) and executes a {@link Graph}. Weights are uploaded once in
 * their stored format; each step the runner calls {@link Backend.run} with small inputs (token ids, positions) and
 * scalar parameters (current position, number of tokens) and reads the outputs (logits) back.
 */

/** Every op of the graph IR. */
export type OpName =
  | 'matmul'
  | 'get_rows'
  | 'rms_norm'
  | 'layer_norm'
  | 'rope'
  | 'attention'
  | 'softmax'
  | 'silu'
  | 'gelu'
  | 'glu'
  | 'softcap'
  | 'reshape'
  | 'add'
  | 'mul'
  | 'scale'
  | 'copy';

/**
 * Every op name, in a stable order (useful to iterate capabilities).
 *
 * @example
 * ```ts
 * for (const op of opNames) console.log(op, backend.capabilities.ops[op].join(' '));
 * ```
 */
export const opNames: readonly OpName[] = Object.freeze([
  'matmul',
  'get_rows',
  'rms_norm',
  'layer_norm',
  'rope',
  'attention',
  'softmax',
  'silu',
  'gelu',
  'glu',
  'softcap',
  'reshape',
  'add',
  'mul',
  'scale',
  'copy',
]);

/**
 * How a matmul treats its f32 activations when the weight is quantized or 16-bit.
 *
 * - `'f32'`: activations stay f32; the weight is decoded block by block (the accurate default).
 * - `'ggml'`: activations are first quantized to the weight's `vecDotType` (q8_0, q8_1, q8_K, f16, bf16) and the dot
 *   product follows ggml's CPU `vec_dot` (spec §5), so results can be compared with llama.cpp.
 */
export type MatmulActivations = 'f32' | 'ggml';

/**
 * What a backend can do: for each op, the dtypes its typed operand accepts.
 *
 * The typed operand is the weight for `matmul` and `get_rows`, the KV cache for `attention` and the destination
 * for `copy`; every other op works on values and lists the value dtypes it accepts (`['f32']`). An op a backend
 * cannot run at all lists `[]`.
 */
export interface BackendCapabilities {
  /** Accepted dtypes per op. */
  readonly ops: Readonly<Record<OpName, readonly DTypeName[]>>;
  /** The matmul activation modes this backend implements. */
  readonly matmulActivations: readonly MatmulActivations[];
  /** Element types node results may have (`f32`, and `f16` where the backend computes in half precision). */
  readonly valueDTypes: readonly ('f32' | 'f16')[];
  /** Memory limits the planner respects (see `planGraph`). */
  readonly limits: BackendLimits;
}

/**
 * A backend's memory limits. The planner splits its value buffers so none exceeds `maxBufferBytes`, and refuses a
 * single value larger than `maxBindingBytes` with a `GraphError` naming it.
 */
export interface BackendLimits {
  /** Largest buffer the backend can allocate (WebGPU `maxBufferSize`; wasm32: 4 GiB of memory in all). */
  readonly maxBufferBytes: number;
  /** Largest buffer one kernel can bind (WebGPU `maxStorageBufferBindingSize`). */
  readonly maxBindingBytes: number;
  /**
   * Most bytes of weights and state the backend can hold in all (wasm32: 4 GiB of memory); undefined: no limit.
   * Loaders check a model against it before uploading anything.
   */
  readonly maxTotalBytes?: number;
}

/**
 * Limits of a backend with no practical ones (host memory): `Number.MAX_SAFE_INTEGER` bytes.
 *
 * @example
 * ```ts
 * const caps: BackendCapabilities = { ops, matmulActivations: ['f32'], valueDTypes: ['f32'], limits: unlimited };
 * ```
 */
export const unlimited: BackendLimits = Object.freeze({
  maxBufferBytes: Number.MAX_SAFE_INTEGER,
  maxBindingBytes: Number.MAX_SAFE_INTEGER,
});

/**
 * Whether a backend's capabilities accept `dtype` for `op`.
 *
 * @example
 * ```ts
 * if (!supports(backend.capabilities, 'matmul', 'q4_K')) throw new Error('no q4_K matmul here');
 * ```
 */
export function supports(capabilities: BackendCapabilities, op: OpName, dtype: DTypeName): boolean {
  return capabilities.ops[op].includes(dtype);
}

/**
 * A tensor that lives on a backend: a weight uploaded from a {@link HostTensor}, or backend state such as a KV cache
 * made with {@link Backend.alloc}. Opaque: only the backend that made it can read its memory.
 */
export interface BackendTensor {
  /** Name of the backend that owns it (e.g. `'js'`). */
  readonly backend: string;
  /** A name for error messages, e.g. `'blk.0.attn_q.weight'`. */
  readonly name: string;
  /** Stored dtype: weights keep their file format. */
  readonly dtype: DTypeName;
  /** Outermost first; the last dimension is the row. */
  readonly shape: Shape;
}

/** Options of {@link Backend.upload} and {@link Backend.alloc}. */
export interface TensorOptions {
  /** Name used in error messages. */
  name?: string;
}

/** A value of a graph input: an f32 or i32 array of exactly the input's element count at the run's sizes. */
export type InputArray = Float32Array | Int32Array;

/**
 * The per-step values of one {@link Backend.run}: arrays for the graph's declared inputs and integers for its
 * declared params (see {@link GraphBuilder.param}), keyed by name.
 */
export type RunInputs = Readonly<Record<string, InputArray | number>>;

/** Options of {@link Backend.run}. */
export interface RunOptions {
  /**
   * Destinations for outputs, keyed by output name. Each gets the output's values at the run's sizes (a prefix when
   * the array is longer). Outputs without a destination are still returned as backend-owned views.
   */
  outputs?: Readonly<Record<string, Float32Array>>;
}

/**
 * The outputs of one run, keyed by output name, as f32 values in row-major order at the run's sizes. Unless a
 * destination was given in {@link RunOptions.outputs}, an array may be a view of backend memory that the next
 * `run` of the same graph overwrites: copy what must survive.
 */
export type RunOutputs = Readonly<Record<string, Float32Array>>;

/**
 * A compute backend.
 *
 * @example
 * ```ts
 * import { createBackend, GraphBuilder, hostTensor } from '@nibble/tensor';
 * import '@nibble/backend-js';
 *
 * const backend = await createBackend('js');
 * const w = await backend.upload(hostTensor('q8_0', [64, 32], weightBytes), { name: 'w' });
 * const b = new GraphBuilder();
 * const n = b.param('n', { max: 8 });
 * const x = b.input('x', 'f32', [n, 32]);
 * b.output('y', b.matmul(b.weight(w), x));
 * const graph = b.build();
 * const { y } = await backend.run(graph, { x: new Float32Array(32), n: 1 }); // y: Float32Array(64)
 * backend.dispose();
 * ```
 */
export interface Backend {
  /** Registry name, e.g. `'js'`. */
  readonly name: string;
  /** What this backend accepts; checked when a graph is first run. */
  readonly capabilities: BackendCapabilities;
  /**
   * Makes a host tensor available to graphs. Weights keep their stored format. A backend that can use the bytes where
   * they are (the JS backend) keeps a view and copies nothing; the caller must then keep the bytes unchanged.
   */
  upload(tensor: HostTensor, options?: TensorOptions): Promise<BackendTensor>;
  /**
   * Allocates zero-filled backend state, e.g. a KV cache `[maxContext, nKvHeads * headDim]` of dtype f32, f16 or
   * q8_0. Graphs write it with `copy` and read it with `attention`; it keeps its contents between runs.
   */
  alloc(dtype: DTypeName, shape: Shape, options?: TensorOptions): Promise<BackendTensor>;
  /** Copies a backend tensor's bytes back to the host in its stored format. */
  download(tensor: BackendTensor): Promise<HostTensor>;
  /**
   * Releases one uploaded or allocated tensor now (a session's KV cache when the session is disposed). Graphs that
   * use it can no longer run, and using it again throws a {@link BackendError}. Freeing twice is a no-op.
   */
  free(tensor: BackendTensor): void;
  /**
   * Runs a graph with this step's inputs and params. The first run of a graph checks it against the capabilities and
   * plans its memory; later runs reuse the plan. Throws a {@link GraphError} naming the node or input at fault.
   */
  run(graph: Graph, inputs: RunInputs, options?: RunOptions): Promise<RunOutputs>;
  /** Releases every tensor and plan of this backend. Using it afterwards throws. */
  dispose(): void;
}

/**
 * Options every backend factory understands; backends may read more keys of their own.
 */
export interface BackendOptions {
  /** Default matmul activation mode for nodes that do not choose one. Default `'f32'`. */
  matmulActivations?: MatmulActivations;
  /** Backend-specific options, e.g. `{ threads: 2 }`. */
  readonly [key: string]: unknown;
}

/**
 * Makes backends of one kind. Backend packages export one (`js`, `wasm`, `webgpu`) and register it by name when
 * imported; passing the factory object itself to `createBackend` needs no registry.
 *
 * @example
 * ```ts
 * const factory: BackendFactory = { name: 'mine', create: async (options) => new MyBackend(options) };
 * const backend = await createBackend(factory);
 * ```
 */
export interface BackendFactory {
  /** Registry name. */
  readonly name: string;
  /**
   * Creates a backend, or rejects with an error whose message says why it cannot run here (no `navigator.gpu`, no
   * SharedArrayBuffer, ...).
   */
  create(options?: BackendOptions): Promise<Backend>;
}

/**
 * A backend creation failure. `skipped` lists each backend tried and why it did not initialise.
 *
 * @example
 * ```ts
 * await createBackend(['webgpu']).catch((e: BackendError) => e.skipped); // [{ name: 'webgpu', reason: '...' }]
 * ```
 */
export class BackendError extends NibbleError {
  /** Each backend tried, in order, with the reason it was skipped. */
  readonly skipped: readonly BackendSkip[];
  constructor(message: string, skipped: readonly BackendSkip[] = [], options?: { cause?: unknown }) {
    super('E_BACKEND', message, options);
    this.skipped = skipped;
  }
}

/** One backend that `createBackend` tried and skipped, with the reason. */
export interface BackendSkip {
  readonly name: string;
  readonly reason: string;
}
