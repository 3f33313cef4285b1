/**
 * INT8, nibble's own family: int8 quants with f32 or f16 scales, symmetric or with an int8 zero point, one scale
 * per tensor, per channel (row) or per group of columns. The bytes describe themselves (layout in README.md):
 *
 * ```
 * offset  size  field
 * 0       4     magic "NI8" + version (0x4e 0x49 0x38 0x01)
 * 4       1     granularity: 0 tensor, 1 channel (row), 2 group
 * 5       1     flags: bit 0 = asymmetric (zero points present), bit 1 = f16 scales (else f32)
 * 6       2     reserved, 0
 * 8       4     rows        (u32 LE)
 * 12      4     rowLength   (u32 LE)
 * 16      4     groupSize   (u32 LE; elements per scale: rows*rowLength, rowLength or the group size)
 * 20      4     groups      (u32 LE; number of scales)
 * 24      S     scales: groups x f32 or f16, LE
 * 24+S    Z     zero points: groups x i8 (only if asymmetric)
 * ...     P     zero padding to a multiple of 4
 * ...     N     quants: rows*rowLength x i8, row-major
 * ```
 * value = (q - zeroPoint) * scale, with zeroPoint = 0 when symmetric.
 */
import { dtypes, NibbleError, ShapeError, SizeError, ValueError } from '@nibble/tensor';
import { expectKind, throwNonFinite } from './codec.js';
import { fp16Table, fp32ToFp16 } from './half.js';

/** How many values share one scale. */
export type Int8Granularity = 'tensor' | 'channel' | 'group';

/** Options of `int8.quantize`. */
export interface Int8Options {
  /** Length of one row (channel). Default: the whole input is one row. */
  rowLength?: number;
  /** One scale per tensor, per row, or per `groupSize` columns of a row. Default `'channel'`. */
  granularity?: Int8Granularity;
  /** Columns per group when `granularity` is `'group'`; must divide the row length. Default 32. */
  groupSize?: number;
  /** Symmetric (no zero point, range ±127) or asymmetric (int8 zero point, range -128..127). Default true. */
  symmetric?: boolean;
  /** Scale storage. f16 scales are rounded up so the error bound still holds. Default `'f32'`. */
  scaleType?: 'f32' | 'f16';
}

/** The header fields of an INT8 buffer. */
export interface Int8Layout {
  granularity: Int8Granularity;
  symmetric: boolean;
  scaleType: 'f32' | 'f16';
  rows: number;
  rowLength: number;
  groupSize: number;
  groups: number;
  /** Byte offset of the scales, zero points (or -1) and quants. */
  scalesOffset: number;
  zeroPointsOffset: number;
  quantsOffset: number;
  /** Total bytes. */
  byteLength: number;
}

const GRANULARITY: readonly Int8Granularity[] = ['tensor', 'channel', 'group'];
const HEADER = 24;

function layoutFor(
  rows: number,
  rowLength: number,
  granularity: Int8Granularity,
  groupSize: number,
  symmetric: boolean,
  scaleType: 'f32' | 'f16',
): Int8Layout {
  const n = rows * rowLength;
  const groups = granularity === 'tensor' ? (n > 0 ? 1 : 0) : granularity === 'channel' ? rows : n / groupSize;
  const scaleBytes = groups * (scaleType === 'f16' ? 2 : 4);
  const zeroPointsOffset = symmetric ? -1 : HEADER + scaleBytes;
  const afterZp = HEADER + scaleBytes + (symmetric ? 0 : groups);
  const quantsOffset = (afterZp + 3) & ~3;
  return {
    granularity,
    symmetric,
    scaleType,
    rows,
    rowLength,
    groupSize,
    groups,
    scalesOffset: HEADER,
    zeroPointsOffset,
    quantsOffset,
    byteLength: quantsOffset + n,
  };
}

