/**
 * Size against quality on a real model: stories260K quantized to each format the way llama-quantize does (in
 * memory, `nibble demo`'s code), then scored on the TinyStories sample by the runner on the JS backend: file size,
 * bits per weight of the whole file, perplexity. llama.cpp's perplexity for the files its own `llama_model_quantize`
 * wrote (F32, F16, Q8_0, Q4_0) stands beside ours; it comes from fixtures/reference (node-llama-cpp 3.21.1, same token
 * ids), not from this run, and is marked so.
 *
 *   npx tsx --conditions=source benchmarks/quality/bench.ts
 *
 * Perplexity is deterministic, so --quick changes nothing but the formats (F32, Q8_0, Q4_0). Writes
 * benchmarks/results/quality.json.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseGguf } from '@nibble/gguf';
import { demoQuality } from '../../packages/cli/src/commands/demo.js';
import { makeCase, quick, writeResults } from '../lib/results.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../..');
const fixture = (p: string) => join(root, 'fixtures', p);

/** llama.cpp's figures on the same text and ids, from the reference files node-llama-cpp 3.21.1 produced. */
const reference: Record<string, string> = {
  F32: 'stories260K-nll-cs336-tinystories_sample-nlc.json',
  F16: 'stories260K-F16-nll-cs336-tinystories_sample-nlc.json',
  Q8_0: 'stories260K-Q8_0-nll-cs336-tinystories_sample-nlc.json',
  Q4_0: 'stories260K-Q4_0-nll-cs336-tinystories_sample-nlc.json',
};
const llamaCpp = (format: string): number | undefined => {
  const f = reference[format];
  return f ? (JSON.parse(readFileSync(fixture(`reference/${f}`), 'utf8')) as { ppl: number }).ppl : undefined;
};

const bytes = new Uint8Array(readFileSync(fixture('models/stories260K.gguf')));
const file = parseGguf(bytes);
const params = file.tensors.reduce((n, t) => n + t.elementCount, 0);
const text = readFileSync(fixture('text/cs336-tinystories_sample.txt'), 'utf8');
const only = quick ? new Set(['F32', 'Q8_0', 'Q4_0']) : undefined;
const rows = (
  await demoQuality(file, text, {
    maxTokens: 1,
    onFormat: (_i, _n, f) => process.stderr.write(`${f} `),
  })
).filter((r) => !only || only.has(r.format));
process.stderr.write('\n');

const details = {
  date: new Date().toISOString(),
  model: 'stories260K (F32, 1.2 MB)',
  parameters: params,
  text: 'fixtures/text/cs336-tinystories_sample.txt (5 stories, 1804 predictions)',
  rows: rows.map((r) => ({
    format: r.format,
    fileBytes: r.fileBytes,
    bitsPerWeight: (8 * r.fileBytes) / params,
    perplexity: r.perplexity,
    llamaCppPerplexity: llamaCpp(r.format),
  })),
};
const cases = details.rows.map((r) => {
  const peer = r.llamaCppPerplexity;
  return makeCase({
    group: 'perplexity on the TinyStories sample',
    name: `${r.format} (${(r.fileBytes / 1024).toFixed(0)} KiB)`,
    unit: 'perplexity',
    higherIsBetter: false,
    results: [
      { engine: 'nibble (js)', ours: true, median: r.perplexity, runs: 1 },
      ...(peer === undefined
        ? []
        : [
            {
              engine: 'llama.cpp',
              ours: false,
              median: peer,
              note: 'its own quantized file, from fixtures/reference, not this run',
            },
          ]),
    ],
  });
});
writeResults({
  topic: 'quality',
  title: 'Size and quality on stories260K',
  method:
    "stories260K quantized to each format with llama-quantize's rules (norms F32, fallbacks where rows do not fit, output rule), then perplexity of the TinyStories sample on nibble's JS backend with f32 activations (deterministic: one run). File size includes the tokenizer and metadata. llama.cpp's perplexity is for the file its llama_model_quantize wrote, measured through node-llama-cpp 3.21.1 on the same token ids.",
  cases,
  details,
});

console.log('| format | file KiB | bits/weight (whole file) | perplexity | llama.cpp |');
console.log('|---|---:|---:|---:|---:|');
for (const r of details.rows)
  console.log(
    `| ${r.format} | ${(r.fileBytes / 1024).toFixed(1)} | ${r.bitsPerWeight.toFixed(2)} | ${r.perplexity.toFixed(4)} | ${r.llamaCppPerplexity?.toFixed(4) ?? ''} |`,
  );
