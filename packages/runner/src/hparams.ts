/**
 * Hyperparameters read from GGUF metadata (`<arch>.*` keys, llama.cpp's names and defaults), with errors that name
 * the missing or unsupported key. The keys every architecture shares are read here; each architecture file adds its
 * own (soft-capping, sliding windows, ...) through the same {@link MetaReader}.
 */
import { LLAMA_MAX_LAYERS } from '@nibble/gguf';
import { type DTypeName, dtypes, NibbleError, UnsupportedError } from '@nibble/tensor';

/** How RoPE positions are scaled (`<arch>.rope.scaling.type`). */
export type RopeScaling = 'none' | 'linear' | 'yarn' | 'longrope';

/** Everything a graph needs to know about a model's shape. */
export interface ModelHparams {
  /** `general.architecture`, e.g. `'llama'`. */
  readonly architecture: string;
  /** Width of the residual stream. */
  readonly dim: number;
  /** Transformer blocks. */
  readonly nLayers: number;
  /** Query heads. */
  readonly nHeads: number;
  /** Key/value heads (grouped-query attention when fewer than nHeads). */
  readonly nKvHeads: number;
  /** Width of one head: `attention.key_length`, else dim / nHeads. */
  readonly headDim: number;
  /** Inner width of the feed-forward block. */
  readonly hiddenDim: number;
  /** Tokens in the vocabulary (rows of the embedding). */
  readonly vocabSize: number;
  /** The context the file declares (may exceed what the model was trained with). */
  readonly contextLength: number;
  /** RMSNorm epsilon. */
  readonly rmsEps: number;
  /** RoPE base frequency (of the global-attention layers when they differ). */
  readonly ropeBase: number;
  /** Leading dimensions of each head that RoPE rotates. */
  readonly ropeDims: number;
  /** Position multiplier (1 / `rope.scaling.factor`); 1 without scaling. */
  readonly ropeFreqScale: number;
  /** The file's RoPE scaling type. */
  readonly ropeScaling: RopeScaling;
  /** Context the model was trained with before scaling (YaRN's ramp, LongRoPE's short/long choice). */
  readonly ropeOrigCtx: number;
  /** Multiplies RoPE's cos and sin (`rope.scaling.attn_factor`; LongRoPE's attention factor). */
  readonly ropeAttnFactor: number;
  /** Sliding-window length of the local layers in positions; 0 = every layer attends to the whole context. */
  readonly slidingWindow: number;
  /**
   * ggml's sliding-window pattern period: layer l slides when `l % period < period - 1` (every period-th layer is
   * global); 1 = no layer slides, 0 = every layer does. See {@link isSlidingLayer}.
   */
  readonly swaPeriod: number;
  /** RoPE base and position multiplier of the sliding-window layers. */
  readonly ropeBaseSwa: number;
  readonly ropeFreqScaleSwa: number;
  /** Multiplier of q·k before the softmax: 1/sqrt(headDim) unless the architecture says otherwise. */
  readonly attnScale: number;
  /** Attention score soft-cap (Gemma 2); 0 = none. */
  readonly attnSoftcap: number;
  /** Final logit soft-cap (Gemma 2/3); 0 = none. */
  readonly finalSoftcap: number;
}

/** The llama architecture's hyperparameters: the common set (kept as a name for existing code). */
export type LlamaHparams = ModelHparams;

/** Metadata as `@nibble/gguf` exposes it: key -> plain value. */
export type Metadata = ReadonlyMap<string, unknown>;

/**
 * Typed reads of `<arch>.<key>` with llama.cpp's defaults, throwing `E_FORMAT` naming the key that is missing or
 * malformed.
 *
 * @example
 * ```ts
 * const r = new MetaReader(file.metadata, 'gemma2');
 * r.num('attn_logit_softcapping', 50); // gemma2.attn_logit_softcapping, or 50
 * ```
 */
export class MetaReader {
  readonly meta: Metadata;
  readonly arch: string;
  constructor(meta: Metadata, arch: string) {
    this.meta = meta;
    this.arch = arch;
  }

  /** Whether `<arch>.<key>` is present. */
  has(key: string): boolean {
    return this.meta.has(`${this.arch}.${key}`);
  }

