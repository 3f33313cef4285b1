/**
 * @nibble/runner: load a GGUF model (llama, qwen2, qwen3, gemma2, gemma3, phi3) onto any backend and generate text, score text, keep sessions.
 *
 * @example
 * ```ts
 * import '@nibble/backend-js';
 * import { loadModel } from '@nibble/runner';
 * const model = await loadModel(new URL('https://example.com/stories260K.gguf'), { backend: 'js' });
 * for await (const { text } of model.generate('Once upon a time', { maxTokens: 50, temperature: 0 })) {
 *   console.log(text);
 * }
 * await model.dispose();
 * ```
 * @packageDocumentation
 */
import { type GgufSource, openGguf } from '@nibble/gguf';
import { type LoadModelOptions, loadModelFrom, type Model } from './model.js';
import { fromGgufFile } from './text.js';

export type {
  Architecture,
  GraphOptions,
  KvCache,
  LlamaGraphOptions,
  LoadProgress,
  ModelFile,
  ModelWeights,
  TensorSpec,
} from './arch/common.js';
export { allocKvCache, Forward, graphNames, observePrefix, qkvSpecs, uploadWeights } from './arch/common.js';
export { gemma2 } from './arch/gemma2.js';
export { gemma3 } from './arch/gemma3.js';
export { llama } from './arch/llama.js';
export { phi3 } from './arch/phi3.js';
export { qwen2 } from './arch/qwen2.js';
export { qwen3 } from './arch/qwen3.js';
export {
  buildModelGraph,
  getArchitecture,
  llamaHparams,
  modelHparams,
  supportedArchitectures,
  uploadModelWeights,
} from './arch/registry.js';
export type { ChatOptions, GgufChatTemplate, PreparedChat } from './chat/chat.js';
export { ggufChatTemplate, prepareChat, reusablePrefix } from './chat/chat.js';
export type { ChatMessage, ChatTemplateOptions } from './chat/template.js';
export { ChatTemplate, ChatTemplateError, renderChatTemplate, strftime } from './chat/template.js';
export type { FinishReason, GeneratedToken, GenerationStats } from './generation.js';
export { Generation } from './generation.js';
export type { BaseHparamsOptions, FileTable, LlamaHparams, Metadata, ModelHparams, RopeScaling } from './hparams.js';
export { architectureName, baseHparams, checkHparamsAgainstFile, isSlidingLayer, MetaReader } from './hparams.js';
export type { KlDivergenceOptions, KlDivergenceResult } from './kld.js';
export { klDivergence } from './kld.js';
export type { LoadModelOptions, ModelSource, PerplexityOptions } from './model.js';
export { loadModelFrom, Model } from './model.js';
export type { PerplexityResult, Window } from './perplexity.js';
export { firstNonFinite, logProbAt, NonFiniteError, splitDocuments, windows } from './perplexity.js';
export { Xorshift64Star } from './rng.js';
export type { ResolvedSampling, SamplingOptions } from './sampler.js';
export { argmax, resolveSampling, Sampler } from './sampler.js';
export type { GenerateOptions, ObservedInput, SessionConfig } from './session.js';
export { Session } from './session.js';
export { StopMatcher } from './stop.js';
export type { RunnerTokenizer, StreamDecoder, TokenizerCore } from './text.js';
export { adaptTokenizer, fromGgufFile } from './text.js';

/**
 * Loads a model of any supported architecture from bytes, a Blob/File or a URL (for local paths in Node, use `loadModel` of
 * `@nibble/runner/node`). Builds the graph from the file's metadata and the tokenizer from the same file.
 *
 * @example
 * ```ts
 * import '@nibble/backend-js';
 * const model = await loadModel(bytes, { backend: 'js', contextSize: 512, onProgress: (p) => console.log(p.loadedBytes) });
 * ```
 */
export async function loadModel(source: GgufSource, options: LoadModelOptions = {}): Promise<Model> {
  const file = await openGguf(source);
  try {
    return await loadModelFrom({ file, tokenizer: fromGgufFile(file), close: () => file.close() }, options);
  } catch (e) {
    await file.close();
    throw e;
  }
}
