/**
 * `nibble run MODEL --prompt P`: stream generated text, then a summary line with prompt and generation speed.
 */

import { openGgufFile } from '@nibble/gguf/node';
import { type GenerateOptions, type Generation, llamaHparams } from '@nibble/runner';
import { loadModel, type Model } from '@nibble/runner/node';
import { type FlagValues, parseOrHelp, UsageError } from '../args.js';
import { type Progress, progressBar } from '../progress.js';
import { runSpec } from '../specs.js';

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
      throw new UsageError(`--backend: '${n}' is not available (${(e as Error).message.split('\n')[0]})`);
    }
  }
}

/** The model-loading flags shared by run, chat and perplexity. */
export type ModelFlags = Pick<
  FlagValues<typeof runSpec.flags>,
  'backend' | 'threads' | 'ctx' | 'kv-type' | 'activations'
>;

/** The sampling flags shared by run and chat. */
export type SamplingFlags = Pick<
  FlagValues<typeof runSpec.flags>,
  'max-tokens' | 'temperature' | 'top-k' | 'top-p' | 'min-p' | 'repeat-penalty' | 'seed' | 'stop'
>;

/** The generation options the sampling flags ask for. */
export function samplingFromFlags(v: SamplingFlags): GenerateOptions {
  return {
    maxTokens: v['max-tokens'],
    temperature: v.temperature,
    topK: v['top-k'],
    topP: v['top-p'],
    minP: v['min-p'],
    repeatPenalty: v['repeat-penalty'],
    seed: v.seed,
    stop: v.stop,
  };
}

/** Runs a generation to its end, writing its text to stdout as it streams (unless `quiet`); returns ids and text. */
export async function streamGeneration(gen: Generation, quiet: boolean): Promise<{ ids: number[]; text: string }> {
  const ids: number[] = [];
  let text = '';
  for await (const t of gen) {
    ids.push(t.id);
    text += t.text;
    if (!quiet) process.stdout.write(t.text);
  }
  return { ids, text };
}

/**
 * Loads the model the flags describe. `--ctx` is checked against the model's trained context from the file's header
 * first, so that a huge value is a usage error and not an allocation.
 */
export async function loadFromFlags(path: string, v: ModelFlags, bar: Progress): Promise<Model> {
  await registerBackendByName(v.backend);
  if (v.ctx !== undefined) {
    const file = await openGgufFile(path);
    let trained: number;
    let key: string;
    try {
      const hp = llamaHparams(file.metadata);
      trained = hp.contextLength;
      key = `${hp.architecture}.context_length`;
    } finally {
      await file.close();
    }
    if (v.ctx > trained) {
      throw new UsageError(`--ctx ${v.ctx} is above the model's trained context of ${trained} tokens (${key})`);
    }
  }
  const MiB = 1 << 20;
  let started = false;
  try {
    return await loadModel(path, {
      backend: v.backend === 'auto' ? 'auto' : v.backend.split(','),
      threads: v.threads,
      contextSize: v.ctx,
      kvCacheType: v['kv-type'] as 'f32' | 'f16' | 'q8_0',
      matmulActivations: v.activations as 'f32' | 'ggml' | undefined,
      onProgress: (p) => {
        if (!started) bar.start(Math.max(1, Math.round(p.totalBytes / MiB)), 0, 'MiB of weights loaded');
        started = true;
        bar.update(Math.round(p.loadedBytes / MiB));
      },
    });
  } finally {
    bar.stop();
  }
}

export async function run(args: string[]): Promise<number> {
  const p = parseOrHelp(runSpec, args);
  if (!p) return 0;
  const v = p.values;
  const [path] = p.positionals;
  const json = v.json;
  const model = await loadFromFlags(path, v, progressBar(json));
  try {
    const prompt = v.prompt;
    // Like llama2.c and llama.cpp, show the prompt, then its continuation.
    if (!json) for (const k of model.skipped) console.error(`[backend ${k.name} skipped: ${k.reason}]`);
    if (!json) process.stdout.write(prompt);
    const gen = model.generate(prompt, samplingFromFlags(v));
    const { ids, text } = await streamGeneration(gen, json);
    const s = gen.stats;
    const promptTokPerSec = s.promptMs > 0 ? (s.promptTokens / s.promptMs) * 1000 : 0;
    // The first token comes with the prompt's last forward pass; the decode loop runs the rest.
    const decodeTokPerSec = s.decodeMs > 0 ? (Math.max(0, s.generatedTokens - 1) / s.decodeMs) * 1000 : 0;
    const round = (x: number) => Math.round(x * 100) / 100;
    // The backend in words where it has them (wasm: its kernel build, e.g. 'wasm (relaxed-simd)').
    const backendInfo = (model.backend as { info?: unknown }).info;
    const described = typeof backendInfo === 'string' ? backendInfo : model.backend.name;
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
          backendInfo: described,
          skipped: model.skipped,
          threads: v.threads,
          finishReason: s.finishReason,
        }),
      );
    } else {
      process.stdout.write('\n');
      console.log(
        `[${s.promptTokens} prompt tokens: ${promptTokPerSec.toFixed(1)} tok/s | ${s.generatedTokens} generated: ` +
          `${decodeTokPerSec.toFixed(1)} tok/s | backend ${described}, ${v.threads} thread(s) | ${s.finishReason}]`,
      );
    }
    return 0;
  } finally {
    await model.dispose();
  }
}
