export type { DTypeName, DTypeInfo } from './dtype.js';
export { dtypes, findDType, dtypeFromGgmlType, rowBytes } from './dtype.js';
export type { NibbleErrorCode } from './errors.js';
export { NibbleError, ShapeError, DTypeError, SizeError, ValueError, UnsupportedError } from './errors.js';
export type { Shape } from './shape.js';
export { numel, rowsOf, sameShape, shapeFromNe, neFromShape } from './shape.js';
export type { HostTensor } from './host-tensor.js';
export { hostTensor, byteLength, asFloat32 } from './host-tensor.js';
