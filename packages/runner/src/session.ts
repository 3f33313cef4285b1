/**
 * A session: one KV cache and the graphs that read and write it. Two sessions of one model share the weights and
 * nothing else, so their generations cannot interfere.
 */
import { type Backend, type Graph, NibbleError, type RunOptions, ValueError } from '@nibble/tensor';
import { allocKvCache, graphNames, type KvCache, type ModelWeights, observePrefix } from './arch/common.js';
import { buildModelGraph } from './arch/registry.js';
import { type GeneratedToken, Generation, type GenerationStats } from './generation.js';
import type { ModelHparams } from './hparams.js';
import { firstNonFinite, NonFiniteError } from './perplexity.js';
import { Sampler, type SamplingOptions } from './sampler.js';
import { StopMatcher } from './stop.js';
import type { RunnerTokenizer } from './text.js';

/** Options of `generate`. */
export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to sample. Default 256. */
  maxTokens?: number;
  /** Strings that end the generation; the text stops just before the first one. */
  stop?: readonly string[];
  /** Keep sampling past end-of-generation tokens (EOS, EOT, BOS), e.g. to benchmark a fixed length. Default false. */
  ignoreEos?: boolean;
  /** Aborts between tokens (the iterator throws the signal's reason). */
  signal?: AbortSignal;
  /**
   * Whether a text prompt gets the tokenizer's BOS. Default: when the session is empty. Ignored for id prompts,
   * which are fed exactly as given.
   */
  addSpecial?: boolean;
}

/** Fixed sizes a session is built with. */
export interface SessionConfig {
  readonly backend: Backend;
  readonly hparams: ModelHparams;
  readonly weights: ModelWeights;
  readonly tokenizer: RunnerTokenizer;
  readonly contextSize: number;
  readonly kvCacheType: 'f32' | 'f16' | 'q8_0';
  /** Rows per run of the prompt graph (no logits). */
  readonly batchSize: number;
  /** Rows per run of the logits graph. */
  readonly logitsBatch: number;
  readonly matmulActivations: 'f32' | 'ggml' | undefined;
}

/**
 * One conversation's state: the tokens so far and their keys and values.
 *
 * @example
 * ```ts
 * const s = await model.createSession();
 * for await (const t of s.generate('Once upon a time', { maxTokens: 20, temperature: 0 })) process.stdout.write(t.text);
 * s.position; // prompt + generated tokens now in the cache
 * s.dispose();
 * ```
 */
/** The activations entering one weight during one run: `rows` tokens of `cols` floats, row-major. */
export interface ObservedInput {
  readonly data: Float32Array;
  readonly rows: number;
  readonly cols: number;
}

export class Session {
  readonly #cfg: SessionConfig;
  readonly #cache: KvCache;
  readonly #prefill: Graph;
  readonly #full: Graph;
  #observing: Graph | undefined;
  // [contextSize] every token in the cache, in order (the repeat penalty's history)
  readonly #history: Int32Array;
  // [batchSize] token ids of one run; decode uses the one-element view
  readonly #tokens: Int32Array;
  readonly #one: Int32Array;
  // [logitsBatch, vocab] logits of the last logits run
  readonly #logits: Float32Array;
  // [vocab] view of row 0, what decode samples from
  readonly #row0: Float32Array;
  readonly #runOptions: RunOptions;
  readonly #decodeInputs: { tokens: Int32Array; nTokens: number; pos: number };
  // Tokens whose keys and values are in the cache.
  #position = 0;
  // The last token `generate` sampled, part of the conversation but not yet fed (-1: none). It goes in first with
  // whatever is evaluated next, so a generation that is never continued costs no extra forward pass.
  #pending = -1;
  #busy = false;
  #disposed = false;

