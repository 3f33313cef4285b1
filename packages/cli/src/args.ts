/** A tiny argument parser for the subcommands: `--flag`, `--key value`, `--key=value` and positionals. */

/** A mistake in the command line. Printed without a stack trace. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface ParsedArgs {
  positionals: string[];
  flags: Map<string, string | true>;
}

/** Parses `args`; `booleans` lists the flags that take no value. */
export function parseArgs(args: string[], booleans: readonly string[] = []): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const key = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      if (eq >= 0) flags.set(key, a.slice(eq + 1));
      else if (booleans.includes(key)) flags.set(key, true);
      else {
        const v = args[i + 1];
        if (v === undefined) throw new UsageError(`--${key} needs a value`);
        flags.set(key, v);
        i++;
      }
    } else positionals.push(a);
  }
  return { positionals, flags };
}

/** A string option, or the default. */
export function stringFlag(p: ParsedArgs, key: string, dflt?: string): string | undefined {
  const v = p.flags.get(key);
  if (v === true) throw new UsageError(`--${key} needs a value`);
  return v ?? dflt;
}

/** A numeric option, or the default; rejects non-numbers with a UsageError. */
export function numberFlag(p: ParsedArgs, key: string, dflt: number): number {
  const v = stringFlag(p, key);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${key} expects a number, got '${v}'`);
  return n;
}
