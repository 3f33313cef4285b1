/**
 * `loadModel`: a GGUF file in, a model out that generates text, scores text and hands out sessions.
 */
import {
  type Backend,
  type BackendSkip,
  type BackendSpec,
  NibbleError,
  registeredBackends,
  selectBackend,
  ValueError,
} from '@nibble/tensor';
import type { LoadProgress, ModelFile, ModelWeights } from './arch/common.js';
import { modelHparams, uploadModelWeights } from './arch/registry.js';
import { type ChatOptions, type GgufChatTemplate, ggufChatTemplate, prepareChat, reusablePrefix } from './chat/chat.js';
import { type ChatMessage, ChatTemplate } from './chat/template.js';
import { Generation } from './generation.js';
import { checkHparamsAgainstFile, type ModelHparams } from './hparams.js';
import { logProbAt, NonFiniteError, type PerplexityResult, splitDocuments, windows } from './perplexity.js';
import { type GenerateOptions, Session, type SessionConfig } from './session.js';
import type { RunnerTokenizer } from './text.js';

/** Options of {@link loadModel}. */
export interface LoadModelOptions {
  /**
   * Which backend: a registered name (`'js'`, after importing `@nibble/backend-js`), a factory, a list tried in
   * order, `'auto'` (every registered backend, `webgpu`, `wasm` and `js` first in that order: the first that
   * initialises wins, and {@link Model.skipped} says why the others did not), or a backend you created (then the model
   * does not dispose it). Default `'auto'`.
   */
  backend?: BackendSpec | 'auto' | Backend;
  /** Worker threads for backends that have them. */
  threads?: number;
  /** Positions each session's KV cache holds. Default: the file's context length, at most 2048. */
  contextSize?: number;
  /** KV cache element type. Default `'f32'`. */
  kvCacheType?: 'f32' | 'f16' | 'q8_0';
  /**
   * How matmuls treat activations: `'f32'` (accurate) or `'ggml'` (quantized to the weight's vec-dot type like
   * llama.cpp's CPU backend, to compare with it). Default: the backend's default.
   */
  matmulActivations?: 'f32' | 'ggml';
  /** Prompt tokens per backend run. Default 256. */
  batchSize?: number;
  /** Called after each tensor is uploaded. */
  onProgress?: (p: LoadProgress) => void;
  /** Aborts loading between tensors. */
  signal?: AbortSignal;
}

/** Options of {@link Model.perplexity}. */
export interface PerplexityOptions {
  /** Window length in tokens. Default: the model's context size. */
  contextSize?: number;
  /** Tokens between window starts when a document is longer than a window. Default: half the window. */
  stride?: number;
  /** Document separator; each document is trimmed and scored as BOS + its tokens. Default `<|endoftext|>`. */
  separator?: string;
  /** Aborts between windows. */
  signal?: AbortSignal;
  /** Called after each window with the predictions scored so far and the total to score. */
  onProgress?: (scored: number, total: number) => void;
}

/** Something `loadModel` needs beyond the file: how to build the tokenizer from it. */
export interface ModelSource {
  readonly file: ModelFile;
  readonly tokenizer: RunnerTokenizer;
  /** Called by `dispose`, e.g. to close a file handle. */
  close?(): Promise<void> | void;
}

/** Idle sessions (each holding a KV cache) that a model keeps for reuse by generate/evaluate/perplexity. */
const maxIdleSessions = 2;

/**
 * A loaded model: weights on a backend, the tokenizer, and a pool of sessions.
 *
 * @example
 * ```ts
 * import '@nibble/backend-js';
 * const model = await loadModel(bytes, { backend: 'js' });
 * for await (const { text } of model.generate('Once upon a time', { maxTokens: 40, temperature: 0 })) {
 *   process.stdout.write(text);
 * }
 * model.dispose();
 * ```
 */
export class Model {
  readonly hparams: ModelHparams;
  readonly tokenizer: RunnerTokenizer;
  readonly backend: Backend;
  /** Backends tried before this one and why they were skipped. */
  readonly skipped: readonly BackendSkip[];
  readonly contextSize: number;
  readonly #cfg: SessionConfig;
  readonly #ownsBackend: boolean;
  readonly #close: (() => Promise<void> | void) | undefined;
  readonly #idle: Session[] = [];
  readonly #chatSource: GgufChatTemplate | undefined;
  #chatTemplate: ChatTemplate | undefined;
  // The session chat keeps between calls (its KV cache holds the conversation so far), and whether a chat uses it.
  #chatSession: Session | undefined;
  #chatBusy = false;
  #disposed = false;

