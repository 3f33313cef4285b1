// The common-shape cases of the end-to-end benchmark (see ../lib/results.ts), from the record bench.ts writes.
import { type BenchCase, makeCase } from '../lib/results.js';

/** The part of e2e.json's record the cases read. */
export interface E2eDetails {
  runs: number;
  promptTokens: number;
  decode?: number;
  rows: {
    model: string;
    engine: string;
    threads: number;
    promptTokPerSec: number;
    decodeTokPerSec: number;
    maxRssMiB: number;
    runs?: number;
  }[];
}

export const e2eTitle = 'Generation end to end';

export function e2eMethod(d: E2eDetails): string {
  const big = d.rows.some((r) => r.model.includes('620 MB'));
  const runs =
    d.runs === 1 ? 'one run' : `median of ${d.runs} runs${big ? ' (one nibble run on the 620 MB file)' : ''}`;
  return `Prompt processing (${d.promptTokens}-token prompt) and decode tokens per second and peak RSS, the same GGUF file and the same explicit thread count for both engines, each measurement in its own process, ${runs}. llama.cpp runs through node-llama-cpp's prebuilt CPU build.`;
}

const engineName = (e: string) =>
  e === 'nibble-js' ? 'nibble (js)' : e.startsWith('nibble-') ? `nibble (${e.slice(7)})` : e;

export function e2eCases(d: E2eDetails): BenchCase[] {
  const keys = [...new Set(d.rows.map((r) => `${r.model}|${r.threads}`))];
  const cases: BenchCase[] = [];
  for (const [group, key, unit, higher] of [
    ['decode', 'decodeTokPerSec', 'tok/s', true],
    ['prompt processing', 'promptTokPerSec', 'tok/s', true],
    ['peak RSS', 'maxRssMiB', 'MiB', false],
  ] as const)
    for (const k of keys) {
      const [model, threads] = k.split('|');
      cases.push(
        makeCase({
          group,
          name: `${model}, ${threads} thread${threads === '1' ? '' : 's'}`,
          unit,
          higherIsBetter: higher,
          results: d.rows
            .filter((r) => `${r.model}|${r.threads}` === k)
            .map((r) => ({
              engine: engineName(r.engine),
              ours: r.engine.startsWith('nibble'),
              median: r[key],
              runs: r.runs ?? d.runs,
            })),
        }),
      );
    }
  return cases;
}
