/**
 * Importance matrices: llama-imatrix's per-weight statistics of the activations entering each matrix multiplication,
 * which the quantizers use to weigh each column's error. Read llama.cpp's GGUF layout (`NAME.in_sum2` and
 * `NAME.counts` tensors, `imatrix.*` metadata) and its legacy `.dat` layout; write the GGUF one; accumulate new ones.
 */
import { blobSink, type GgufFile, type GgufSink, GgufWriter, openGguf, parseGguf } from '@nibble/gguf';
import { QuantizeError } from './errors.js';

/** One weight's statistics. */
export interface ImatrixEntry {
  /**
   * Sums over tokens of the squared input of each column, `[nMatrices, columns]` row-major (`nMatrices` > 1 only for
   * expert tensors). In a legacy `.dat` file: llama-imatrix's stored values, already divided and scaled by `ncall`.
   */
  readonly sums: Float32Array;
  /** Tokens counted, one per matrix (in a legacy file: `[ncall]`). */
  readonly counts: Float64Array;
}

/** Where an imatrix came from and how it was computed (its `imatrix.*` metadata). */
export interface ImatrixInfo {
  /** Calibration files (`imatrix.datasets`). */
  readonly datasets: readonly string[];
  /** Chunks evaluated (`imatrix.chunk_count`). */
  readonly chunkCount: number;
  /** Tokens per chunk (`imatrix.chunk_size`). */
  readonly chunkSize: number;
}

/**
 * An importance matrix: per weight name, its column statistics. {@link Imatrix.importance} gives the weights the
 * quantizers take, computed exactly as llama-quantize's loader does.
 *
 * @example
 * ```ts
 * const im = readImatrix(bytes);
 * im.importance('blk.0.attn_q.weight'); // Float32Array(columns): mean squared input per column
 * ```
 */
export class Imatrix implements ImatrixInfo {
  readonly entries: ReadonlyMap<string, ImatrixEntry>;
  readonly datasets: readonly string[];
  readonly chunkCount: number;
  readonly chunkSize: number;
  /** Whether it was read from the legacy `.dat` layout (its sums are stored divided). */
  readonly legacy: boolean;

  constructor(entries: ReadonlyMap<string, ImatrixEntry>, info: ImatrixInfo, legacy = false) {
    this.entries = entries;
    this.datasets = info.datasets;
    this.chunkCount = info.chunkCount;
    this.chunkSize = info.chunkSize;
    this.legacy = legacy;
  }

  /** Number of weights it covers. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The importance weights of one tensor, `[nMatrices * columns]`, as llama-quantize computes them: `in_sum2 / count`
   * per matrix in float32 (1 where a matrix saw no tokens); for a legacy file, the stored values divided by `ncall`.
   * Undefined when the imatrix has no entry of that name.
   */
  importance(name: string): Float32Array | undefined {
    const e = this.entries.get(name);
    if (!e) return undefined;
    const out = new Float32Array(e.sums.length);
    if (this.legacy) {
      const ncall = Math.fround(e.counts[0] ?? 0);
      for (let i = 0; i < out.length; i++) out[i] = ncall > 0 ? e.sums[i] / ncall : e.sums[i];
      return out;
    }
    const n = e.counts.length;
    const ne0 = e.sums.length / n;
    for (let j = 0; j < n; j++) {
      // llama.cpp reads counts with lround and divides by the float of it.
      const count = Math.fround(Math.round(e.counts[j]));
      for (let i = j * ne0; i < (j + 1) * ne0; i++) out[i] = count > 0 ? e.sums[i] / count : 1;
    }
    return out;
  }
}

function formatError(message: string): QuantizeError {
  return new QuantizeError('E_QUANT_IMATRIX_FORMAT', message);
}

const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian

/**
 * Reads an imatrix file held in memory: llama-imatrix's GGUF layout, or (when the bytes do not start with "GGUF") its
 * legacy `.dat` layout.
 *
 * @example
 * ```ts
 * const im = readImatrix(new Uint8Array(await file.arrayBuffer()));
 * im.size; // entries
 * ```
 */
