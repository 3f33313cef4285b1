/**
 * `nibble demo`: the main job on the bundled model. Quantize every weight tensor of stories260K to each format and
 * show what users know from llama.cpp: bits per weight, model size, ratio to F32 and the error against the F32
 * weights.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formats, getFormat, type Int8Options, int8 } from '@nibble/formats';
import { type GgufFile, parseGguf } from '@nibble/gguf';
import { allowsQuantization, fallbackType, quantizeToBlob } from '@nibble/quantize';
import { type DTypeName, dtypes, type HostTensor } from '@nibble/tensor';
import { parseArgs, stringFlag } from '../args.js';

// A tensor's values as f32 (a copy when not f32 or not 4-byte aligned).
function tensorToF32(t: HostTensor): Float32Array {
  if (t.dtype === 'f32' && t.data.byteOffset % 4 === 0) {
    return new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4);
  }
  if (t.dtype === 'f32') return new Float32Array(t.data.slice().buffer);
  return getFormat(t.dtype).dequantize(
    t.data,
    t.shape.reduce((a, b) => a * b, 1),
  );
}

/** The bundled model and sample text, found from the source tree. */
export const bundledModel = fileURLToPath(new URL('../../../../fixtures/models/stories260K.gguf', import.meta.url));
export const bundledText = fileURLToPath(
  new URL('../../../../fixtures/text/cs336-tinystories_sample.txt', import.meta.url),
);

/**
 * llama.cpp's perplexity on the sample text for the files `llama_model_quantize` made (node-llama-cpp 3.21.1; see
 * fixtures/reference/stories260K-*-nll-*-nlc.json): the peer figure beside ours.
 */
const LLAMA_CPP_PPL: Record<string, number> = { F32: 3.548228, F16: 3.548598, Q8_0: 3.552335, Q4_0: 3.83082 };

/** Formats whose model is run for the quality section (on stories260K the K-quant types all fall back to these). */
const RUN_FORMATS = ['f32', 'f16', 'bf16', 'q8_0', 'q5_1', 'q5_0', 'q4_1', 'q4_0', 'iq4_nl', 'mxfp4'] as const;

/** Perplexity and a greedy story of one quantized variant of the model. */
export interface QualityRow {
  format: string;
  fileBytes: number;
  perplexity: number;
  /** Mean KL divergence of the next-token distributions from the F32 model's (0 for F32). */
  kld: number;
  llamaCppPerplexity?: number;
  story: string;
}

/**
 * Quantizes the model to each format like llama-quantize (into memory), loads it on the JS backend, scores the sample
 * text and generates a short greedy story from a prompt.
 */
export async function demoQuality(
  file: GgufFile,
  text: string,
  options: { prompt?: string; maxTokens?: number; onRow?: (row: QualityRow) => void } = {},
): Promise<QualityRow[]> {
  await import('@nibble/backend-js'); // registers the 'js' backend
  const { loadModel, klDivergence } = await import('@nibble/runner');
  const rows: QualityRow[] = [];
  const f32 = await loadModel((await quantizeToBlob(file, { type: 'f32' })).blob, { backend: 'js', contextSize: 512 });
  try {
    for (const name of RUN_FORMATS) {
      // MXFP4 has no preset of its own: as before, output.weight keeps llama.cpp's rule (Q8_0 here).
      const extra = name === 'mxfp4' ? { outputType: 'q8_0' } : {};
      const { blob } = await quantizeToBlob(file, { type: name, ...extra });
      const model = name === 'f32' ? f32 : await loadModel(blob, { backend: 'js', contextSize: 512 });
      try {
        // KL divergence against F32 scores the same windows as perplexity, and gives the perplexity too.
        const ppl =
          name === 'f32' ? { ...(await model.perplexity(text)), meanKld: 0 } : await klDivergence(model, f32, text);
        const { text: story } = await model
          .generate(options.prompt ?? 'Once upon a time', { temperature: 0, maxTokens: options.maxTokens ?? 48 })
          .collect();
        const label = name.toUpperCase();
        const row: QualityRow = {
          format: label,
          fileBytes: blob.size,
          perplexity: ppl.perplexity,
          kld: ppl.meanKld,
          llamaCppPerplexity: LLAMA_CPP_PPL[label],
          story: (options.prompt ?? 'Once upon a time') + story,
        };
        rows.push(row);
        options.onRow?.(row);
      } finally {
        if (model !== f32) await model.dispose();
      }
    }
  } finally {
    await f32.dispose();
  }
  return rows;
}

