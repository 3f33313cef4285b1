/**
 * The architectures the runner knows, by `general.architecture`, and the entry points that dispatch on it: read the
 * hyperparameters, upload the weights, build a forward graph.
 */
import { type Backend, type Graph, NibbleError, UnsupportedError } from '@nibble/tensor';
import { architectureName, type BaseHparamsOptions, type Metadata, type ModelHparams } from '../hparams.js';
import {
  type Architecture,
  Forward,
  type GraphOptions,
  type KvCache,
  type LoadProgress,
  type ModelFile,
  type ModelWeights,
  uploadWeights,
} from './common.js';
import { gemma2 } from './gemma2.js';
import { gemma3 } from './gemma3.js';
import { llama } from './llama.js';
import { phi3 } from './phi3.js';
import { qwen2 } from './qwen2.js';
import { qwen3 } from './qwen3.js';

const registry: ReadonlyMap<string, Architecture> = new Map(
  [llama, qwen2, qwen3, gemma2, gemma3, phi3].map((a) => [a.name, a]),
);

/**
 * Values of `general.architecture` the runner loads.
 *
 * @example
 * ```ts
 * supportedArchitectures; // ['llama', 'qwen2', 'qwen3', 'gemma2', 'gemma3', 'phi3']
 * ```
 */
export const supportedArchitectures: readonly string[] = Object.freeze([...registry.keys()]);

/**
 * The architecture called `name`; throws `E_UNSUPPORTED` naming it and listing the supported ones.
 *
 * @example
 * ```ts
 * getArchitecture('qwen3').ropeMode; // 'neox'
 * ```
 */
export function getArchitecture(name: string): Architecture {
  const arch = registry.get(name);
  if (arch === undefined) {
    throw new UnsupportedError(
      `architecture '${name}' is not supported; supported: ${supportedArchitectures.join(', ')}`,
    );
  }
  return arch;
}

/**
 * The hyperparameters of a model of any supported architecture, read from its metadata. Throws `E_UNSUPPORTED` for
 * another architecture or a RoPE scaling this runner does not implement, and `E_FORMAT` naming a missing or wrong key.
 *
 * @example
 * ```ts
 * const hp = modelHparams(file.metadata);
 * hp.nKvHeads; // 4 for stories260K
 * ```
 */
export function modelHparams(meta: Metadata, options: BaseHparamsOptions | number = {}): ModelHparams {
  const o = typeof options === 'number' ? { vocabFallback: options } : options;
  return getArchitecture(architectureName(meta)).hparams(meta, o);
}

/**
 * Reads a llama-family model's hyperparameters: {@link modelHparams} under its former name.
 *
 * @example
 * ```ts
 * llamaHparams(file.metadata).headDim; // 8 for stories260K
 * ```
 */
export const llamaHparams: (meta: Metadata, vocabFallback?: number) => ModelHparams = (meta, vocabFallback) =>
  modelHparams(meta, { vocabFallback });

/**
 * Checks that a file has every tensor its architecture needs, with the shapes the hyperparameters imply, and uploads
 * them to the backend in their stored formats (a fused `attn_qkv` as three views of its bytes). Throws naming the
 * missing tensor, the wrong shape, or the dtype the backend cannot multiply, before uploading anything.
 *
 * @example
 * ```ts
 * const weights = await uploadModelWeights(file, modelHparams(file.metadata), backend);
 * ```
 */
export async function uploadModelWeights(
  file: ModelFile,
  hp: ModelHparams,
  backend: Backend,
  onProgress?: (p: LoadProgress) => void,
  signal?: AbortSignal,
): Promise<ModelWeights> {
  // Every layer has several tensors: a layer count beyond the file's tensor count is a corrupt header, refused
  // before a plan sized by it is built.
  if (hp.nLayers > file.tensors.length) {
    throw new NibbleError(
      'E_FORMAT',
      `${hp.architecture}.block_count ${hp.nLayers} exceeds the ${file.tensors.length} tensors in the file`,
    );
  }
  const names = new Set(file.tensors.map((t) => t.name));
  const arch = getArchitecture(hp.architecture);
  return uploadWeights(
    file,
    arch.name,
    arch.tensors(hp, (n) => names.has(n)),
    backend,
    onProgress,
    signal,
  );
}

/**
 * Builds a forward pass of the weights' architecture over `cache`. With `logits` it ends in logits for every row
 * (`[nTokens, vocab]`); without, it stops once the last layer's keys and values are in the cache: what a prompt
 * needs, minus the vocabulary-sized matmul for rows whose predictions nobody reads.
 *
 * Run it with `{ tokens: Int32Array(n), nTokens: n, pos: p }`: rows are at positions p .. p + n - 1.
 *
 * @example
 * ```ts
 * const graph = buildModelGraph(hp, weights, cache, { maxTokens: 64, logits: true });
 * const { logits } = await backend.run(graph, { tokens: Int32Array.of(1), nTokens: 1, pos: 0 }); // [1, vocab]
 * ```
 */
export function buildModelGraph(hp: ModelHparams, w: ModelWeights, cache: KvCache, options: GraphOptions): Graph {
  const arch = getArchitecture(w.architecture);
  const f = new Forward(hp, w, cache, options, arch.ropeMode);
  arch.forward(f);
  return f.build();
}
