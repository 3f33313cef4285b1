// The page of matvec-ab.ts: one q4_0 matvec graph per shape on a relaxed-SIMD and a plain-SIMD 'wasm' backend
// (1 thread), the calls alternating between them; leaves medians and minima on window.__bench.
import '@nibble/backend-wasm';
import { type Backend, createBackend, GraphBuilder, hostTensor } from '@nibble/tensor';

const out = globalThis as unknown as { __bench?: unknown };
const q = new URLSearchParams(location.search);
const calls = Number(q.get('calls') ?? 60);
// Copies of each weight, cycled through, so that with enough of them the weights stream from memory as in a model's
// decode step (one copy: they stay in the last-level cache).
const copies = Number(q.get('copies') ?? 1);

/** Random q4_0 bytes: fp16 scales 2^-7 (0x2000), random nibbles. */
function q4_0(rows: number, cols: number): Uint8Array {
  const b = new Uint8Array((rows * cols * 18) / 32);
  for (let k = 0; k < b.length; k += 18) {
    b[k] = 0;
    b[k + 1] = 0x20;
    for (let j = 2; j < 18; j++) b[k + j] = (Math.random() * 256) | 0;
  }
  return b;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

try {
  const builds: [string, Backend][] = [
    ['relaxed-simd', await createBackend('wasm', { threads: 1, relaxedSimd: true, matmulActivations: 'ggml' })],
    ['simd128', await createBackend('wasm', { threads: 1, relaxedSimd: false, matmulActivations: 'ggml' })],
  ];
  const rows: { shape: string; build: string; medianGBs: number; bestGBs: number; medianMs: number }[] = [];
  let identical = true;
  for (const [outF, inF] of [
    [2048, 2048],
    [5632, 2048],
    [2048, 5632],
  ]) {
    const bytes = q4_0(outF, inF);
    const x = new Float32Array(inF).map(() => Math.random() - 0.5);
    const runs = [];
    for (const [name, b] of builds) {
      const graphs = [];
      for (let k = 0; k < copies; k++) {
        const w = await b.upload(hostTensor('q4_0', [outF, inF], bytes));
        const g = new GraphBuilder();
        const xi = g.input('x', 'f32', [1, inF]);
        g.output('y', g.matmul(g.weight(w), xi));
        graphs.push(g.build());
      }
      runs.push({ name, b, graphs, ms: [] as number[], y: new Float32Array(0) as Float32Array });
    }
    for (let c = 0; c < calls + 5; c++) {
      for (const r of runs) {
        const graph = r.graphs[c % copies];
        const t0 = performance.now();
        const { y } = await r.b.run(graph, { x });
        const t = performance.now() - t0;
        if (c >= 5) r.ms.push(t);
        r.y = y;
      }
    }
    const a = new Uint32Array(runs[0].y.buffer, runs[0].y.byteOffset, runs[0].y.length);
    const b = new Uint32Array(runs[1].y.buffer, runs[1].y.byteOffset, runs[1].y.length);
    if (a.length !== b.length || a.some((v, k) => v !== b[k])) identical = false;
    for (const r of runs) {
      const med = median(r.ms);
      const best = Math.min(...r.ms);
      rows.push({
        shape: `[${outF}, ${inF}]`,
        build: r.name,
        medianMs: med,
        medianGBs: bytes.length / med / 1e6,
        bestGBs: bytes.length / best / 1e6,
      });
    }
  }
  out.__bench = { rows, identical };
} catch (e) {
  out.__bench = { error: String((e as Error)?.stack ?? e) };
}
