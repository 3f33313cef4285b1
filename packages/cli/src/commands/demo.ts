/**
 * `nibble demo`: the main job on the bundled model. Quantize every weight tensor of stories260K to each format and
 * show what users know from llama.cpp: bits per weight, model size, ratio to F32 and the error against the F32
 * weights.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formats, getFormat, type Int8Options, int8 } from '@nibble/formats';
import { type GgufFile, parseGguf } from '@nibble/gguf';
import { allowsQuantization, fallbackType, quantizeToBlob } from '@nibble/quantize';
import { type DTypeName, dtypes, type HostTensor, NibbleError } from '@nibble/tensor';
import { parseOrHelp } from '../args.js';
import { type Progress, progressBar } from '../progress.js';
import { demoSpec } from '../specs.js';
import { formatTable as table } from '../table.js';

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

// llama-quantize's test for a weight it quantizes (shape outermost first).
const isQuantizable = (name: string, shape: readonly number[]) => allowsQuantization(name, [...shape].reverse());

/**
 * The root of the installed `@nibble/cli` package: the nearest folder above this module with its package.json. The
 * module sits at a different depth in the source tree (src/commands/) and in the build (dist/).
 */
export function packageRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === '@nibble/cli') {
      return dir;
    }
    if (dirname(dir) === dir) throw new NibbleError('E_FORMAT', `no @nibble/cli package.json above ${from}`);
  }
}

