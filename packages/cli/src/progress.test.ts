// Progress bars: drawn on a terminal, absent with --json or when output is piped; the same text either way.
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type ProgressStreams, progressAllowed, progressBar } from './progress.js';

/** A stream that records what is written; `tty` says whether it claims to be a terminal. */
function sink(tty: boolean): Writable & { isTTY: boolean; columns: number; text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  }) as Writable & { isTTY: boolean; columns: number; text: () => string };
  w.isTTY = tty;
  w.columns = 100;
  w.text = () => chunks.join('');
  return w;
}

afterEach(() => vi.restoreAllMocks());

describe('progress bars', () => {
  it('are allowed only on a terminal (stdout and stderr) without --json', () => {
    const both = { out: sink(true), err: sink(true) };
    expect(progressAllowed(false, both)).toBe(true);
    expect(progressAllowed(true, both)).toBe(false);
    expect(progressAllowed(false, { out: sink(false), err: sink(true) })).toBe(false);
    expect(progressAllowed(false, { out: sink(true), err: sink(false) })).toBe(false);
  });

  it('draw on stderr of a terminal and keep stdout lines whole', () => {
    const streams: ProgressStreams = { out: sink(true), err: sink(true) };
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((s: string) => void lines.push(s));
    const bar = progressBar(false, streams);
    bar.start(10, 0, 'tokens scored');
    bar.update(5);
    bar.log('a result line');
    bar.update(10);
    bar.stop();
    const drawn = (streams.err as ReturnType<typeof sink>).text();
    expect(drawn).toContain('tokens scored');
    expect(drawn).toMatch(/\d+%/);
    expect(lines).toEqual(['a result line']);
  });

  it('print nothing extra with --json or when piped', () => {
    for (const [json, tty] of [
      [true, true],
      [false, false],
    ]) {
      const streams = { out: sink(tty), err: sink(tty) };
      const lines: string[] = [];
      vi.spyOn(console, 'log').mockImplementation((s: string) => void lines.push(s));
      const bar = progressBar(json, streams);
      bar.start(10, 0, 'x');
      bar.update(5);
      bar.log('line');
      bar.stop();
      expect(streams.err.text()).toBe('');
      expect(streams.out.text()).toBe('');
      expect(lines).toEqual(['line']);
      vi.restoreAllMocks();
    }
  });
});
