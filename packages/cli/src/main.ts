/**
 * The `nibble` command. Each subcommand lives in its own file under commands/ and exports `run(args)`, which
 * returns the process exit code.
 */
import { NibbleError } from '@nibble/tensor';
/** A subcommand: a one-line summary for `nibble help`, and a loader for its module. */
export interface Command {
  summary: string;
  load(): Promise<{ run(args: string[]): Promise<number> }>;
}

// Loaded on demand so that `nibble inspect` never pays for the model runner, and the reverse.
const commands: Record<string, Command> = {
  demo: {
    summary: 'quantize the bundled stories260K to every format: size, error, perplexity, a story each',
    load: () => import('./commands/demo.js'),
  },
  formats: {
    summary: 'the format table (ggml id, block, bytes, bits per weight, imatrix)',
    load: () => import('./commands/formats.js'),
  },
  inspect: {
    summary: 'GGUF header, metadata and tensor table of a file or URL',
    load: () => import('./commands/inspect.js'),
  },
  quantize: {
    summary: 'quantize a GGUF model like llama-quantize (every preset, --imatrix, byte-identical)',
    load: () => import('./commands/quantize.js'),
  },
  imatrix: {
    summary: 'an importance matrix from calibration text, like llama-imatrix',
    load: () => import('./commands/imatrix.js'),
  },
  sizes: { summary: 'size of every preset for real llama shapes', load: () => import('./commands/sizes.js') },
  tokenize: {
    summary: 'token ids of a text, or of a llama.cpp .inp test file',
    load: () => import('./commands/tokenize.js'),
  },
  run: { summary: 'generate text from a prompt, streaming', load: () => import('./commands/run.js') },
  perplexity: { summary: 'perplexity of a model on a text file', load: () => import('./commands/perplexity.js') },
  bench: { summary: 'run the benchmarks beside their peers', load: () => import('./commands/bench.js') },
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
    return await (await command.load()).run(args);
  } catch (err) {
    // Expected failures (bad file, bad option) print their message only; anything else is a bug and keeps its stack.
    // TokenizerError carries a `code` too but is not a NibbleError: @nibble/tokenizer depends on no other package.
    const coded = err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
    if (err instanceof NibbleError || coded || (err instanceof Error && err.name === 'UsageError')) {
      console.error(`nibble ${name}: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
