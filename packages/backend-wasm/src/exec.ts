/**
 * The step interpreter every thread runs, the calling thread and each pool worker alike (ggml's design): walk the
 * whole program of a step, take this thread's share of each node (rows, tokens or elements, split the same way on
 * every thread), and meet the others at a barrier after each node. Shared by the main bundle and the worker script,
 * so it imports nothing but types.
 */

/** The kernel exports of the WebAssembly module (see assembly/kernels.ts for each one's contract). */
export interface Kernels {
  heapBase(): number;
  /** Relaxed-SIMD build: q4_0/q4_1 activations of fewer tokens than this go in layout 4; 0 in the plain build. */
  relaxedDecodeTokens(): number;
  decodeRow(fmt: number, w: number, r: number, rowBytes: number, dst: number, n: number): void;
  repack8(fmt: number, src: number, dst: number, rows: number, n: number, back: number): void;
  matmulF32(...a: number[]): void;
  matmulQ4_0(...a: number[]): void;
  matmulQ8_0(...a: number[]): void;
  matmulQ4_1(...a: number[]): void;
  matmulRows(...a: number[]): void;
  matmulQ4_K(...a: number[]): void;
  matmulQ6_K(...a: number[]): void;
  quantQ8_0(...a: number[]): void;
  quantQ8_K(...a: number[]): void;
  roundRows(...a: number[]): void;
  fixQ8_1(...a: number[]): void;
  addBiasResidual(...a: number[]): void;
  getRows(...a: number[]): void;
  norm(...a: number[]): void;
  softmax(...a: number[]): void;
  eltwise(...a: number[]): void;
  rope(...a: number[]): void;
  copyRows(...a: number[]): void;
  attention(...a: number[]): void;
}

/** Element-wise ops and element-split activation quantization share work in units of this many elements. */
export const elementAlign = 256;

/** Word offsets in the control block (an Int32Array over the shared memory at the block's address). */
export const ctl = Object.freeze({
  seq: 0,
  cmd: 1,
  prog: 2,
  argPtr: 3,
  argLen: 4,
  barCount: 5,
  barGen: 6,
  barSleepers: 7,
  idleSleepers: 8,
  threads: 9,
  failed: 10,
  /** Per thread (up to 4 shown in errors): index of the op it last started, for the stuck-barrier message. */
  progress: 11,
  /** Param values of the current step, by the program's param index. */
  params: 16,
  /** A worker's error message (length, then UTF-16 codes, up to `tickets`). */
  error: 128,
  /**
   * Row counters of the matmuls that share their rows dynamically (an op's `ticket` indexes from here), zeroed by
   * the caller before each step.
   */
  tickets: 256,
  /** How many matmuls of a program can have a counter; later ones split their rows statically. */
  maxTickets: 256,
  /** Bytes of the control block. */
  bytes: 2048,
});

/** Commands the caller posts through the control block. */
export const cmd = Object.freeze({ run: 1, load: 2, drop: 3, exit: 4 });

/** A count that scales with the step's params: `m · Π params[p]`. */
export interface Count {
  readonly m: number;
  readonly p: readonly number[];
}

/** Matmul kernel choice. */
export type MatmulKernel = 'f32' | 'q4_0' | 'q4_1' | 'q8_0' | 'q4_K' | 'q6_K' | 'rows';

/** One node as the interpreter sees it: pointers into the memory, sizes, and the kernel to call. */
export type Op = OpBody & {
  /** Meet the other threads before this op (see sync.ts); absent: always. */
  readonly sync?: boolean;
};