  private constructor(cfg: SessionConfig, cache: KvCache) {
    this.#cfg = cfg;
    this.#cache = cache;
    const { hparams: hp, weights, contextSize } = cfg;
    this.#prefill = buildModelGraph(hp, weights, cache, {
      maxTokens: cfg.batchSize,
      logits: false,
      matmulActivations: cfg.matmulActivations,
    });
    this.#full = buildModelGraph(hp, weights, cache, {
      maxTokens: cfg.logitsBatch,
      logits: true,
      matmulActivations: cfg.matmulActivations,
    });
    this.#history = new Int32Array(contextSize);
    this.#tokens = new Int32Array(Math.max(cfg.batchSize, cfg.logitsBatch));
    this.#one = this.#tokens.subarray(0, 1);
    this.#logits = new Float32Array(cfg.logitsBatch * hp.vocabSize);
    this.#row0 = this.#logits.subarray(0, hp.vocabSize);
    this.#runOptions = { outputs: { [graphNames.logits]: this.#logits } };
    this.#decodeInputs = { tokens: this.#one, nTokens: 1, pos: 0 };
  }

  /** @internal Allocates the KV cache and builds the graphs. */
  static async create(cfg: SessionConfig): Promise<Session> {
    const cache = await allocKvCache(cfg.backend, cfg.hparams, cfg.contextSize, cfg.kvCacheType);
    return new Session(cfg, cache);
  }

  /**
   * Tokens in the conversation: every token fed plus the last one `generate` sampled (its keys and values are
   * computed with whatever is evaluated next).
   */
  get position(): number {
    return this.#position + (this.#pending >= 0 ? 1 : 0);
  }

  /** Positions this session can hold. */
  get contextSize(): number {
    return this.#cfg.contextSize;
  }

  /** The tokens of the conversation, oldest first (a copy): prompts and every token generated after them. */
  get tokens(): number[] {
    const out = Array.from(this.#history.subarray(0, this.#position));
    if (this.#pending >= 0) out.push(this.#pending);
    return out;
  }

  /**
   * Forgets every token (or all from `position` on): later tokens overwrite the cache from there. Cheap: nothing is
   * cleared, since attention only reads positions up to the current one.
   */
  reset(position = 0): void {
    this.#check();
    const end = this.position;
    if (!Number.isInteger(position) || position < 0 || position > end) {
      throw new ValueError(`reset position ${position} is outside 0..${end}`, 0, 0);
    }
    if (position === end) return;
    this.#pending = -1;
    this.#position = position;
  }

  /**
   * Feeds `ids` after the tokens already in the cache and returns their logits, `[ids.length, vocab]` row-major.
   *
   * @example
   * ```ts
   * const logits = await session.evaluate([1, 403, 407]); // Float32Array(3 * 512)
   * ```
   */
  async evaluate(ids: ArrayLike<number>): Promise<Float32Array> {
    const vocab = this.#cfg.hparams.vocabSize;
    const out = new Float32Array(ids.length * vocab);
    await this.#withLock(async () => {
      await this.#feedPending(ids.length);
      await this.#forward(ids, 0, ids.length, (row, logits, offset) =>
        out.set(logits.subarray(offset, offset + vocab), row * vocab),
      );
    });
    return out;
  }

  /**
   * Feeds `ids` and calls `onRow(i, logits, offset)` with the logits of each row i (valid only during the call).
   * For perplexity: nothing of size `[n, vocab]` is kept.
   * @internal
   */
  async evaluateRows(
    ids: ArrayLike<number>,
    onRow: (row: number, logits: Float32Array, offset: number) => void,
  ): Promise<void> {
    await this.#withLock(async () => {
      await this.#feedPending(ids.length);
      await this.#forward(ids, 0, ids.length, onRow);
    });
  }

  /**
   * Samples up to `maxTokens` tokens after `prompt` (a text, or token ids fed as given). The prompt is appended to
   * whatever the session holds, so a session continues a conversation; use {@link Session.reset} to start over.
   *
   * @example
   * ```ts
   * const { text } = await session.generate('Once upon a time', { temperature: 0, maxTokens: 30 }).collect();
   * ```
   */
  generate(prompt: string | ArrayLike<number>, options: GenerateOptions = {}): Generation {
    this.#check();
    return new Generation((stats) => this.stream(prompt, options, stats));
  }

  /**
   * Feeds `ids` like {@link Session.evaluate} and calls `onInputs` after each batch with the f32 activations that
   * entered every weight (keyed by the weight's tensor name, e.g. `blk.0.attn_q.weight`), valid only during the call:
   * what llama-imatrix accumulates.
   *
   * @example
   * ```ts
   * await session.evaluateObserved(ids, (inputs) => {
   *   const x = inputs.get('blk.0.ffn_down.weight')!; // { data, rows: tokens, cols: hidden }
   * });
   * ```
   */
  async evaluateObserved(
    ids: ArrayLike<number>,
    onInputs: (inputs: ReadonlyMap<string, ObservedInput>) => void,
  ): Promise<void> {
    await this.#withLock(async () => {
      await this.#feedPending(ids.length);
      const { hparams: hp, weights, logitsBatch } = this.#cfg;
      this.#observing ??= buildModelGraph(hp, weights, this.#cache, {
        maxTokens: logitsBatch,
        logits: true,
        matmulActivations: this.#cfg.matmulActivations,
        observe: true,
      });
      const graph = this.#observing;
      const names = graph.outputs.filter((o) => o.name.startsWith(observePrefix));
      const seen = new Map<string, ObservedInput>();
      await this.#batches(ids, 0, ids.length, logitsBatch, async (tokens, n) => {
        const out = await this.#cfg.backend.run(graph, {
          [graphNames.tokens]: tokens,
          [graphNames.nTokens]: n,
          [graphNames.pos]: this.#position,
        });
        for (const o of names) {
          const data = out[o.name];
          seen.set(o.name.slice(observePrefix.length), { data, rows: n, cols: data.length / n });
        }
        onInputs(seen);
      });
    });
  }

  /**
   * Frees the session's KV cache on the backend now and drops its graphs. Using the session afterwards throws;
   * disposing twice does nothing.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const { backend } = this.#cfg;
    for (const t of [...this.#cache.k, ...this.#cache.v]) backend.free(t);
  }

  /** @internal The body of {@link Session.generate}, filling `stats`. */
  async *stream(
    prompt: string | ArrayLike<number>,
    o: GenerateOptions,
    stats: GenerationStats,
  ): AsyncGenerator<GeneratedToken, void, undefined> {
    const { tokenizer, contextSize, hparams: hp } = this.#cfg;
    const maxTokens = o.maxTokens ?? 256;
    if (!Number.isSafeInteger(maxTokens) || maxTokens < 0)
      throw new ValueError(`maxTokens must be a non-negative integer, got ${maxTokens}`, 0, 0);
    const sampler = new Sampler(hp.vocabSize, o);
    const stop = new StopMatcher(o.stop ?? []);
    const signal = o.signal;
    this.#lock();
    // The last sampled token until it has been fed: it stays part of the conversation when the generation ends.
    let unfed = -1;
    try {
      const given =
        typeof prompt === 'string' ? tokenizer.encode(prompt, o.addSpecial ?? this.position === 0) : Array.from(prompt);
      if (given.length === 0) throw new ValueError('the prompt has no tokens (give text, or ids such as [bos])', 0, 0);
      if (this.position + given.length > contextSize) {
        throw new ValueError(
          `prompt of ${given.length} tokens after ${this.position} does not fit the context of ${contextSize}`,
          0,
          0,
        );
      }
      // The previous generation's last token goes first: the cache then holds the whole conversation.
      const ids = this.#pending >= 0 ? [this.#pending, ...given] : given;
      this.#pending = -1;
      const decoder = tokenizer.streamDecoder(ids[ids.length - 1]);
      stats.promptTokens = ids.length;
      const t0 = performance.now();
      // Prompt: all rows but the last through the graph without logits, the last through the logits graph.
      await this.#forward(ids, 0, ids.length - 1, undefined);
      signal?.throwIfAborted();
      await this.#forward(ids, ids.length - 1, ids.length, undefined);
      const t1 = performance.now();
      stats.promptMs = t1 - t0;

      // Items whose text is still open (a partial UTF-8 sequence or stop-string prefix) wait here, so that text
      // released at the end still reaches the caller attached to a token.
      const waiting: { id: number; text: string }[] = [];
      let finish: GenerationStats['finishReason'] = 'length';
      for (let i = 0; i < maxTokens; i++) {
        signal?.throwIfAborted();
        // NaN logits would sample id 0 forever: a broken model is an error, not a story.
        if (firstNonFinite(this.#row0) >= 0) throw new NonFiniteError(this.#position - 1);
        const id = sampler.sample(this.#row0, this.#history, this.#position);
        if (!o.ignoreEos && tokenizer.isEndOfGeneration(id)) {
          finish = 'eos';
          break;
        }
        unfed = id;
        stats.generatedTokens++;
        const piece = decoder.push(id);
        const shown = stop.push(piece);
        waiting.push({ id, text: shown.text });
        if (shown.stopped) {
          finish = 'stop';
          break;
        }
        if (!decoder.pending && !stop.pending) {
          for (const w of waiting) yield w;
          waiting.length = 0;
        }
        if (i + 1 === maxTokens) break;
        if (this.#position >= contextSize) {
          finish = 'context';
          break;
        }
        this.#one[0] = id;
        await this.#decode();
        unfed = -1;
        stats.decodeMs = performance.now() - t1;
      }
      if (finish !== 'stop') {
        const rest = stop.push(decoder.flush()).text + stop.flush();
        if (rest.length > 0 && waiting.length > 0) {
          const last = waiting[waiting.length - 1];
          waiting[waiting.length - 1] = { id: last.id, text: last.text + rest };
        }
      }
      stats.decodeMs = performance.now() - t1;
      stats.finishReason = finish;
      for (const w of waiting) yield w;
    } finally {
      // Also when the caller stops iterating early: a sampled token is part of the conversation. One that would not
      // fit the context is dropped (the generation ended for that reason).
      if (unfed >= 0 && this.#position < contextSize) this.#pending = unfed;
      this.#busy = false;
    }
  }

  /** Feeds the token `generate` left unfed, if any, through the prompt graph; `more` tokens follow it. */
  async #feedPending(more: number): Promise<void> {
    if (this.#pending < 0) return;
    if (this.#position + 1 + more > this.#cfg.contextSize) {
      throw new ValueError(
        `${more} tokens after ${this.#position + 1} do not fit the context of ${this.#cfg.contextSize}`,
        0,
        0,
      );
    }
    this.#one[0] = this.#pending;
    await this.#cfg.backend.run(
      this.#prefill,
      { [graphNames.tokens]: this.#one, [graphNames.nTokens]: 1, [graphNames.pos]: this.#position },
      this.#runOptions,
    );
    this.#history[this.#position] = this.#pending;
    this.#position++;
    this.#pending = -1;
  }

  /** One decode step: `#one[0]` at the current position; logits land in row 0. */
  async #decode(): Promise<void> {
    const inputs = this.#decodeInputs;
    inputs.pos = this.#position;
    await this.#cfg.backend.run(this.#full, inputs, this.#runOptions);
    this.#history[this.#position] = this.#one[0];
    this.#position++;
  }

  /**
   * Feeds `ids[from..to)` at the current position in batches. With `onRow`, every row's logits are computed and
   * handed over; without, rows go through the prompt graph except the last of the whole range when it is the very
   * last id (`to === ids.length` and from === to - 1), whose logits land in row 0 for sampling.
   */
  async #forward(
    ids: ArrayLike<number>,
    from: number,
    to: number,
    onRow: ((row: number, logits: Float32Array, offset: number) => void) | undefined,
  ): Promise<void> {
    const { backend, batchSize, logitsBatch, hparams: hp } = this.#cfg;
    const wantLogits = onRow !== undefined || (to === ids.length && to - from === 1);
    const graph = wantLogits ? this.#full : this.#prefill;
    const step = wantLogits ? logitsBatch : batchSize;
    await this.#batches(ids, from, to, step, async (tokens, n, start) => {
      await backend.run(
        graph,
        { [graphNames.tokens]: tokens, [graphNames.nTokens]: n, [graphNames.pos]: this.#position },
        this.#runOptions,
      );
      if (onRow) for (let i = 0; i < n; i++) onRow(start + i - from, this.#logits, i * hp.vocabSize);
    });
  }

  /**
   * Feeds `ids[from..to)` in runs of at most `step` tokens: checks the ids and the context, fills the token buffer,
   * calls `run` (which runs the graph at the current position), then records the tokens and advances.
   */
  async #batches(
    ids: ArrayLike<number>,
    from: number,
    to: number,
    step: number,
    run: (tokens: Int32Array, n: number, start: number) => Promise<void>,
  ): Promise<void> {
    this.#check();
    const { contextSize, hparams: hp } = this.#cfg;
    if (this.#position + (to - from) > contextSize) {
      throw new ValueError(
        `${to - from} tokens after ${this.#position} do not fit the context of ${contextSize}`,
        0,
        0,
      );
    }
    for (let start = from; start < to; start += step) {
      const n = Math.min(step, to - start);
      const tokens = n === 1 ? this.#one : this.#tokens.subarray(0, n);
      for (let i = 0; i < n; i++) {
        const id = ids[start + i];
        if (!Number.isInteger(id) || id < 0 || id >= hp.vocabSize) {
          throw new ValueError(
            `token id ${id} at index ${start + i} is outside the vocabulary 0..${hp.vocabSize - 1}`,
            0,
            start + i,
          );
        }
        tokens[i] = id;
      }
      await run(tokens, n, start);
      this.#history.set(tokens, this.#position);
      this.#position += n;
    }
  }

  async #withLock<T>(f: () => Promise<T>): Promise<T> {
    this.#lock();
    try {
      return await f();
    } finally {
      this.#busy = false;
    }
  }

  #lock(): void {
    this.#check();
    if (this.#busy)
      throw new NibbleError('E_BUSY', 'this session is already running; use another session for concurrent work');
    this.#busy = true;
  }

  #check(): void {
    if (this.#disposed) throw new NibbleError('E_DISPOSED', 'this session has been disposed');
  }
}
