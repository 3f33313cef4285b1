import '@nibble/backend-js'; // registers the 'js' backend
import { loadModel } from '@nibble/runner/node';

const model = await loadModel('stories260K.gguf', { backend: 'js' });

// Greedy decoding (temperature 0) from the empty prompt: the model starts from its BOS token.
let story = '';
for await (const { text } of model.generate('', { maxTokens: 200, temperature: 0 })) story += text;
console.log(story);
await model.dispose();