type OpBody =
  | {
      readonly k: 'matmul';
      readonly kernel: MatmulKernel;
      readonly fmt: number;
      readonly w: number;
      readonly rowBytes: number;
      readonly x: number;
      readonly y: number;
      readonly n: number;
      readonly outF: number;
      readonly tokens: Count;
      /** 0 none, 1 q8_0, 2 q8_K, 3 q8_1 (decoded + s), 4 round to f16, 5 round to bf16. */
      readonly quant: number;
      /** Activation quantization split in shares of this many elements (the row length: by rows). */
      readonly qalign?: number;
      readonly layout: number;
      /** The quantized activations are already there (the previous node of this class read the same x). */
      readonly reuse: boolean;
      readonly aq: number;
      readonly ad: number;
      readonly as: number;
      readonly deq: number;
      readonly s81: number;
      readonly fix81: boolean;
      readonly bias: number;
      readonly res: number;
      readonly scratch: number;
      readonly scratchStride: number;
      /** Per thread: room for one row group's weights expanded by the prompt path (0: none needed). */
      readonly expand: number;
      readonly expandStride: number;
      /**
       * With several threads: the word (from `ctl.tickets`) counting the chunks of `chunk` rows handed out so far.
       * Each thread takes the next chunk until none is left, so a thread slowed down (by another process on a
       * busy machine) leaves its rows to the others instead of holding everyone at the next barrier. Absent: the
       * rows are split in equal static shares.
       */
      readonly ticket?: number;
      readonly chunk?: number;
    }
  | {
      readonly k: 'get_rows';
      readonly fmt: number;
      readonly w: number;
      readonly rowBytes: number;
      readonly ids: number;
      readonly out: number;
      readonly n: number;
      readonly rows: Count;
    }
  | {
      readonly k: 'norm';
      readonly x: number;
      readonly out: number;
      readonly w: number;
      readonly b: number;
      readonly n: number;
      readonly eps: number;
      readonly layer: number;
      readonly rows: Count;
    }
  | { readonly k: 'softmax'; readonly x: number; readonly out: number; readonly n: number; readonly rows: Count }
  | {
      readonly k: 'eltwise';
      readonly op: number;
      readonly a: number;
      readonly b: number;
      readonly out: number;
      readonly f: number;
      readonly bn: number;
      readonly elements: Count;
    }
  | {
      readonly k: 'rope';
      readonly x: number;
      readonly out: number;
      readonly nHeads: number;
      readonly headDim: number;
      readonly nRot: number;
      readonly neox: number;
      readonly theta: number;
      readonly mscale: number;
      readonly pos: number;
      readonly startParam: number;
      readonly scratch: number;
      readonly scratchStride: number;
      readonly rows: Count;
    }
  | {
      readonly k: 'copy';
      readonly fmt: number;
      readonly src: number;
      readonly dst: number;
      readonly dstBytes: number;
      readonly n: number;
      readonly pos: number;
      readonly startParam: number;
      readonly rows: Count;
    }
  | {
      readonly k: 'attention';
      readonly q: number;
      readonly kc: number;
      readonly vc: number;
      readonly cacheBytes: number;
      readonly fmt: number;
      readonly out: number;
      readonly nHeads: number;
      readonly nKv: number;
      readonly hd: number;
      readonly scale: number;
      readonly softcap: number;
      readonly window: number;
      readonly pos: number;
      readonly startParam: number;
      readonly sc: number;
      readonly scStride: number;
      readonly tmp: number;
      readonly tmpStride: number;
      readonly rows: Count;
    };

/** A compiled graph: what every thread walks each step. */
export interface Program {
  readonly id: number;
  readonly ops: readonly Op[];
}

/** This thread's share [lo, hi) of `total` units in chunks of `align`, the same split on every thread. */
export function share(total: number, nth: number, tid: number, align: number): [number, number] {
  if (nth === 1) return [0, total];
  const units = Math.ceil(total / align);
  const per = Math.floor(units / nth);
  const extra = units % nth;
  const lo = (tid * per + Math.min(tid, extra)) * align;
  const hi = lo + (per + (tid < extra ? 1 : 0)) * align;
  return [Math.min(lo, total), Math.min(hi, total)];
}

const spinBarrier = 20000;

/**
 * Waits until all `nth` threads have arrived: a counter in shared memory, a short spin, then `Atomics.wait` (when
 * `canWait`: a browser's main thread may not block, so it only spins).
 */
