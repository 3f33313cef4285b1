// Records written in a topic's own shape that the report still takes, converted to the common shape: the GPU
// machine's webgpu record, and results files committed before their benchmark wrote the common shape.
import { browserToCommon, isBrowserRecord } from '../browser/cases.js';
import { e2eToCommon, isE2eRecord } from '../e2e/cases.js';
import { isMatmulWasmRecord, matmulWasmToCommon } from '../matmul-wasm/cases.js';
import { isWebgpuRecord, webgpuToCommon } from '../webgpu/cases.js';
import type { ResultsAdapter } from './results.js';

/** Tried in order; the first that recognizes a record converts it. */
export const resultsAdapters: readonly ResultsAdapter[] = [
  (x) => (isWebgpuRecord(x) ? webgpuToCommon(x) : undefined),
  (x) => (isMatmulWasmRecord(x) ? matmulWasmToCommon(x) : undefined),
  (x) => (isBrowserRecord(x) ? browserToCommon(x) : undefined),
  (x) => (isE2eRecord(x) ? e2eToCommon(x) : undefined),
];
