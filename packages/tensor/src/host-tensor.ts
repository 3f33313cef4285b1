import { type DTypeInfo, type DTypeName, dtypes, rowBytes } from './dtype.js';
import { DTypeError, SizeError } from './errors.js';
import { rowsOf, type Shape } from './shape.js';

/**
 * A tensor in host memory: dtype, shape and a byte view of its data. `data` is a view, never a copy: it may point
 * into a GGUF file buffer.
 */
export interface HostTensor {
  readonly dtype: DTypeName;
  /** Outermost first; the last dimension is the row that blocks run along. */
  readonly shape: Shape;
  /** The tensor's bytes, in the dtype's stored layout. */
  readonly data: Uint8Array;
}

/** Bytes needed by a tensor of this dtype and shape. */
export function byteLength(dtype: DTypeName | DTypeInfo, shape: Shape): number {
  const { rows, cols } = rowsOf(shape);
  return rows * rowBytes(dtype, cols);
}

/**
 * Makes a {@link HostTensor} over existing bytes, checking that they have exactly the size the dtype and shape need.
 * Accepts any typed array or `ArrayBuffer`; the result views the same memory.
 *
 * @example
 * ```ts
 * const t = hostTensor('f32', [2, 3], new Float32Array(6));
 * t.data.byteLength; // 24
 * ```
 */
export function hostTensor(dtype: DTypeName, shape: Shape, data: ArrayBufferView | ArrayBufferLike): HostTensor {
  if (!Object.hasOwn(dtypes, dtype)) throw new DTypeError(`unknown dtype '${dtype}'`);
  const bytes = ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data);
  const need = byteLength(dtype, shape);
  if (bytes.byteLength !== need) {
    throw new SizeError(`${dtype} tensor of shape [${shape.join(', ')}] needs ${need} bytes, got ${bytes.byteLength}`);
  }
  return { dtype, shape: Object.freeze([...shape]), data: bytes };
}

/**
 * Views an f32 tensor's bytes as a Float32Array without copying. Throws when the dtype is not f32 or the bytes are
 * not 4-byte aligned (then copy with `slice()` first).
 */
export function asFloat32(t: HostTensor): Float32Array {
  if (t.dtype !== 'f32') throw new DTypeError(`expected an f32 tensor, got ${t.dtype}`);
  if (t.data.byteOffset % 4 !== 0) throw new SizeError('f32 tensor data is not 4-byte aligned');
  return new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4);
}