  /** @internal Use {@link loadModel}. */
  constructor(
    cfg: SessionConfig,
    skipped: readonly BackendSkip[],
    ownsBackend: boolean,
    close: (() => Promise<void> | void) | undefined,
    chatTemplate?: GgufChatTemplate,
  ) {
    this.#cfg = cfg;
    this.#chatSource = chatTemplate;
    this.hparams = cfg.hparams;
    this.tokenizer = cfg.tokenizer;
    this.backend = cfg.backend;
    this.contextSize = cfg.contextSize;
    this.skipped = skipped;
    this.#ownsBackend = ownsBackend;
    this.#close = close;
  }

  /** The uploaded weights (for tools that build their own graphs). */
  get weights(): ModelWeights {
    return this.#cfg.weights;
  }

  /**
   * A new session with its own KV cache.
   *
   * @example
   * ```ts
   * const [a, b] = await Promise.all([model.createSession(), model.createSession()]);
   * ```
   */
  async createSession(): Promise<Session> {
    this.#check();
    return Session.create(this.#cfg);
  }

  /**
   * Generates after `prompt` in a fresh session (taken from a pool and returned when the iteration ends).
   * A text prompt gets BOS; ids are fed exactly as given.
   *
   * @example
   * ```ts
   * const { text } = await model.generate('', { temperature: 0, maxTokens: 200 }).collect();
   * ```
   */
  generate(prompt: string | ArrayLike<number>, options: GenerateOptions = {}): Generation {
    this.#check();
    const model = this;
    // The session is taken on the first next(), so an iterator never started holds nothing.
    return new Generation(async function* (stats) {
      const session = await model.#acquire();
      try {
        yield* session.stream(prompt, options, stats);
      } finally {
        model.#release(session);
      }
    });
  }

  /** The file's chat template (`tokenizer.chat_template`) with its BOS/EOS texts, if it has one. */
  get chatTemplate(): GgufChatTemplate | undefined {
    return this.#chatSource;
  }

  /**
   * Streams the assistant's reply to a conversation, rendered with the file's chat template (or `options.template`)
   * and stopped at the end-of-turn tokens (EOS, EOT). The model keeps one chat session: when the next call's
   * conversation starts with what its KV cache holds (the same messages plus a reply and a new question), only the new
   * tokens are evaluated (`stats.cachedTokens` says how many were reused). `contextFull` says what happens when the
   * conversation outgrows the context.
   *
   * @example
   * ```ts
   * const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi!' }];
   * const { text } = await model.chat(messages, { temperature: 0 }).collect();
   * messages.push({ role: 'assistant', content: text }, { role: 'user', content: 'And then?' });
   * for await (const t of model.chat(messages)) process.stdout.write(t.text); // evaluates only the new turn
   * ```
   */
  chat(messages: readonly ChatMessage[], options: ChatOptions = {}): Generation {
    this.#check();
    const source = this.#chatSource;
    let template: ChatTemplate;
    if (options.template !== undefined) template = new ChatTemplate(options.template);
    else if (source !== undefined) template = this.#chatTemplate ??= new ChatTemplate(source.source);
    else {
      throw new NibbleError(
        'E_NO_CHAT_TEMPLATE',
        "this model file has no 'tokenizer.chat_template'; pass one as options.template",
      );
    }
    const model = this;
    return new Generation(async function* (stats) {
      const rendered = { template, bosToken: source?.bosToken, eosToken: source?.eosToken };
      const { ids } = prepareChat(rendered, model.tokenizer, messages, model.contextSize, options);
      // One chat at a time reuses the kept session; a concurrent one gets a fresh session from the pool.
      const shared = !model.#chatBusy;
      let session: Session;
      if (shared) {
        model.#chatBusy = true;
        try {
          session = model.#chatSession ??= await Session.create(model.#cfg);
        } catch (e) {
          model.#chatBusy = false;
          throw e;
        }
      } else session = await model.#acquire();
      try {
        const keep = reusablePrefix(session.tokens, ids);
        session.reset(keep);
        stats.cachedTokens = keep;
        yield* session.stream(ids.slice(keep), options, stats);
      } finally {
        if (shared) model.#chatBusy = false;
        else model.#release(session);
      }
    });
  }

  /**
   * Logits of every position of `ids` from an empty cache, `[ids.length, vocab]` row-major.
   *
   * @example
   * ```ts
   * const logits = await model.evaluate([1]); // Float32Array(vocab): the first prediction
   * ```
   */
  async evaluate(ids: ArrayLike<number>): Promise<Float32Array> {
    const s = await this.#acquire();
    try {
      return await s.evaluate(ids);
    } finally {
      this.#release(s);
    }
  }

  /**
   * Perplexity of a text: each document (split at `separator`, trimmed) is BOS + its tokens; every token after BOS
   * is predicted once, in windows of `contextSize` that move by `stride` when a document is longer.
   *
   * @example
   * ```ts
   * const r = await model.perplexity(text); // r.perplexity, r.count, r.totalLogProb
   * ```
   */
  async perplexity(text: string, options: PerplexityOptions = {}): Promise<PerplexityResult> {
    const ctx = options.contextSize ?? this.contextSize;
    if (!Number.isSafeInteger(ctx) || ctx < 2 || ctx > this.contextSize) {
      throw new ValueError(
        `perplexity contextSize ${ctx} must be in 2..${this.contextSize} (the model's context)`,
        0,
        0,
      );
    }
    const stride = options.stride ?? Math.max(1, Math.floor(ctx / 2));
    if (!Number.isSafeInteger(stride) || stride < 1 || stride > ctx) {
      throw new ValueError(`perplexity stride ${stride} must be an integer in 1..${ctx} (the window)`, 0, 0);
    }
    const vocab = this.hparams.vocabSize;
    const docs = splitDocuments(text, options.separator);
    // BOS + text, whatever the vocabulary's add_bos says: the first prediction is conditioned on BOS.
    const bos = this.tokenizer.bosId;
    const encoded = docs.map((doc) => {
      const ids = this.tokenizer.encode(doc, false);
      if (bos !== undefined) ids.unshift(bos);
      return ids;
    });
    const toScore = encoded.reduce((n, ids) => n + Math.max(0, ids.length - 1), 0);
    const s = await this.#acquire();
    const documents: { tokens: number; logProbs: Float64Array }[] = [];
    let total = 0;
    let count = 0;
    try {
      for (let d = 0; d < encoded.length; d++) {
        const ids = encoded[d];
        const logProbs = new Float64Array(Math.max(0, ids.length - 1));
        for (const w of windows(ids.length, ctx, stride)) {
          options.signal?.throwIfAborted();
          s.reset();
          const slice = ids.slice(w.start, w.end);
          // Row r predicts token start + r + 1; score rows whose target is at or after `from`.
          await s.evaluateRows(slice, (r, logits, offset) => {
            const target = w.start + r + 1;
            if (target < w.from || target >= w.end) return;
            const lp = logProbAt(logits, offset, vocab, ids[target]);
            // Finite logits always give a finite log-probability: anything else is a broken model, not a score.
            if (!Number.isFinite(lp)) throw new NonFiniteError(target - 1, d);
            logProbs[target - 1] = lp;
            total += lp;
            count++;
          });
          options.onProgress?.(count, toScore);
        }
        documents.push({ tokens: ids.length, logProbs });
      }
    } finally {
      this.#release(s);
    }
    if (count === 0) {
      throw new ValueError(
        `the text has nothing to score: no document has a token after BOS (${docs.length} non-empty document(s))`,
        0,
        0,
      );
    }
    return { perplexity: Math.exp(-total / count), count, totalLogProb: total, documents };
  }

  /** Releases the sessions, the backend (when the model created it) and the file. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const s of this.#idle) s.dispose();
    this.#idle.length = 0;
    this.#chatSession?.dispose();
    this.#chatSession = undefined;
    if (this.#ownsBackend) this.backend.dispose();
    await this.#close?.();
  }

  async #acquire(): Promise<Session> {
    this.#check();
    const s = this.#idle.pop() ?? (await Session.create(this.#cfg));
    s.reset();
    return s;
  }

  #release(s: Session): void {
    // Idle sessions keep their KV caches for the next call; beyond a few, free the memory instead.
    if (this.#disposed || this.#idle.length >= maxIdleSessions) s.dispose();
    else this.#idle.push(s);
  }

  #check(): void {
    if (this.#disposed) throw new NibbleError('E_DISPOSED', 'this model has been disposed');
  }
}

/** Preferred order when no backend is named: the fastest that initialises wins. */
const preferredBackends = ['webgpu', 'wasm', 'js'];

/** The registered backends, preferred ones first (names not registered are left out). */
function autoBackends(): string[] {
  const registered = registeredBackends();
  return [
    ...preferredBackends.filter((n) => registered.includes(n)),
    ...registered.filter((n) => !preferredBackends.includes(n)),
  ];
}

function isBackend(x: unknown): x is Backend {
  return typeof x === 'object' && x !== null && 'run' in x && 'upload' in x && 'capabilities' in x;
}

/**
 * Loads a model of any supported architecture (see `supportedArchitectures`) from an opened file and its tokenizer onto a backend. `loadModel` of
 * `@nibble/runner` (bytes, Blob, URL) and of `@nibble/runner/node` (paths) open the file and call this.
 *
 * @example
 * ```ts
 * const model = await loadModelFrom({ file, tokenizer }, { backend: 'js' });
 * ```
 */
export async function loadModelFrom(source: ModelSource, options: LoadModelOptions = {}): Promise<Model> {
  const { file, tokenizer } = source;
  const hp = modelHparams(file.metadata, { vocabFallback: tokenizer.vocabSize });
  // Before anything is sized by them: the file's counts against what the file holds.
  checkHparamsAgainstFile(hp, file);
  if (tokenizer.vocabSize !== hp.vocabSize) {
    throw new NibbleError('E_FORMAT', `the tokenizer has ${tokenizer.vocabSize} tokens, the model ${hp.vocabSize}`);
  }
  const contextSize = options.contextSize ?? Math.min(hp.contextLength, 2048);
  if (!Number.isSafeInteger(contextSize) || contextSize < 1 || contextSize > hp.contextLength) {
    throw new ValueError(
      `contextSize must be an integer in 1..${hp.contextLength} (the model's trained context, ` +
        `${hp.architecture}.context_length), got ${contextSize}`,
      0,
      0,
    );
  }
  const batchSize = Math.min(options.batchSize ?? 256, contextSize);
  if (!Number.isSafeInteger(batchSize) || batchSize < 1)
    throw new ValueError(`batchSize must be a positive integer, got ${batchSize}`, 0, 0);
  // Logits rows cost vocab floats each; keep that buffer near 16 MiB however large the vocabulary.
  const logitsBatch = Math.max(1, Math.min(batchSize, Math.floor((4 << 20) / hp.vocabSize)));

  let backend: Backend;
  let skipped: BackendSkip[] = [];
  const ownsBackend = !isBackend(options.backend);
  if (isBackend(options.backend)) backend = options.backend;
  else {
    const spec = options.backend === undefined || options.backend === 'auto' ? autoBackends() : options.backend;
    const backendOptions: Record<string, unknown> = {};
    if (options.threads !== undefined) backendOptions.threads = options.threads;
    if (options.matmulActivations !== undefined) backendOptions.matmulActivations = options.matmulActivations;
    ({ backend, skipped } = await selectBackend(spec as BackendSpec, backendOptions));
  }
  try {
    const weights = await uploadModelWeights(file, hp, backend, options.onProgress, options.signal);
    const cfg: SessionConfig = {
      backend,
      hparams: hp,
      weights,
      tokenizer,
      contextSize,
      kvCacheType: options.kvCacheType ?? 'f32',
      batchSize,
      logitsBatch,
      matmulActivations: options.matmulActivations,
    };
    const model = new Model(cfg, skipped, ownsBackend, source.close, ggufChatTemplate(file.metadata));
    // Build one session now so that an unusable KV cache type or graph fails at load, not at the first generate.
    await model.evaluate([]);
    return model;
  } catch (e) {
    if (ownsBackend) backend.dispose();
    throw e;
  }
}
