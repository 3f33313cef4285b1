/**
 * @nibble/quantize: llama-quantize in JavaScript. Every llama-quantize preset with llama.cpp's per-tensor rules,
 * byte-identical output, importance matrices (read, write, collect), streaming from any GGUF source to any sink, on a
 * worker pool. Node-only helpers (paths, worker_threads) live in `@nibble/quantize/node`.
 *
 * @example
 * ```ts
 * import { openGguf, blobSink } from '@nibble/gguf';
 * import { quantizeModel } from '@nibble/quantize';
 * const sink = blobSink();
 * const result = await quantizeModel(await openGguf(file), sink, { preset: 'Q4_K_M' });
 * const blob = sink.blob();
 * ```
 * @packageDocumentation
 */
export type { CalibrationModel, ComputeImatrixOptions, ObservedActivations } from './calibrate.js';
export { computeImatrix } from './calibrate.js';
export type { QuantizeErrorCode } from './errors.js';
export { QuantizeError } from './errors.js';
export type { ImatrixEntry, ImatrixInfo } from './imatrix.js';
export {
  Imatrix,
  ImatrixCollector,
  imatrixToBlob,
  openImatrix,
  readImatrix,
  readLegacyImatrix,
  writeImatrix,
} from './imatrix.js';
export type { QuantizeJob } from './jobs.js';
export { JobRunner, NonFiniteValue, ScaleOverflow } from './jobs.js';
export type { JobMessage, JobPool, JobReply, WebWorkerPoolOptions, WorkerLike } from './pool.js';
export { inlinePool, makeJobHandler, webWorkerPool, workerPool } from './pool.js';
export type { Preset } from './presets.js';
export { findPreset, ftypeOfType, presets, requirePreset } from './presets.js';
export type {
  PlannedTensor,
  QuantizeModelOptions,
  QuantizePlan,
  QuantizeProgress,
  QuantizeResult,
  QuantizeSink,
} from './quantize.js';
export { modelFacts, planQuantization, quantizeModel, quantizeToBlob } from './quantize.js';
export type { ModelFacts, RuleTensor, TensorCategory, TypeChoice, TypeRuleOptions } from './rules.js';
export { allowsQuantization, chooseTypes, fallbackType, llamaOrder, nDims, tensorCategory } from './rules.js';
export type { LlamaShape, PresetSize } from './sizes.js';
export { llamaShapes, presetSizes, shapeFile } from './sizes.js';
export { loadQuantizerModule, quantizerModuleSync, WasmQuantizers, wasmTypes } from './wasm.js';
