/**
 * nibble's typed error hierarchy. Every error has a stable machine-readable `code`; messages name what is wrong
 * (tensor, row, column, byte offset, expected vs found).
 */

/** Stable error codes. New codes may be added; existing ones never change meaning. */
export type NibbleErrorCode =
  | 'E_SHAPE'
  | 'E_DTYPE'
  | 'E_VALUE'
  | 'E_SIZE'
  | 'E_FORMAT'
  | 'E_UNSUPPORTED'
  | 'E_BACKEND'
  | 'E_GRAPH'
  | string;

/** Base class of every error nibble throws on purpose. */
export class NibbleError extends Error {
  /** Stable code, e.g. `E_SHAPE`. */
  readonly code: NibbleErrorCode;
  constructor(code: NibbleErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A shape or length does not fit (wrong row length, block multiple, element count). */
export class ShapeError extends NibbleError {
  constructor(message: string) {
    super('E_SHAPE', message);
  }
}

/** An unknown dtype, or a dtype an operation does not accept. */
export class DTypeError extends NibbleError {
  constructor(message: string) {
    super('E_DTYPE', message);
  }
}

/** A destination buffer of the wrong size. */
export class SizeError extends NibbleError {
  constructor(message: string) {
    super('E_SIZE', message);
  }
}

/**
 * A value that cannot be represented, e.g. NaN or ±Inf given to a block quantizer. Names the row and column.
 */
export class ValueError extends NibbleError {
  /** Row of the offending value (0 for 1-D input). */
  readonly row: number;
  /** Column of the offending value. */
  readonly column: number;
  constructor(message: string, row: number, column: number) {
    super('E_VALUE', message);
    this.row = row;
    this.column = column;
  }
}

/** A feature that this build or backend does not provide. */
export class UnsupportedError extends NibbleError {
  constructor(message: string) {
    super('E_UNSUPPORTED', message);
  }
}
