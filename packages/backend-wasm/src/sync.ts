/**
 * Where the threads of a step must meet. Every op of a program used to end at a barrier; most need not: q, k and
 * v projections read the same input and write different outputs, a rope and the cache copy of the same rows run
 * on the same thread, a norm's rows are quantized by the thread that normalized them. This pass walks the program
 * once at plan time, tracks the memory written and read since the last barrier, and puts a barrier before an op
 * only where it reads what another thread may have written there (or writes what another thread may still read).
 * Imports nothing but types, like exec.ts.
 */
import { type Count, elementAlign, type Op } from './exec.js';

/**
 * Bytes [at, at + bytes) of the memory. `stride` > 0: each thread touches only the rows (or elements) of its own
 * share, `stride` bytes apart; two such regions are the same thread's bytes only when they start at the same
 * address with the same stride (a buffer reused for rows of another length is not).
 */
interface Region {
  readonly at: number;
  readonly bytes: number;
  readonly stride: number;
}

interface Access {
  readonly reads: Region[];
  readonly writes: Region[];
  /** Ops with the same key split their rows or elements identically across threads. */
  readonly part: string;
}

const key = (c: Count) => `${c.m}*${c.p.join('*')}`;

/**
 * Sets `sync` (a barrier before the op) on each op and picks how each quantizing matmul splits its activation
 * quantization: by rows when the rows' producer split them the same way (no barrier between), by elements
 * otherwise (balanced when a decode step has one row). `max` gives a count's largest value (params at their max).
 */
