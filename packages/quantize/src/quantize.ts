/**
 * quantizeModel: llama-quantize, streaming. The plan (every tensor's type) is made first from the header alone, as
 * llama.cpp's preliminary loop does, so that every refusal happens before a byte is written; then tensors are read,
 * converted and written one at a time, in llama.cpp's order, so the output is byte-identical to llama-quantize's.
 */
import {
  blobSink,
  type GgufFile,
  type GgufSink,
  type GgufSource,
  type GgufTensorInfo,
  GgufWriter,
  openGguf,
  writableStreamSink,
} from '@nibble/gguf';
import { type DTypeName, dtypes, findDType } from '@nibble/tensor';
import { QuantizeError } from './errors.js';
import type { Imatrix } from './imatrix.js';
import { NonFiniteValue, type QuantizeJob } from './jobs.js';
import { inlinePool, type JobPool } from './pool.js';
import { ftypeOfType, type Preset, requirePreset } from './presets.js';
import { allowsQuantization, chooseTypes, llamaOrder, type ModelFacts, nDims } from './rules.js';
import { loadQuantizerModule } from './wasm.js';

/** Options of {@link quantizeModel} and {@link planQuantization}: llama-quantize's, in camel case. */
export interface QuantizeModelOptions {
  /** A llama-quantize preset (`Q4_K_M`, `Q8_0`, ...; case-insensitive, `Q4_K` = `Q4_K_M`). Give this or `type`. */
  preset?: string;
  /**
   * A target type instead of a preset: the preset of that name when there is one (`q4_0` is `Q4_0`), otherwise (for
   * `q3_K`, `q4_K`, `q5_K`, `mxfp4`) every quantized tensor gets this type, as with `pure`.
   */
  type?: string;
  /** An importance matrix (see `readImatrix`); the quantizers that take one use it. */
  imatrix?: Imatrix;
  /** What `quantize.imatrix.file` records (llama-quantize writes the path it was given). Default `'imatrix'`. */
  imatrixName?: string;
  /** Every quantized tensor gets the default type, no mix (`--pure`). */
  pure?: boolean;
  /** Type of `output.weight` (`--output-tensor-type`). */
  outputType?: string;
  /** Type of `token_embd.weight` (`--token-embedding-type`). */
  tokenEmbeddingType?: string;
  /** `--tensor-type PATTERN=TYPE` overrides, first match wins; patterns are regular expressions searched in names. */
  tensorTypes?: readonly (readonly [string | RegExp, string])[];
  /** Keep `output.weight` as it is (`--leave-output-tensor`). */
  leaveOutputTensor?: boolean;
  /** Quantize tensors that are already quantized (after dequantizing them), like `--allow-requantize`. */
  allowRequantize?: boolean;
  /**
   * For {@link planQuantization} only: size a plan that would need an imatrix without one (a warning instead of an
   * error), like llama-quantize's `--dry-run`.
   */
  dryRun?: boolean;
  /**
   * Threads: 1 (default) quantizes in the calling thread. For more, pass a `pool` (`nodeWorkerPool` of
   * `@nibble/quantize/node`, which `quantizeFile` makes for you, or `webWorkerPool`).
   */
  threads?: number;
  /** A worker pool to run on (not closed here). */
  pool?: JobPool;
  /** Use the WebAssembly quantizers (Q4_K, Q6_K) where they apply; false runs every type in TypeScript. Default true. */
  wasm?: boolean;
  /** Called as work progresses (at least once per tensor). */
  onProgress?(progress: QuantizeProgress): void;
  /** Stops between jobs; the sink is aborted (a path sink removes its temporary file). */
  signal?: AbortSignal;
}

/** Progress of {@link quantizeModel}. */
export interface QuantizeProgress {
  /** The tensor being written. */
  readonly tensor: string;
  /** Its index in the output and the tensor count. */
  readonly index: number;
  readonly count: number;
  /** Input bytes done and in all (tensor data only). */
  readonly bytesDone: number;
  readonly bytesTotal: number;
  /** Output bytes written so far. */
  readonly bytesWritten: number;
  /** Milliseconds since the start. */
  readonly elapsedMs: number;
}

