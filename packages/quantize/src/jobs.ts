/**
 * The unit of work: dequantize a run of rows from their stored type and quantize them to another, with optional
 * importance weights. The same function runs in the calling thread and in every pool worker, so their bytes cannot
 * differ.
 */
import { getFormat } from '@nibble/formats';
import { type DTypeName, ValueError } from '@nibble/tensor';
import { loadedQuantizerModule, WasmQuantizers, wasmTypes } from './wasm.js';

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
 * Runs jobs in the calling thread with one growable float32 scratch buffer (no allocation per job once it is big
 * enough).
 */
export class JobRunner {
  #scratch = new Float32Array(0);
  #wasm: WasmQuantizers | undefined;

  /** Quantizes `job` into `dst` (exactly the job's output size). Throws {@link NonFiniteValue} for NaN/Inf input. */
  run(job: QuantizeJob, dst: Uint8Array): void {
    if (job.wasm !== false && wasmTypes.has(job.to) && this.#runWasm(job, dst)) return;
    const n = job.rows * job.rowLength;
    let values: Float32Array;
    if (job.from === 'f32' && job.src.byteOffset % 4 === 0) {
      values = new Float32Array(job.src.buffer, job.src.byteOffset, n);
    } else {
      if (this.#scratch.length < n) this.#scratch = new Float32Array(n);
      values = this.#scratch.subarray(0, n);
      if (job.from === 'f32') new Uint8Array(values.buffer, values.byteOffset, n * 4).set(job.src.subarray(0, n * 4));
      else getFormat(job.from).dequantizeInto(job.src, values);
    }
    try {
      getFormat(job.to).quantizeInto(values, dst, { rowLength: job.rowLength, importance: job.importance });
    } catch (e) {
      if (e instanceof ValueError) {
        const at = e.row * job.rowLength + e.column;
        throw new NonFiniteValue(e.row, e.column, values[at]);
      }
      throw e;
    }
    // Codecs that copy (F16, BF16, F32) do not check values: look for NaN/Inf the way a block quantizer would.
    if (job.to === 'f32' || job.to === 'f16' || job.to === 'bf16') {
      for (let i = 0; i < n; i++) {
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

  // The WebAssembly path: dequantize into the module's memory, check the values, quantize there. Returns false to
  // leave the job to the TypeScript codecs (module not compiled, or importance weights they must reject).
  #runWasm(job: QuantizeJob, dst: Uint8Array): boolean {
    const imp = job.importance;
    if (imp) for (let i = 0; i < imp.length; i++) if (!(imp[i] >= 0 && imp[i] < Number.POSITIVE_INFINITY)) return false;
    if (!this.#wasm) {
      const m = loadedQuantizerModule();
      if (!m) return false;
      this.#wasm = new WasmQuantizers(m);
    }
    const n = job.rows * job.rowLength;
    const values = this.#wasm.input(job.rows, job.rowLength, dst.byteLength);
    if (job.from === 'f32') new Uint8Array(values.buffer, values.byteOffset, n * 4).set(job.src.subarray(0, n * 4));
    else getFormat(job.from).dequantizeInto(job.src, values);
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v - v !== 0) throw new NonFiniteValue(Math.floor(i / job.rowLength), i % job.rowLength, v);
    }
    return this.#wasm.quantize(job.to, values, job.rowLength, imp, dst);
  }
}
