/**
 * The live demo's work, apart from its page: open a GGUF (the bundled stories260K or a local file), quantize it in
 * the page tensor by tensor with progress, measure each tensor's error against the original, list the backends with
 * the reason when one cannot start, and stream generated text with its speed.
 */
import '@nibble/backend-js';
import '@nibble/backend-webgpu'; // registers 'webgpu' on navigator.gpu; it reports why when the browser has none
import { formats } from '@nibble/formats';
import { blobSink, type GgufFile, type GgufSink, GgufWriter, openGguf } from '@nibble/gguf';
import { type ChatMessage, type Generation, ggufChatTemplate, loadModel, type Model } from '@nibble/runner';
import { type DTypeName, registeredBackends, selectBackend } from '@nibble/tensor';
// The CLI's model quantizer: the same code as `nibble quantize`, so the page writes the same bytes as Node.
import { isQuantizable, quantizeModel, tensorToF32 } from '../../../../packages/cli/src/model-quant.js';

/** Weight formats the demo offers (the activation-only formats Q8_1 and Q8_K are not weight formats). */
export const targets: { name: DTypeName; label: string }[] = Object.values(formats)
  .filter((c) => !c.info.internal && c.name !== 'f32')
  .map((c) => ({ name: c.name, label: `${c.name.toUpperCase()} (${+c.info.bitsPerWeight.toFixed(2)} bpw)` }));

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
  done: number;
  total: number;
  tensor: string;
}

/** The quantized file and what it cost. */
export interface QuantizeResult {
  blob: Blob;
  target: DTypeName;
  seconds: number;
  tensors: TensorStat[];
  /** How many tensors ended in each type. */
  storedAs: Record<string, number>;
}

// Lets the page repaint between tensors: the writer awaits every write.
function yieldingSink(inner: GgufSink): GgufSink {
  return {
    async write(chunk) {
      await inner.write(chunk);
      await new Promise((r) => setTimeout(r, 0));
    },
    close: () => inner.close(),
    abort: async (e) => inner.abort?.(e),
  };
}

/**
 * Quantizes every weight tensor of `model` to `target` like `nibble quantize`, then measures each quantized tensor
 * against the original.
 */
export async function quantizeInPage(
  model: OpenedModel,
  target: DTypeName,
  onProgress: (p: QuantizeProgress) => void,
): Promise<QuantizeResult> {
  const t0 = performance.now();
  const sink = blobSink();
  const storedAs: Record<string, number> = {};
  await quantizeModel(model.file, target, new GgufWriter(yieldingSink(sink)), {
    onTensor: (name, type, i, n) => {
      storedAs[type] = (storedAs[type] ?? 0) + 1;
      onProgress({ phase: 'quantize', done: i + 1, total: n, tensor: name });
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  const blob = sink.blob();

  const out = await openGguf(blob);
  const tensors: TensorStat[] = [];
  const candidates = model.file.tensors.filter((t) => isQuantizable(t.name, t.shape));
  for (const [i, t] of candidates.entries()) {
    const q = out.getTensor(t.name);
    if (!q || q.ggmlType === t.ggmlType) continue;
    const x = tensorToF32(await model.file.readTensor(t.name));
    const y = tensorToF32(await out.readTensor(t.name));
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
      from: t.typeName,
      to: q.typeName,
      bytesBefore: t.byteLength,
      bytesAfter: q.byteLength,
      relativeRmse: Math.sqrt(se / x.length) / rms,
      maxAbsError: max,
      histogram,
    });
    onProgress({ phase: 'measure', done: i + 1, total: candidates.length, tensor: t.name });
    await new Promise((r) => setTimeout(r, 0));
  }
  await out.close();
  return { blob, target, seconds, tensors, storedAs };
}

/** A backend the page can offer, or why it cannot. */
export interface BackendChoice {
  name: string;
  available: boolean;
  reason?: string;
}

/** The demo's backends in order of preference, each tried once: available, or the reason it is not. */
export async function backendChoices(names = ['webgpu', 'wasm', 'js']): Promise<BackendChoice[]> {
  const all = [...new Set([...names, ...registeredBackends()])];
  const out: BackendChoice[] = [];
  for (const name of all) {
    try {
      const { backend } = await selectBackend([name]);
      backend.dispose();
      out.push({ name, available: true });
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