export function barrier(c: Int32Array, nth: number, canWait: boolean): void {
  const gen = Atomics.load(c, ctl.barGen);
  if (Atomics.add(c, ctl.barCount, 1) === nth - 1) {
    Atomics.store(c, ctl.barCount, 0);
    Atomics.add(c, ctl.barGen, 1);
    if (Atomics.load(c, ctl.barSleepers) > 0) Atomics.notify(c, ctl.barGen);
    return;
  }
  for (let i = 0; i < spinBarrier; i++) if (Atomics.load(c, ctl.barGen) !== gen) return;
  const t0 = Date.now();
  if (!canWait) {
    while (Atomics.load(c, ctl.barGen) === gen) if (Date.now() - t0 > stuckMs) stuck(c, nth);
    return;
  }
  Atomics.add(c, ctl.barSleepers, 1);
  while (Atomics.load(c, ctl.barGen) === gen) {
    Atomics.wait(c, ctl.barGen, gen, 1000);
    if (Date.now() - t0 > stuckMs) {
      Atomics.sub(c, ctl.barSleepers, 1);
      stuck(c, nth);
    }
  }
  Atomics.sub(c, ctl.barSleepers, 1);
}

/** A barrier that waited this long means a thread is gone (killed, crashed): fail rather than hang. */
const stuckMs = 30000;

function stuck(c: Int32Array, nth: number): never {
  throw new Error(
    `wasm backend: threads stopped meeting at a barrier (${Atomics.load(c, ctl.barCount)} of ${nth} arrived after ${stuckMs} ms; ops reached ${Array.from(c.subarray(ctl.progress, ctl.progress + Math.min(4, nth))).join(', ')}; seq ${c[ctl.seq]}, cmd ${c[ctl.cmd]})`,
  );
}

function count(c: Count, params: Int32Array): number {
  let n = c.m;
  for (const p of c.p) n *= params[ctl.params + p];
  return n;
}

/** Milliseconds and calls per op kind (matmuls by kernel), filled while `WasmBackend.profile` is set. */
export type Profile = Record<string, { ms: number; calls: number }>;

/** Rows [r0, r1) of a matmul node (`r0` a multiple of 8) for `nTok` tokens, with its epilogue. */
function runMatmul(
  k: Kernels,
  op: Extract<Op, { k: 'matmul' }>,
  nTok: number,
  r0: number,
  r1: number,
  tid: number,
): void {
  const scratch = op.scratch + tid * op.scratchStride;
  const expand = op.expand + tid * op.expandStride;
  switch (op.kernel) {
    case 'q4_0':
      k.matmulQ4_0(op.w, op.aq, op.ad, op.as, op.y, op.n, op.outF, nTok, r0, r1, expand);
      break;
    case 'q4_1':
      k.matmulQ4_1(op.w, op.aq, op.ad, op.s81, op.y, op.n, op.outF, nTok, r0, r1, expand);
      break;
    case 'q8_0':
      k.matmulQ8_0(op.w, op.aq, op.ad, op.y, op.n, op.outF, nTok, r0, r1, expand);
      break;
    case 'q4_K':
      k.matmulQ4_K(op.w, op.aq, op.ad, op.as, op.y, op.n, op.outF, nTok, r0, r1);
      break;
    case 'rows':
      k.matmulRows(
        op.fmt,
        op.w,
        op.rowBytes,
        op.aq,
        op.ad,
        op.quant === 3 ? op.s81 : op.as,
        op.y,
        op.n,
        op.outF,
        nTok,
        r0,
        r1,
      );
      break;
    case 'q6_K':
      k.matmulQ6_K(op.w, op.aq, op.ad, op.as, op.y, op.n, op.outF, nTok, r0, r1);
      break;
    default:
      k.matmulF32(op.fmt, op.w, op.rowBytes, op.deq || op.x, op.y, op.n, op.outF, nTok, r0, r1, scratch);
  }
  if (op.fix81) k.fixQ8_1(op.fmt, op.w, op.rowBytes, op.ad, op.as, op.s81, op.y, op.n, op.outF, nTok, r0, r1);
  if (op.bias !== 0 || op.res !== 0) k.addBiasResidual(op.y, op.bias, op.res, op.outF, nTok, r0, r1);
}