/** The bundled model (stories260K, F32) and sample text, shipped in the package's `assets/`. */
export const bundledModel = join(packageRoot(), 'assets', 'stories260K.gguf');
export const bundledText = join(packageRoot(), 'assets', 'cs336-tinystories_sample.txt');

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
  options: {
    prompt?: string;
    maxTokens?: number;
    onRow?: (row: QualityRow) => void;
    /** Called before each format with its index and the number of formats. */
    onFormat?: (index: number, total: number, format: string) => void;
  } = {},
): Promise<QualityRow[]> {
  await import('@nibble/backend-js'); // registers the 'js' backend
  const { loadModel, klDivergence } = await import('@nibble/runner');
  const rows: QualityRow[] = [];
  const f32 = await loadModel((await quantizeToBlob(file, { type: 'f32' })).blob, { backend: 'js', contextSize: 512 });
  try {
    for (const name of RUN_FORMATS) {
      options.onFormat?.(rows.length, RUN_FORMATS.length, name);
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

/**
 * The quality rows as a table: size, perplexity, its change from the first row, the mean KL divergence from the F32
 * model, llama.cpp's perplexity.
 */
export function formatQuality(rows: readonly QualityRow[]): string {
  const base = rows[0]?.perplexity ?? 0;
  const body = rows.map((r, i) => {
    const delta = r.perplexity - base;
    return [
      r.format,
      `${(r.fileBytes / 1024).toFixed(0)} KiB`,
      r.perplexity.toFixed(4),
      i === 0 ? '' : `${delta >= 0 ? '+' : ''}${delta.toFixed(4)}`,
      r.kld.toFixed(6),
      r.llamaCppPerplexity === undefined ? '' : r.llamaCppPerplexity.toFixed(4),
    ];
  });
  return table(['format', 'size', 'perplexity', 'change', 'KLD', 'llama.cpp'], body, {
    align: ['l', 'r', 'r', 'r', 'r', 'r'],
  });
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
  /** Whether rows of this length can be stored at all (default: yes). */
  fits?(rowLength: number): boolean;
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
    fits(rowLength) {
      try {
        fallbackType(name, rowLength);
        return true;
      } catch {
        return false;
      }
    },
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
    if (!isQuantizable(info.name, info.shape)) {
      otherBytes += info.byteLength;
      continue;
    }
    const values = tensorToF32(file.readTensorSync(info.name));
    weights.push({ name: info.name, shape: info.shape, rowLength: info.shape[info.shape.length - 1], values });
  }
  return { weights, otherBytes, f32Bytes };
}

/** Computes the table for a model held in memory; `onVariant` is called before each variant. */
export function demoTable(
  file: GgufFile,
  variants = demoVariants(),
  onVariant?: (index: number, total: number, label: string) => void,
): DemoRow[] {
  const { weights, otherBytes, f32Bytes } = loadWeights(file);
  const params = weights.reduce((n, w) => n + w.values.length, 0);
  if (params === 0) {
    throw new NibbleError(
      'E_FORMAT',
      `the model has no 2-D weight tensors to quantize (${file.tensors.length} tensors: a vocabulary-only file?)`,
    );
  }
  const rows: DemoRow[] = [
    { format: 'F32', bitsPerWeight: 32, modelBytes: f32Bytes, ratioToF32: 1, rmse: 0, maxAbsError: 0, fallbacks: {} },
  ];
  for (const [index, v] of variants.entries()) {
    onVariant?.(index, variants.length, v.label);
    // A format llama.cpp cannot store this model in (a 128-block type with no fallback for these rows) is left out.
    if (!variantFits(v, weights)) continue;
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

/** Whether every weight can be stored in the variant (llama.cpp refuses a type with no fallback for the rows). */
function variantFits(v: Variant, weights: readonly Weight[]): boolean {
  return v.fits === undefined || weights.every((w) => v.fits?.(w.rowLength));
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
  const head = ['format', 'bpw', 'size', 'vs F32', 'RMSE', 'max |err|', 'stored otherwise (llama.cpp fallback)'];
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
  return table(head, body, { align: ['l', 'r', 'r', 'r', 'r', 'r', 'l'] });
}

function quality(file: GgufFile, text: string, bar: Progress, onRow?: (r: QualityRow) => void): Promise<QualityRow[]> {
  return demoQuality(file, text, {
    onFormat: (i, n, name) => (i === 0 ? bar.start(n, 0, name) : bar.update(i, name)),
    onRow,
  }).finally(() => bar.stop());
}

export async function run(args: string[]): Promise<number> {
  const p = parseOrHelp(demoSpec, args);
  if (!p) return 0;
  const { json } = p.values;
  const path = p.values.model ?? bundledModel;
  const textPath = p.values.text ?? bundledText;
  const file = parseGguf(new Uint8Array(readFileSync(path)));
  const text = p.values['table-only'] ? '' : readFileSync(textPath, 'utf8');
  const bar = progressBar(json);
  let rows: DemoRow[];
  try {
    rows = demoTable(file, demoVariants(), (i, n, label) =>
      i === 0 ? bar.start(n, 0, `quantizing ${label}`) : bar.update(i, `quantizing ${label}`),
    );
  } finally {
    bar.stop();
  }
  const tableOnly = p.values['table-only'];
  if (json) {
    const q = tableOnly ? [] : await quality(file, text, bar);
    console.log(JSON.stringify({ model: describeModel(file), rows, quality: q }, null, 2));
    return 0;
  }
  console.log(describeModel(file));
  console.log(
    'Weights: every 2-D weight tensor (norms stay F32). Error: against the F32 weights, over all quantized weights.\n',
  );
  console.log(formatTable(rows));
  const left = demoVariants().filter((v) => !rows.some((r) => r.format === v.label));
  if (left.length > 0) {
    console.log(
      `\nNot shown: ${left.map((v) => v.label).join(', ')} (llama.cpp has no fallback type for this model's rows).`,
    );
  }
  const k = rows.find((r) => Object.keys(r.fallbacks).length > 0 && r.format.endsWith('_K'));
  if (k) {
    const widths = [
      ...new Set(file.tensors.filter((t) => isQuantizable(t.name, t.shape)).map((t) => t.shape[t.shape.length - 1])),
    ];
    console.log(
      `\nK-quants, IQ4_XS and TQ types need rows of a multiple of ${dtypes.q4_K.blockSize}; this model's rows are ` +
        `${widths.join(', ')} wide, so llama.cpp's fallback types apply where they do not fit.`,
    );
  }
  if (tableOnly) return 0;
  console.log(
    `\nQuality: each format as llama-quantize would store it (output.weight Q8_0, rows of 172 F16), on the JS backend.\n` +
      `Perplexity on ${textPath.split('/').pop()} (BOS + each story), then a greedy story from the same prompt.\n`,
  );
  const q = await quality(file, text, bar, (r) =>
    bar.log(`${r.format.padEnd(7)} ${r.story.replace(/\s+/g, ' ').trim()}`),
  );
  console.log(`\n${formatQuality(q)}`);
  return 0;
}
