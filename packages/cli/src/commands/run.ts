/**
 * `nibble run MODEL --prompt P`: stream generated text, then a summary line with prompt and generation speed.
 */
import { loadModel, type Model } from '@nibble/runner/node';
import { numberFlag, parseArgs, stringFlag, UsageError } from '../args.js';

const usage = `usage: nibble run MODEL [--prompt P] [--max-tokens N] [--temperature T] [--top-k K] [--top-p P]
                  [--min-p P] [--repeat-penalty R] [--seed S] [--stop STR] [--backend B] [--threads K]
                  [--ctx N] [--kv-type f32|f16|q8_0] [--activations f32|ggml] [--json]

Streams the continuation of the prompt (BOS + prompt; an empty prompt starts from BOS) and ends with a summary
line. With --json prints one JSON object instead:
  { text, ids, promptTokens, generatedTokens, promptTokPerSec, decodeTokPerSec, backend, threads }`;

/** Loads the backend package a name refers to, so that it registers itself. */
export async function registerBackendByName(name: string): Promise<void> {
  if (name === 'auto') {
    await import('@nibble/backend-js');
    await import('@nibble/backend-wasm/node');
    return;
  }
  for (const n of name.split(',')) {
    try {
      // The wasm backend's Node entry brings worker threads.
      await import(n === 'wasm' ? '@nibble/backend-wasm/node' : `@nibble/backend-${n}`);
    } catch (e) {
      throw new UsageError(`backend '${n}' is not available (${(e as Error).message.split('\n')[0]})`);
    }
  }
}

/** The model-loading flags shared by run and perplexity. */
export async function loadFromFlags(
  path: string,
  p: ReturnType<typeof parseArgs>,
): Promise<{ model: Model; threads: number }> {
  const backend = stringFlag(p, 'backend', 'js') as string;
  await registerBackendByName(backend);
  const threads = numberFlag(p, 'threads', 1);
  const ctx = stringFlag(p, 'ctx');
  const kv = stringFlag(p, 'kv-type', 'f32') as string;
  if (kv !== 'f32' && kv !== 'f16' && kv !== 'q8_0')
    throw new UsageError(`--kv-type must be f32, f16 or q8_0, got '${kv}'`);
  const act = stringFlag(p, 'activations');
  if (act !== undefined && act !== 'f32' && act !== 'ggml')
    throw new UsageError(`--activations must be f32 or ggml, got '${act}'`);
  const model = await loadModel(path, {
    backend: backend === 'auto' ? 'auto' : backend.split(','),
    threads,
    contextSize: ctx === undefined ? undefined : numberFlag(p, 'ctx', 0),
    kvCacheType: kv,
    matmulActivations: act,
  });
  return { model, threads };
}

export async function run(args: string[]): Promise<number> {
  const p = parseArgs(args, ['json', 'help']);
  if (p.flags.has('help')) {
    console.log(usage);
    return 0;
  }
  const [path] = p.positionals;
  if (path === undefined || p.positionals.length > 1) throw new UsageError(usage);
  const json = p.flags.has('json');
  const { model, threads } = await loadFromFlags(path, p);
  try {
    const stop = stringFlag(p, 'stop');
    const prompt = stringFlag(p, 'prompt', '') as string;
    // Like llama2.c and llama.cpp, show the prompt, then its continuation.
    if (!json) for (const k of model.skipped) console.error(`[backend ${k.name} skipped: ${k.reason}]`);
    if (!json) process.stdout.write(prompt);
    const gen = model.generate(prompt, {
      maxTokens: numberFlag(p, 'max-tokens', 256),
      temperature: numberFlag(p, 'temperature', 0.8),
      topK: numberFlag(p, 'top-k', 40),
      topP: numberFlag(p, 'top-p', 0.95),
      minP: numberFlag(p, 'min-p', 0.05),
      repeatPenalty: numberFlag(p, 'repeat-penalty', 1),
      seed: p.flags.has('seed') ? numberFlag(p, 'seed', 0) : undefined,
      stop: stop === undefined ? undefined : [stop],
    });
    const ids: number[] = [];
    let text = '';
    for await (const t of gen) {
      ids.push(t.id);
      text += t.text;
      if (!json) process.stdout.write(t.text);
    }
    const s = gen.stats;
    const promptTokPerSec = s.promptMs > 0 ? (s.promptTokens / s.promptMs) * 1000 : 0;
    // The first token comes with the prompt's last forward pass; the decode loop runs the rest.
    const decodeTokPerSec = s.decodeMs > 0 ? (Math.max(0, s.generatedTokens - 1) / s.decodeMs) * 1000 : 0;
    const round = (x: number) => Math.round(x * 100) / 100;
    if (json) {
      console.log(
        JSON.stringify({
          text,
          ids,
          promptTokens: s.promptTokens,
          generatedTokens: s.generatedTokens,
          promptTokPerSec: round(promptTokPerSec),
          decodeTokPerSec: round(decodeTokPerSec),
          backend: model.backend.name,
          skipped: model.skipped,
          threads,
        }),
      );
    } else {
      process.stdout.write('\n');
      console.log(
        `[${s.promptTokens} prompt tokens: ${promptTokPerSec.toFixed(1)} tok/s | ${s.generatedTokens} generated: ` +
          `${decodeTokPerSec.toFixed(1)} tok/s | backend ${model.backend.name}, ${threads} thread(s) | ${s.finishReason}]`,
      );
    }
    return 0;
  } finally {
    await model.dispose();
  }
}
