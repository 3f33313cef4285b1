// The common-shape cases of the end-to-end benchmark (see ../lib/results.ts), from the record bench.ts writes. The
// record is also what older e2e.json files hold on their own: `e2eToCommon` wraps one for the report.
import { type BenchCase, type BenchFile, makeCase, SCHEMA, unrecordedMachine } from '../lib/results.js';

/** The record bench.ts writes (the results file's `details`). */
export interface E2eDetails {
  date: string;
  node?: string;
  threads?: number[];
  runs: number;
  /** Prompt lengths measured (older records: one `promptTokens`). */
  prompts?: number[];
  promptTokens?: number;
  decode?: number;
  quick?: boolean;
  rows: {
    model: string;
    engine: string;
    threads: number;
    promptTokens?: number;
    promptTokPerSec: number;
    decodeTokPerSec: number;
    decodeTokPerCpuSec?: number;
    maxRssMiB: number;
    loadMs?: number;
    runs?: number;
  }[];
}

export const e2eTitle = 'Generation end to end';

/** Whether `x` is the benchmark's own record (not yet in the common shape). */
export function isE2eRecord(x: unknown): x is E2eDetails {
  const r = x as Partial<E2eDetails> & { schema?: unknown };
  return (
    r?.schema === undefined &&
    typeof r?.date === 'string' &&
    Array.isArray(r.rows) &&
    r.rows.every(
      (row) =>
        typeof row?.engine === 'string' && typeof row.decodeTokPerSec === 'number' && typeof row.maxRssMiB === 'number',
    )
  );
}

export function e2eMethod(d: E2eDetails): string {
  const prompts = d.prompts ?? (d.promptTokens ? [d.promptTokens] : []);
  const runs = d.runs === 1 ? 'one run' : `median of ${d.runs} runs`;
  return `Prompt processing (${prompts.join(' and ')}-token prompts) and decode tokens per second (wall time, and per CPU-second of the process where recorded: steadier on a shared machine) and peak RSS, the same GGUF file and the same explicit thread count for every engine, each measurement in its own process, ${runs}. llama.cpp runs through node-llama-cpp's prebuilt CPU build.`;
}

const engineName = (e: string) =>
  e === 'nibble-js' ? 'nibble (js)' : e.startsWith('nibble-') ? `nibble (${e.slice(7)})` : e;

export function e2eCases(d: E2eDetails): BenchCase[] {
  const rows = d.rows.map((r) => ({ ...r, promptTokens: r.promptTokens ?? d.promptTokens ?? 0 }));
  const cases: BenchCase[] = [];
  const series = (
    group: string,
    keyOf: (r: (typeof rows)[number]) => string,
    nameOf: (r: (typeof rows)[number]) => string,
    value: (r: (typeof rows)[number]) => number | undefined,
    unit: string,
    higherIsBetter: boolean,
  ) => {
    for (const k of [...new Set(rows.map(keyOf))]) {
      const mine = rows.filter((r) => keyOf(r) === k);
      const results = mine
        .map((r) => ({
          engine: engineName(r.engine),
          ours: r.engine.startsWith('nibble'),
          median: value(r) ?? Number.NaN,
          runs: r.runs ?? d.runs,
        }))
        .filter((r) => Number.isFinite(r.median) && r.median > 0);
      if (results.length) cases.push(makeCase({ group, name: nameOf(mine[0]), unit, higherIsBetter, results }));
    }
  };
  const threads = (r: { threads: number }) => `${r.threads} thread${r.threads === 1 ? '' : 's'}`;
  // Decode does not depend on the prompt length: the rows of the shortest prompt stand for it.
  const shortest = Math.min(...rows.map((r) => r.promptTokens));
  const decodeRows = (r: (typeof rows)[number]) => (r.promptTokens === shortest ? r : undefined);
  series(
    'decode',
    (r) => `${r.model}|${r.threads}`,
    (r) => `${r.model}, ${threads(r)}`,
    (r) => decodeRows(r)?.decodeTokPerSec,
    'tok/s',
    true,
  );
  series(
    'decode per CPU-second',
    (r) => `${r.model}|${r.threads}`,
    (r) => `${r.model}, ${threads(r)}`,
    (r) => decodeRows(r)?.decodeTokPerCpuSec,
    'tok/CPU-s',
    true,
  );
  for (const p of [...new Set(rows.map((r) => r.promptTokens))].sort((a, b) => a - b))
    series(
      p ? `prompt processing, ${p}-token prompt` : 'prompt processing',
      (r) => `${r.model}|${r.threads}|${r.promptTokens}`,
      (r) => `${r.model}, ${threads(r)}`,
      (r) => (r.promptTokens === p ? r.promptTokPerSec : undefined),
      'tok/s',
      true,
    );
  series(
    'peak RSS',
    (r) => `${r.model}|${r.threads}`,
    (r) => `${r.model}, ${threads(r)}`,
    (r) => decodeRows(r)?.maxRssMiB,
    'MiB',
    false,
  );
  return cases;
}

/** An e2e record of the benchmark's own shape (older results files) in the common shape. */
export function e2eToCommon(d: E2eDetails): BenchFile {
  return {
    schema: SCHEMA,
    topic: 'e2e',
    title: e2eTitle,
    date: d.date,
    quick: d.quick ?? false,
    machine: unrecordedMachine('linux', d.node ?? 'not recorded'),
    versions: { nibble: 'commit not recorded', 'node-llama-cpp': '3.21.1' },
    method: e2eMethod(d),
    cases: e2eCases(d),
    details: d,
  };
}
