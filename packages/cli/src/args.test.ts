// The shared command line: strict parsing, suggestions, numeric ranges, generated help, for every command's spec.
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { helpText, nearest, parseCommand, UsageError } from './args.js';
import { perplexitySpec, runSpec, specs } from './specs.js';

const usage = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('no UsageError');
};

describe('parseCommand', () => {
  it('reads flags, short aliases, defaults, repeated strings and positionals', () => {
    const p = parseCommand(runSpec, ['m.gguf', '-n', '5', '--temperature', '0', '--stop', 'a', '--stop=b', '-p', 'Hi']);
    expect(p.positionals).toEqual(['m.gguf']);
    expect(p.values['max-tokens']).toBe(5);
    expect(p.values.temperature).toBe(0);
    expect(p.values.stop).toEqual(['a', 'b']);
    expect(p.values.prompt).toBe('Hi');
    expect(p.values['top-k']).toBe(40); // default
    expect(p.values.seed).toBeUndefined();
    expect(p.values.json).toBe(false);
  });

  it('refuses an unknown flag and suggests the nearest valid one', () => {
    expect(usage(() => parseCommand(runSpec, ['m', '--max-token', '5']))).toMatch(
      /^unknown flag --max-token; did you mean --max-tokens\?/,
    );
    expect(usage(() => parseCommand(runSpec, ['m', '--temp', '0']))).toMatch(/did you mean --temperature\?/);
    expect(usage(() => parseCommand(runSpec, ['m', '--frobnicate']))).toMatch(/^unknown flag --frobnicate \(/);
    expect(usage(() => parseCommand(runSpec, ['m', '-z']))).toMatch(/^unknown flag -z/);
  });

  it('checks numbers: integer, range, finite, with the flag and the value in the message', () => {
    const threads = `--threads must be an integer in 1..${availableParallelism()}`;
    for (const v of ['0', '-1', '999', '1.5', 'abc', '', '1e3', 'Infinity']) {
      expect(
        usage(() => parseCommand(runSpec, ['m', '--threads', v])),
        v,
      ).toBe(`${threads}, got '${v}'`);
    }
    for (const v of ['0', '-1', 'abc', '2.5']) {
      expect(
        usage(() => parseCommand(perplexitySpec, ['m', 't', '--stride', v])),
        v,
      ).toBe(`--stride must be an integer >= 1, got '${v}'`);
    }
    expect(usage(() => parseCommand(runSpec, ['m', '--ctx', '1']))).toBe("--ctx must be an integer >= 2, got '1'");
    expect(usage(() => parseCommand(runSpec, ['m', '--top-p', '0']))).toBe(
      "--top-p must be a number > 0 and <= 1, got '0'",
    );
    expect(usage(() => parseCommand(runSpec, ['m', '--temperature', 'NaN']))).toMatch(/--temperature must be a number/);
    // min-p 1 would drop every token but the best, which the sampler refuses: an exclusive maximum.
    expect(usage(() => parseCommand(runSpec, ['m', '--min-p', '1']))).toBe(
      "--min-p must be a number >= 0 and < 1, got '1'",
    );
    expect(parseCommand(runSpec, ['m', '--min-p', '0.99']).values['min-p']).toBe(0.99);
    expect(helpText(runSpec)).toContain('(>= 0 and < 1, default 0.05)');
    expect(parseCommand(runSpec, ['m', '--threads', '1']).values.threads).toBe(1);
    expect(parseCommand(runSpec, ['m', '--temperature', '0.25']).values.temperature).toBe(0.25);
  });

  it('checks choices, values of boolean flags, missing values and positionals', () => {
    expect(usage(() => parseCommand(runSpec, ['m', '--kv-type', 'q4_0']))).toBe(
      "--kv-type must be one of f32, f16, q8_0, got 'q4_0'",
    );
    expect(usage(() => parseCommand(runSpec, ['m', '--json=yes']))).toBe('--json takes no value');
    expect(usage(() => parseCommand(runSpec, ['m', '--prompt']))).toMatch(/^--prompt needs a value/);
    expect(usage(() => parseCommand(runSpec, []))).toMatch(/^expected MODEL, got 0 argument/);
    expect(usage(() => parseCommand(runSpec, ['a', 'b']))).toMatch(/^unexpected argument 'b'/);
    // After '--' everything is a positional, even what looks like a flag.
    expect(parseCommand(runSpec, ['--', '--odd-name.gguf']).positionals).toEqual(['--odd-name.gguf']);
  });

  it('gives every command --help and -h, listing each of its flags and the exit codes', () => {
    for (const spec of specs) {
      for (const h of ['--help', '-h']) {
        expect(parseCommand(spec, [h]).help, `${spec.name} ${h}`).toBe(true);
      }
      const text = helpText(spec);
      expect(text.startsWith(`usage: nibble ${spec.name}`)).toBe(true);
      for (const name of Object.keys(spec.flags)) expect(text, `${spec.name} --${name}`).toContain(`--${name}`);
      expect(text).toContain('-h, --help');
      expect(text).toContain('exit status: 0 done, 1 runtime failure, 2 usage error');
    }
  });
});

describe('nearest', () => {
  it('suggests by prefix or small edit distance, and nothing when far', () => {
    expect(nearest('max-token', ['max-tokens', 'min-p'])).toBe('max-tokens');
    expect(nearest('threds', ['threads', 'ctx'])).toBe('threads');
    expect(nearest('kvtype', ['kv-type', 'json'])).toBe('kv-type');
    expect(nearest('zzzzzz', ['threads', 'ctx'])).toBeUndefined();
  });
});
