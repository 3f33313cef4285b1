// Records written in a topic's own shape that the report still takes, converted to the common shape.
import { isWebgpuRecord, webgpuToCommon } from '../webgpu/cases.js';
import type { ResultsAdapter } from './results.js';

/** The webgpu benchmark's record (what the GPU machine returns). */
export const resultsAdapters: readonly ResultsAdapter[] = [(x) => (isWebgpuRecord(x) ? webgpuToCommon(x) : undefined)];
