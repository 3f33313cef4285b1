/**
 * Shared pieces of the quantization commands (quantize, imatrix, sizes): strict flag parsing on `node:util`
 * parseArgs, a progress display (a cli-progress bar on a terminal, plain lines otherwise, nothing with --json) and
 * cli-table3 tables.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import Table from 'cli-table3';
import { UsageError } from './args.js';

type Options = NonNullable<ParseArgsConfig['options']>;

function nearest(word: string, candidates: string[]): string | undefined {
  const d = (a: string, b: string) => {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
      let prev = row[0];
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const cur = row[j];
        row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = cur;
      }
    }
    return row[b.length];
  };
  let best: string | undefined;
  let bestD = 4;
  for (const c of candidates) {
    const v = d(word, c);
    if (v < bestD) [best, bestD] = [c, v];
  }
  return best;
}

/** Parses `args` strictly: an unknown flag or a missing value is a {@link UsageError} naming the nearest flag. */
export function parseStrict<T extends Options>(
  args: string[],
  options: T,
  usage: string,
): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
    return { values: r.values as Record<string, string | boolean | string[] | undefined>, positionals: r.positionals };
  } catch (e) {
    const msg = (e as Error).message;
    const m = /Unknown option '(-{1,2}[^']+)'/.exec(msg);
    if (m) {
      const guess = nearest(m[1].replace(/^-+/, ''), Object.keys(options));
      throw new UsageError(`unknown option ${m[1]}${guess ? `; did you mean --${guess}?` : ''}\n\n${usage}`);
    }
    throw new UsageError(`${msg.replace(/\. To specify.*$/s, '')}\n\n${usage}`);
  }
}

/** An integer flag in `[min, max]`, or the default. */
export function intFlag(value: unknown, name: string, min: number, max: number, dflt: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (typeof value !== 'string' || !/^[+-]?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer in ${min}..${max}, got '${String(value)}'`);
  }
  return n;
}

const MB = 1e6;

/** Progress of a long job: a bar on a terminal (stderr), one plain line per step otherwise, nothing when quiet. */
export class Progress {
  readonly #bar: SingleBar | undefined;
  readonly #quiet: boolean;
  readonly #t0 = performance.now();
  #started = false;

  constructor(
    quiet: boolean,
    readonly unit: 'MB' | 'chunks' = 'MB',
  ) {
    this.#quiet = quiet;
    if (!quiet && process.stderr.isTTY) {
      this.#bar = new SingleBar({
        stream: process.stderr,
        format:
          unit === 'MB'
            ? ' {bar} {percentage}% | {value}/{total} MB | {speed} MB/s | ETA {eta_formatted} | {label}'
            : ' {bar} {percentage}% | chunk {value}/{total} | {speed} tok/s | ETA {eta_formatted}',
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 20,
      });
    }
  }

  /** `done` of `total` (bytes or chunks); `line` is what a plain log prints for this step. */
  update(done: number, total: number, label: string, line: string, rate?: number): void {
    if (this.#quiet) return;
    const seconds = (performance.now() - this.#t0) / 1000;
    if (this.#bar) {
      const scale = this.unit === 'MB' ? MB : 1;
      const payload = { label, speed: (rate ?? done / scale / Math.max(seconds, 1e-3)).toFixed(1) };
      if (!this.#started) {
        this.#bar.start(Math.max(1, Math.round(total / scale)), 0, payload);
        this.#started = true;
      }
      this.#bar.update(Math.round(done / scale), payload);
    } else {
      process.stderr.write(`${line}\n`);
    }
  }

  stop(): void {
    if (this.#started) this.#bar?.stop();
  }
}

/** A cli-table3 table with nibble's plain style (no colours, so output stays the same in a pipe). */
export function table(head: string[], rows: (string | number)[][], align?: ('left' | 'right')[]): string {
  const t = new Table({ head, style: { head: [], border: [], compact: true }, colAligns: align });
  for (const r of rows) t.push(r.map(String));
  return t.toString();
}

/** Bytes as MiB with two decimals, or KiB for small sizes. */
export function size(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(2)} MiB`;
  return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
}
