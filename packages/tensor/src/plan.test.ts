import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BackendTensor } from './backend.js';
import { GraphBuilder, type TensorRef } from './graph.js';
import { planGraph, validateRun } from './plan.js';

const seed = Number(process.env.FC_SEED ?? 20261201);

/** A random chain-and-branch graph of elementwise ops over values of varied widths. */
function randomGraph(choices: number[]) {
  const b = new GraphBuilder();
  const n = b.param('n', { min: 1, max: 8 });
  const live: TensorRef[] = [b.scale(b.input('x', 'f32', [n, 16]), 1)];
  choices.forEach((c, i) => {
    const a = live[c % live.length];
    const other = live[(c >> 3) % live.length];
    const t =
      c % 4 === 0
        ? b.add(a, other, { name: `add${i}` })
        : c % 4 === 1
          ? b.silu(a, { name: `silu${i}` })
          : c % 4 === 2
            ? b.reshape(b.scale(a, 2, { name: `s${i}` }), [n, 4, 4], { name: `view${i}` })
            : b.mul(a, other, { name: `mul${i}` });
    live.push(t.shape.length === 3 ? b.reshape(t, [n, 16], { name: `flat${i}` }) : t);
  });
  b.output('y', live[live.length - 1]);
  if (live.length > 2) b.output('z', live[1]);
  return b.build();
}

describe('planGraph', () => {
  it('never gives two values that are alive at once the same bytes (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 30 }), (choices) => {
        const graph = randomGraph(choices);
        const plan = planGraph(graph, { alignment: 64 });
        const roots = plan.values.filter((v): v is NonNullable<typeof v> => v !== undefined && v.root === v.tensor.id);
        for (const a of roots) {
          for (const b of roots) {
            if (a === b || a.buffer !== b.buffer) continue;
            const timeOverlap = a.firstNode <= b.lastNode && b.firstNode <= a.lastNode;
            const byteOverlap = a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
            expect(timeOverlap && byteOverlap, `${a.tensor.name} and ${b.tensor.name}`).toBe(false);
          }
          expect(a.offset % 64).toBe(0);
          expect(a.offset + a.bytes).toBeLessThanOrEqual(plan.buffers[a.buffer].bytes);
        }
        // A view shares its root's place; its root lives as long as the view is read.
        for (const v of plan.values) {
          if (v === undefined || v.root === v.tensor.id) continue;
          const r = plan.values[v.root];
          expect([v.buffer, v.offset]).toEqual([r?.buffer, r?.offset]);
          const lastRead = plan.consumers[v.tensor.id].at(-1) ?? -1;
          expect(r?.lastNode).toBeGreaterThanOrEqual(lastRead);
        }
      }),
      { seed, numRuns: 200 },
    );
  });

  it('reuses memory: a long chain needs two buffers worth, not one per node', () => {
    const b = new GraphBuilder();
    let x = b.scale(b.input('x', 'f32', [1024]), 1);
    for (let i = 0; i < 50; i++) x = b.silu(x);
    b.output('y', x);
    const plan = planGraph(b.build());
    expect(plan.buffers.reduce((s, buf) => s + buf.bytes, 0)).toBe(2 * 4096);
  });

  it('splits buffers at maxBufferBytes and refuses a value above maxBindingBytes, naming it', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'f32', [1024]);
    const y = b.add(b.scale(x, 1, { name: 'a' }), b.scale(x, 2, { name: 'b' }), { name: 'sum' });
    b.output('y', y);
    const graph = b.build();
    const plan = planGraph(graph, { limits: { maxBufferBytes: 4096, maxBindingBytes: 4096 } });
    expect(plan.buffers.length).toBe(3);
    expect(plan.buffers.every((buf) => buf.bytes <= 4096)).toBe(true);
    expect(() => planGraph(graph, { limits: { maxBufferBytes: 1 << 20, maxBindingBytes: 1000 } })).toThrow(
      /^a: result needs 4096 bytes .* largest binding \(1000 bytes\)/,
    );
  });

  it('lists adjacent single-use producer/consumer pairs as fusions, never through an output', () => {
    const w: BackendTensor = { backend: 'x', name: 'w', dtype: 'f32', shape: [8, 8] };
    const cache: BackendTensor = { backend: 'x', name: 'c', dtype: 'f32', shape: [4, 8] };
    const b = new GraphBuilder();
    const pos = b.param('pos', { max: 3 });
    const x = b.input('x', 'f32', [1, 8]);
    const k = b.rope(b.matmul(b.weight(w), x, { name: 'mm' }), pos, { nHeads: 1, name: 'rope' });
    b.copy(k, b.state(cache), pos, { name: 'store' });
    const v = b.matmul(b.weight(w), x, { name: 'mm2' });
    b.output('v', v);
    b.output('s', b.silu(v));
    const plan = planGraph(b.build());
    expect(plan.fusions.map((f) => f.kind)).toEqual(['matmul+rope', 'rope+copy']);
  });
});

describe('validateRun', () => {
  const b = new GraphBuilder();
  const n = b.param('n', { min: 1, max: 4 });
  b.output('y', b.silu(b.input('x', 'f32', [n, 3])));
  const graph = b.build();
  it('binds params and inputs, and fills a reused run in place', () => {
    const into = { params: {}, arrays: [] };
    const run = validateRun(graph, { x: new Float32Array(6), n: 2 }, into);
    expect(run).toBe(into);
    expect(run.params.n).toBe(2);
  });
  it('names the input or param at fault', () => {
    expect(() => validateRun(graph, { x: new Float32Array(6), n: 5 })).toThrow(
      /^n: param needs an integer in \[1, 4\]/,
    );
    expect(() => validateRun(graph, { x: new Float32Array(5), n: 2 })).toThrow(/^x: input needs 6 elements/);
    expect(() => validateRun(graph, { x: new Int32Array(6), n: 2 })).toThrow(/^x: input needs a Float32Array/);
    expect(() => validateRun(graph, { x: new Float32Array(6), n: 2, m: 1 })).toThrow(/^m: is neither/);
  });
});
