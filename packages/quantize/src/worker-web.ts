/**
 * The Web Worker entry of the quantization pool (see `webWorkerPool`): answers job messages in a module worker.
 * @packageDocumentation
 */
import { type JobMessage, makeJobHandler } from './pool.js';

const answer = makeJobHandler();
const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<JobMessage>) => void) | null;
  postMessage(message: unknown, transfer: ArrayBuffer[]): void;
};
scope.onmessage = (e) => {
  const [reply, transfer] = answer(e.data);
  scope.postMessage(reply, transfer);
};
