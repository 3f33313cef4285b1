/**
 * The async iterator that `generate` returns: tokens as they come, plus timing and the reason it ended.
 */

/** One generated token and the text it made visible (possibly '' while a UTF-8 sequence or stop string is open). */
export interface GeneratedToken {
  readonly id: number;
  readonly text: string;
}

/** Why a generation ended. */
export type FinishReason = 'length' | 'eos' | 'stop' | 'context';

/** Counts and timings of one generation, filled in as it runs. */
export interface GenerationStats {
  /** Tokens fed before the first sample (the prompt, BOS included). */
  promptTokens: number;
  /** Tokens of the prompt already in the session's KV cache and not evaluated again (chat turns). */
  cachedTokens: number;
  /** Tokens sampled and yielded. */
  generatedTokens: number;
  /** Milliseconds from the start to the first token's logits (prompt processing). */
  promptMs: number;
  /** Milliseconds of the decode loop after the prompt. */
  decodeMs: number;
  /** Set when the generation has ended. */
  finishReason: FinishReason | undefined;
}

/**
 * A running generation: iterate it with `for await`, or call {@link Generation.collect}.
 *
 * @example
 * ```ts
 * const gen = model.generate('Once upon a time', { maxTokens: 50, temperature: 0 });
 * for await (const { text } of gen) process.stdout.write(text);
 * console.log(gen.stats.generatedTokens / (gen.stats.decodeMs / 1000), 'tok/s');
 * ```
 */
export class Generation implements AsyncIterableIterator<GeneratedToken> {
  /** Live statistics; complete once iteration has finished. */
  readonly stats: GenerationStats = {
    promptTokens: 0,
    cachedTokens: 0,
    generatedTokens: 0,
    promptMs: 0,
    decodeMs: 0,
    finishReason: undefined,
  };
  readonly #inner: AsyncGenerator<GeneratedToken, void, undefined>;

  /** @internal `body` gets the stats object to fill. */
  constructor(body: (stats: GenerationStats) => AsyncGenerator<GeneratedToken, void, undefined>) {
    this.#inner = body(this.stats);
  }

  next(): Promise<IteratorResult<GeneratedToken>> {
    return this.#inner.next();
  }

  return(): Promise<IteratorResult<GeneratedToken>> {
    return this.#inner.return(undefined);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * Runs the generation to the end and returns all ids and the whole text.
   *
   * @example
   * ```ts
   * const { text, ids } = await model.generate('', { maxTokens: 200, temperature: 0 }).collect();
   * ```
   */
  async collect(): Promise<{ ids: number[]; text: string; stats: GenerationStats }> {
    const ids: number[] = [];
    let text = '';
    for await (const t of this) {
      ids.push(t.id);
      text += t.text;
    }
    return { ids, text, stats: this.stats };
  }
}
