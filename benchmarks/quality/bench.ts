/**
 * Size against quality on a real model: stories260K quantized to every llama-quantize preset with @nibble/quantize
 * (llama.cpp's bytes: fixtures/quantize/manifest.json holds the SHA-256 of llama.cpp's file for each, and this
 * checks them), then scored on the TinyStories sample by the runner on the JS backend against the F32 model with
 * `klDivergence` (llama-perplexity's --kl-divergence statistics): file size, bits per weight, perplexity, mean and
 * 99th-percentile KL divergence, top-token agreement. llama.cpp's perplexity for the files its own
 * `llama_model_quantize` wrote (F32, F16, Q8_0, Q4_0) stands beside ours; it comes from fixtures/reference
 * (node-llama-cpp 3.21.1, same token ids), not from this run, and is marked so.
 *
 *   npx tsx --conditions=source benchmarks/quality/bench.ts
 *
 * Scores are deterministic, so --quick changes only the presets (Q8_0, Q4_0, Q4_K_M). Writes
 * benchmarks/results/quality.json.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '@nibble/backend-js';
import { parseGguf } from '@nibble/gguf';
import { openGgufFile } from '@nibble/gguf/node';
import { llamaShapes, presetSizes, presets, quantizeToBlob } from '@nibble/quantize';
import { klDivergence } from '@nibble/runner';
import { loadModel } from '@nibble/runner/node';
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
const llamaCppPpl = (preset: string): number | undefined => {
  const f = reference[preset];
  return f ? (JSON.parse(readFileSync(fixture(`reference/${f}`), 'utf8')) as { ppl: number }).ppl : undefined;
};
const llamaCppSha = new Map(
  (
    JSON.parse(readFileSync(fixture('quantize/manifest.json'), 'utf8')) as {
      runs: { model: string; label: string; sha256?: string }[];
    }
  ).runs
    .filter((r) => r.model === 'stories260K' && r.sha256)
    .map((r) => [r.label, r.sha256 as string]),
);

export interface QualityRow {
  preset: string;
  fileBytes: number;
  /** Bits per weight of the whole file (tokenizer and metadata included) over the model's parameters. */
  bitsPerWeight: number;
  /** Tensors per stored type. */
  types: Record<string, number>;
  perplexity: number;
  meanKld: number;
  p99Kld: number;
  topTokenAgreement: number;
  llamaCppPerplexity?: number;
  /** Whether the file is byte for byte the one llama.cpp wrote for this preset (undefined: no reference). */
  sameBytesAsLlamaCpp?: boolean;
  /** An earlier preset whose tensors are the same (on a model this small several presets fall back alike). */
  sameTensorsAs?: string;
}

const path = fixture('models/stories260K.gguf');
const file = await openGgufFile(path);
const params = file.tensors.reduce((n, t) => n + t.elementCount, 0);
const text = readFileSync(fixture('text/cs336-tinystories_sample.txt'), 'utf8');
// Largest first, in the order of their size on LLaMA 7B (on stories260K several fall back to the same tensors, and the
// first of those names the group); MXFP4_MOE, sized only for MoE models, last.
const order = presetSizes(llamaShapes[0])
  .sort((a, b) => b.bytes - a.bytes)
  .map((s) => s.preset);
const all = presets.map((p) => p.name).sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
const wanted = (quick ? ['Q8_0', 'Q4_K_M', 'Q4_0'] : all).filter((p) => p !== 'F32');