/**
 * Runs this thread's share of every op of a program; `c` is the control block (params live there). With `profile`,
 * the time of each op (this thread's share plus its barrier) is added under its kind.
 */
export function runProgram(
  prog: Program,
  k: Kernels,
  c: Int32Array,
  tid: number,
  nth: number,
  canWait: boolean,
  profile?: Profile,
): void {
  const sync = nth > 1;
  const relaxedBelow = k.relaxedDecodeTokens();
  let index = 0;
  let t0 = profile ? performance.now() : 0;
  for (const op of prog.ops) {
    if (sync && tid < 4) c[ctl.progress + tid] = index++;
    if (sync && op.sync !== false) barrier(c, nth, canWait);
    switch (op.k) {
      case 'matmul': {
        const nTok = count(op.tokens, c);
        if (op.quant !== 0 && !op.reuse) {
          const per = op.quant === 2 ? 256 : 32;
          const [e0, e1] = share(nTok * op.n, nth, tid, op.qalign ?? op.n);
          const b0 = e0 / per;
          const b1 = e1 / per;
          if (op.quant === 1 || op.quant === 3) {
            // The relaxed build's q4_0/q4_1 decode paths take int8 activations in order (layout 4), not layout 3.
            const layout = op.layout === 3 && nTok < relaxedBelow ? 4 : op.layout;
            k.quantQ8_0(op.x, b0, b1, op.aq, op.ad, op.as, layout, op.deq, op.s81);
          } else if (op.quant === 2) k.quantQ8_K(op.x, b0, b1, op.aq, op.ad, op.as, op.layout, op.deq);
          else k.roundRows(op.x, op.deq, e0, e1, op.quant === 5 ? 1 : 0);
          if (sync) barrier(c, nth, canWait);
        }
        if (nTok === 0) break;
        if (op.ticket !== undefined && op.chunk !== undefined && sync) {
          // Dynamic rows: a chunk's rows are computed by one kernel call, as a static share's are, so every output
          // is the same whichever thread takes it.
          for (;;) {
            const r0 = Atomics.add(c, ctl.tickets + op.ticket, 1) * op.chunk;
            if (r0 >= op.outF) break;
            runMatmul(k, op, nTok, r0, Math.min(op.outF, r0 + op.chunk), tid);
          }
        } else {
          const [r0, r1] = share(op.outF, nth, tid, 8);
          if (r1 > r0) runMatmul(k, op, nTok, r0, r1, tid);
        }
        break;
      }
      case 'get_rows': {
        const [r0, r1] = share(count(op.rows, c), nth, tid, 1);
        k.getRows(op.fmt, op.w, op.rowBytes, op.ids, op.out, op.n, r0, r1);
        break;
      }
      case 'norm': {
        const [r0, r1] = share(count(op.rows, c), nth, tid, 1);
        k.norm(op.x, op.out, op.w, op.b, op.n, op.eps, op.layer, r0, r1);
        break;
      }
      case 'softmax': {
        const [r0, r1] = share(count(op.rows, c), nth, tid, 1);
        k.softmax(op.x, op.out, op.n, r0, r1);
        break;
      }
      case 'eltwise': {
        const [e0, e1] = share(count(op.elements, c), nth, tid, elementAlign);
        k.eltwise(op.op, op.a, op.b, op.out, op.f, op.bn, e0, e1);
        break;
      }
      case 'rope': {
        const [r0, r1] = share(count(op.rows, c), nth, tid, 1);
        const start = op.startParam >= 0 ? c[ctl.params + op.startParam] : 0;
        k.rope(
          op.x,
          op.out,
          op.nHeads,
          op.headDim,
          op.nRot,
          op.neox,
          op.theta,
          op.mscale,
          op.pos,
          start,
          op.scratch + tid * op.scratchStride,
          r0,
          r1,
        );
        break;
      }
      case 'copy': {
        const [r0, r1] = share(count(op.rows, c), nth, tid, 1);
        const start = op.startParam >= 0 ? c[ctl.params + op.startParam] : 0;
        k.copyRows(op.fmt, op.src, op.dst, op.n, op.pos, start, r0, r1);
        break;
      }
      case 'attention': {
        const rows = count(op.rows, c);
        const [i0, i1] = share(rows * op.nHeads, nth, tid, 1);
        const start = op.startParam >= 0 ? c[ctl.params + op.startParam] : 0;
        k.attention(
          op.q,
          op.kc,
          op.vc,
          op.fmt,
          op.out,
          op.nHeads,
          op.nKv,
          op.hd,
          op.scale,
          op.softcap,
          op.window,
          op.pos,
          start,
          op.sc + tid * op.scStride,
          op.tmp + tid * op.tmpStride,
          i0,
          i1,
        );
        break;
      }
    }
    if (profile !== undefined) {
      const t1 = performance.now();
      const key = op.k === 'matmul' ? `matmul ${op.kernel === 'f32' ? `f32 (fmt ${op.fmt})` : op.kernel}` : op.k;
      const e = (profile[key] ??= { ms: 0, calls: 0 });
      e.ms += t1 - t0;
      e.calls++;
      t0 = t1;
    }
  }
}

