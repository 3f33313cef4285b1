/**
 * The unit of work: quantize a run of rows from their stored type to another, with optional importance weights.
 * The same function runs in the calling thread and in every pool worker, so their bytes cannot differ. Rows stored
 * as F32, F16 or BF16 go to the WebAssembly quantizers (decoded there, row by row); the TypeScript codecs of
 * `@nibble/formats` do the rest (requantizing an already quantized tensor, or when the module is not loaded).
 */
import { getFormat, ScaleOverflowError } from '@nibble/formats';
import { type DTypeName, dtypes, ValueError } from '@nibble/tensor';
import { loadedQuantizerModule, WasmQuantizers, wasmSources, wasmTypes } from './wasm.js';

/** One run of whole rows of one tensor (never crossing an expert matrix, whose importance weights differ). */
export interface QuantizeJob {
  /** Stored type of `src`. */
  readonly from: DTypeName;
  /** Type to write. */
  readonly to: DTypeName;
  /** Elements per row. */
  readonly rowLength: number;
  /** Rows in this job. */
  readonly rows: number;
  /** The rows' stored bytes. */
  readonly src: Uint8Array;
  /** Importance weights, `rowLength` long, or undefined. */
  readonly importance?: Float32Array;
  /** Use the WebAssembly quantizers for the types they have, when compiled (default true). */
  readonly wasm?: boolean;
}

/** A NaN or infinity found in a job: its row (within the job), column and value. */
export class NonFiniteValue extends Error {
  constructor(
    readonly row: number,
    readonly column: number,
    readonly value: number,
  ) {
    super(`cannot quantize ${value} at row ${row}, column ${column}`);
  }
}

/**
 * A block whose fp16 scale overflows (its row within the job, its first column and largest magnitude): llama.cpp
 * refuses such a tensor ("quantized data validation failed"), and so does quantizeModel.
 */
export class ScaleOverflow extends Error {
  constructor(
    readonly row: number,
    readonly column: number,
    readonly amax: number,
  ) {
    super(`a block's scale overflows fp16 at row ${row}, column ${column}`);
  }
}

/** Bytes of `rows` rows of `rowLength` values of `type`. */
export function jobOutputBytes(type: DTypeName, rows: number, rowLength: number): number {
  const d = dtypes[type];
  return rows * (rowLength / d.blockSize) * d.bytesPerBlock;
}

/**
 * Runs jobs in the calling thread with one growable float32 scratch buffer and one WebAssembly instance (no
 * allocation per job once they are big enough).
 */
export class JobRunner {
  #scratch = new Float32Array(0);
  #wasm: WasmQuantizers | undefined;

  /**
   * Quantizes `job` into `dst` (exactly the job's output size). Throws {@link NonFiniteValue} for NaN/Inf input and
   * {@link ScaleOverflow} for a block whose scale overflows fp16.
   */
  run(job: QuantizeJob, dst: Uint8Array): void {
    if (job.wasm !== false && wasmTypes.has(job.to) && wasmSources.has(job.from) && this.#runWasm(job, dst)) {
      const block = (this.#wasm as WasmQuantizers).overflowBlock;
      if (block >= 0) {
        const first = block * dtypes[job.to].blockSize;
        const row = Math.floor(first / job.rowLength);
        throw overflowOf(this.#values(job), job.rowLength, row, first % job.rowLength, job.to);
      }
      return;
    }
    const values = this.#values(job);
    try {
      getFormat(job.to).quantizeInto(values, dst, { rowLength: job.rowLength, importance: job.importance });
    } catch (e) {
      if (e instanceof ScaleOverflowError)
        throw overflowOf(values, job.rowLength, e.overflow.row, e.overflow.column, job.to);
      if (e instanceof ValueError) {
        const at = e.row * job.rowLength + e.column;
        throw new NonFiniteValue(e.row, e.column, values[at]);
      }
      throw e;
    }
    // Codecs that copy (F16, BF16, F32) do not check values: look for NaN/Inf the way a block quantizer would.
    if (job.to === 'f32' || job.to === 'f16' || job.to === 'bf16') {
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (v - v !== 0) throw new NonFiniteValue(Math.floor(i / job.rowLength), i % job.rowLength, v);
      }
    }
  }

  /** Drops the scratch buffers. */
  release(): void {
    this.#scratch = new Float32Array(0);
    this.#wasm = undefined;
  }

  // The job's rows as f32: a view of F32 input when aligned, else decoded into the scratch.
  #values(job: QuantizeJob): Float32Array {
    const n = job.rows * job.rowLength;
    if (job.from === 'f32' && job.src.byteOffset % 4 === 0)
      return new Float32Array(job.src.buffer, job.src.byteOffset, n);
    if (this.#scratch.length < n) this.#scratch = new Float32Array(n);
    const values = this.#scratch.subarray(0, n);
    if (job.from === 'f32') new Uint8Array(values.buffer, values.byteOffset, n * 4).set(job.src.subarray(0, n * 4));
    else getFormat(job.from).dequantizeInto(job.src, values);
    return values;
  }

  // The WebAssembly path. Returns false to leave the job to the TypeScript codecs (module not compiled, or importance
  // weights they must reject with their own error).
  #runWasm(job: QuantizeJob, dst: Uint8Array): boolean {
    const imp = job.importance;
    if (imp) for (let i = 0; i < imp.length; i++) if (!(imp[i] >= 0 && imp[i] < Number.POSITIVE_INFINITY)) return false;
    if (!this.#wasm) {
      const m = loadedQuantizerModule();
      if (!m) return false;
      this.#wasm = new WasmQuantizers(m);
    }
    const bad = this.#wasm.convert(job.from, job.to, job.src, job.rows, job.rowLength, imp, dst);
    if (bad === -2) return false;
    if (bad >= 0) {
      throw new NonFiniteValue(Math.floor(bad / job.rowLength), bad % job.rowLength, storedValue(job, bad));
    }
    return true;
  }
}

function overflowOf(
  values: Float32Array,
  rowLength: number,
  row: number,
  column: number,
  to: DTypeName,
): ScaleOverflow {
  const bs = dtypes[to].blockSize;
  let amax = 0;
  for (let i = 0; i < bs; i++) amax = Math.max(amax, Math.abs(values[row * rowLength + column + i]));
  return new ScaleOverflow(row, column, amax);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

// The value at element `i` of a job's F32, F16 or BF16 input (for the message about it).
function storedValue(job: QuantizeJob, i: number): number {
  const s = job.src;
  if (job.from === 'f32') {
    u32[0] = (s[4 * i] | (s[4 * i + 1] << 8) | (s[4 * i + 2] << 16) | (s[4 * i + 3] << 24)) >>> 0;
    return f32[0];
  }
  const h = s[2 * i] | (s[2 * i + 1] << 8);
  if (job.from === 'bf16') {
    u32[0] = h << 16;
    return f32[0];
  }
  // An f16 NaN or infinity: the exponent is all ones.
  return (h & 0x3ff) !== 0 ? Number.NaN : h & 0x8000 ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
}
