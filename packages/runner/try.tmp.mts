import '@nibble/backend-js';
import { loadModel } from './src/index.ts';
import { syntheticModel, syntheticSpecs } from './src/test/synthetic.ts';
import { writeFileSync } from 'node:fs';
for (const [key, spec] of Object.entries(syntheticSpecs)) {
  const bytes = await syntheticModel(spec);
  writeFileSync(`/tmp/scratch/${spec.name}.gguf`, bytes);
  const model = await loadModel(bytes, { backend: 'js', contextSize: 128 });
  const ids = model.tokenizer.encode('Once upon a time, there was a little girl named Lily.', true);
  const logits = await model.evaluate(ids);
  const V = model.hparams.vocabSize;
  let mx = -Infinity, mn = Infinity;
  for (const x of logits) { mx = Math.max(mx, x); mn = Math.min(mn, x); }
  console.log(key, bytes.length, ids.length, V, mn.toFixed(2), mx.toFixed(2));
  await model.dispose();
}