export function planBarriers(ops: readonly Op[], max: (c: Count) => number): Op[] {
  const out: Op[] = [];
  let pending: Access[] = [];
  const conflicts = (b: Access): boolean =>
    pending.some((a) => {
      const same = a.part === b.part;
      const hit = (x: Region, y: Region) =>
        x.at < y.at + y.bytes &&
        y.at < x.at + x.bytes &&
        !(same && x.stride > 0 && x.stride === y.stride && x.at === y.at);
      return (
        a.writes.some((w) => b.reads.some((r) => hit(w, r)) || b.writes.some((v) => hit(w, v))) ||
        a.reads.some((r) => b.writes.some((w) => hit(r, w)))
      );
    });
  const place = (acc: Access): boolean => {
    const sync = conflicts(acc);
    if (sync) pending = [];
    pending.push(acc);
    return sync;
  };
  const R = (at: number, bytes: number, stride = 0): Region => ({ at, bytes, stride });
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    switch (op.k) {
      case 'matmul': {
        const nTok = max(op.tokens);
        const per = op.quant === 2 ? 16 : 32;
        let sync = false;
        let qalign = elementAlign;
        if (op.quant !== 0 && !op.reuse) {
          // Split by rows when the op that wrote x since the last barrier split the same rows the same way.
          const rowsPart = `rows:${key(op.tokens)}`;
          const producer = [...pending].reverse().find((a) => a.writes.some((w) => w.at === op.x));
          if (producer !== undefined && producer.part === rowsPart) qalign = op.n;
          const part = qalign === op.n ? rowsPart : `el:${key({ m: op.tokens.m * op.n, p: op.tokens.p })}`;
          const writes = [
            R(op.aq, nTok * op.n * 2, op.n * 2),
            R(op.ad, nTok * Math.ceil(op.n / per) * 4, Math.ceil(op.n / per) * 4),
            R(op.as, nTok * Math.ceil(op.n / per) * 4, Math.ceil(op.n / per) * 4),
          ];
          if (op.deq !== 0) writes.push(R(op.deq, nTok * op.n * 4, op.n * 4));
          if (op.s81 !== 0) writes.push(R(op.s81, nTok * Math.ceil(op.n / per) * 4, Math.ceil(op.n / per) * 4));
          sync = place({ reads: [R(op.x, nTok * op.n * 4, op.n * 4)], writes, part });
          // The matmul reads every thread's quantized rows: the barrier after quantizing is always there.
          pending = [];
        }
        const reads = [
          R(op.x, nTok * op.n * 4),
          R(op.aq, nTok * op.n * 2),
          R(op.ad, nTok * op.n),
          R(op.as, nTok * op.n),
        ];
        if (op.deq !== 0) reads.push(R(op.deq, nTok * op.n * 4));
        if (op.s81 !== 0) reads.push(R(op.s81, nTok * op.n));
        // The epilogue adds the residual of its own output elements only. Rows handed out dynamically (`ticket`)
        // may go to any thread: then no later op reads them as its own, and the residual must be complete.
        const dyn = op.ticket !== undefined;
        const rowBytes = dyn ? 0 : op.outF * 4;
        if (op.res !== 0) reads.push(R(op.res, nTok * op.outF * 4, rowBytes));
        const part = dyn ? `dyn:${i}` : `out:${op.outF}`;
        const m = place({ reads, writes: [R(op.y, nTok * op.outF * 4, rowBytes)], part });
        out.push({ ...op, sync: sync || (op.quant === 0 || op.reuse ? m : false), qalign });
        break;
      }
      case 'get_rows': {
        const rows = max(op.rows);
        const part = `rows:${key(op.rows)}`;
        out.push({
          ...op,
          sync: place({ reads: [R(op.ids, rows * 4)], writes: [R(op.out, rows * op.n * 4, op.n * 4)], part }),
        });
        break;
      }
      case 'norm':
      case 'softmax': {
        const bytes = max(op.rows) * op.n * 4;
        const part = `rows:${key(op.rows)}`;
        const rowed = (at: number) => R(at, bytes, op.n * 4);
        out.push({ ...op, sync: place({ reads: [rowed(op.x)], writes: [rowed(op.out)], part }) });
        break;
      }
      case 'eltwise': {
        const e = max(op.elements);
        const part = `el:${key(op.elements)}`;
        const reads: Region[] = [];
        // Fused glu rows [g | u] are read at other indices than the output's: not local.
        if (op.op >= 6 && op.bn > 0) reads.push(R(op.a, e * 8));
        else reads.push(R(op.a, e * 4, 4));
        if (op.b !== 0) reads.push(op.bn > 0 && op.op < 6 ? R(op.b, op.bn * 4) : R(op.b, e * 4, 4));
        out.push({ ...op, sync: place({ reads, writes: [R(op.out, e * 4, 4)], part }) });
        break;
      }
      case 'rope': {
        const rows = max(op.rows);
        const bytes = rows * op.nHeads * op.headDim * 4;
        const reads = [R(op.x, bytes, op.nHeads * op.headDim * 4)];
        if (op.pos !== 0) reads.push(R(op.pos, rows * 4));
        const part = `rows:${key(op.rows)}`;
        out.push({ ...op, sync: place({ reads, writes: [R(op.out, bytes, op.nHeads * op.headDim * 4)], part }) });
        break;
      }
      case 'copy': {
        const rows = max(op.rows);
        const reads = [R(op.src, rows * op.n * 4, op.n * 4)];
        if (op.pos !== 0) reads.push(R(op.pos, rows * 4));
        const part = `rows:${key(op.rows)}`;
        out.push({ ...op, sync: place({ reads, writes: [R(op.dst, op.dstBytes)], part }) });
        break;
      }
      case 'attention': {
        const rows = max(op.rows);
        const bytes = rows * op.nHeads * op.hd * 4;
        const reads = [R(op.q, bytes), R(op.kc, op.cacheBytes), R(op.vc, op.cacheBytes)];
        if (op.pos !== 0) reads.push(R(op.pos, rows * 4));
        out.push({ ...op, sync: place({ reads, writes: [R(op.out, bytes)], part: 'heads' }) });
        break;
      }
    }
  }
  return out;
}
