// The common-shape cases of the matmul benchmark (see ../lib/results.ts), from the record bench.ts writes.
import { type BenchCase, makeCase } from '../lib/results.js';

/** The part of matmul.json's record the cases read. */
export interface MatmulDetails {
  runs: number;
  multiRuns?: number;
  jsReadGBs: { before: number; after: number };
  ggmlGBs: Record<string, number>;
  rows: { format: string; shape: string; mode: 'f32' | 'ggml'; gbs: number }[];
  multi?: { format: string; shape: string; tokens: number; mode: 'f32' | 'ggml'; gbs: number; tokPerSec: number }[];
}

export const matmulTitle = 'Matrix-vector and matrix-matrix products';

export function matmulMethod(d: MatmulDetails): string {
  const read = (d.jsReadGBs.before + d.jsReadGBs.after) / 2;
  return `GB/s of weight bytes per second, @nibble/backend-js, one thread, median of ${d.runs} runs, with f32 activations and with activations quantized like ggml's CPU backend. For scale: a plain JS read of an f32 array measured ${read.toFixed(2)} GB/s in the same run. The ggml figures are its single-thread dot products measured earlier on this machine kind (not in this run).`;
}

export function matmulCases(d: MatmulDetails): BenchCase[] {
  const cases: BenchCase[] = [];
  const keys = [...new Set(d.rows.map((r) => `${r.format}|${r.shape}`))];
  for (const k of keys) {
    const [format, shape] = k.split('|');
    const rows = d.rows.filter((r) => r.format === format && r.shape === shape);
    const ggml = d.ggmlGBs[format];
    cases.push(
      makeCase({
        group: `matrix × vector, ${shape}`,
        name: format,
        unit: 'GB/s of weights',
        higherIsBetter: true,
        results: [
          ...rows.map((r) => ({
            engine: r.mode === 'f32' ? 'nibble (js, f32 activations)' : 'nibble (js, ggml activations)',
            ours: true,
            median: r.gbs,
            runs: d.runs,
          })),
          ...(ggml === undefined
            ? []
            : [
                {
                  engine: 'ggml vec_dot',
                  ours: false,
                  median: ggml,
                  note: 'quoted from an earlier run on this machine kind',
                },
              ]),
        ],
      }),
    );
  }
  for (const m of d.multi ?? []) {
    if (m.mode !== 'ggml') continue;
    const f32 = d.multi?.find((x) => x.format === m.format && x.tokens === m.tokens && x.mode === 'f32');
    cases.push(
      makeCase({
        group: `prefill, ${m.shape} × ${m.tokens} tokens`,
        name: m.format,
        unit: 'tok/s',
        higherIsBetter: true,
        results: [
          ...(f32
            ? [{ engine: 'nibble (js, f32 activations)', ours: true, median: f32.tokPerSec, runs: d.multiRuns }]
            : []),
          { engine: 'nibble (js, ggml activations)', ours: true, median: m.tokPerSec, runs: d.multiRuns },
        ],
      }),
    );
  }
  return cases;
}
