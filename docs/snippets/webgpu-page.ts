// Prefer the GPU, then WebAssembly, then plain JavaScript: the runner takes the first backend of the list that starts.
import '@nibble/backend-js';
import '@nibble/backend-wasm'; // registers 'wasm' (Web Workers when the page is cross-origin isolated)
import '@nibble/backend-webgpu'; // registers 'webgpu' on navigator.gpu
import { loadModel } from '@nibble/runner';
import { selectBackend } from '@nibble/tensor';

const say = (id: string, text: string) => {
  (document.getElementById(id) as HTMLElement).textContent = text;
};

// Ask the registry first to tell the user why a backend was passed over (no navigator.gpu, no adapter, ...).
const { backend, skipped } = await selectBackend(['webgpu', 'wasm', 'js']);
say('backend', backend.name);
say('skipped', skipped.map((s) => `${s.name}: ${s.reason}`).join('\n'));

// A Backend you created is used as it is (and stays yours to dispose).
const model = await loadModel(new URL('stories260K.gguf', location.href), { backend });
const { text } = await model.generate('', { maxTokens: 200, temperature: 0 }).collect();
say('story', text);
await model.dispose();
backend.dispose();
document.body.dataset.done = 'true';
