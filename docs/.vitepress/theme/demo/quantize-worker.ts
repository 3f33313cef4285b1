/**
 * The demo's quantization worker (a module Web Worker that Vite bundles): answers @nibble/quantize's job messages, as
 * the package's own `worker-web` entry does.
 */
import { type JobMessage, makeJobHandler } from '@nibble/quantize';

const answer = makeJobHandler();
const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<JobMessage>) => void) | null;
  postMessage(message: unknown, transfer: ArrayBuffer[]): void;
};
scope.onmessage = (e) => {
  const [reply, transfer] = answer(e.data);
  scope.postMessage(reply, transfer);
};