const rows: QualityRow[] = [];
const skipped: string[] = [];
const byTensors = new Map<string, string>();
const base = await loadModel(path, { backend: 'js', contextSize: 512 });
try {
  const f32 = await base.perplexity(text);
  rows.push({
    preset: 'F32',
    fileBytes: statSync(path).size,
    bitsPerWeight: 32,
    types: {},
    perplexity: f32.perplexity,
    meanKld: 0,
    p99Kld: 0,
    topTokenAgreement: 1,
    llamaCppPerplexity: llamaCppPpl('F32'),
  });
  for (const preset of wanted) {
    process.stderr.write(`${preset} `);
    let blob: Blob;
    let types: Record<string, number> = {};
    try {
      const r = await quantizeToBlob(file, { preset });
      blob = r.blob;
      for (const t of r.result.tensors) types[t.to] = (types[t.to] ?? 0) + 1;
      types = Object.fromEntries(Object.entries(types).sort((a, b) => b[1] - a[1]));
    } catch (e) {
      skipped.push(`${preset}: ${(e as Error).message}`);
      continue;
    }
    const bytes = new Uint8Array(await blob.arrayBuffer());
    const sha = createHash('sha256').update(bytes).digest('hex');
    const model = await loadModel(blob, { backend: 'js', contextSize: 512 });
    try {
      const k = await klDivergence(model, base, text);
      // Presets that differ only in general.file_type hold the same tensors: key them by their types and bytes.
      const h = createHash('sha256');
      const parsed = parseGguf(bytes);
      for (const t of parsed.tensors) h.update(`${t.name}:${t.typeName}`).update(parsed.readTensorSync(t.name).data);
      const tensorsKey = h.digest('hex');
      const reference = llamaCppSha.get(preset);
      rows.push({
        preset,
        fileBytes: blob.size,
        bitsPerWeight: (8 * blob.size) / params,
        types,
        perplexity: k.perplexity,
        meanKld: k.meanKld,
        p99Kld: k.p99Kld,
        topTokenAgreement: k.topTokenAgreement,
        llamaCppPerplexity: llamaCppPpl(preset),
        sameBytesAsLlamaCpp: reference === undefined ? undefined : reference === sha,
        sameTensorsAs: byTensors.get(tensorsKey),
      });
      if (!byTensors.has(tensorsKey)) byTensors.set(tensorsKey, preset);
    } finally {
      await model.dispose();
    }
  }
} finally {
  await base.dispose();
  await file.close();
}
process.stderr.write('\n');

const cases = rows.flatMap((r) => {
  const name = `${r.preset} (${(r.fileBytes / 1024).toFixed(0)} KiB)`;
  const peer = r.llamaCppPerplexity;
  return [
    makeCase({
      group: 'perplexity on the TinyStories sample',
      name,
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
    }),
    ...(r.preset === 'F32'
      ? []
      : [
          makeCase({
            group: 'mean KL divergence from F32, nats',
            name,
            unit: 'nats',
            higherIsBetter: false,
            results: [{ engine: 'nibble (js)', ours: true, median: r.meanKld, runs: 1 }],
          }),
        ]),
  ];
});
const differ = rows.filter((r) => r.sameBytesAsLlamaCpp === false).map((r) => r.preset);
const checked = rows.filter((r) => r.sameBytesAsLlamaCpp === true).length;
writeResults({
  topic: 'quality',
  title: 'Size and quality on stories260K',
  method:
    "stories260K (F32) quantized to each llama-quantize preset by @nibble/quantize (llama.cpp's per-tensor rules and bytes), then scored on the TinyStories sample on nibble's JS backend against the F32 model: perplexity and the KL divergence of each next-token distribution from the F32 model's (klDivergence, llama-perplexity's --kl-divergence statistics over the same 1804 predictions). Deterministic: one run. File size includes the tokenizer and metadata. llama.cpp's perplexity is for the file its llama_model_quantize wrote, measured through node-llama-cpp 3.21.1 on the same token ids.",
  notes: [
    differ.length
      ? `Files differ from llama.cpp's for: ${differ.join(', ')}.`
      : `Every quantized file equals llama.cpp's byte for byte (SHA-256, ${checked} presets checked).`,
    ...skipped.map((s) => `Not measured: ${s}`),
  ],
  cases,
  details: {
    model: 'stories260K (F32, 1.2 MB)',
    parameters: params,
    text: 'fixtures/text/cs336-tinystories_sample.txt (5 stories, 1804 predictions)',
    rows,
  },
});

console.log(
  '| preset | file KiB | bits/weight | perplexity | mean KLD | p99 KLD | same top token | llama.cpp ppl | note |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|');
for (const r of rows)
  console.log(
    `| ${r.preset} | ${(r.fileBytes / 1024).toFixed(1)} | ${r.bitsPerWeight.toFixed(2)} | ${r.perplexity.toFixed(4)} | ${r.meanKld.toFixed(5)} | ${r.p99Kld.toFixed(4)} | ${(100 * r.topTokenAgreement).toFixed(1)} % | ${r.llamaCppPerplexity?.toFixed(4) ?? ''} | ${r.sameTensorsAs ? `same tensors as ${r.sameTensorsAs}` : ''} |`,
  );
if (differ.length) process.exitCode = 1;
