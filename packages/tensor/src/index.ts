export type {
  Backend,
  BackendCapabilities,
  BackendFactory,
  BackendOptions,
  BackendSkip,
  BackendTensor,
  InputArray,
  MatmulActivations,
  OpName,
  RunInputs,
  RunOptions,
  RunOutputs,
  TensorOptions,
} from './backend.js';
export { BackendError, opNames, supports } from './backend.js';
export type { DTypeInfo, DTypeName } from './dtype.js';
export { dtypeFromGgmlType, dtypes, findDType, rowBytes } from './dtype.js';
export type { NibbleErrorCode } from './errors.js';
export { DTypeError, NibbleError, ShapeError, SizeError, UnsupportedError, ValueError } from './errors.js';
export type {
  AddNode,
  AttentionNode,
  AttentionOptions,
  CopyNode,
  Dim,
  GeluNode,
  GetRowsNode,
  Graph,
  GraphNode,
  GraphOutput,
  GraphParam,
  LayerNormNode,
  MatmulNode,
  MatmulOptions,
  MulNode,
  NodeOptions,
  Positions,
  RmsNormNode,
  RopeMode,
  RopeNode,
  RopeOptions,
  ScaleNode,
  SiluNode,
  SoftmaxNode,
  TensorKind,
  TensorRef,
} from './graph.js';
export { dimMax, dimValue, formatShape, GraphBuilder, GraphError, isTensor, resolveShape, sameDim } from './graph.js';
export type { HostTensor } from './host-tensor.js';
export { asFloat32, byteLength, hostTensor } from './host-tensor.js';
export type { BackendSpec, CreateBackendOptions } from './registry.js';
export { createBackend, registerBackend, registeredBackends, selectBackend } from './registry.js';
export type { Shape } from './shape.js';
export { neFromShape, numel, rowsOf, sameShape, shapeFromNe } from './shape.js';
