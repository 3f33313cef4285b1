/**
 * The worker_threads entry of the quantization pool (see `nodeWorkerPool` in `@nibble/quantize/node`).
 * @packageDocumentation
 */
import { parentPort } from 'node:worker_threads';
import { type JobMessage, makeJobHandler } from './pool.js';

const answer = makeJobHandler();
parentPort?.on('message', (m: JobMessage) => {
  const [reply, transfer] = answer(m);
  parentPort?.postMessage(reply, transfer);
});