function qualityLine(r: QualityRow, base: number): string {
  const peer = r.llamaCppPerplexity === undefined ? '' : `  (llama.cpp ${r.llamaCppPerplexity.toFixed(4)})`;
  const delta = r.perplexity - base;
  return `${r.format.padEnd(7)} ${(r.fileBytes / 1024).toFixed(0).padStart(5)} KiB  ppl ${r.perplexity.toFixed(4)} ${
    delta === 0 ? '        ' : `(${delta >= 0 ? '+' : ''}${delta.toFixed(4)})`
  }  KLD ${r.kld.toFixed(6)}${peer}`;
}

/** One weight tensor of the model, as f32. */
interface Weight {
  name: string;
  shape: readonly number[];
  rowLength: number;
  values: Float32Array; // [rows, rowLength]
}

/** How one variant stores each weight tensor. */
export interface Variant {
  /** Label in the table, e.g. `Q4_0` or `INT8 g32 asym f16`. */
  label: string;
  /** Encodes one tensor; returns its stored bytes, its values decoded, and the dtype it was stored as. */
  encode(w: Weight): { bytes: number; decoded: Float32Array; storedAs: string };
}

/** One row of the table. */
export interface DemoRow {
  format: string;
  bitsPerWeight: number;
  modelBytes: number;
  ratioToF32: number;
  rmse: number;
  maxAbsError: number;
  /** Tensors stored in another type because their rows do not fit the block size (llama.cpp's rule). */
  fallbacks: Record<string, number>;
}

function blockVariant(name: DTypeName): Variant {
  return {
    label: name.toUpperCase().replace(/_K$/, '_K'),
    encode(w) {
      const type = fallbackType(name, w.rowLength);
      const codec = formats[type];
      const q = codec.quantize(w.values, { rowLength: w.rowLength });
      return { bytes: q.length, decoded: codec.dequantize(q, w.values.length), storedAs: type };
    },
  };
}

function int8Variant(label: string, options: Omit<Int8Options, 'rowLength'>): Variant {
  return {
    label,
    encode(w) {
      const groupSize = options.groupSize ?? 32;
      // A group must divide the row: rows that don't fit fall back to one scale per channel, as noted in the table.
      const fits = options.granularity !== 'group' || w.rowLength % groupSize === 0;
      const opts = fits ? options : { ...options, granularity: 'channel' as const };
      const q = int8.quantize(w.values, { rowLength: w.rowLength, ...opts });
      return { bytes: q.length, decoded: int8.dequantize(q), storedAs: fits ? 'int8' : 'int8 per channel' };
    },
  };
}

/** Every variant of the table: the block and float formats of `@nibble/formats`, then INT8 flavours. */
export function demoVariants(): Variant[] {
  const block = Object.values(formats)
    .filter((c) => !c.info.internal && c.name !== 'f32')
    .sort((a, b) => b.info.bitsPerWeight - a.info.bitsPerWeight)
    .map((c) => blockVariant(c.name));
  return [
    ...block,
    int8Variant('INT8 channel sym f32', { granularity: 'channel' }),
    int8Variant('INT8 g32 sym f16', { granularity: 'group', groupSize: 32, scaleType: 'f16' }),
    int8Variant('INT8 g32 asym f16', { granularity: 'group', groupSize: 32, symmetric: false, scaleType: 'f16' }),
  ];
}

function loadWeights(file: GgufFile): { weights: Weight[]; otherBytes: number; f32Bytes: number } {
  const weights: Weight[] = [];
  let otherBytes = 0;
  let f32Bytes = 0;
  for (const info of file.tensors) {
    f32Bytes += info.elementCount * 4;
    if (!allowsQuantization(info.name, info.ne)) {
      otherBytes += info.byteLength;
      continue;
    }
    const values = tensorToF32(file.readTensorSync(info.name));
    weights.push({ name: info.name, shape: info.shape, rowLength: info.shape[info.shape.length - 1], values });
  }
  return { weights, otherBytes, f32Bytes };
}

