import '@nibble/backend-js';
import { loadModel } from '@nibble/runner/node';

const model = await loadModel('stories260K.gguf', { backend: 'js' });

// A chat model renders the conversation with its own tokenizer.chat_template. stories260K was trained on stories
// only and has none, so this passes a minimal template: the reply is the story going on from the user's words.
const template = '{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}';
const messages = [{ role: 'user', content: 'Once upon a time, there was a dog' }];
const { text, stats } = await model.chat(messages, { template, temperature: 0, maxTokens: 30 }).collect();
console.log(text);

// The next turn evaluates only what the KV cache does not hold yet.
messages.push({ role: 'assistant', content: text }, { role: 'user', content: ' The next day,' });
const second = await model.chat(messages, { template, temperature: 0, maxTokens: 20 }).collect();
console.log(second.text);
console.log(
  `first turn: ${stats.promptTokens} prompt tokens; second turn: ${second.stats.cachedTokens} tokens from the cache`,
);
await model.dispose();