export function readImatrix(bytes: Uint8Array): Imatrix {
  if (bytes.byteLength >= 4 && new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true) === GGUF_MAGIC) {
    return fromGguf(parseGguf(bytes));
  }
  return readLegacyImatrix(bytes);
}

/**
 * Reads a GGUF imatrix from any source `@nibble/gguf` opens (bytes, Blob/File, URL), reading only its tensors.
 *
 * @example
 * ```ts
 * const im = await openImatrix(fileInput.files[0]);
 * ```
 */
export async function openImatrix(source: Uint8Array | Blob | URL | string): Promise<Imatrix> {
  if (source instanceof Uint8Array) return readImatrix(source);
  const file = await openGguf(source);
  try {
    const entries = await collectGguf(file, (info) => file.readTensorBytes(info));
    return new Imatrix(entries, ggufInfo(file));
  } finally {
    await file.close();
  }
}

function ggufInfo(file: GgufFile): ImatrixInfo {
  const datasets = file.metadata.get('imatrix.datasets');
  const count = file.metadata.get('imatrix.chunk_count');
  const size = file.metadata.get('imatrix.chunk_size');
  // llama-quantize refuses a GGUF imatrix without these three (its "missing imatrix metadata").
  if (!Array.isArray(datasets) || typeof count !== 'number' || typeof size !== 'number') {
    throw formatError('GGUF imatrix without imatrix.datasets, imatrix.chunk_count and imatrix.chunk_size');
  }
  return { datasets: datasets.map(String), chunkCount: count, chunkSize: size };
}

function fromGguf(file: GgufFile): Imatrix {
  const entries = new Map<string, ImatrixEntry>();
  for (const [name, p] of pairs(file)) {
    entries.set(name, toEntry(name, file.readTensorSync(p.sums.name).data, file.readTensorSync(p.counts.name).data));
  }
  return new Imatrix(entries, ggufInfo(file));
}

async function collectGguf(
  file: GgufFile,
  read: (info: GgufFile['tensors'][number]) => Promise<Uint8Array>,
): Promise<Map<string, ImatrixEntry>> {
  const entries = new Map<string, ImatrixEntry>();
  for (const [name, pair] of pairs(file))
    entries.set(name, toEntry(name, await read(pair.sums), await read(pair.counts)));
  return entries;
}

type Info = GgufFile['tensors'][number];

function pairs(file: GgufFile): Map<string, { sums: Info; counts: Info }> {
  if (file.tensors.length < 1) throw formatError('GGUF imatrix has no tensors');
  const found = new Map<string, { sums?: Info; counts?: Info }>();
  for (const t of file.tensors) {
    let name: string;
    let key: 'sums' | 'counts';
    if (t.name.endsWith('.in_sum2')) [name, key] = [t.name.slice(0, -8), 'sums'];
    else if (t.name.endsWith('.counts')) [name, key] = [t.name.slice(0, -7), 'counts'];
    else continue;
    if (name.length === 0) continue;
    const p = found.get(name) ?? {};
    p[key] = t;
    found.set(name, p);
  }
  const out = new Map<string, { sums: Info; counts: Info }>();
  for (const name of [...found.keys()].sort()) {
    const p = found.get(name) as { sums?: Info; counts?: Info };
    if (!p.sums || !p.counts) throw formatError(`mismatched sums and counts for ${name}`);
    if (p.sums.dtype !== 'f32' || p.counts.dtype !== 'f32')
      throw formatError(`sums and counts for ${name} must be F32`);
    if (p.counts.elementCount < 1 || p.sums.elementCount % p.counts.elementCount !== 0) {
      throw formatError(`${name}: ${p.sums.elementCount} sums do not split into ${p.counts.elementCount} matrices`);
    }
    out.set(name, { sums: p.sums, counts: p.counts });
  }
  return out;
}

function f32(bytes: Uint8Array): Float32Array {
  const copy = bytes.slice();
  return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
}

