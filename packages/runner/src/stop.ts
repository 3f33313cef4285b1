/**
 * Stop strings over streamed text. Text that might be the start of a stop string is held back until the next piece
 * shows whether it is, so the caller never prints a stop string or half of one.
 */

/**
 * Finds the first stop string in a stream of text pieces.
 *
 * @example
 * ```ts
 * const m = new StopMatcher(['\n\n']);
 * m.push('Hello\n');   // { text: 'Hello', stopped: false }  ('\n' is held back)
 * m.push('\nWorld');   // { text: '', stopped: true }
 * ```
 */
export class StopMatcher {
  #held = '';
  private readonly stops: readonly string[];

  constructor(stops: readonly string[] = []) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  /** Whether text is being held back (it might start a stop string). */
  get pending(): boolean {
    return this.#held.length > 0;
  }

  /** Whether any stop strings were given. */
  get active(): boolean {
    return this.stops.length > 0;
  }

  /**
   * Adds a piece of text. Returns the text that is now safe to show and whether a stop string was found (then
   * `text` is what came before it and the stream should end).
   */
  push(piece: string): { text: string; stopped: boolean } {
    if (this.stops.length === 0) return { text: piece, stopped: false };
    const s = this.#held + piece;
    let first = -1;
    for (const stop of this.stops) {
      const at = s.indexOf(stop);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) {
      this.#held = '';
      return { text: s.slice(0, first), stopped: true };
    }
    // Hold back the longest tail of s that is a proper prefix of some stop string.
    let hold = 0;
    for (const stop of this.stops) {
      for (let k = Math.min(stop.length - 1, s.length); k > hold; k--) {
        if (s.endsWith(stop.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    this.#held = s.slice(s.length - hold);
    return { text: s.slice(0, s.length - hold), stopped: false };
  }

  /** The held-back text, released when the stream ends without a stop string. */
  flush(): string {
    const s = this.#held;
    this.#held = '';
    return s;
  }
}