/** One tensor of a {@link QuantizePlan}. */
export interface PlannedTensor {
  readonly name: string;
  /** Outermost first. */
  readonly shape: readonly number[];
  /** Stored type of the input (ggml's name). */
  readonly from: string;
  /** Stored type of the output (ggml's name). */
  readonly to: string;
  /** Whether it is converted (otherwise its bytes are copied). */
  readonly convert: boolean;
  /** Whether the row length forced llama.cpp's fallback type. */
  readonly fellBack: boolean;
  /** Whether importance weights are used for it. */
  readonly imatrix: boolean;
  readonly elements: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** What {@link planQuantization} decides: every tensor's type and the sizes, before anything is read. */
export interface QuantizePlan {
  /** The preset, or the one whose ftype is written for a plain `type`. */
  readonly preset: string;
  /** `general.file_type` written. */
  readonly ftype: number;
  /** In output order (llama.cpp's: by layer, then name). */
  readonly tensors: readonly PlannedTensor[];
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly elements: number;
  /** Things worth telling the user (no tensor converted, imatrix entries missing, fallbacks). */
  readonly warnings: readonly string[];
}

/** What {@link quantizeModel} returns: the plan and how long it took. */
export interface QuantizeResult extends QuantizePlan {
  /** Bytes of the written file (header and padding included). */
  readonly fileBytes: number;
  readonly elapsedMs: number;
  readonly threads: number;
}

interface Resolved {
  preset: string;
  ftype: number;
  defaultType: DTypeName;
  pure: boolean;
}

function typeName(name: string, what: string): DTypeName {
  const info = findDType(name) ?? findDType(name.toLowerCase()) ?? findDType(name.toLowerCase().replace(/_k$/, '_K'));
  if (!info || info.internal || info.ggmlType < 0) {
    throw new QuantizeError('E_QUANT_PRESET', `unknown ${what} '${name}'`);
  }
  return info.name;
}

function resolve(options: QuantizeModelOptions): Resolved {
  if ((options.preset === undefined) === (options.type === undefined)) {
    throw new QuantizeError('E_QUANT_OPTION', 'give exactly one of preset and type');
  }
  if (options.preset !== undefined) {
    const p: Preset = requirePreset(options.preset);
    return { preset: p.name, ftype: p.ftype, defaultType: p.defaultType, pure: options.pure ?? false };
  }
  const t = typeName(options.type as string, 'type');
  const named = ftypeOfType(t);
  try {
    const p = requirePreset(t);
    return { preset: p.name, ftype: p.ftype, defaultType: p.defaultType, pure: options.pure ?? false };
  } catch {
    if (named === undefined) throw new QuantizeError('E_QUANT_PRESET', `no llama_ftype stores ${t}`);
    return { preset: t, ftype: named, defaultType: t, pure: true };
  }
}

/**
 * The hyperparameters llama.cpp's rules read, from a file's metadata.
 *
 * @example
 * ```ts
 * modelFacts(file); // { arch: 'llama', nLayer: 5, nHead: 8, nHeadKv: 4, nExpert: 0 }
 * ```
 */
export function modelFacts(file: Pick<GgufFile, 'metadata'>): ModelFacts {
  const arch = file.metadata.get('general.architecture');
  const a = typeof arch === 'string' ? arch : '';
  const num = (key: string, dflt: number): number => {
    const v = file.metadata.get(`${a}.${key}`);
    const first = ArrayBuffer.isView(v) ? (v as unknown as ArrayLike<number | bigint>)[0] : Array.isArray(v) ? v[0] : v;
    if (typeof first === 'number') return first;
    if (typeof first === 'bigint') return Number(first);
    return dflt;
  };
  const nHead = num('attention.head_count', 0);
  return {
    arch: a,
    nLayer: num('block_count', 0),
    nHead,
    nHeadKv: num('attention.head_count_kv', nHead),
    nExpert: num('expert_count', 0),
  };
}

function rowBytes(type: DTypeName, rowLength: number): number {
  const d = dtypes[type];
  return (rowLength / d.blockSize) * d.bytesPerBlock;
}

/**
 * Decides every tensor's type and size from the header alone (what `--dry-run` prints), with llama.cpp's refusals:
 * requantizing without `allowRequantize`, a Q2_K_S file without an imatrix, an imatrix entry of the wrong size.
 *
 * @example
 * ```ts
 * const plan = planQuantization(file, { preset: 'Q4_K_M' });
 * plan.bytesOut; // data bytes of the output
 * plan.tensors.filter((t) => t.to === 'q6_K').map((t) => t.name);
 * ```
 */
export function planQuantization(
  file: Pick<GgufFile, 'metadata' | 'tensors'>,
  options: QuantizeModelOptions,
): QuantizePlan {
  const r = resolve(options);
  const facts = modelFacts(file);
  const ordered = [...file.tensors].sort((a, b) => llamaOrder(a.name, b.name));
  const imatrix = options.imatrix;
  const patterns = (options.tensorTypes ?? []).map(([p, t]): [RegExp, DTypeName] => {
    let re: RegExp;
    try {
      re = typeof p === 'string' ? new RegExp(p.toLowerCase()) : p;
    } catch (e) {
      throw new QuantizeError('E_QUANT_OPTION', `bad tensor-type pattern '${String(p)}': ${(e as Error).message}`);
    }
    return [re, typeName(t, 'tensor type')];
  });
  const outputType = options.outputType === undefined ? undefined : typeName(options.outputType, 'output tensor type');
  const tokenEmbeddingType =
    options.tokenEmbeddingType === undefined ? undefined : typeName(options.tokenEmbeddingType, 'token embedding type');
  const choices = chooseTypes(
    ordered.map((t) => ({ name: t.name, ne: t.ne })),
    facts,
    {
      ftype: r.ftype,
      defaultType: r.defaultType,
      pure: r.pure,
      outputType,
      tokenEmbeddingType,
      tensorTypes: patterns,
      quantizeOutput: !options.leaveOutputTensor,
      hasImatrix: imatrix !== undefined,
    },
  );
  const warnings: string[] = [];
  const tensors: PlannedTensor[] = [];
  const missing: string[] = [];
  let fallbacks = 0;
  let wouldNeedImatrix = false;
  ordered.forEach((t, k) => {
    const c = choices[k];
    const to = c.type ?? t.dtype;
    const toName = to ?? t.typeName;
    const convert = c.type !== undefined && c.type !== t.dtype && dtypes[c.type].ggmlType !== t.ggmlType;
    if (c.fellBack) fallbacks++;
    if (c.type !== undefined && !imatrix && c.needsImatrix && options.dryRun) wouldNeedImatrix = true;
    else if (c.type !== undefined && !imatrix && c.needsImatrix) {
      throw new QuantizeError(
        'E_QUANT_IMATRIX',
        `this quantization needs an importance matrix (${c.type} in a ${r.preset} file); give one as imatrix`,
        t.name,
        { option: { api: 'as imatrix', flag: 'with --imatrix' } },
      );
    }
    let usesImatrix = false;
    if (convert && c.type !== undefined) {
      const target = c.type;
      const info = dtypes[target];
      if (info.internal) throw new QuantizeError('E_QUANT_TYPE', `${target} is an activation format`, t.name);
      if (t.ne[0] % info.blockSize !== 0) {
        throw new QuantizeError(
          'E_QUANT_TYPE',
          `rows of ${t.ne[0]} do not fit ${target}'s block of ${info.blockSize}`,
          t.name,
        );
      }
      if (t.dtype === undefined)
        throw new QuantizeError('E_QUANT_TYPE', `nibble cannot read its type ${t.typeName}`, t.name);
      if (dtypes[t.dtype].quantized && !options.allowRequantize) {
        throw new QuantizeError(
          'E_QUANT_REQUANTIZE',
          `already ${t.dtype}; requantizing loses accuracy, pass allowRequantize to do it anyway`,
          t.name,
          { option: { api: 'allowRequantize', flag: '--allow-requantize' } },
        );
      }
      if (imatrix) {
        const e = imatrix.entries.get(t.name);
        const want = t.ne[0] * (t.ne[2] ?? 1);
        if (e === undefined) missing.push(t.name);
        else if (e.sums.length !== want) {
          // llama.cpp ignores a token_embd entry of the wrong size (it always has one) and refuses any other.
          if (t.name !== 'token_embd.weight' && t.name !== 'per_layer_token_embd.weight') {
            throw new QuantizeError(
              'E_QUANT_IMATRIX',
              `imatrix has ${e.sums.length} values, the tensor needs ${want} (${t.ne[0]} columns per matrix)`,
              t.name,
            );
          }
        } else usesImatrix = true;
        if (!usesImatrix && c.needsImatrix) {
          throw new QuantizeError('E_QUANT_IMATRIX', `the imatrix has no entry for it and ${target} needs one`, t.name);
        }
      }
    }
    const elements = t.elementCount;
    const bytesOut = convert && to !== undefined ? (elements / t.ne[0]) * rowBytes(to, t.ne[0]) : t.byteLength;
    tensors.push({
      name: t.name,
      shape: normalShape(t.ne),
      from: t.typeName,
      to: toName,
      convert,
      fellBack: c.fellBack,
      imatrix: usesImatrix,
      elements,
      bytesIn: t.byteLength,
      bytesOut,
    });
  });
  if (!tensors.some((t) => t.convert)) {
    const allowed = ordered.filter((t) => allowsQuantization(t.name, t.ne, !options.leaveOutputTensor)).length;
    warnings.push(
      allowed === 0
        ? 'nothing to quantize: the file has no 2-D weight tensors (only norms, biases or 1-D tensors); it is copied as is'
        : `nothing to quantize: every weight tensor is already ${r.preset === 'F32' ? 'f32' : 'in its target type'}; the file is copied as is`,
    );
  }
  if (missing.length > 0) {
    warnings.push(
      `the imatrix has no entry for ${missing.length} tensor(s), quantized without one: ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', ...' : ''}`,
    );
  }
  if (wouldNeedImatrix) warnings.push(`quantizing to ${r.preset} will need an importance matrix (--imatrix)`);
  if (fallbacks > 0) warnings.push(`${fallbacks} of ${ordered.length} tensor(s) required fallback quantization`);
  const sum = (f: (t: PlannedTensor) => number) => tensors.reduce((a, t) => a + f(t), 0);
  return {
    preset: r.preset,
    ftype: r.ftype,
    tensors,
    bytesIn: sum((t) => t.bytesIn),
    bytesOut: sum((t) => t.bytesOut),
    elements: sum((t) => t.elements),
    warnings,
  };
}

// ggml writes the dimensions up to the last one above 1 (ggml_n_dims); shapes here are outermost first.
function normalShape(ne: readonly number[]): number[] {
  return ne.slice(0, nDims(ne)).reverse();
}

/** Where {@link quantizeModel} writes: a GgufSink (see `@nibble/gguf`: `blobSink`, or `fileSink` of its `/node`) or a WritableStream. */
export type QuantizeSink = GgufSink | WritableStream<Uint8Array>;

function toSink(sink: QuantizeSink): GgufSink {
  if (typeof WritableStream !== 'undefined' && sink instanceof WritableStream) return writableStreamSink(sink);
  return sink as GgufSink;
}

const utf8 = new TextEncoder();

// llama-quantize copies these into fixed 128-byte fields (127 bytes and a NUL).
function cString127(s: string): string {
  const b = utf8.encode(s);
  if (b.byteLength <= 127) return s;
  return new TextDecoder().decode(b.subarray(0, 127)).replace(/\uFFFD$/, '');
}

/** The metadata llama-quantize writes: the input's, then quantization_version, file_type and the imatrix keys. */
function writeMetadata(w: GgufWriter, file: GgufFile, plan: QuantizePlan, options: QuantizeModelOptions): void {
  const m = w.metadata;
  m.copyFrom(file);
  // gguf_set_val_* removes a key and appends it: these keys move to the end, in this order.
  const append = (key: string, f: () => void) => {
    m.delete(key);
    f();
  };
  append('general.quantization_version', () => m.setU32('general.quantization_version', 2));
  append('general.file_type', () => m.setU32('general.file_type', plan.ftype));
  for (const key of ['split.no', 'split.count', 'split.tensors.count']) m.delete(key);
  const im = options.imatrix;
  if (im) {
    append('quantize.imatrix.file', () =>
      m.setString('quantize.imatrix.file', cString127(options.imatrixName ?? 'imatrix')),
    );
    if (im.datasets.length > 0) {
      append('quantize.imatrix.dataset', () => m.setString('quantize.imatrix.dataset', cString127(im.datasets[0])));
    }
    append('quantize.imatrix.entries_count', () => m.setU32('quantize.imatrix.entries_count', im.size));
    if (im.chunkCount > 0)
      append('quantize.imatrix.chunks_count', () => m.setU32('quantize.imatrix.chunks_count', im.chunkCount));
  }
}

// Jobs of about this many elements: big enough to amortize a worker round trip, small enough to balance threads.
const JOB_ELEMENTS = 1 << 20;

/**
 * Quantizes a GGUF model like llama-quantize, streaming tensor by tensor: memory holds a tensor's input and output
 * bytes and the jobs in flight, never the model. The output is llama-quantize's, byte for byte: the same tensor order,
 * types, bytes and metadata (tests compare with files llama.cpp's `llama_model_quantize` wrote).
 *
 * `source` is a {@link GgufFile} or anything `openGguf` takes (bytes, a Blob or File, a URL); for a path in Node use
 * `quantizeFile` of `@nibble/quantize/node`, which also writes atomically.
 *
 * @example
 * ```ts
 * import { blobSink } from '@nibble/gguf';
 * const sink = blobSink();
 * const r = await quantizeModel(file, sink, { preset: 'Q4_K_M', onProgress: (p) => console.log(p.tensor) });
 * const blob = sink.blob(); // r.bytesOut data bytes, r.tensors says which type each tensor got
 * ```
 */
export async function quantizeModel(
  source: GgufFile | GgufSource,
  sink: QuantizeSink,
  options: QuantizeModelOptions,
): Promise<QuantizeResult> {
  const out = toSink(sink);
  let file: GgufFile | undefined;
  let owned = false;
  let pool: JobPool | undefined;
  let ownPool = false;
  let writer: GgufWriter | undefined;
  try {
    if (isGgufFile(source)) file = source;
    else {
      file = await openGguf(source);
      owned = true;
    }
    const plan = planQuantization(file, options);
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
      throw new QuantizeError('E_QUANT_OPTION', `threads must be an integer in 1..256, got ${threads}`);
    }
    if (options.pool) pool = options.pool;
    else if (threads > 1) {
      throw new QuantizeError(
        'E_QUANT_OPTION',
        `threads ${threads} needs a worker pool: pass pool (nodeWorkerPool of @nibble/quantize/node, or webWorkerPool)`,
      );
    } else {
      pool = inlinePool();
      ownPool = true;
    }
    if (options.wasm !== false) await loadQuantizerModule();
    const t0 = performance.now();
    writer = new GgufWriter(out);
    writeMetadata(writer, file, plan, options);
    for (const t of plan.tensors) {
      const info = file.getTensor(t.name) as GgufTensorInfo;
      writer.addTensor({ name: t.name, dtype: t.convert ? (t.to as DTypeName) : info.ggmlType, shape: t.shape });
    }
    let bytesDone = 0;
    const report = (k: number) =>
      options.onProgress?.({
        tensor: plan.tensors[k].name,
        index: k,
        count: plan.tensors.length,
        bytesDone,
        bytesTotal: plan.bytesIn,
        bytesWritten: writer?.bytesWritten ?? 0,
        elapsedMs: performance.now() - t0,
      });
    // Pipelined: tensor k+1 is read and tensor k-1 written while tensor k is converted, so memory holds about four
    // tensors (two inputs, two outputs) and the disk works while the CPUs do.
    const src = file;
    const read = (k: number) => {
      const p = src.readTensorBytes(src.getTensor(plan.tensors[k].name) as GgufTensorInfo);
      p.catch(() => {}); // awaited below; a failure while another tensor is in flight must not go unhandled
      return p;
    };
    let next: Promise<Uint8Array> | undefined = plan.tensors.length > 0 ? read(0) : undefined;
    let writing: Promise<void> = Promise.resolve();
    for (let k = 0; k < plan.tensors.length; k++) {
      options.signal?.throwIfAborted();
      const t = plan.tensors[k];
      const info = file.getTensor(t.name) as GgufTensorInfo;
      const bytes = await (next as Promise<Uint8Array>);
      next = k + 1 < plan.tensors.length ? read(k + 1) : undefined;
      let out = bytes;
      if (t.convert) {
        out = new Uint8Array(t.bytesOut);
        const importance = t.imatrix ? options.imatrix?.importance(t.name) : undefined;
        await convertTensor(
          pool,
          info,
          t.to as DTypeName,
          bytes,
          out,
          importance,
          options.wasm,
          options.signal,
          (n) => {
            bytesDone += n;
            report(k);
          },
        );
      } else {
        bytesDone += t.bytesIn;
        report(k);
      }
      await writing;
      const w = writer;
      writing = w.writeTensor(t.name, out);
      writing.catch(() => {});
    }
    await writing;
    await writer.finish();
    return { ...plan, fileBytes: writer.bytesWritten, elapsedMs: performance.now() - t0, threads: pool.threads };
  } catch (e) {
    if (writer) await writer.abort(e);
    else await out.abort?.(e);
    throw e;
  } finally {
    if (ownPool) await pool?.close();
    if (owned) await file?.close();
  }
}