function toEntry(name: string, sums: Uint8Array, counts: Uint8Array): ImatrixEntry {
  const s = f32(sums);
  const c = Float64Array.from(f32(counts));
  for (let i = 0; i < s.length; i++) {
    if (!Number.isFinite(s[i]))
      throw new QuantizeError('E_QUANT_IMATRIX', `non-finite sum ${s[i]} at column ${i}`, name);
  }
  for (const v of c)
    if (!Number.isFinite(v) || v < 0) throw new QuantizeError('E_QUANT_IMATRIX', `bad count ${v}`, name);
  return { sums: s, counts: c };
}

/**
 * Reads llama-imatrix's legacy `.dat` layout: `int32 n`, then per entry `int32 len, name, int32 ncall, int32 nval,
 * float[nval]`, then optionally `int32 chunks, int32 len, dataset`. Every length is checked against the file.
 *
 * @example
 * ```ts
 * const im = readLegacyImatrix(bytes);
 * im.legacy; // true
 * ```
 */
export function readLegacyImatrix(bytes: Uint8Array): Imatrix {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const need = (n: number, what: string) => {
    if (pos + n > bytes.byteLength) throw formatError(`legacy imatrix ends inside ${what} at byte ${pos}`);
  };
  const i32 = (what: string) => {
    need(4, what);
    const v = dv.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const n = i32('the entry count');
  if (n < 1) throw formatError(`legacy imatrix has ${n} entries`);
  // Each entry takes at least 16 bytes: an entry count past that is not a real file.
  if (n > (bytes.byteLength - 4) / 16)
    throw formatError(`legacy imatrix claims ${n} entries in ${bytes.byteLength} bytes`);
  const utf8 = new TextDecoder('utf-8', { fatal: false });
  const entries = new Map<string, ImatrixEntry>();
  for (let e = 0; e < n; e++) {
    const len = i32(`the name length of entry ${e + 1}`);
    if (len < 0) throw formatError(`entry ${e + 1} has a name length of ${len}`);
    need(len, `the name of entry ${e + 1}`);
    const name = utf8.decode(bytes.subarray(pos, pos + len));
    pos += len;
    const ncall = i32(`the ncall of ${name}`);
    const nval = i32(`the value count of ${name}`);
    if (nval < 1) throw formatError(`${name}: ${nval} values`);
    need(nval * 4, `the values of ${name}`);
    const sums = f32(bytes.subarray(pos, pos + nval * 4));
    pos += nval * 4;
    for (let i = 0; i < sums.length; i++) {
      if (!Number.isFinite(sums[i]))
        throw new QuantizeError('E_QUANT_IMATRIX', `non-finite value at column ${i}`, name);
    }
    entries.set(name, { sums, counts: Float64Array.of(ncall) });
  }
  let chunkCount = 0;
  const datasets: string[] = [];
  if (pos + 4 <= bytes.byteLength) {
    chunkCount = i32('the chunk count');
    if (pos + 4 <= bytes.byteLength) {
      const len = i32('the dataset name length');
      if (len > 0 && pos + len <= bytes.byteLength) datasets.push(utf8.decode(bytes.subarray(pos, pos + len)));
    }
  }
  return new Imatrix(entries, { datasets, chunkCount, chunkSize: 0 }, true);
}

/**
 * Writes an imatrix in llama-imatrix's GGUF layout (what `llama-imatrix -o X.gguf` writes): `general.type`
 * "imatrix", `imatrix.datasets`, `imatrix.chunk_count`, `imatrix.chunk_size`, then per weight, in name order,
 * `NAME.in_sum2` and `NAME.counts` as F32 tensors. Legacy entries are converted back to sums (`value * count /
 * ncall` is not recoverable exactly; they are written with a count of `ncall`).
 *
 * @example
 * ```ts
 * const sink = blobSink();
 * await writeImatrix(im, sink);
 * ```
 */
export async function writeImatrix(imatrix: Imatrix, sink: GgufSink): Promise<void> {
  const w = new GgufWriter(sink);
  w.metadata.setString('general.type', 'imatrix');
  w.metadata.set('imatrix.datasets', [...imatrix.datasets], { array: 'string' });
  w.metadata.setU32('imatrix.chunk_count', imatrix.chunkCount);
  w.metadata.setU32('imatrix.chunk_size', imatrix.chunkSize);
  const names = [...imatrix.entries.keys()].sort();
  for (const name of names) {
    const e = imatrix.entries.get(name) as ImatrixEntry;
    const nMat = e.counts.length;
    const cols = e.sums.length / nMat;
    // ggml writes the dimensions up to the last one above 1: one matrix is a 1-D tensor.
    w.addTensor({ name: `${name}.in_sum2`, dtype: 'f32', shape: nMat > 1 ? [nMat, cols] : [cols] });
    w.addTensor({ name: `${name}.counts`, dtype: 'f32', shape: nMat > 1 ? [nMat, 1] : [1] });
  }
  try {
    for (const name of names) {
      const e = imatrix.entries.get(name) as ImatrixEntry;
      await w.writeTensor(`${name}.in_sum2`, e.sums);
      await w.writeTensor(`${name}.counts`, Float32Array.from(e.counts));
    }
    await w.finish();
  } catch (err) {
    await w.abort(err);
    throw err;
  }
}

/**
 * {@link writeImatrix} into a Blob.
 *
 * @example
 * ```ts
 * const blob = await imatrixToBlob(im); // download it, or read it back with openImatrix
 * ```
 */
export async function imatrixToBlob(imatrix: Imatrix): Promise<Blob> {
  const sink = blobSink();
  await writeImatrix(imatrix, sink);
  return sink.blob();
}

/**
 * Accumulates an importance matrix from observed activations, as llama-imatrix does: for each weight, the sum over
 * tokens of the square of each input column, and the number of tokens. Sums are kept in float64 (llama-imatrix keeps
 * float32), so long calibrations lose nothing to rounding.
 *
 * @example
 * ```ts
 * const c = new ImatrixCollector();
 * c.add('blk.0.attn_q.weight', x, tokens, columns); // x: [tokens, columns] row-major
 * const im = c.toImatrix({ datasets: ['calib.txt'], chunkCount: 10, chunkSize: 512 });
 * ```
 */
export class ImatrixCollector {
  readonly #sums = new Map<string, Float64Array>();
  readonly #counts = new Map<string, number>();

  /** Adds `rows` tokens of `cols` inputs (row-major `data`) entering weight `name`. */
  add(name: string, data: Float32Array, rows: number, cols: number): void {
    if (
      !Number.isSafeInteger(rows) ||
      !Number.isSafeInteger(cols) ||
      rows < 0 ||
      cols < 1 ||
      data.length < rows * cols
    ) {
      throw new QuantizeError(
        'E_QUANT_IMATRIX',
        `${rows} x ${cols} activations do not fit ${data.length} values`,
        name,
      );
    }
    let acc = this.#sums.get(name);
    if (!acc) {
      acc = new Float64Array(cols);
      this.#sums.set(name, acc);
      this.#counts.set(name, 0);
    } else if (acc.length !== cols) {
      throw new QuantizeError('E_QUANT_IMATRIX', `inconsistent size (${acc.length} columns before, ${cols} now)`, name);
    }
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      for (let j = 0; j < cols; j++) {
        const x = data[o + j];
        acc[j] += x * x;
      }
    }
    for (let j = 0; j < cols; j++) {
      if (!Number.isFinite(acc[j]))
        throw new QuantizeError('E_QUANT_IMATRIX', `non-finite activation sum at column ${j}`, name);
    }
    this.#counts.set(name, (this.#counts.get(name) as number) + rows);
  }

  /** Weights seen so far. */
  get names(): string[] {
    return [...this.#sums.keys()];
  }

  /** The accumulated statistics as an {@link Imatrix}. */
  toImatrix(info: ImatrixInfo): Imatrix {
    const entries = new Map<string, ImatrixEntry>();
    for (const [name, acc] of this.#sums) {
      entries.set(name, { sums: Float32Array.from(acc), counts: Float64Array.of(this.#counts.get(name) as number) });
    }
    return new Imatrix(entries, info);
  }
}
