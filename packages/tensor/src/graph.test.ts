import { describe, expect, it } from 'vitest';
import type { BackendTensor } from './backend.js';
import { formatShape, GraphBuilder, GraphError, resolveShape } from './graph.js';

const handle = (name: string, dtype: BackendTensor['dtype'], shape: number[], backend = 'fake'): BackendTensor => ({
  backend,
  name,
  dtype,
  shape,
});

function errorOf(fn: () => unknown): GraphError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(GraphError);
    return e as GraphError;
  }
  throw new Error('expected a GraphError');
}

describe('GraphBuilder', () => {
  it('builds a llama-style block with symbolic token count and infers shapes', () => {
    const b = new GraphBuilder();
    const n = b.param('nTokens', { min: 1, max: 8 });
    const pos = b.param('pos', { max: 63 });
    const tokens = b.input('tokens', 'i32', [n]);
    const emb = b.weight(handle('token_embd', 'q4_0', [512, 64]));
    const x = b.getRows(emb, tokens, { name: 'embd' });
    expect(formatShape(x.shape)).toBe('[nTokens, 64]');
    const h = b.mul(b.rmsNorm(x, 1e-5), b.weight(handle('attn_norm', 'f32', [64])));
    const q = b.rope(b.matmul(b.weight(handle('wq', 'q8_0', [64, 64])), h), pos, { nHeads: 8 });
    const kv = b.matmul(b.weight(handle('wk', 'f16', [32, 64])), h);
    const kc = b.state(handle('cache_k', 'f16', [64, 32]));
    const vc = b.state(handle('cache_v', 'q8_0', [64, 32]));
    b.copy(b.rope(kv, pos, { nHeads: 4, mode: 'neox' }), kc, pos);
    b.copy(kv, vc, pos);
    const att = b.attention(q, kc, vc, pos, { nHeads: 8, nKvHeads: 4 });
    b.output('out', b.add(x, att));
    const g = b.build();
    expect(g.params.map((p) => p.name)).toEqual(['nTokens', 'pos']);
    expect(g.inputs.map((t) => t.name)).toEqual(['tokens']);
    expect(g.nodes.map((nd) => nd.op)).toEqual([
      'get_rows',
      'rms_norm',
      'mul',
      'matmul',
      'rope',
      'matmul',
      'rope',
      'copy',
      'copy',
      'attention',
      'add',
    ]);
    expect(resolveShape(g.outputs[0].tensor.shape, { nTokens: 3 })).toEqual([3, 64]);
    expect(Object.isFrozen(g.nodes)).toBe(true);
    const attNode = g.nodes[9];
    expect(attNode.op === 'attention' && attNode.headDim).toBe(8);
    expect(attNode.op === 'attention' && attNode.scale).toBeCloseTo(1 / Math.sqrt(8), 12);
  });

  it('names the node in shape errors', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'f32', [2, 64]);
    const w = b.weight(handle('w', 'q4_0', [16, 96]));
    const e = errorOf(() => b.matmul(w, x, { name: 'blk.0.q' }));
    expect(e.code).toBe('E_GRAPH');
    expect(e.node).toBe('blk.0.q');
    expect(e.message).toMatch(/\[16, 96\].*\[2, 64\]/);
  });

  it('rejects block-misaligned rows, bad broadcasts, bad heads and non-state caches', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'f32', [2, 48]);
    expect(errorOf(() => b.matmul(b.weight(handle('w', 'q4_0', [4, 48])), x)).message).toMatch(/block size 32/);
    expect(errorOf(() => b.add(x, b.input('y', 'f32', [3, 48]))).node).toBe('add_0');
    expect(errorOf(() => b.rope(x, b.param('p', { max: 9 }), { nHeads: 5 })).message).toMatch(/nHeads 5/);
    const w = b.weight(handle('cache', 'f32', [8, 48]));
    expect(errorOf(() => b.copy(x, w, b.param('p2', { max: 7 }))).message).toMatch(/state/);
    expect(errorOf(() => b.rope(x, b.param('p3', { max: 9 }), { nHeads: 4, nRot: 5 })).message).toMatch(/nRot 5/);
  });

  it('rejects duplicates, foreign tensors, mixed backends and reuse after build', () => {
    const b = new GraphBuilder();
    b.input('x', 'f32', [4]);
    expect(errorOf(() => b.input('x', 'f32', [4])).node).toBe('x');
    const other = new GraphBuilder().input('z', 'f32', [4]);
    expect(errorOf(() => b.silu(other)).message).toMatch(/another graph/);
    b.weight(handle('a', 'f32', [4], 'js'));
    expect(errorOf(() => b.weight(handle('b', 'f32', [4], 'wasm'))).message).toMatch(/backend 'wasm'/);
    const empty = new GraphBuilder();
    expect(errorOf(() => empty.build()).node).toBe('graph');
    const ok = new GraphBuilder();
    ok.output('y', ok.silu(ok.input('x', 'f32', [4])));
    ok.build();
    expect(errorOf(() => ok.input('q', 'f32', [1])).message).toMatch(/already built/);
  });

  it('checks params and position inputs', () => {
    const b = new GraphBuilder();
    expect(errorOf(() => b.param('bad', { min: 3, max: 2 })).node).toBe('bad');
    const n = b.param('n', { max: 4 });
    const x = b.input('x', 'f32', [n, 8]);
    const wrong = b.input('pos', 'i32', [3]);
    expect(errorOf(() => b.rope(x, wrong, { nHeads: 1 })).message).toMatch(/positions pos must be i32 \[n\]/);
  });
});
