/**
 * The command-line conventions every subcommand shares: strict parsing with `node:util` `parseArgs` (an unknown flag
 * is an error that suggests the nearest valid one), typed and range-checked numeric flags, `--help`/`-h` generated
 * from the same table, and the exit codes (0 done, 1 runtime failure, 2 usage error).
 */
import { parseArgs } from 'node:util';

/** Exit status of a usage error (bad flag, value or argument), as `nibble help` documents. */
export const EXIT_USAGE = 2;
/** Exit status of a runtime failure (bad file, broken model, I/O). */
export const EXIT_FAILURE = 1;

/** A mistake in the command line. Printed without a stack trace; the process exits with {@link EXIT_USAGE}. */
export class UsageError extends Error {
  override name = 'UsageError';
  readonly code = 'E_USAGE';
}

/** One flag of a command. */
export interface FlagSpec {
  /** `integer` and `number` are parsed and range-checked; `boolean` takes no value. */
  readonly type: 'string' | 'boolean' | 'integer' | 'number';
  /** A one-letter alias, e.g. `n` for `-n`. */
  readonly short?: string;
  /** Used when the flag is absent (shown in `--help`). */
  readonly default?: string | number;
  /** Smallest accepted value (numbers). */
  readonly min?: number;
  /** Whether `min` itself is refused (e.g. top-p > 0). */
  readonly minExclusive?: boolean;
  /** Largest accepted value (numbers). */
  readonly max?: number;
  /** Whether `max` itself is refused (e.g. min-p < 1). */
  readonly maxExclusive?: boolean;
  /** The accepted strings. */
  readonly choices?: readonly string[];
  /** The flag may be given several times (strings only); the value is then an array. */
  readonly multiple?: boolean;
  /** Placeholder in the help, e.g. `N`. */
  readonly value?: string;
  /** One line for `--help`. */
  readonly help: string;
}

/** A subcommand's command line: positionals, flags and the text of its `--help`. */
export interface CommandSpec<F extends Record<string, FlagSpec> = Record<string, FlagSpec>> {
  readonly name: string;
  /** The positionals as shown in the usage line, e.g. `MODEL TEXTFILE`. */
  readonly args?: string;
  /** How many positionals are accepted. Default 0..0. */
  readonly positionals?: { readonly min: number; readonly max: number };
  readonly summary: string;
  /** Paragraphs after the usage line. */
  readonly description?: string;
  readonly flags: F;
}

type ValueOf<S extends FlagSpec> = S['type'] extends 'boolean'
  ? boolean
  : S['type'] extends 'string'
    ? S['multiple'] extends true
      ? string[]
      : string
    : number;

/** The parsed flags: booleans are always set, others when given or defaulted. */
export type FlagValues<F extends Record<string, FlagSpec>> = {
  -readonly [K in keyof F]: F[K]['type'] extends 'boolean'
    ? boolean
    : F[K] extends { default: string | number }
      ? ValueOf<F[K]>
      : ValueOf<F[K]> | undefined;
};

/** The result of {@link parseCommand}; `help` is true when `--help`/`-h` was given (nothing else is checked then). */
export interface Parsed<F extends Record<string, FlagSpec>> {
  readonly values: FlagValues<F>;
  readonly positionals: string[];
  readonly help: boolean;
}

const HELP: FlagSpec = { type: 'boolean', short: 'h', help: 'show this help' };

/** Edit distance, for "did you mean": small strings only. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length];
}

/**
 * The closest of `candidates` to `word`, or undefined when none is close (a prefix, or within a third of the
 * length in edits).
 *
 * @example
 * ```ts
 * nearest('max-token', ['max-tokens', 'temperature']); // 'max-tokens'
 * ```
 */