  /** A finite number (a per-layer array must hold one value for every layer); `dflt` when absent. */
  num(key: string, dflt?: number): number {
    const full = `${this.arch}.${key}`;
    let v = this.meta.get(full);
    if (v === undefined) {
      if (dflt !== undefined) return dflt;
      throw new NibbleError('E_FORMAT', `metadata key '${full}' is missing`);
    }
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      // llama.cpp accepts per-layer arrays for head counts and widths; nibble's graphs need them uniform.
      const arr = v as unknown as ArrayLike<number | bigint>;
      if (arr.length === 0) throw new NibbleError('E_FORMAT', `metadata key '${full}' is an empty array`);
      for (let i = 1; i < arr.length; i++) {
        if (arr[i] !== arr[0]) {
          throw new UnsupportedError(
            `metadata key '${full}' differs between layers; per-layer values are not supported`,
          );
        }
      }
      v = arr[0];
    }
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n)) {
      throw new NibbleError('E_FORMAT', `metadata key '${full}' should be a number, got ${String(v)}`);
    }
    return n;
  }

  /** A positive safe integer; `dflt` when absent. */
  posInt(key: string, dflt?: number): number {
    const n = this.num(key, dflt);
    if (!Number.isSafeInteger(n) || n <= 0) {
      throw new NibbleError('E_FORMAT', `metadata key '${this.arch}.${key}' should be a positive integer, got ${n}`);
    }
    return n;
  }

  /** A string; `dflt` when absent. */
  str(key: string, dflt?: string): string {
    const full = `${this.arch}.${key}`;
    const v = this.meta.get(full);
    if (v === undefined) {
      if (dflt !== undefined) return dflt;
      throw new NibbleError('E_FORMAT', `metadata key '${full}' is missing`);
    }
    if (typeof v !== 'string') throw new NibbleError('E_FORMAT', `metadata key '${full}' should be a string`);
    return v;
  }
}

/**
 * `general.architecture`, checked to be a string.
 *
 * @example
 * ```ts
 * architectureName(file.metadata); // 'qwen2'
 * ```
 */
export function architectureName(meta: Metadata): string {
  const arch = meta.get('general.architecture');
  if (typeof arch !== 'string') throw new NibbleError('E_FORMAT', "metadata has no 'general.architecture' string");
  return arch;
}

/** What an architecture file may override when reading the common keys. */
export interface BaseHparamsOptions {
  /** Rows of the token embedding when the file has neither `vocab_size` nor a token list. */
  vocabFallback?: number;
}

/**
 * The keys every architecture shares, with llama.cpp's defaults (`llama_model_base::load_hparams`): sizes, heads
 * (with `attention.key_length` for a head width other than dim / heads), RoPE base, dimensions and scaling
 * (`none`, `linear`, `yarn`, `longrope`). Sliding windows, soft-caps and the attention scale are left neutral for the
 * architecture to set.
 *
 * @example
 * ```ts
 * const hp = baseHparams(new MetaReader(meta, 'llama'));
 * hp.ropeFreqScale; // 0.25 with linear scaling by 4
 * ```
 */
export function baseHparams(r: MetaReader, options: BaseHparamsOptions = {}): ModelHparams {
  const dim = r.posInt('embedding_length');
  const nLayers = r.posInt('block_count');
  if (nLayers > LLAMA_MAX_LAYERS) {
    throw new NibbleError(
      'E_FORMAT',
      `block_count: expected an integer in 1..${LLAMA_MAX_LAYERS}, found ${nLayers} (key '${r.arch}.block_count')`,
    );
  }
  const nHeads = r.posInt('attention.head_count');
  const nKvHeads = r.posInt('attention.head_count_kv', nHeads);
  if (nHeads % nKvHeads !== 0) {
    throw new NibbleError('E_FORMAT', `head_count ${nHeads} is not a multiple of head_count_kv ${nKvHeads}`);
  }
  if (!r.has('attention.key_length') && dim % nHeads !== 0) {
    throw new NibbleError('E_FORMAT', `embedding_length ${dim} is not a multiple of head_count ${nHeads}`);
  }
  const headDim = r.posInt('attention.key_length', dim / nHeads);
  const valueDim = r.posInt('attention.value_length', r.has('attention.key_length') ? headDim : dim / nHeads);
  if (valueDim !== headDim) {
    throw new UnsupportedError(
      `${r.arch}.attention.value_length ${valueDim} differs from key_length ${headDim}; not supported`,
    );
  }
  const tokens = r.meta.get('tokenizer.ggml.tokens');
  const vocabSize = r.posInt('vocab_size', Array.isArray(tokens) ? tokens.length : options.vocabFallback);
  const contextLength = r.posInt('context_length');

  const scalingName = r.str('rope.scaling.type', 'linear');
  if (!['none', 'linear', 'yarn', 'longrope'].includes(scalingName)) {
    throw new UnsupportedError(`RoPE scaling '${scalingName}' (${r.arch}.rope.scaling.type) is not supported`);
  }
  const ropeScaling = scalingName as RopeScaling;
  // llama.cpp: a factor of 0 or none means 1; 'none' never scales.
  const factor = r.num('rope.scaling.factor', r.num('rope.scale_linear', 0));
  const ropeFreqScale = ropeScaling === 'none' || factor === 0 ? 1 : Math.fround(1 / factor);
  if (!(ropeFreqScale > 0))
    throw new NibbleError('E_FORMAT', `${r.arch}.rope.scaling.factor ${factor} is not positive`);
  const ropeDims = r.posInt('rope.dimension_count', headDim);
  if (ropeDims > headDim || ropeDims % 2 !== 0) {
    throw new NibbleError('E_FORMAT', `rope.dimension_count ${ropeDims} does not fit head size ${headDim}`);
  }
  const ropeBase = r.num('rope.freq_base', 10000);

  return {
    architecture: r.arch,
    dim,
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    hiddenDim: r.posInt('feed_forward_length'),
    vocabSize,
    contextLength,
    // Required, as llama.cpp and @nibble/gguf's llamaHyperparams require it: a default would hide a broken file.
    rmsEps: r.num('attention.layer_norm_rms_epsilon'),
    ropeBase,
    ropeDims,
    ropeFreqScale,
    ropeScaling,
    ropeOrigCtx: r.posInt('rope.scaling.original_context_length', contextLength),
    ropeAttnFactor: r.num('rope.scaling.attn_factor', 1),
    slidingWindow: 0,
    swaPeriod: 1,
    ropeBaseSwa: ropeBase,
    ropeFreqScaleSwa: ropeFreqScale,
    attnScale: 1 / Math.sqrt(headDim),
    attnSoftcap: 0,
    finalSoftcap: 0,
  };
}

