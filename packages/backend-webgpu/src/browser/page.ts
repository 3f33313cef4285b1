/**
 * The Chromium test page: loads stories260K from the test server, runs the greedy gold on 'webgpu'
 * (navigator.gpu) and reports the ids, the text and the adapter on `window.nibbleResult`.
 */
import '../index.js';
import { loadModel } from '@nibble/runner';

const w = window as unknown as { nibbleResult?: unknown };
(async () => {
  try {
    const bytes = new Uint8Array(await (await fetch('/model.gguf')).arrayBuffer());
    const model = await loadModel(bytes, { backend: 'webgpu', contextSize: 256 });
    const { ids, text } = await model.generate([1], { temperature: 0, maxTokens: 200 }).collect();
    const adapter = (model.backend as unknown as { info: { adapter: string } }).info.adapter;
    await model.dispose();
    w.nibbleResult = { ids, text, adapter };
  } catch (e) {
    w.nibbleResult = { error: String((e as Error)?.stack ?? e) };
  }
})();
