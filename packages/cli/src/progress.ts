/**
 * Progress bars for long commands (cli-progress), on stderr. Shown only when stdout and stderr are terminals and the
 * command is not printing JSON, so piped or `--json` output carries nothing extra.
 */
import { Presets, SingleBar } from 'cli-progress';

/** A progress bar, or nothing: every method is a no-op when no bar is shown. */
export interface Progress {
  /** Starts (or restarts) the bar at `value` of `total`; `label` says what is running. */
  start(total: number, value?: number, label?: string): void;
  /** Moves the bar to `value`; `label` replaces the label when given. */
  update(value: number, label?: string): void;
  /** Prints a line to stdout above the bar (the bar is cleared first and redrawn after). */
  log(line: string): void;
  /** Removes the bar. */
  stop(): void;
}

/** The streams a bar looks at: text goes to `out`, the bar to `err`. */
export interface ProgressStreams {
  readonly out: NodeJS.WritableStream & { isTTY?: boolean };
  readonly err: NodeJS.WritableStream & { isTTY?: boolean };
}

const processStreams: ProgressStreams = { out: process.stdout, err: process.stderr };

/**
 * Whether a bar may be shown: a terminal on both streams, and no JSON output.
 *
 * @example
 * ```ts
 * progressAllowed(false); // true in a terminal, false when piped
 * ```
 */
export function progressAllowed(json: boolean, streams: ProgressStreams = processStreams): boolean {
  return !json && streams.out.isTTY === true && streams.err.isTTY === true;
}

/**
 * A bar for a long command, or a silent stand-in when {@link progressAllowed} is false.
 *
 * @example
 * ```ts
 * const bar = progressBar(values.json);
 * bar.start(n, 0, 'scoring');
 * bar.update(i);
 * bar.stop();
 * ```
 */
export function progressBar(json: boolean, streams: ProgressStreams = processStreams): Progress {
  if (!progressAllowed(json, streams)) {
    return { start() {}, update() {}, log: (line) => console.log(line), stop() {} };
  }
  const bar = new SingleBar(
    {
      format: ' {bar} {percentage}% | {value}/{total} | {label} | {duration_formatted}',
      clearOnComplete: true,
      hideCursor: true,
      stream: streams.err,
    },
    Presets.shades_classic,
  );
  let running = false;
  let total = 0;
  let value = 0;
  let label = '';
  return {
    start(t, v = 0, l = '') {
      if (running) bar.stop();
      total = t;
      value = v;
      label = l;
      bar.start(total, value, { label });
      running = true;
    },
    update(v, l) {
      value = v;
      if (l !== undefined) label = l;
      if (running) bar.update(value, { label });
    },
    log(line) {
      if (!running) {
        console.log(line);
        return;
      }
      bar.stop();
      console.log(line);
      bar.start(total, value, { label });
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}
