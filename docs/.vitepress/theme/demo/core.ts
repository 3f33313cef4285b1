/**
 * The live demo's work, apart from its page: open a GGUF (the bundled stories260K or a local file), quantize it in
 * the page to a llama-quantize preset with @nibble/quantize (optionally with an importance matrix, optionally on Web
 * Workers), measure each tensor's error against the original, list the backends with the reason when one cannot
 * start, and stream generated text with its speed.
 */
import '@nibble/backend-js';
import '@nibble/backend-wasm'; // registers 'wasm': Web Workers over one shared memory when cross-origin isolated
import '@nibble/backend-webgpu'; // registers 'webgpu' on navigator.gpu; it reports why when the browser has none
import { getFormat } from '@nibble/formats';
import { type GgufFile, openGguf } from '@nibble/gguf';
import {
  type Imatrix,
  type JobPool,
  openImatrix,
  planQuantization,
  presets,
  type QuantizePlan,
  quantizeToBlob,
  webWorkerPool,
} from '@nibble/quantize';
import { type ChatMessage, type Generation, ggufChatTemplate, loadModel, type Model } from '@nibble/runner';
import { type HostTensor, registeredBackends, selectBackend } from '@nibble/tensor';
// The quantization worker, bundled by Vite; its URL goes to webWorkerPool.
import quantizeWorkerUrl from './quantize-worker.ts?worker&url';

/** An opened model file and where it came from. */
export interface OpenedModel {
  file: GgufFile;
  /** The file's bytes as a Blob, for loading it onto a backend later. */
  blob: Blob;
  name: string;
  bytes: number;
}

/** Opens the bundled model (fetched once from `url`) or a file the user picked. */
export async function openModel(source: { url: string } | { file: File }): Promise<OpenedModel> {
  let blob: Blob;
  let name: string;
  if ('url' in source) {
    const r = await fetch(source.url);
    if (!r.ok) throw new Error(`could not fetch ${source.url}: HTTP ${r.status}`);
    blob = await r.blob();
    name = source.url.split('/').pop() ?? 'model.gguf';
  } else {
    blob = source.file;
    name = source.file.name;
  }
  return { file: await openGguf(blob), blob, name, bytes: blob.size };
}

/** An importance matrix and the file name llama-quantize would record for it (`quantize.imatrix.file`). */
export interface OpenedImatrix {
  imatrix: Imatrix;
  name: string;
}

/** Opens an importance matrix (llama-imatrix's GGUF or legacy `.dat` file). */
export async function openImatrixFile(file: File): Promise<OpenedImatrix> {
  return { imatrix: await openImatrix(file), name: file.name };
}

/** A llama-quantize preset for this model: its planned size, or why it cannot be made. */
export interface PresetChoice {
  name: string;
  /** llama-quantize's own description. */
  description: string;
  plan?: QuantizePlan;
  /** Bits per weight of the tensor data, as planned for this model. */
  bitsPerWeight?: number;
  reason?: string;
}

/**
 * Every preset of @nibble/quantize planned for `file` (the header alone, nothing is read): the planned size, or the
 * refusal llama-quantize would give (Q2_K_S without an importance matrix, a type whose blocks no row fits).
 */
export function presetChoices(file: GgufFile, imatrix?: OpenedImatrix): PresetChoice[] {
  return presets.map((p) => {
    try {
      const plan = planQuantization(file, { preset: p.name, imatrix: imatrix?.imatrix });
      return { name: p.name, description: p.description, plan, bitsPerWeight: (8 * plan.bytesOut) / plan.elements };
    } catch (e) {
      return { name: p.name, description: p.description, reason: (e as Error).message };
    }
  });
}

/** One tensor after quantization. */
export interface TensorStat {
  name: string;
  shape: readonly number[];
  from: string;
  to: string;
  bytesBefore: number;
  bytesAfter: number;
  /** RMSE against the original values, over the RMS of the original values. */
  relativeRmse: number;
  maxAbsError: number;
  /** Counts of |error| / RMS in the bins of {@link histogramEdges}. */
  histogram: number[];
}

/** Upper edges of the error histogram's bins, as fractions of the tensor's RMS (the last bin takes the rest). */
export const histogramEdges = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1, Number.POSITIVE_INFINITY];

/** Progress of {@link quantizeInPage}. */
export interface QuantizeProgress {
  phase: 'quantize' | 'measure';
  /** 0..1 of the phase. */
  fraction: number;
  tensor: string;
}

/** The quantized file and what it cost. */
export interface QuantizeResult {
  blob: Blob;
  preset: string;
  threads: number;
  seconds: number;
  tensors: TensorStat[];
  /** How many tensors ended in each type. */
  storedAs: Record<string, number>;
  warnings: readonly string[];
}

// A tensor's values as f32 (a view when already f32 and aligned).
function toF32(t: HostTensor): Float32Array {
  if (t.dtype === 'f32' && t.data.byteOffset % 4 === 0)
    return new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4);
  if (t.dtype === 'f32') return new Float32Array(t.data.slice().buffer);
  return getFormat(t.dtype).dequantize(
    t.data,
    t.shape.reduce((a, b) => a * b, 1),
  );
}

/** Threads the page can quantize on: Web Workers need no cross-origin isolation (jobs are copied to them). */
export function maxThreads(): number {
  return typeof Worker === 'undefined' ? 1 : Math.max(1, Math.min(8, navigator.hardwareConcurrency || 1));
}

/**
 * Quantizes `model` to `preset` with llama-quantize's rules (the same code as `nibble quantize`, so the page writes
 * the same bytes as Node and llama.cpp), on `threads` Web Workers when more than one, then measures each converted
 * tensor against the original.
 */
