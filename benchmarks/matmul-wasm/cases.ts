// The common-shape cases of the WASM matrix-vector benchmark, from the record bench.ts writes (also what older
// matmul-wasm.json files hold on their own: `matmulWasmToCommon` wraps one for the report).
import { type BenchCase, type BenchFile, makeCase, SCHEMA, unrecordedMachine } from '../lib/results.js';

/** The record bench.ts writes (the results file's `details`). */
export interface MatmulWasmDetails {
  date: string;
  runs: number;
  /** One-thread JS read of a large f32 array in the same run, GB/s. */
  readGBs: number;
  /** ggml's native single-thread figures on the first machine kind, quoted (used where `ggml` has no row). */
  ggmlGBs: Record<string, number>;
  /**
   * ggml measured in the same run (absent in older records): its native vec_dot, one thread, on the same weight
   * bytes' values (ggml_matvec.c), in the libggml-cpu variant ggml picks on this CPU; `note` says why it is missing.
   */
  ggml?: {
    variant?: string;
    note?: string;
    rows: { format: string; shape: string; gbs: number; ms: number; y: number[] }[];
  };
  quick?: boolean;
  rows: { format: string; shape: string; threads: number; mode: 'ggml' | 'f32'; gbs: number; ms: number }[];
  /** The prompt case (absent in older records): `tokens` activation rows at once, ggml mode. */
  prompt?: { format: string; shape: string; threads: number; tokens: number; msPerToken: number }[];
}

export const matmulWasmTitle = 'WASM backend: matrix × vector';

export function isMatmulWasmRecord(x: unknown): x is MatmulWasmDetails {
  const r = x as Partial<MatmulWasmDetails> & { schema?: unknown };
  return r?.schema === undefined && typeof r?.readGBs === 'number' && Array.isArray(r.rows) && !!r.ggmlGBs;
}

export function matmulWasmMethod(d: MatmulWasmDetails): string {
  return `GB/s of weight bytes per second of @nibble/backend-wasm's matmul with one activation row, median of ${d.runs} runs; each run multiplies enough distinct copies of the weight to exceed the L3 cache, so the bytes come from DRAM as in a decode step. 'ggml' mode quantizes the activations to the weight's vec_dot type (integer dots, as ggml's CPU backend), 'f32' keeps them f32. ${d.ggml?.rows.length ? `ggml's native single-thread matrix × vector was measured in the same run (${d.ggml.variant}: one vec_dot per weight row on the same values, without llama.cpp's load-time repacking); ` : `ggml's native single-thread figures are quoted from an earlier measurement${d.ggml?.note ? ` (${d.ggml.note})` : ''}; `}a one-thread JS read of a large array in the same run (${d.readGBs.toFixed(1)} GB/s) gives the scale.${d.prompt?.length ? ` The prompt case: ms per token of one matmul of ${d.prompt[0].tokens} activation rows in ggml mode (compute-bound; the weight stays in cache between runs), median of ${d.runs}.` : ''}`;
}

export function matmulWasmCases(d: MatmulWasmDetails): BenchCase[] {
  const cases: BenchCase[] = [];
  for (const shape of [...new Set(d.rows.map((r) => r.shape))])
    for (const threads of [...new Set(d.rows.map((r) => r.threads))])
      for (const format of [...new Set(d.rows.map((r) => r.format))]) {
        const mine = d.rows.filter((r) => r.shape === shape && r.threads === threads && r.format === format);
        if (!mine.length) continue;
        const measured = d.ggml?.rows.find((r) => r.format === format && r.shape === shape);
        const quoted = d.ggml?.rows.length ? undefined : d.ggmlGBs[format];
        cases.push(
          makeCase({
            group: `matrix × vector, ${shape}, ${threads} thread${threads === 1 ? '' : 's'}`,
            name: format,
            unit: 'GB/s of weights',
            higherIsBetter: true,
            results: [
              ...mine.map((r) => ({
                engine: `nibble (wasm, ${r.mode} activations)`,
                ours: true,
                median: r.gbs,
                runs: d.runs,
              })),
              ...(threads !== 1
                ? []
                : measured
                  ? [{ engine: 'ggml (native, 1 thread)', ours: false, median: measured.gbs, runs: d.runs }]
                  : quoted === undefined
                    ? []
                    : [
                        {
                          engine: 'ggml (native, 1 thread)',
                          ours: false,
                          median: quoted,
                          note: 'quoted, not this run',
                        },
                      ]),
            ],
          }),
        );
      }
  for (const r of d.prompt ?? [])
    cases.push(
      makeCase({
        group: `matrix × ${r.tokens} tokens (prompt), ${r.shape}, ${r.threads} thread${r.threads === 1 ? '' : 's'}`,
        name: r.format,
        unit: 'ms per token',
        higherIsBetter: false,
        results: [{ engine: 'nibble (wasm, ggml activations)', ours: true, median: r.msPerToken, runs: d.runs }],
      }),
    );
  return cases;
}

/** An older matmul-wasm.json (the record alone) in the common shape. */
export function matmulWasmToCommon(d: MatmulWasmDetails): BenchFile {
  return {
    schema: SCHEMA,
    topic: 'matmul-wasm',
    title: matmulWasmTitle,
    date: d.date,
    quick: d.quick ?? false,
    machine: unrecordedMachine(),
    versions: { nibble: 'commit not recorded' },
    method: matmulWasmMethod(d),
    cases: matmulWasmCases(d),
    details: d,
  };
}
