/**
 * The `nibble` command. Each subcommand lives in its own file under commands/ and exports `run(args)`, which
 * returns the process exit code; its command line is declared in specs.ts.
 */
import { NibbleError } from '@nibble/tensor';
import { EXIT_FAILURE, EXIT_USAGE, nearest, UsageError } from './args.js';
import { specs } from './specs.js';

/** A subcommand: a one-line summary for `nibble help`, and a loader for its module. */
export interface Command {
  summary: string;
  load(): Promise<{ run(args: string[]): Promise<number> }>;
}

// Loaded on demand so that `nibble inspect` never pays for the model runner, and the reverse.
const loaders: Record<string, Command['load']> = {
  demo: () => import('./commands/demo.js'),
  formats: () => import('./commands/formats.js'),
  inspect: () => import('./commands/inspect.js'),
  quantize: () => import('./commands/quantize.js'),
  imatrix: () => import('./commands/imatrix.js'),
  sizes: () => import('./commands/sizes.js'),
  tokenize: () => import('./commands/tokenize.js'),
  run: () => import('./commands/run.js'),
  chat: () => import('./commands/chat.js'),
  'chat-template': () => import('./commands/chat-template.js'),
  perplexity: () => import('./commands/perplexity.js'),
  bench: () => import('./commands/bench.js'),
};

const commands: Record<string, Command> = Object.fromEntries(
  specs.map((s) => [s.name, { summary: s.summary, load: loaders[s.name] }]),
);

function help(): string {
  const rows = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`);
  return [
    'usage: nibble <command> [flags]',
    '',
    'commands:',
    ...rows,
    '',
    "Run 'nibble <command> --help' (or -h) for a command's flags.",
    '',
    'exit status:',
    '  0  done',
    `  ${EXIT_FAILURE}  runtime failure: a bad or unreadable file, a broken model, an I/O error`,
    `  ${EXIT_USAGE}  usage error: an unknown command or flag, a missing or out-of-range value`,
  ].join('\n');
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    console.log(help());
    return 0;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) {
    const guess = nearest(name, Object.keys(commands));
    console.error(
      `nibble: unknown command '${name}'${guess ? `; did you mean '${guess}'?` : ''} ('nibble help' lists them)`,
    );
    return EXIT_USAGE;
  }
  try {
    return await (await command.load()).run(args);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`nibble ${name}: ${err.message}`);
      return EXIT_USAGE;
    }
    // Expected failures (bad file, broken model) print their message only; anything else is a bug and keeps its stack.
    // TokenizerError and Node's system errors (ENOENT) carry a string `code` too but are not NibbleErrors.
    const coded = err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
    if (err instanceof NibbleError || coded) {
      console.error(`nibble ${name}: ${(err as Error).message}`);
      return EXIT_FAILURE;
    }
    throw err;
  }
}