/**
 * Whether layer l is a sliding-window layer: ggml's `llama_hparams::set_swa_pattern` with the model's period (every
 * period-th layer is global; period 0 makes every layer slide), and only when the model has a window.
 *
 * @example
 * ```ts
 * isSlidingLayer({ slidingWindow: 512, swaPeriod: 6 }, 5); // false: layer 5 of 6 is global
 * ```
 */
export function isSlidingLayer(hp: Pick<ModelHparams, 'slidingWindow' | 'swaPeriod'>, l: number): boolean {
  const p = hp.swaPeriod;
  return hp.slidingWindow > 0 && (p === 0 || l % p < p - 1);
}

/** What {@link checkHparamsAgainstFile} reads of an opened file. */
export interface FileTable {
  readonly metadata: Metadata;
  readonly tensors: readonly {
    readonly name: string;
    readonly shape: readonly number[];
    readonly byteLength: number;
    readonly typeName: string;
  }[];
}

const NO_TOKEN = 0xffffffff;

/**
 * Checks the counts the hyperparameters read from a file against what the file holds, before anything is sized or
 * iterated by them: the block count against the tensors present, each tensor's byte length against its shape and
 * type, and the tokenizer's special-token ids against the vocabulary. Throws `E_FORMAT` naming the key or tensor.
 *
 * @example
 * ```ts
 * const hp = modelHparams(file.metadata);
 * checkHparamsAgainstFile(hp, file); // throws for block_count 4294967295 in a 5-block file
 * ```
 */
export function checkHparamsAgainstFile(hp: ModelHparams, file: FileTable): void {
  const key = (k: string) => `${hp.architecture}.${k}`;
  // Every block has at least one tensor, plus the token embedding: a cheap bound before any per-block work.
  const need = hp.nLayers + 1;
  if (file.tensors.length < need) {
    throw new NibbleError(
      'E_FORMAT',
      `${key('block_count')} is ${hp.nLayers}, which needs at least ${need} tensors; the file has ${file.tensors.length}`,
    );
  }
  let blocks = 0;
  for (const t of file.tensors) {
    const m = /^blk\.(\d+)\./.exec(t.name);
    if (m) blocks = Math.max(blocks, Number(m[1]) + 1);
    const d = dtypes[t.typeName as DTypeName];
    if (d === undefined) continue; // an unknown type is named when the tensor is used
    let elements = 1;
    for (const n of t.shape) elements *= n;
    const bytes = (elements / d.blockSize) * d.bytesPerBlock;
    if (bytes !== t.byteLength) {
      throw new NibbleError(
        'E_FORMAT',
        `tensor '${t.name}' [${t.shape.join(', ')}] of ${t.typeName} needs ${bytes} bytes, the file gives it ${t.byteLength}`,
      );
    }
  }
  if (blocks !== hp.nLayers) {
    throw new NibbleError(
      'E_FORMAT',
      `${key('block_count')} is ${hp.nLayers} but the file has tensors of ${blocks} blocks (blk.0 .. blk.${blocks - 1})`,
    );
  }
  for (const name of ['bos', 'eos', 'eot']) {
    const k = `tokenizer.ggml.${name}_token_id`;
    const v = file.metadata.get(k);
    if (v === undefined || v === NO_TOKEN || v === -1) continue; // absent, or "no such token"
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= hp.vocabSize) {
      throw new NibbleError(
        'E_FORMAT',
        `metadata key '${k}' is ${String(v)}, outside the vocabulary 0..${hp.vocabSize - 1}`,
      );
    }
  }
}