export function nearest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = c.startsWith(word) || word.startsWith(c) ? Math.min(1, distance(word, c)) : distance(word, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function flagName(spec: CommandSpec, arg: string): string | undefined {
  const m = /^-{1,2}([^=]+)/.exec(arg);
  if (!m) return undefined;
  if (arg.startsWith('--')) return m[1];
  for (const [name, f] of Object.entries(spec.flags)) if (f.short === m[1]) return name;
  return m[1] === 'h' ? 'help' : m[1];
}

function rangeText(f: FlagSpec): string {
  const lo = f.min === undefined ? undefined : `${f.minExclusive ? '>' : '>='} ${f.min}`;
  if (f.min !== undefined && f.max !== undefined && !f.minExclusive && !f.maxExclusive) return `in ${f.min}..${f.max}`;
  const hi = f.max === undefined ? undefined : `${f.maxExclusive ? '<' : '<='} ${f.max}`;
  return [lo, hi].filter(Boolean).join(' and ');
}

/**
 * Checks a numeric flag's text and returns its value, or throws a {@link UsageError} that names the flag, the range
 * and what was given.
 *
 * @example
 * ```ts
 * parseNumber('threads', { type: 'integer', min: 1, max: 8, help: '' }, '1.5'); // throws: --threads must be an integer in 1..8, got '1.5'
 * ```
 */
export function parseNumber(name: string, f: FlagSpec, text: string): number {
  const kind = f.type === 'integer' ? 'an integer' : 'a number';
  const range = rangeText(f);
  const fail = () => new UsageError(`--${name} must be ${kind}${range ? ` ${range}` : ''}, got '${text}'`);
  const t = text.trim();
  if (t === '' || (f.type === 'integer' && !/^[-+]?\d+$/.test(t))) throw fail();
  const v = Number(t);
  if (!Number.isFinite(v) || (f.type === 'integer' && !Number.isSafeInteger(v))) throw fail();
  if (f.min !== undefined && (v < f.min || (f.minExclusive && v === f.min))) throw fail();
  if (f.max !== undefined && (v > f.max || (f.maxExclusive && v === f.max))) throw fail();
  return v;
}

/**
 * Parses a subcommand's arguments strictly: unknown flags, missing values, values given to boolean flags, bad
 * numbers, unknown choices and a wrong number of positionals are {@link UsageError}s naming the flag.
 *
 * @example
 * ```ts
 * const spec = { name: 'run', summary: '', positionals: { min: 1, max: 1 }, flags: {
 *   'max-tokens': { type: 'integer', short: 'n', min: 0, default: 256, help: 'tokens to sample' } } } as const;
 * parseCommand(spec, ['m.gguf', '--max-token', '5']); // throws: unknown flag --max-token; did you mean --max-tokens?
 * ```
 */
export function parseCommand<F extends Record<string, FlagSpec>>(spec: CommandSpec<F>, argv: string[]): Parsed<F> {
  const flags: Record<string, FlagSpec> = { ...spec.flags, help: HELP };
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, f] of Object.entries(flags)) {
    options[name] = {
      type: f.type === 'boolean' ? 'boolean' : 'string',
      ...(f.short ? { short: f.short } : {}),
      ...(f.multiple ? { multiple: true } : {}),
    };
  }
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: joinNegatives(flags, argv), options, strict: true, allowPositionals: true });
  } catch (e) {
    throw usageFromParseArgs(spec, flags, argv, e);
  }
  if (parsed.values.help === true) return { values: {} as FlagValues<F>, positionals: parsed.positionals, help: true };

  const values: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(spec.flags)) {
    const raw = parsed.values[name];
    if (f.type === 'boolean') {
      values[name] = raw === true;
      continue;
    }
    if (raw === undefined) {
      values[name] = f.default;
      continue;
    }
    const one = (text: string): string | number => {
      if (f.type === 'integer' || f.type === 'number') return parseNumber(name, f, text);
      if (f.choices && !f.choices.includes(text)) {
        throw new UsageError(`--${name} must be one of ${f.choices.join(', ')}, got '${text}'`);
      }
      return text;
    };
    values[name] = Array.isArray(raw) ? raw.map((r) => one(String(r))) : one(String(raw));
  }
  const { min, max } = spec.positionals ?? { min: 0, max: 0 };
  const n = parsed.positionals.length;
  if (n < min || n > max) {
    const what =
      n > max ? `unexpected argument '${parsed.positionals[max]}'` : `expected ${spec.args}, got ${n} argument(s)`;
    throw new UsageError(`${what} (${usageLine(spec)})`);
  }
  return { values: values as FlagValues<F>, positionals: parsed.positionals, help: false };
}

/**
 * `--stride -1` as `--stride=-1`: parseArgs takes a value that starts with '-' for a flag, so a negative number
 * would read as a missing value instead of an out-of-range one.
 */