/**
 * {@link quantizeModel} into a Blob (in a browser, large Blobs may live on disk, so the output need not fit in JS
 * memory).
 *
 * @example
 * ```ts
 * const { blob, result } = await quantizeToBlob(inputFile, { preset: 'Q4_0' });
 * ```
 */
export async function quantizeToBlob(
  source: GgufFile | GgufSource,
  options: QuantizeModelOptions,
): Promise<{ blob: Blob; result: QuantizeResult }> {
  const sink = blobSink();
  const result = await quantizeModel(source, sink, options);
  return { blob: sink.blob(), result };
}

function isGgufFile(x: unknown): x is GgufFile {
  return typeof x === 'object' && x !== null && 'tensors' in x && 'readTensorBytes' in x && 'metadata' in x;
}

/** Splits one tensor into jobs (whole rows, never across expert matrices) and runs them on the pool. */
async function convertTensor(
  pool: JobPool,
  info: GgufTensorInfo,
  to: DTypeName,
  src: Uint8Array,
  dst: Uint8Array,
  importance: Float32Array | undefined,
  wasm: boolean | undefined,
  signal: AbortSignal | undefined,
  done: (bytesIn: number) => void,
): Promise<void> {
  const from = info.dtype as DTypeName;
  const rowLength = info.ne[0];
  const rowsPerMatrix = info.ne[1] ?? 1;
  const totalRows = info.elementCount / rowLength;
  const inRow = info.byteLength / totalRows;
  const outRow = rowBytes(to, rowLength);
  const perJob = Math.max(1, Math.floor(JOB_ELEMENTS / rowLength));
  const jobs: Promise<void>[] = [];
  let failure: unknown;
  for (let row = 0; row < totalRows; ) {
    const matrix = Math.floor(row / rowsPerMatrix);
    const end = Math.min(row + perJob, (matrix + 1) * rowsPerMatrix, totalRows);
    const job: QuantizeJob = {
      from,
      to,
      rowLength,
      rows: end - row,
      src: src.subarray(row * inRow, end * inRow),
      importance: importance?.subarray(matrix * rowLength, (matrix + 1) * rowLength),
      wasm,
    };
    const firstRow = row;
    const target = dst.subarray(row * outRow, end * outRow);
    jobs.push(
      pool.run(job, target).then(
        () => done(job.src.byteLength),
        (e: unknown) => {
          failure ??= e instanceof NonFiniteValue ? nonFinite(info.name, to, firstRow + e.row, e.column, e.value) : e;
        },
      ),
    );
    row = end;
    if (signal?.aborted) break;
  }
  await Promise.all(jobs);
  if (failure !== undefined) throw failure;
  signal?.throwIfAborted();
}

function nonFinite(tensor: string, to: DTypeName, row: number, column: number, value: number): QuantizeError {
  return new QuantizeError(
    'E_QUANT_VALUE',
    `cannot quantize ${value} at row ${row}, column ${column} (to ${to})`,
    tensor,
  );
}
