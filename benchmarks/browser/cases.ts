// The common-shape cases of the browser benchmark (nibble-wasm beside wllama in Chromium), from the record bench.ts
// writes (also what older browser.json files hold on their own: `browserToCommon` wraps one for the report).
import { type BenchCase, type BenchFile, makeCase, SCHEMA, unrecordedMachine } from '../lib/results.js';

/** The record bench.ts writes (the results file's `details`). */
export interface BrowserDetails {
  date: string;
  runs: number;
  decode: number;
  quick?: boolean;
  rows: {
    model: string;
    engine: string;
    threads: number;
    promptTokens: number;
    promptTokPerSec: number;
    decodeTokPerSec: number;
  }[];
}

export const browserTitle = 'In the browser: nibble-wasm and wllama';

export function isBrowserRecord(x: unknown): x is BrowserDetails {
  const r = x as Partial<BrowserDetails> & { schema?: unknown };
  return (
    r?.schema === undefined &&
    typeof r?.decode === 'number' &&
    Array.isArray(r.rows) &&
    r.rows.some((row) => row?.engine === 'wllama' || row?.engine === 'nibble-wasm')
  );
}

export function browserMethod(d: BrowserDetails): string {
  return `Both engines in the same headless Chromium (Debian's), each run in a fresh page of a loopback server that sends COOP/COEP (so both can use threads); prompt tok/s and decode tok/s over ${d.decode} steps, median of ${d.runs} run${d.runs === 1 ? '' : 's'}. wllama 3.8.1 is llama.cpp compiled to WebAssembly.`;
}

const engineName = (e: string) =>
  e === 'nibble-wasm' ? 'nibble (wasm)' : e === 'nibble-wasm-plain' ? 'nibble (wasm, plain SIMD)' : e;

export function browserCases(d: BrowserDetails): BenchCase[] {
  const cases: BenchCase[] = [];
  for (const [group, key] of [
    ['decode in Chromium', 'decodeTokPerSec'],
    ['prompt processing in Chromium', 'promptTokPerSec'],
  ] as const)
    for (const k of [...new Set(d.rows.map((r) => `${r.model}|${r.threads}`))]) {
      const mine = d.rows.filter((r) => `${r.model}|${r.threads}` === k);
      const t = mine[0].threads;
      cases.push(
        makeCase({
          group,
          name: `${mine[0].model}, ${t} thread${t === 1 ? '' : 's'}${key === 'promptTokPerSec' ? `, ${mine[0].promptTokens}-token prompt` : ''}`,
          unit: 'tok/s',
          higherIsBetter: true,
          results: mine
            .filter((r) => r[key] > 0)
            .map((r) => ({
              engine: engineName(r.engine),
              ours: r.engine.startsWith('nibble'),
              median: r[key],
              runs: d.runs,
            })),
        }),
      );
    }
  return cases;
}

/** An older browser.json (the record alone) in the common shape. */
export function browserToCommon(d: BrowserDetails): BenchFile {
  return {
    schema: SCHEMA,
    topic: 'browser',
    title: browserTitle,
    date: d.date,
    quick: d.quick ?? false,
    machine: unrecordedMachine(),
    versions: { nibble: 'commit not recorded', '@wllama/wllama': '3.8.1' },
    method: browserMethod(d),
    cases: browserCases(d),
    details: d,
  };
}
