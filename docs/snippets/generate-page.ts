// The page's script, bundled by your bundler (Vite, esbuild, webpack) from an HTML page that has <pre id="story">.
import '@nibble/backend-js';
import { loadModel } from '@nibble/runner';

const out = document.getElementById('story') as HTMLElement;
// A URL is read with HTTP range requests: the header first, then each tensor once.
const model = await loadModel(new URL('stories260K.gguf', location.href), { backend: 'js' });
for await (const { text } of model.generate('', { maxTokens: 200, temperature: 0 })) out.textContent += text;
out.dataset.done = 'true';
await model.dispose();
