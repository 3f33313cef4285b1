/**
 * Typed-array views over a whole buffer, cached so that hot loops re-interpret bytes without allocating per row or
 * per call. Index a view at `(array.byteOffset >> shift) + i`.
 */

type Ctor<T> = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number };

/** A one-entry cache of a view type: the last buffer asked for is the one asked for next, row after row. */
function viewCache<T>(ctor: Ctor<T>): (buffer: ArrayBufferLike) => T {
  let lastBuffer: ArrayBufferLike | undefined;
  let lastView: T | undefined;
  return (buffer) => {
    if (buffer !== lastBuffer || lastView === undefined) {
      lastView = new ctor(buffer, 0, Math.floor(buffer.byteLength / ctor.BYTES_PER_ELEMENT));
      lastBuffer = buffer;
    }
    return lastView;
  };
}

/** The whole buffer as u32 words. */
export const u32Of = /* @__PURE__ */ viewCache(Uint32Array);
/** The whole buffer as u16 halves. */
export const u16Of = /* @__PURE__ */ viewCache(Uint16Array);
/** The whole buffer as int8. */
export const i8Of = /* @__PURE__ */ viewCache(Int8Array);
