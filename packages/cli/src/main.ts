/**
 * The `nibble` command. Each subcommand lives in its own file under commands/ and exports `run(args)`, which
 * returns the process exit code.
 */
import { NibbleError } from '@nibble/tensor';
import * as bench from './commands/bench.js';
import * as demo from './commands/demo.js';
import * as formats from './commands/formats.js';
import * as inspect from './commands/inspect.js';
import * as perplexity from './commands/perplexity.js';
import * as quantize from './commands/quantize.js';
import * as runModel from './commands/run.js';
import * as tokenize from './commands/tokenize.js';

/** A subcommand: a one-line summary for `nibble help`, and its entry point. */
export interface Command {
  summary: string;
  run(args: string[]): Promise<number>;
}

const commands: Record<string, Command> = {
  demo,
  formats,
  inspect,
  quantize,
  tokenize,
  run: runModel,
  perplexity,
  bench,
};

function help(): string {
  const rows = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`);
  return `usage: nibble <command> [options]\n\ncommands:\n${rows.join('\n')}\n\nRun 'nibble <command> --help' for a command's options.`;
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
    console.error(`nibble: unknown command '${name}'\n\n${help()}`);
    return 2;
  }
  try {
    return await command.run(args);
  } catch (err) {
    // Expected failures (bad file, bad option) print their message only; anything else is a bug and keeps its stack.
    if (err instanceof NibbleError || (err instanceof Error && err.name === 'UsageError')) {
      console.error(`nibble ${name}: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
