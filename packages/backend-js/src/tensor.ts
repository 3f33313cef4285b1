import { type Codec, formats } from '@nibble/formats';
import { type BackendTensor, type DTypeName, rowBytes, rowsOf, type Shape, UnsupportedError } from '@nibble/tensor';
import { type DecodeRow, fused } from './kernels.js';

/**
 * Weights decode to ggml's values even where a block's fp16 scale is ±Inf/NaN, as the fused kernels do (they check
 * nothing); a loader that wants to refuse such weights calls the codec's `firstOverflow` once.
 */
const asGgml = Object.freeze({ onOverflow: 'keep' as const });

/** Rows decoded at once by the generic (codec) path: about 64K floats of scratch. */
const chunkFloats = 65536;

/**
 * A tensor held by the JS backend: the uploaded bytes themselves (a view, not a copy) plus lazily built helpers for
 * the formats that have no fused kernel.
 *
 * @example
 * ```ts
 * const t = (await backend.upload(host)) as JsTensor;
 * t.bytes.buffer === host.data.buffer; // true: no copy
 * ```
 */
export class JsTensor implements BackendTensor {
  readonly backend = 'js';
  readonly name: string;
  readonly dtype: DTypeName;
  readonly shape: Shape;
  /** The stored bytes. */
  readonly bytes: Uint8Array;
  /** f32 view of `bytes` when dtype is f32. */
  readonly f32: Float32Array | undefined;
  /** Uint16Array view of `bytes` for 16-bit dtypes at an even offset. */
  readonly u16: Uint16Array | undefined;
  /** Int8Array view of `bytes` (same memory). */
  readonly i8: Int8Array;
  readonly rows: number;
  readonly cols: number;
  readonly rowBytes: number;
  /** Offset-based row decoder, or undefined when the codec must be used through row views. */
  readonly decode: DecodeRow | undefined;
  /** The codec of `@nibble/formats` for this dtype (undefined for non-numeric dtypes such as i32). */
  readonly codec: Codec | undefined;
  /** Identity of the backend instance that owns it. */
  readonly owner: object;
  #rowViews: (Uint8Array | undefined)[] | undefined;
  #chunks: { perChunk: number; views: Uint8Array[]; scratch: Float32Array; last: Float32Array } | undefined;

  constructor(owner: object, name: string, dtype: DTypeName, shape: Shape, bytes: Uint8Array) {
    this.owner = owner;
    this.name = name;
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.bytes = bytes;
    const { rows, cols } = rowsOf(shape);
    this.rows = rows;
    this.cols = cols;
    this.rowBytes = rowBytes(dtype, cols);
    this.f32 = dtype === 'f32' ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) : undefined;
    this.u16 =
      (dtype === 'f16' || dtype === 'bf16') && bytes.byteOffset % 2 === 0
        ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2)
        : undefined;
    this.i8 = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.codec = Object.hasOwn(formats, dtype) ? formats[dtype] : undefined;
    this.decode = fused[dtype]?.decode;
  }

  /** Decodes row `r` into `dst[dstOff .. dstOff + cols)`. Allocation-free after a row's first use. */
  decodeRow(r: number, dst: Float32Array, dstOff: number): void {
    const n = this.cols;
    if (this.f32 !== undefined) {
      const src = this.f32;
      const o = r * n;
      for (let i = 0; i < n; i++) dst[dstOff + i] = src[o + i];
    } else if (this.decode !== undefined) {
      this.decode(this.bytes, r * this.rowBytes, dst, dstOff, n);
    } else {
      const scratch = this.#rowScratch();
      this.#codec().dequantizeInto(this.rowView(r), scratch, asGgml);
      for (let i = 0; i < n; i++) dst[dstOff + i] = scratch[i];
    }
  }

  /** A cached byte view of row `r` (made on first use). */
  rowView(r: number): Uint8Array {
    this.#rowViews ??= new Array(this.rows);
    let v = this.#rowViews[r];
    if (v === undefined) {
      v = this.bytes.subarray(r * this.rowBytes, (r + 1) * this.rowBytes);
      this.#rowViews[r] = v;
    }
    return v;
  }

  /**
   * Decodes the chunk of rows that contains row `r` with the codec and returns the scratch holding it; row `r` starts
   * at `(r % rowsPerChunk()) * cols`. For formats without fused kernels.
   */
  decodeChunk(r: number): Float32Array {
    const c = this.#chunkInfo();
    const i = Math.floor(r / c.perChunk);
    const view = c.views[i];
    const dst = view.byteLength === c.perChunk * this.rowBytes ? c.scratch : c.last;
    this.#codec().dequantizeInto(view, dst, asGgml);
    return dst;
  }

  /** Rows per codec chunk (see {@link decodeChunk}). */
  rowsPerChunk(): number {
    return this.#chunkInfo().perChunk;
  }

  #scratch: Float32Array | undefined;
  #rowScratch(): Float32Array {
    this.#scratch ??= new Float32Array(this.cols);
    return this.#scratch;
  }

  #codec(): Codec {
    if (this.codec === undefined) throw new UnsupportedError(`js backend: no codec for ${this.dtype} (${this.name})`);
    return this.codec;
  }

  #chunkInfo(): { perChunk: number; views: Uint8Array[]; scratch: Float32Array; last: Float32Array } {
    if (this.#chunks === undefined) {
      const perChunk = Math.max(1, Math.min(this.rows, Math.floor(chunkFloats / Math.max(1, this.cols))));
      const views: Uint8Array[] = [];
      for (let r = 0; r < this.rows; r += perChunk) {
        views.push(this.bytes.subarray(r * this.rowBytes, Math.min(this.rows, r + perChunk) * this.rowBytes));
      }
      const lastRows = this.rows - (views.length - 1) * perChunk;
      this.#chunks = {
        perChunk,
        views,
        scratch: new Float32Array(perChunk * this.cols),
        last: new Float32Array(Math.max(0, lastRows) * this.cols),
      };
    }
    return this.#chunks;
  }
}
