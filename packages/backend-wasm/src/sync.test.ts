import { describe, expect, it } from 'vitest';
import type { Count, Op } from './exec.js';
import { planBarriers } from './sync.js';

// One decode row of a 64-wide model: norm x -> h, q/k/v projections of h, then an add reading q.
const one: Count = { m: 1, p: [] };
const norm = (x: number, out: number): Op => ({ k: 'norm', x, out, w: 0, b: 0, n: 64, eps: 1e-5, layer: 0, rows: one });
const matmul = (x: number, y: number, reuse: boolean): Op => ({
  k: 'matmul',
  kernel: 'q4_0',
  fmt: 2,
  w: 0,
  rowBytes: 36,
  x,
  y,
  n: 64,
  outF: 64,
  tokens: one,
  quant: 1,
  layout: 3,
  reuse,
  aq: 10_000,
  ad: 11_000,
  as: 12_000,
  deq: 0,
  s81: 0,
  fix81: false,
  bias: 0,
  res: 0,
  scratch: 0,
  scratchStride: 0,
  expand: 0,
  expandStride: 0,
});
const add = (a: number, b: number, out: number): Op => ({
  k: 'eltwise',
  op: 0,
  a,
  b,
  out,
  f: 0,
  bn: 0,
  elements: { m: 64, p: [] },
});

describe('planBarriers', () => {
  it("quantizes a norm's rows on the thread that wrote them, runs q, k and v projections without meeting, and meets before reading another thread's output", () => {
    const ops = planBarriers(
      [
        norm(0, 1000),
        matmul(1000, 2000, false),
        matmul(1000, 3000, true),
        matmul(1000, 4000, true),
        add(2000, 3000, 5000),
      ],
      (c) => c.m,
    );
    expect(ops.map((o) => o.sync)).toEqual([false, false, false, false, true]);
  });

  it("splits a single row's quantization by elements, and by rows after a norm that split the same rows", () => {
    const [, q] = planBarriers([add(0, 0, 1000), matmul(1000, 2000, false)], (c) => c.m);
    expect(q.k === 'matmul' && q.qalign).toBe(256);
    const [, r] = planBarriers([norm(0, 1000), matmul(1000, 2000, false)], (c) => c.m);
    expect(r.k === 'matmul' && r.qalign).toBe(64);
  });

  it('meets before an op that overwrites what an earlier op of the step still reads', () => {
    const ops = planBarriers([add(0, 0, 1000), norm(1000, 2000), add(5000, 5000, 1000)], (c) => c.m);
    expect(ops.map((o) => o.sync)).toEqual([false, true, true]);
  });

  it("meets before reading a dynamically shared matmul's rows, which any thread may have written", () => {
    // q then k = W·x + q (its residual): with static shares each thread adds the q rows it wrote itself.
    const q = matmul(1000, 2000, false);
    const k = { ...matmul(1000, 3000, true), res: 2000 } as Op;
    const fixed = planBarriers([norm(0, 1000), q, k], (c) => c.m);
    expect(fixed.map((o) => o.sync)).toEqual([false, false, false]);
    const dyn = (o: Op, ticket: number) => ({ ...o, ticket, chunk: 8 }) as Op;
    const shared = planBarriers([norm(0, 1000), dyn(q, 0), dyn(k, 1)], (c) => c.m);
    expect(shared.map((o) => o.sync)).toEqual([false, false, true]);
  });
});