export async function quantizeInPage(
  model: OpenedModel,
  preset: string,
  options: { threads?: number; imatrix?: OpenedImatrix; onProgress?: (p: QuantizeProgress) => void } = {},
): Promise<QuantizeResult> {
  const threads = options.threads ?? 1;
  const t0 = performance.now();
  let pool: JobPool | undefined;
  let lastPaint = 0;
  let result: Awaited<ReturnType<typeof quantizeToBlob>>;
  try {
    pool = threads > 1 ? await webWorkerPool({ threads, url: new URL(quantizeWorkerUrl, location.href) }) : undefined;
    result = await quantizeToBlob(model.file, {
      preset,
      imatrix: options.imatrix?.imatrix,
      imatrixName: options.imatrix?.name,
      pool,
      onProgress: (p) => {
        options.onProgress?.({ phase: 'quantize', fraction: p.bytesDone / (p.bytesTotal || 1), tensor: p.tensor });
      },
    });
  } finally {
    await pool?.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  const { blob, result: plan } = result;

  const storedAs: Record<string, number> = {};
  for (const t of plan.tensors) storedAs[t.to] = (storedAs[t.to] ?? 0) + 1;
  const out = await openGguf(blob);
  const tensors: TensorStat[] = [];
  const converted = plan.tensors.filter((t) => t.convert);
  try {
    for (const [i, t] of converted.entries()) {
      const x = toF32(await model.file.readTensor(t.name));
      const y = toF32(await out.readTensor(t.name));
      let ss = 0;
      let se = 0;
      let max = 0;
      for (let j = 0; j < x.length; j++) {
        ss += x[j] * x[j];
        const e = Math.abs(x[j] - y[j]);
        se += e * e;
        if (e > max) max = e;
      }
      const rms = Math.sqrt(ss / x.length) || 1;
      const histogram = new Array<number>(histogramEdges.length).fill(0);
      for (let j = 0; j < x.length; j++) {
        const r = Math.abs(x[j] - y[j]) / rms;
        let b = 0;
        while (r > histogramEdges[b]) b++;
        histogram[b]++;
      }
      tensors.push({
        name: t.name,
        shape: t.shape,
        from: t.from,
        to: t.to,
        bytesBefore: t.bytesIn,
        bytesAfter: t.bytesOut,
        relativeRmse: Math.sqrt(se / x.length) / rms,
        maxAbsError: max,
        histogram,
      });
      options.onProgress?.({ phase: 'measure', fraction: (i + 1) / converted.length, tensor: t.name });
      // Let the page repaint now and then.
      if (performance.now() - lastPaint > 50) {
        await new Promise((r) => setTimeout(r, 0));
        lastPaint = performance.now();
      }
    }
  } finally {
    await out.close();
  }
  return { blob, preset: plan.preset, threads, seconds, tensors, storedAs, warnings: plan.warnings };
}

/** A backend the page can offer, or why it cannot. */
export interface BackendChoice {
  name: string;
  available: boolean;
  /** Why it cannot start here. */
  reason?: string;
  /** What it says about how it runs here (the WASM backend's thread count without cross-origin isolation). */
  note?: string;
}

/** The demo's backends in order of preference, each tried once: available, or the reason it is not. */
export async function backendChoices(names = ['webgpu', 'wasm', 'js']): Promise<BackendChoice[]> {
  const all = [...new Set([...names, ...registeredBackends()])];
  const out: BackendChoice[] = [];
  for (const name of all) {
    try {
      const { backend } = await selectBackend([name]);
      // The WASM backend runs one thread where SharedArrayBuffer is withheld, and says why.
      const note = (backend as { threadNote?: string }).threadNote;
      backend.dispose();
      out.push({ name, available: true, ...(note ? { note } : {}) });
    } catch (e) {
      const skipped = (e as { skipped?: { reason: string }[] }).skipped;
      out.push({ name, available: false, reason: skipped?.[0]?.reason ?? (e as Error).message });
    }
  }
  return out;
}

/** Loads `blob` onto the backend `backend`. */
export function loadOnBackend(blob: Blob, backend: string): Promise<Model> {
  return loadModel(blob, { backend }); // context: the file's, capped at 2048
}

/** Whether the file carries a chat template (`tokenizer.chat_template`), or why chat is not offered. */
export function chatSupport(file: GgufFile): { ok: true } | { ok: false; reason: string } {
  try {
    return ggufChatTemplate(file.metadata)
      ? { ok: true }
      : { ok: false, reason: 'this file has no tokenizer.chat_template: it is not a chat model' };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}

/** One chat turn on a loaded model: the model keeps its session, so a later turn evaluates only what is new. */
export function chatTurn(
  model: Model,
  messages: readonly ChatMessage[],
  maxTokens: number,
  temperature: number,
): Generation {
  return model.chat(messages, { maxTokens, temperature });
}

/** Streams a generation into `onText`; resolves with tokens per second of the decode loop. */
export async function streamGeneration(
  generation: Generation,
  onText: (text: string) => void,
): Promise<{ tokens: number; decodeTokPerSec: number; promptTokPerSec: number; finishReason: string }> {
  for await (const { text } of generation) onText(text);
  const s = generation.stats;
  return {
    tokens: s.generatedTokens,
    decodeTokPerSec: s.decodeMs > 0 ? ((s.generatedTokens - 1) / s.decodeMs) * 1000 : 0,
    promptTokPerSec: s.promptMs > 0 ? (s.promptTokens / s.promptMs) * 1000 : 0,
    finishReason: s.finishReason ?? 'length',
  };
}

/** Bytes as KiB or MiB. */
export function formatBytes(n: number): string {
  return n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}