function joinNegatives(flags: Record<string, FlagSpec>, argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const name = a.startsWith('--') ? a.slice(2) : a.length === 2 && a[0] === '-' ? shortName(flags, a[1]) : undefined;
    const f = name === undefined || !Object.hasOwn(flags, name) ? undefined : flags[name];
    const next = argv[i + 1];
    if ((f?.type === 'integer' || f?.type === 'number') && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

function shortName(flags: Record<string, FlagSpec>, letter: string): string | undefined {
  for (const [name, f] of Object.entries(flags)) if (f.short === letter) return name;
  return undefined;
}

function usageFromParseArgs(spec: CommandSpec, flags: Record<string, FlagSpec>, argv: string[], e: unknown): Error {
  const code = (e as { code?: string }).code;
  const message = e instanceof Error ? e.message : String(e);
  // Node names the flag as '--name' or '-x, --name <value>'.
  const quoted = /'(?:-\w, )?(--?[^' ,]+)/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const arg = quoted ?? argv.find((a) => a.startsWith('-')) ?? '';
    const name = flagName(spec, arg) ?? arg;
    const guess = nearest(name, Object.keys(flags));
    const dashes = arg.startsWith('--') || name.length > 1 ? '--' : '-';
    return new UsageError(
      `unknown flag ${dashes}${name}${guess ? `; did you mean --${guess}?` : ''} ('nibble ${spec.name} --help' lists the flags)`,
    );
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const name = quoted ? flagName(spec, quoted) : undefined;
    const f = name ? flags[name] : undefined;
    if (f?.type === 'boolean') return new UsageError(`--${name} takes no value`);
    if (name && /ambiguous/i.test(message)) {
      return new UsageError(`--${name} needs a value; to pass one that starts with '-', write --${name}=VALUE`);
    }
    return new UsageError(`--${name ?? '?'} needs a value${f?.value ? ` (${f.value})` : ''}`);
  }
  return new UsageError(message);
}

function usageLine(spec: CommandSpec): string {
  return `usage: nibble ${spec.name}${spec.args ? ` ${spec.args}` : ''} [flags]`;
}

/**
 * The `--help` text of a command, made from its spec: usage, description, flags with their defaults and ranges, and
 * the exit codes.
 *
 * @example
 * ```ts
 * console.log(helpText(spec));
 * ```
 */
export function helpText(spec: CommandSpec): string {
  const rows = Object.entries({ ...spec.flags, help: HELP }).map(([name, f]) => {
    const head = `${f.short ? `-${f.short}, ` : '    '}--${name}${f.type === 'boolean' ? '' : ` ${f.value ?? (f.type === 'string' ? 'S' : 'N')}`}`;
    const notes: string[] = [];
    if (f.choices) notes.push(f.choices.join('|'));
    const range = f.type === 'integer' || f.type === 'number' ? rangeText(f) : '';
    if (range) notes.push(range);
    if (f.default !== undefined && f.default !== '') notes.push(`default ${f.default}`);
    if (f.multiple) notes.push('repeatable');
    return [head, `${f.help}${notes.length ? ` (${notes.join(', ')})` : ''}`];
  });
  const width = Math.max(...rows.map((r) => r[0].length));
  return [
    `${usageLine(spec)}\n`,
    spec.summary.charAt(0).toUpperCase() + spec.summary.slice(1) + (spec.summary.endsWith('.') ? '' : '.'),
    ...(spec.description ? [`\n${spec.description}`] : []),
    '\nflags:',
    ...rows.map(([h, t]) => `  ${h.padEnd(width)}  ${t}`),
    `\nexit status: 0 done, ${EXIT_FAILURE} runtime failure, ${EXIT_USAGE} usage error`,
  ].join('\n');
}

/**
 * {@link parseCommand}, printing the help and returning undefined when `--help`/`-h` was given.
 *
 * @example
 * ```ts
 * const p = parseOrHelp(spec, args);
 * if (!p) return 0;
 * ```
 */
export function parseOrHelp<F extends Record<string, FlagSpec>>(
  spec: CommandSpec<F>,
  argv: string[],
): Parsed<F> | undefined {
  const p = parseCommand(spec, argv);
  if (!p.help) return p;
  console.log(helpText(spec));
  return undefined;
}
