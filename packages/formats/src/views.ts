/**
 * Typed-array views over a whole buffer, cached so that hot loops re-interpret bytes without allocating per row or
 * per call. Index a view at `(array.byteOffset >> shift) + i`.
 */

type Ctor<T> = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number };

/**
 * A two-entry cache of a view type: a quantize/dequantize pair touches two buffers (the f32 side and the block
 * side), and alternating calls must not allocate a view each time.
 */
function viewCache<T>(ctor: Ctor<T>): (buffer: ArrayBufferLike) => T {
  let buffer0: ArrayBufferLike | undefined;
  let view0: T | undefined;
  let bytes0 = 0;
  let buffer1: ArrayBufferLike | undefined;
  let view1: T | undefined;
  let bytes1 = 0;
  // A resizable buffer may have grown or shrunk since its view was made: the byte length is part of the key.
  return (buffer) => {
    if (buffer === buffer0 && buffer.byteLength === bytes0 && view0 !== undefined) return view0;
    if (buffer !== buffer1 || buffer.byteLength !== bytes1 || view1 === undefined) {
      view1 = new ctor(buffer, 0, Math.floor(buffer.byteLength / ctor.BYTES_PER_ELEMENT));
      buffer1 = buffer;
      bytes1 = buffer.byteLength;
    }
    // Most recent first.
    const b = buffer0;
    const v = view0;
    const n = bytes0;
    buffer0 = buffer1;
    view0 = view1;
    bytes0 = bytes1;
    buffer1 = b;
    view1 = v;
    bytes1 = n;
    return view0 as T;
  };
}

/** The whole buffer as u32 words. */
export const u32Of = /* @__PURE__ */ viewCache(Uint32Array);
/** The whole buffer as u16 halves. */
export const u16Of = /* @__PURE__ */ viewCache(Uint16Array);
/** The whole buffer as int8. */
export const i8Of = /* @__PURE__ */ viewCache(Int8Array);

/**
 * Index (from `k`) of the first element of largest magnitude among the `n` binary32 words `bits[k..k+n)`, `n` a
 * multiple of 4, or -1 when all are ±0. For finite values the order of |x| is the integer order of the sign-cleared
 * bits, and NaN or ±Inf have larger bits than every finite value: `(bits[k + i] & 0x7fffffff) >= 0x7f800000` at
 * the returned index `i` means the block is not finite. Branch-free in four lanes (the compare-and-keep of C's
 * strict `amax < |x|` loop mispredicts several times per block), then a scan for the first index holding the max.
 */
export function amaxIndex(bits: Uint32Array, k: number, n: number): number {
  let m0 = 0;
  let m1 = 0;
  let m2 = 0;
  let m3 = 0;
  for (let j = k; j < k + n; j += 4) {
    // max(m, a) of non-negative int32s: m - a cannot overflow, and its sign bit selects.
    let d = m0 - (bits[j] & 0x7fffffff);
    m0 -= d & (d >> 31);
    d = m1 - (bits[j + 1] & 0x7fffffff);
    m1 -= d & (d >> 31);
    d = m2 - (bits[j + 2] & 0x7fffffff);
    m2 -= d & (d >> 31);
    d = m3 - (bits[j + 3] & 0x7fffffff);
    m3 -= d & (d >> 31);
  }
  let d = m0 - m1;
  m0 -= d & (d >> 31);
  d = m2 - m3;
  m2 -= d & (d >> 31);
  d = m0 - m2;
  m0 -= d & (d >> 31);
  if (m0 === 0) return -1;
  let i = 0;
  while ((bits[k + i] & 0x7fffffff) !== m0) i++;
  return i;
}
