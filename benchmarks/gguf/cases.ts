// The common-shape cases of the GGUF benchmark (see ../lib/results.ts), from the record bench.ts writes.
import { type BenchCase, makeCase } from '../lib/results.js';

/** The part of gguf.json's record the cases read. */
export interface GgufDetails {
  file: { bytes: number; shape: string; tensors: number };
  method: string;
  rounds?: number;
  results: {
    library: string;
    source: string;
    coldMs: number;
    warmMs: number;
    peakRssMB: number;
    rssOverBaselineMB: number;
  }[];
}

export const ggufTitle = 'Open and index a GGUF file';

export function ggufMethod(d: GgufDetails): string {
  return `Open a ${(d.file.bytes / 1e6).toFixed(0)} MB ${d.file.shape} file and index its ${d.file.tensors} tensors, from a local path and from a loopback HTTP server (range requests), each measurement in its own process; ${d.method}.`;
}

const engineOf = (library: string) => library.replace(/ \d+\.\d+\.\d+$/, '');

export function ggufCases(d: GgufDetails): BenchCase[] {
  const sources = [...new Set(d.results.map((r) => r.source))];
  const cases: BenchCase[] = [];
  for (const [group, key, unit] of [
    ['open + index, warm', 'warmMs', 'ms'],
    ['open + index, cold process', 'coldMs', 'ms'],
    ['memory growth', 'rssOverBaselineMB', 'MB'],
  ] as const)
    for (const source of sources)
      cases.push(
        makeCase({
          group,
          name: source,
          unit,
          higherIsBetter: false,
          results: d.results
            .filter((r) => r.source === source)
            .map((r) => ({
              engine: engineOf(r.library),
              ours: r.library.startsWith('@nibble/'),
              median: r[key],
              runs: d.rounds,
            })),
        }),
      );
  return cases;
}
