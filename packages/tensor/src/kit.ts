/**
 * The backend kit: everything a backend shares, so that a backend is memory plus kernels. {@link KernelBackend}
 * tracks the tensors a backend made (ownership, `free`, `dispose`), checks a graph against the capabilities and
 * plans it once ({@link planGraph}), validates each run's inputs ({@link validateRun}), and hands the backend's
 * `prepare` and `execute` a plan and a bound run. See docs/backend-guide.md for the whole contract on one page.
 */
import {
  type Backend,
  type BackendCapabilities,
  BackendError,
  type BackendTensor,
  type RunInputs,
  type RunOptions,
  type RunOutputs,
} from './backend.js';
import type { DTypeName } from './dtype.js';
import { SizeError } from './errors.js';
import type { Graph } from './graph.js';
import type { HostTensor } from './host-tensor.js';
import { type BoundRun, checkCapabilities, type GraphPlan, type MutableRun, planGraph, validateRun } from './plan.js';
import type { Shape } from './shape.js';

interface GraphState<P> {
  readonly plan: GraphPlan;
  readonly prepared: Promise<P>;
  /** Weights and state the graph uses, checked before every run (a freed one refuses the run). */
  readonly handles: readonly BackendTensor[];
  /** Reused every run: nothing allocated per step for the validated inputs. */
  readonly run: MutableRun;
}

/**
 * Base class of a backend on the shared planner. A subclass implements memory (`upload`, `alloc`, `download`,
 * `releaseTensor`, `releaseAll`) and kernels (`prepare` once per graph, `execute` once per run); it calls
 * {@link KernelBackend.adopt} on every tensor it makes and {@link KernelBackend.own} to get its own type back.
 *
 * @example
 * ```ts
 * class MyBackend extends KernelBackend<MyPlan> {
 *   readonly name = 'mine';
 *   readonly capabilities = myCapabilities;
 *   async upload(t: HostTensor) { return this.adopt(new MyTensor(t)); }
 *   // ... alloc, download, releaseTensor, releaseAll
 *   protected prepare(plan: GraphPlan) { return { buffers: plan.buffers.map((b) => new ArrayBuffer(b.bytes)) }; }
 *   protected execute(p: MyPlan, run: BoundRun) { for (const node of p.plan.nodes) kernel(node, p, run); return outs; }
 * }
 * ```
 */
export abstract class KernelBackend<P> implements Backend {
  abstract readonly name: string;
  abstract readonly capabilities: BackendCapabilities;
  /** Byte alignment of planned value offsets (override: WebGPU needs its `minStorageBufferOffsetAlignment`). */
  protected readonly alignment: number = 256;
  readonly #graphs = new WeakMap<Graph, GraphState<P>>();
  readonly #live = new WeakSet<BackendTensor>();
  readonly #freed = new WeakSet<BackendTensor>();
  #disposed = false;

  abstract upload(tensor: HostTensor, options?: { name?: string }): Promise<BackendTensor>;
  abstract alloc(dtype: DTypeName, shape: Shape, options?: { name?: string }): Promise<BackendTensor>;
  abstract download(tensor: BackendTensor): Promise<HostTensor>;
  /** Gives one tensor's memory back (called once, by {@link free}). */
  protected abstract releaseTensor(tensor: BackendTensor): void;
  /** Gives everything back (called once, by {@link dispose}). */
  protected abstract releaseAll(): void;
  /** Turns a checked plan into what `execute` needs: buffers, pipelines, per-node tables. Called once per graph. */
  protected abstract prepare(plan: GraphPlan): P | Promise<P>;
  /** Runs one step. `run` is valid only during the call (it is reused). */
  protected abstract execute(
    prepared: P,
    run: BoundRun,
    options: RunOptions,
    plan: GraphPlan,
  ): RunOutputs | Promise<RunOutputs>;

  /** Whether {@link dispose} has been called. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Records a tensor this backend made; returns it. */
  protected adopt<T extends BackendTensor>(tensor: T): T {
    this.#live.add(tensor);
    return tensor;
  }

  /**
   * The tensor as this backend's own type, or a {@link BackendError}: made elsewhere, freed, or the backend disposed.
   */
  protected own<T extends BackendTensor>(tensor: BackendTensor | undefined, where: string): T {
    this.alive();
    if (tensor !== undefined && this.#freed.has(tensor)) {
      throw new BackendError(`${this.name} backend: ${where}: tensor ${tensor.name} has been freed`);
    }
    if (tensor === undefined || !this.#live.has(tensor)) {
      throw new BackendError(`${this.name} backend: ${where}: tensor ${tensor?.name} was not made by this backend`);
    }
    return tensor as T;
  }

  /** Throws once the backend is disposed. */
  protected alive(): void {
    if (this.#disposed) throw new BackendError(`${this.name} backend: used after dispose()`);
  }

  free(tensor: BackendTensor): void {
    if (this.#disposed || this.#freed.has(tensor)) return;
    this.own(tensor, 'free');
    this.#live.delete(tensor);
    this.#freed.add(tensor);
    this.releaseTensor(tensor);
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.releaseAll();
  }

  async run(graph: Graph, inputs: RunInputs, options: RunOptions = {}): Promise<RunOutputs> {
    this.alive();
    let state = this.#graphs.get(graph);
    if (state === undefined) {
      const handles = graph.tensors.flatMap((t) => (t.handle === undefined ? [] : [t.handle]));
      for (const t of graph.tensors) if (t.handle !== undefined) this.own(t.handle, t.name);
      checkCapabilities(graph, this);
      const plan = planGraph(graph, { limits: this.capabilities.limits, alignment: this.alignment });
      const prepared = Promise.resolve(this.prepare(plan));
      state = { plan, prepared, handles, run: { params: {}, arrays: new Array(graph.tensors.length) } };
      this.#graphs.set(graph, state);
      state.prepared.catch(() => this.#graphs.delete(graph));
    }
    for (const h of state.handles) this.own(h, `graph input ${h.name}`);
    validateRun(graph, inputs, state.run);
    const prepared = await state.prepared;
    this.alive();
    return this.execute(prepared, state.run, options, state.plan);
  }

  /**
   * Copies `n` floats of `src` into the caller's destination for output `name` when one was given (checking its
   * size), or returns `src` itself (a view the next run overwrites).
   */
  protected deliver(options: RunOptions, name: string, src: Float32Array, n: number): Float32Array {
    const dst = options.outputs?.[name];
    if (dst === undefined) return src.subarray(0, n);
    if (dst.length < n) throw new SizeError(`output ${name}: destination has ${dst.length} floats, needs ${n}`);
    dst.set(src.subarray(0, n));
    return dst;
  }
}
