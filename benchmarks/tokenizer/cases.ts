// The common-shape cases of the tokenizer benchmark (see ../lib/results.ts), from the record bench.ts writes.
import { type BenchCase, makeCase } from '../lib/results.js';

interface Row {
  library: string;
  text: string;
  mb: number;
  constructMs: number;
  coldMBps: number;
  warmMBps: number;
  sameIdsAsJsTiktoken: boolean;
}

/** The part of tokenizer.json's record the cases read. */
export interface TokenizerDetails {
  runs: number;
  gpt2: Row[];
  spm?: Row;
}

export const tokenizerTitle = 'Tokenizer encode throughput';

export function tokenizerMethod(d: TokenizerDetails): string {
  return `MB/s of UTF-8 input, GPT-2 byte-level BPE, median of ${d.runs} runs in one process; cold = a fresh instance per run (construction timed apart), warm = the same instance after one untimed encode. Every library's ids are checked to equal js-tiktoken's.`;
}

const engineOf = (library: string) => library.replace(/ \d+\.\d+\.\d+$/, '');

export function tokenizerCases(d: TokenizerDetails): BenchCase[] {
  const texts = [...new Set(d.gpt2.map((r) => r.text))];
  const cases: BenchCase[] = [];
  for (const [group, key] of [
    ['GPT-2 encode, warm', 'warmMBps'],
    ['GPT-2 encode, cold', 'coldMBps'],
  ] as const)
    for (const text of texts)
      cases.push(
        makeCase({
          group,
          name: `${text} (${d.gpt2.find((r) => r.text === text)?.mb.toFixed(1)} MB)`,
          unit: 'MB/s',
          higherIsBetter: true,
          results: d.gpt2
            .filter((r) => r.text === text)
            .map((r) => ({
              engine: engineOf(r.library),
              ours: r.library.startsWith('@nibble/'),
              median: r[key],
              runs: d.runs,
              ...(r.sameIdsAsJsTiktoken ? {} : { note: 'ids differ from js-tiktoken' }),
            })),
        }),
      );
  return cases;
}