/** Computes the table for a model held in memory. */
export function demoTable(file: GgufFile, variants = demoVariants()): DemoRow[] {
  const { weights, otherBytes, f32Bytes } = loadWeights(file);
  const params = weights.reduce((n, w) => n + w.values.length, 0);
  const rows: DemoRow[] = [
    { format: 'F32', bitsPerWeight: 32, modelBytes: f32Bytes, ratioToF32: 1, rmse: 0, maxAbsError: 0, fallbacks: {} },
  ];
  for (const v of variants) {
    let bytes = 0;
    let sumSq = 0;
    let maxAbs = 0;
    const fallbacks: Record<string, number> = {};
    for (const w of weights) {
      const r = v.encode(w);
      bytes += r.bytes;
      if (r.storedAs.toLowerCase() !== v.label.toLowerCase() && r.storedAs !== 'int8') {
        fallbacks[r.storedAs] = (fallbacks[r.storedAs] ?? 0) + 1;
      }
      for (let i = 0; i < w.values.length; i++) {
        const e = Math.abs(r.decoded[i] - w.values[i]);
        sumSq += e * e;
        if (e > maxAbs) maxAbs = e;
      }
    }
    const modelBytes = bytes + otherBytes;
    rows.push({
      format: v.label,
      bitsPerWeight: (8 * bytes) / params,
      modelBytes,
      ratioToF32: f32Bytes / modelBytes,
      rmse: Math.sqrt(sumSq / params),
      maxAbsError: maxAbs,
      fallbacks,
    });
  }
  return rows;
}

function describeModel(file: GgufFile): string {
  const m = file.metadata;
  const params = file.tensors.reduce((n, t) => n + t.elementCount, 0);
  const arch = String(m.get('general.architecture') ?? '?');
  const get = (k: string) => m.get(`${arch}.${k}`);
  return (
    `${String(m.get('general.name') ?? 'model')}: ${arch}, ${get('block_count')} layers, dim ${get('embedding_length')}, ` +
    `${get('attention.head_count')} heads (${get('attention.head_count_kv')} KV), ${(params / 1000).toFixed(1)}K parameters`
  );
}

/** Formats the rows as an aligned text table. */
export function formatTable(rows: DemoRow[]): string {
  const header = ['format', 'bpw', 'size', 'vs F32', 'RMSE', 'max |err|', 'stored otherwise (llama.cpp fallback)'];
  const body = rows.map((r) => [
    r.format,
    r.bitsPerWeight.toFixed(2),
    `${(r.modelBytes / 1024).toFixed(1)} KiB`,
    `${r.ratioToF32.toFixed(2)}x`,
    r.rmse === 0 ? '0' : r.rmse.toExponential(2),
    r.maxAbsError === 0 ? '0' : r.maxAbsError.toExponential(2),
    Object.entries(r.fallbacks)
      .map(([t, n]) => `${n} as ${t.includes(' ') ? t : t.toUpperCase()}`)
      .join(', '),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)]
    .map((l) => l.trimEnd())
    .join('\n');
}

export async function run(args: string[]): Promise<number> {
  const p = parseArgs(args, ['json', 'help', 'table-only']);
  if (p.flags.has('help')) {
    console.log(
      `usage: nibble demo [--model FILE.gguf] [--text FILE.txt] [--table-only] [--json]

Quantizes every weight tensor of an F32 llama model (default: the bundled stories260K) to each format and prints
size and error against the F32 weights; then, for each format, quantizes the model like llama-quantize, scores the
text (default: the bundled TinyStories sample) and generates a short greedy story.`,
    );
    return 0;
  }
  const path = stringFlag(p, 'model', bundledModel) as string;
  const textPath = stringFlag(p, 'text', bundledText) as string;
  const file = parseGguf(new Uint8Array(readFileSync(path)));
  const rows = demoTable(file);
  const tableOnly = p.flags.has('table-only');
  if (p.flags.has('json')) {
    const quality = tableOnly ? [] : await demoQuality(file, readFileSync(textPath, 'utf8'));
    console.log(JSON.stringify({ model: describeModel(file), rows, quality }, null, 2));
    return 0;
  }
  console.log(describeModel(file));
  console.log(
    'Weights: every 2-D weight tensor (norms stay F32). Error: against the F32 weights, over all quantized weights.\n',
  );
  console.log(formatTable(rows));
  const k = rows.find((r) => Object.keys(r.fallbacks).length > 0 && r.format.endsWith('_K'));
  if (k) {
    console.log(
      `\nK-quants, IQ4_XS and TQ types need rows of ${dtypes.q4_K.blockSize}; this model's rows are 64 and 172 wide, so llama.cpp's fallback types apply.`,
    );
  }
  if (tableOnly) return 0;
  console.log(
    `\nQuality: each format as llama-quantize would store it (output.weight Q8_0, rows of 172 F16), on the JS backend.\n` +
      `Perplexity on ${textPath.split('/').pop()} (BOS + each story), then a greedy story from the same prompt.\n`,
  );
  let base = Number.NaN;
  await demoQuality(file, readFileSync(textPath, 'utf8'), {
    onRow: (r) => {
      if (Number.isNaN(base)) base = r.perplexity;
      console.log(qualityLine(r, base));
      console.log(`        ${r.story.replace(/\s+/g, ' ').trim()}\n`);
    },
  });
  return 0;
}