/** Reads and validates the header of an INT8 buffer. Throws a `NibbleError` (`E_FORMAT`) naming the bad field. */
export function int8Layout(src: Uint8Array): Int8Layout {
  if (src.length < HEADER)
    throw new NibbleError('E_FORMAT', `int8: ${src.length} bytes is shorter than the 24-byte header`);
  if (src[0] !== 0x4e || src[1] !== 0x49 || src[2] !== 0x38)
    throw new NibbleError('E_FORMAT', 'int8: bad magic (expected "NI8")');
  if (src[3] !== 1) throw new NibbleError('E_FORMAT', `int8: unsupported version ${src[3]} (expected 1)`);
  const granularity = GRANULARITY[src[4]];
  if (granularity === undefined) throw new NibbleError('E_FORMAT', `int8: bad granularity ${src[4]} at offset 4`);
  const flags = src[5];
  if (flags > 3) throw new NibbleError('E_FORMAT', `int8: unknown flags 0x${flags.toString(16)} at offset 5`);
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const rows = view.getUint32(8, true);
  const rowLength = view.getUint32(12, true);
  const groupSize = view.getUint32(16, true);
  const groups = view.getUint32(20, true);
  const n = rows * rowLength;
  const expectGroup = granularity === 'tensor' ? n : granularity === 'channel' ? rowLength : groupSize;
  if (groupSize !== expectGroup || (granularity === 'group' && (groupSize === 0 || rowLength % groupSize !== 0))) {
    throw new NibbleError(
      'E_FORMAT',
      `int8: group size ${groupSize} at offset 16 does not fit ${granularity} of ${rows}x${rowLength}`,
    );
  }
  const layout = layoutFor(rows, rowLength, granularity, groupSize, (flags & 1) === 0, flags & 2 ? 'f16' : 'f32');
  if (layout.groups !== groups) {
    throw new NibbleError('E_FORMAT', `int8: header says ${groups} groups at offset 20, shape gives ${layout.groups}`);
  }
  if (src.length < layout.byteLength) {
    throw new NibbleError('E_FORMAT', `int8: ${src.length} bytes, header needs ${layout.byteLength}`);
  }
  return layout;
}

function scaleUp16(s: number): number {
  // Rounds a scale up to an fp16 value so that no value clamps beyond scale/2.
  let h = fp32ToFp16(s);
  if (fp16Table()[h] < s) h++;
  return h;
}

