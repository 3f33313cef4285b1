import { ShapeError } from './errors.js';

/**
 * Shapes are listed outermost first, like numpy: `[rows, cols]`. GGUF's `ne` is the reverse (`ne[0]` = cols).
 */
export type Shape = readonly number[];

/** Number of elements of a shape. Throws a {@link ShapeError} for negative, fractional or unsafe sizes. */
export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0)
      throw new ShapeError(`invalid dimension ${d} in shape [${shape.join(', ')}]`);
    n *= d;
    if (!Number.isSafeInteger(n)) throw new ShapeError(`shape [${shape.join(', ')}] has too many elements`);
  }
  return n;
}

/** Splits a shape into (rows, row length): the last dimension is the row. A scalar is one row of one. */
export function rowsOf(shape: Shape): { rows: number; cols: number } {
  if (shape.length === 0) return { rows: 1, cols: 1 };
  const cols = shape[shape.length - 1];
  const total = numel(shape);
  return { rows: cols === 0 ? 0 : total / cols, cols };
}

/** Whether two shapes are equal. */
export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Converts a GGUF `ne` array (fastest first) to a nibble shape (outermost first). */
export function shapeFromNe(ne: readonly (number | bigint)[]): number[] {
  return ne.map((d) => Number(d)).reverse();
}

/** Converts a nibble shape (outermost first) to GGUF `ne` order (fastest first). */
export function neFromShape(shape: Shape): number[] {
  return [...shape].reverse();
}
