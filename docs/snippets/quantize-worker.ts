// The worker: answers the pool's jobs (bundle it as a module worker next to the page's script).
import { type JobMessage, makeJobHandler } from '@nibble/quantize';

const answer = makeJobHandler();
self.onmessage = (e: MessageEvent<JobMessage>) => {
  const [reply, transfer] = answer(e.data);
  self.postMessage(reply, { transfer });
};