function quantize(src: Float32Array, options: Int8Options = {}): Uint8Array {
  expectKind('int8', 'the input', src, 'Float32Array');
  const rowLength = options.rowLength ?? src.length;
  const granularity = options.granularity ?? 'channel';
  const symmetric = options.symmetric ?? true;
  const scaleType = options.scaleType ?? 'f32';
  if (!GRANULARITY.includes(granularity)) throw new ShapeError(`int8: unknown granularity '${granularity}'`);
  if (
    !Number.isSafeInteger(rowLength) ||
    rowLength < 0 ||
    (rowLength === 0 && src.length > 0) ||
    (rowLength > 0 && src.length % rowLength !== 0)
  ) {
    throw new ShapeError(`int8: ${src.length} values are not a whole number of rows of ${rowLength}`);
  }
  const rows = rowLength === 0 ? 0 : src.length / rowLength;
  const groupSize =
    granularity === 'tensor' ? src.length : granularity === 'channel' ? rowLength : (options.groupSize ?? 32);
  if (granularity === 'group' && (!Number.isSafeInteger(groupSize) || groupSize <= 0 || rowLength % groupSize !== 0)) {
    throw new ShapeError(`int8: group size ${groupSize} does not divide the row length ${rowLength}`);
  }
  if (src.length > 0xffffffff) throw new ShapeError('int8: more than 2^32 values');
  const layout = layoutFor(rows, rowLength, granularity, groupSize, symmetric, scaleType);
  const dst = new Uint8Array(layout.byteLength);
  dst.set([0x4e, 0x49, 0x38, 1, GRANULARITY.indexOf(granularity), (symmetric ? 0 : 1) | (scaleType === 'f16' ? 2 : 0)]);
  const view = new DataView(dst.buffer);
  view.setUint32(8, rows, true);
  view.setUint32(12, rowLength, true);
  view.setUint32(16, groupSize, true);
  view.setUint32(20, layout.groups, true);
  const half = fp16Table();
  const q = new Int8Array(dst.buffer, layout.quantsOffset, src.length);
  for (let g = 0; g < layout.groups; g++) {
    const start = g * groupSize;
    let min = 0;
    let max = 0;
    let sum = 0;
    for (let i = start; i < start + groupSize; i++) {
      const v = src[i];
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (!Number.isFinite(sum)) {
      const row = rowLength > 0 ? Math.floor(start / rowLength) : 0;
      throwNonFinite('int8', src, start, groupSize, row * rowLength, row);
    }
    let scale = symmetric ? Math.max(max, -min) / 127 : (max - min) / 255;
    if (scaleType === 'f16') {
      const h = scaleUp16(scale);
      if (!Number.isFinite(half[h])) {
        throw new ValueError(
          `int8: group ${g} needs scale ${scale}, beyond f16; use scaleType 'f32'`,
          Math.floor(start / rowLength),
          start % rowLength,
        );
      }
      view.setUint16(layout.scalesOffset + 2 * g, h, true);
      scale = half[h];
    } else {
      scale = Math.fround(scale);
      view.setFloat32(layout.scalesOffset + 4 * g, scale, true);
    }
    const inv = scale > 0 ? 1 / scale : 0;
    let zp = 0;
    if (!symmetric) {
      zp = Math.max(-128, Math.min(127, Math.round(-128 - min * inv)));
      dst[layout.zeroPointsOffset + g] = zp & 0xff;
    }
    const lo = symmetric ? -127 : -128;
    for (let i = start; i < start + groupSize; i++) {
      const v = Math.round(src[i] * inv) + zp;
      q[i] = v < lo ? lo : v > 127 ? 127 : v;
    }
  }
  return dst;
}

function dequantizeInto(src: Uint8Array, dst: Float32Array): void {
  expectKind('int8', 'the source', src, 'Uint8Array');
  expectKind('int8', 'the destination', dst, 'Float32Array');
  const layout = int8Layout(src);
  const n = layout.rows * layout.rowLength;
  if (dst.length !== n) throw new SizeError(`int8: destination has ${dst.length} values, buffer holds ${n}`);
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const q = new Int8Array(src.buffer, src.byteOffset + layout.quantsOffset, n);
  const half = fp16Table();
  const { groupSize } = layout;
  for (let g = 0; g < layout.groups; g++) {
    const scale =
      layout.scaleType === 'f16'
        ? half[view.getUint16(layout.scalesOffset + 2 * g, true)]
        : view.getFloat32(layout.scalesOffset + 4 * g, true);
    const zp = layout.symmetric ? 0 : (src[layout.zeroPointsOffset + g] << 24) >> 24;
    const start = g * groupSize;
    for (let i = start; i < start + groupSize; i++) dst[i] = (q[i] - zp) * scale;
  }
}

/**
 * The INT8 codec. Unlike the block formats its bytes carry a header, so `quantizeInto` is not offered: use
 * {@link int8Layout} to size and read buffers.
 *
 * @example
 * ```ts
 * import { int8 } from '@nibble/formats/int8';
 * const w = new Float32Array(4 * 64).map(() => Math.random() - 0.5);
 * const bytes = int8.quantize(w, { rowLength: 64, granularity: 'group', groupSize: 32, symmetric: false, scaleType: 'f16' });
 * const back = int8.dequantize(bytes); // |back[i] - w[i]| <= scale/2 of its group
 * ```
 */
export const int8 = Object.freeze({
  name: 'int8' as const,
  info: dtypes.int8,
  errorBound: '|error| <= scale/2 per element, scale = amax/127 (symmetric) or (max-min)/255 (asymmetric) of its group',
  quantize,
  dequantizeInto,
  /** Reads and validates the header of an INT8 buffer (same as {@link int8Layout}). */
  layout: int8Layout,
  dequantize(src: Uint8Array): Float32Array {
    expectKind('int8', 'the source', src, 'Uint8Array');
    const layout = int8Layout(src);
    const dst = new Float32Array(layout.rows * layout.rowLength);
    dequantizeInto(src, dst);
    return dst;
  },
  /** Bytes an INT8 buffer of this shape and options takes. */
  byteLength(rows: number, rowLength: number, options: Omit<Int8Options, 'rowLength'> = {}): number {
    const granularity = options.granularity ?? 'channel';
    const groupSize =
      granularity === 'tensor' ? rows * rowLength : granularity === 'channel' ? rowLength : (options.groupSize ?? 32);
    return layoutFor(rows, rowLength, granularity, groupSize, options.symmetric ?? true, options.scaleType ?? 'f32')
      .byteLength;
  },
});
