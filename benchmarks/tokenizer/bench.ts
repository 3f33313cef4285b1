/**
 * Tokenizer encode throughput (MB/s of UTF-8 input), median of runs, beside js-tiktoken and gpt-tokenizer in the
 * same process:
 * - GPT-2 BPE on tinyshakespeare and wikitext-2; every library's ids are checked to equal js-tiktoken's;
 * - cold: a fresh instance for every run (empty pre-token cache), construction timed separately;
 *   warm: the same instance, after one untimed encode;
 * - SentencePiece (LLaMA's 32000-token vocabulary, from the llama-spm GGUF) on wikitext-2.
 *
 *   npx tsx --conditions=source benchmarks/tokenizer/bench.ts [--runs 5]   (2 runs with NIBBLE_BENCH_QUICK=1)
 *
 * Writes benchmarks/results/tokenizer.json and prints a markdown table.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseGguf, tokenizerMetadata } from '@nibble/gguf';
import { fromGgufMetadata, fromVocabMerges } from '@nibble/tokenizer';
import r50k from 'gpt-tokenizer/bpeRanks/r50k_base';
import { GptEncoding } from 'gpt-tokenizer/GptEncoding';
import { Tiktoken } from 'js-tiktoken/lite';
import gpt2Ranks from 'js-tiktoken/ranks/gpt2';
import { quick, writeResults } from '../lib/results.js';
import { tokenizerCases, tokenizerMethod, tokenizerTitle } from './cases.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../..');
const args = process.argv.slice(2);
const runsIdx = args.indexOf('--runs');
const runs = runsIdx >= 0 ? Number(args[runsIdx + 1]) : quick ? 2 : 5;

const fixture = (rel: string): string => readFileSync(join(root, 'fixtures', rel), 'utf8');
const vocabJson = JSON.parse(fixture('gpt2-bpe/gpt2_vocab.json')) as Record<string, number>;
const mergesTxt = fixture('gpt2-bpe/gpt2_merges.txt');
const texts: Record<string, string> = {
  tinyshakespeare: fixture('text/tinyshakespeare.txt'),
  'wikitext-2': fixture('text/wikitext-2-raw-v1.test.txt'),
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

interface Lib {
  name: string;
  make: () => { encode: (s: string) => number[] };
}

const libs: Lib[] = [
  { name: '@nibble/tokenizer', make: () => fromVocabMerges(vocabJson, mergesTxt) },
  { name: 'gpt-tokenizer 4.0.0', make: () => GptEncoding.getEncodingApi('r50k_base', () => r50k) },
  { name: 'js-tiktoken 1.0.21', make: () => new Tiktoken(gpt2Ranks) },
];

interface Row {
  library: string;
  text: string;
  mb: number;
  constructMs: number;
  coldMBps: number;
  warmMBps: number;
  tokens: number;
  sameIdsAsJsTiktoken: boolean;
}

function measure(
  name: string,
  make: () => { encode: (s: string) => number[] },
  textName: string,
  text: string,
  reference?: number[],
): Row {
  const mb = Buffer.byteLength(text) / 1e6;
  const construct: number[] = [];
  const cold: number[] = [];
  let ids: number[] = [];
  for (let r = 0; r < runs; r++) {
    let t0 = performance.now();
    const inst = make();
    construct.push(performance.now() - t0);
    t0 = performance.now();
    ids = inst.encode(text);
    cold.push(mb / ((performance.now() - t0) / 1000));
  }
  const inst = make();
  inst.encode(text);
  const warm: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    inst.encode(text);
    warm.push(mb / ((performance.now() - t0) / 1000));
  }
  const same = reference ? ids.length === reference.length && ids.every((x, i) => x === reference[i]) : true;
  return {
    library: name,
    text: textName,
    mb,
    constructMs: median(construct),
    coldMBps: median(cold),
    warmMBps: median(warm),
    tokens: ids.length,
    sameIdsAsJsTiktoken: same,
  };
}

const rows: Row[] = [];
for (const [textName, text] of Object.entries(texts)) {
  const reference = new Tiktoken(gpt2Ranks).encode(text);
  for (const lib of libs) rows.push(measure(lib.name, lib.make, textName, text, reference));
}

const spmMeta = tokenizerMetadata(
  parseGguf(new Uint8Array(readFileSync(join(root, 'fixtures/vocab/ggml-vocab-llama-spm.gguf')))),
);
const spm = measure(
  '@nibble/tokenizer (SPM, LLaMA 32k)',
  () => fromGgufMetadata(spmMeta),
  'wikitext-2',
  texts['wikitext-2'],
);

const result = {
  date: new Date().toISOString(),
  node: process.version,
  cpu: os.cpus()[0]?.model,
  cores: os.cpus().length,
  runs,
  gpt2: rows,
  spm,
};
writeResults({
  topic: 'tokenizer',
  title: tokenizerTitle,
  method: tokenizerMethod(result),
  peers: ['gpt-tokenizer', 'js-tiktoken'],
  cases: tokenizerCases(result),
  details: result,
});

console.log(`GPT-2 BPE encode, MB/s, median of ${runs} (${result.cpu}, ${result.cores} cores, Node ${result.node})\n`);
console.log('| text | library | cold MB/s | warm MB/s | construct ms | tokens | ids = js-tiktoken |');
console.log('|---|---|---:|---:|---:|---:|:---:|');
for (const r of [...rows, spm]) {
  console.log(
    `| ${r.text} | ${r.library} | ${r.coldMBps.toFixed(1)} | ${r.warmMBps.toFixed(1)} | ${r.constructMs.toFixed(0)} | ${r.tokens} | ${r === spm ? 'n/a' : r.sameIdsAsJsTiktoken ? 'yes' : 'NO'} |`,
  );
}
if (rows.some((r) => !r.sameIdsAsJsTiktoken)) process.exitCode = 1;