const spinIdle = 50000;

/** A worker's error, as UTF-16 codes in the control block's tail, read by {@link readError}. */
function writeError(c: Int32Array, e: unknown): void {
  const s = String(e).slice(0, ctl.tickets - ctl.error - 1);
  c[ctl.error] = s.length;
  for (let i = 0; i < s.length; i++) c[ctl.error + 1 + i] = s.charCodeAt(i);
  Atomics.store(c, ctl.failed, 1);
}

/** The error a worker left (and clears the flag), or undefined. */
export function readError(c: Int32Array): string | undefined {
  if (Atomics.exchange(c, ctl.failed, 0) === 0) return undefined;
  let s = '';
  for (let i = 0; i < c[ctl.error]; i++) s += String.fromCharCode(c[ctl.error + 1 + i]);
  return s;
}

/**
 * A pool worker's life: wait for the caller's next command (spin, then sleep on the sequence word), load programs
 * it is sent (JSON in the shared memory), run its share of steps, until told to exit.
 */
export function workerLoop(k: Kernels, memory: WebAssembly.Memory, ctlPtr: number, tid: number): void {
  const programs = new Map<number, Program>();
  let c = new Int32Array(memory.buffer, ctlPtr, ctl.bytes / 4);
  const nth = c[ctl.threads];
  // The caller posts nothing before every worker is ready, so the first command is seq 1 (reading the word here
  // could already see it, and miss it).
  let seen = 0;
  const decoder = new TextDecoder();
  for (;;) {
    let spins = 0;
    while (Atomics.load(c, ctl.seq) === seen) {
      if (++spins < spinIdle) continue;
      Atomics.add(c, ctl.idleSleepers, 1);
      Atomics.wait(c, ctl.seq, seen, 1000);
      Atomics.sub(c, ctl.idleSleepers, 1);
    }
    seen = Atomics.load(c, ctl.seq);
    // The memory may have grown since: grow(0) makes this thread's buffer object catch up (V8 may otherwise keep
    // the old length while a thread never returns to its event loop).
    memory.grow(0);
    if (c.buffer !== memory.buffer) c = new Int32Array(memory.buffer, ctlPtr, ctl.bytes / 4);
    const command = c[ctl.cmd];
    if (command === cmd.exit) return;
    if (command === cmd.load) {
      try {
        const bytes = new Uint8Array(memory.buffer, c[ctl.argPtr], c[ctl.argLen]).slice();
        const prog = JSON.parse(decoder.decode(bytes)) as Program;
        programs.set(prog.id, prog);
      } catch (e) {
        writeError(c, e);
      }
      barrier(c, nth, true);
    } else if (command === cmd.drop) {
      programs.delete(c[ctl.prog]);
      barrier(c, nth, true);
    } else if (command === cmd.run) {
      const prog = programs.get(c[ctl.prog]);
      if (prog === undefined) {
        writeError(c, `no program ${c[ctl.prog]}`);
        barrier(c, nth, true);
      } else {
        runProgram(prog, k, c, tid, nth, true);
        barrier(c, nth, true);
      }
    }
  }
}
