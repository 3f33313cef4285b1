export type {
  Backend,
  BackendCapabilities,
  BackendFactory,
  BackendLimits,
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
export { BackendError, opNames, supports, unlimited } from './backend.js';
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
  GluNode,
  GluOptions,
  Graph,
  GraphNode,
  GraphOutput,
  GraphParam,
  LayerNormNode,
  LayerNormOptions,
  MatmulNode,
  MatmulOptions,
  MulNode,
  NodeOptions,
  Positions,
  ReshapeNode,
  RmsNormNode,
  RmsNormOptions,
  RopeMode,
  RopeNode,
  RopeOptions,
  ScaleNode,
  SiluNode,
  SoftcapNode,
  SoftmaxNode,
  TensorKind,
  TensorRef,
  ValueDType,
} from './graph.js';
export { dimMax, dimValue, formatShape, GraphBuilder, GraphError, isTensor, resolveShape, sameDim } from './graph.js';
export type { HostTensor } from './host-tensor.js';
export { asFloat32, byteLength, hostTensor } from './host-tensor.js';
export { KernelBackend } from './kit.js';
export type { BoundRun, Fusion, GraphPlan, MutableRun, PlanOptions, ValuePlan } from './plan.js';
export {
  checkCapabilities,
  numelAt,
  planGraph,
  positionAt,
  ropeTables,
  ropeYarnCorrDims,
  rowsAt,
  rowsMax,
  typedOperands,
  validateRun,
  valueBytes,
} from './plan.js';
export type { BackendSpec, CreateBackendOptions } from './registry.js';
export { createBackend, registerBackend, registeredBackends, selectBackend } from './registry.js';
export type { Shape } from './shape.js';
export { neFromShape, numel, rowsOf, sameShape, shapeFromNe } from './shape.js';
