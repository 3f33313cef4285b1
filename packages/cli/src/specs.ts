/**
 * Every subcommand's command line in one place: positionals, flags with types and ranges, and help text. `nibble
 * help` lists them without loading any command's code.
 */
import { availableParallelism } from 'node:os';
import type { CommandSpec, FlagSpec } from './args.js';

const json = { type: 'boolean', help: 'print one JSON document instead of text (no progress bar)' } as const;

/** Flags that load a model for `run`, `chat` and `perplexity`. */
const modelFlags = {
  backend: {
    type: 'string',
    value: 'B',
    default: 'auto',
    help: "backend name(s), comma-separated (the first that starts), or 'auto' (wasm, then js)",
  },
  threads: {
    type: 'integer',
    value: 'K',
    min: 1,
    max: availableParallelism(),
    default: availableParallelism(),
    help: "worker threads for backends that have them (default: this machine's cores; the js backend runs on one)",
  },
  ctx: {
    type: 'integer',
    value: 'N',
    min: 2,
    help: "context size in tokens, at most the model's trained context (default: that, capped at 2048)",
  },
  'kv-type': { type: 'string', choices: ['f32', 'f16', 'q8_0'], default: 'f32', help: 'KV cache element type' },
  activations: {
    type: 'string',
    choices: ['f32', 'ggml'],
    help: "matmul activations: f32, or quantized like llama.cpp's CPU backend (ggml)",
  },
} as const satisfies Record<string, FlagSpec>;

/** Sampling flags shared by `run` and `chat`. */
const samplingFlags = {
  'max-tokens': { type: 'integer', short: 'n', value: 'N', min: 0, default: 256, help: 'most tokens to sample' },
  temperature: { type: 'number', value: 'T', min: 0, default: 0.8, help: '0 is greedy' },
  'top-k': { type: 'integer', value: 'K', min: 0, default: 40, help: 'keep the K likeliest tokens (0: all)' },
  'top-p': { type: 'number', value: 'P', min: 0, minExclusive: true, max: 1, default: 0.95, help: 'nucleus mass' },
  'min-p': {
    type: 'number',
    value: 'P',
    min: 0,
    max: 1,
    maxExclusive: true,
    default: 0.05,
    help: 'drop tokens below P x the best',
  },
  'repeat-penalty': {
    type: 'number',
    value: 'R',
    min: 0,
    minExclusive: true,
    default: 1,
    help: 'penalty for recent tokens (1: none)',
  },
  seed: { type: 'integer', value: 'S', min: 0, help: 'sampling seed (default: random)' },
  stop: { type: 'string', value: 'STR', multiple: true, help: 'stop before this text' },
} as const satisfies Record<string, FlagSpec>;

export const runSpec = {
  name: 'run',
  args: 'MODEL',
  positionals: { min: 1, max: 1 },
  summary: 'generate text from a prompt, streaming',
  description:
    'Streams the continuation of the prompt (BOS + prompt; an empty prompt starts from BOS) and ends with a summary\n' +
    'line. With --json prints one JSON object instead:\n' +
    '  { text, ids, promptTokens, generatedTokens, promptTokPerSec, decodeTokPerSec, backend, threads, finishReason }',
  flags: {
    prompt: { type: 'string', short: 'p', value: 'P', default: '', help: 'the prompt' },
    ...samplingFlags,
    ...modelFlags,
    json,
  },
} as const satisfies CommandSpec;

export const perplexitySpec = {
  name: 'perplexity',
  args: 'MODEL TEXTFILE',
  positionals: { min: 2, max: 2 },
  summary: 'perplexity of a model on a text file',
  description:
    'Each document (split at --separator, trimmed) is scored as BOS + its tokens; documents longer than --ctx are\n' +
    'scored in windows that move by --stride. With --json prints\n' +
    '  { perplexity, predictions, totalLogProb, documents, tokPerSec, backend, threads }',
  flags: {
    ...modelFlags,
    stride: {
      type: 'integer',
      value: 'N',
      min: 1,
      help: 'tokens between window starts, at most --ctx (default ctx/2)',
    },
    separator: { type: 'string', value: 'S', default: '<|endoftext|>', help: 'document separator' },
    'kl-base': {
      type: 'string',
      value: 'BASE.gguf',
      help: "also run BASE on the same windows and report the KL divergence from it, like llama.cpp's --kl-divergence",
    },
    json,
  },
} as const satisfies CommandSpec;

export const demoSpec = {
  name: 'demo',
  summary: 'quantize the bundled stories260K to every format: size, error, perplexity, a story each',
  description:
    'Quantizes every weight tensor of an F32 llama model (default: stories260K, shipped with this package) to each\n' +
    'format and prints size and error against the F32 weights; then, for each format, quantizes the model like\n' +
    'llama-quantize, scores the text (default: a TinyStories sample, shipped too) and generates a short greedy story.',
  flags: {
    model: { type: 'string', value: 'FILE.gguf', help: 'an F32 llama model (default: the bundled stories260K)' },
    text: { type: 'string', value: 'FILE.txt', help: 'text to score (default: the bundled TinyStories sample)' },
    'table-only': { type: 'boolean', help: 'only the size and error table' },
    json,
  },
} as const satisfies CommandSpec;

export const formatsSpec = {
  name: 'formats',
  summary: 'the format table (ggml id, block, bytes, bits per weight, imatrix, codec)',
  flags: { json },
} as const satisfies CommandSpec;

export const inspectSpec = {
  name: 'inspect',
  args: 'FILE|URL',
  positionals: { min: 1, max: 1 },
  summary: 'GGUF header, metadata and tensor table of a file or URL',
  description: 'Only the header is read, so a URL costs a range request or two.',
  flags: { full: { type: 'boolean', help: 'show long arrays whole' }, json },
} as const satisfies CommandSpec;

export const quantizeSpec = {
  name: 'quantize',
  args: 'IN.gguf OUT.gguf PRESET',
  positionals: { min: 2, max: 3 },
  summary: 'quantize a GGUF model like llama-quantize (every preset, --imatrix, byte-identical)',
  description:
    "Writes OUT as llama-quantize would, byte for byte: llama.cpp's per-tensor rules for the preset (attn_v,\n" +
    'ffn_down, output and embeddings by layer and GQA factor), its fallbacks for rows that do not fit a block, its\n' +
    'tensor order and metadata. Give a PRESET (Q4_0, Q4_K_M, IQ4_NL, ...; `nibble sizes` lists them) or --type.\n' +
    'OUT is written to a temporary file and renamed; an existing OUT is kept unless --force. With --dry-run,\n' +
    'OUT may be left out: `nibble quantize IN.gguf PRESET --dry-run`. A progress bar on a terminal, one line per\n' +
    'tensor on stderr otherwise, nothing with --json; at the end, a table of sizes per stored type.',
  flags: {
    type: {
      type: 'string',
      short: 't',
      value: 'TYPE',
      help: 'a type instead of a preset: the preset of that name, else TYPE everywhere (q4_K, mxfp4)',
    },
    imatrix: {
      type: 'string',
      value: 'FILE',
      help: "importance matrix (llama-imatrix's GGUF or .dat; see nibble imatrix)",
    },
    pure: { type: 'boolean', help: "no mix: every quantized tensor gets the preset's default type" },
    'output-tensor-type': { type: 'string', value: 'TYPE', help: 'type of output.weight' },
    'token-embedding-type': { type: 'string', value: 'TYPE', help: 'type of token_embd.weight' },
    'tensor-type': {
      type: 'string',
      value: 'PATTERN=TYPE',
      multiple: true,
      help: 'type of tensors whose name matches the regex PATTERN (first match wins)',
    },
    'leave-output-tensor': { type: 'boolean', help: 'keep output.weight as it is' },
    'allow-requantize': { type: 'boolean', help: 'quantize tensors that are already quantized' },
    threads: { type: 'integer', value: 'N', min: 1, max: 256, default: 1, help: 'worker threads' },
    'dry-run': { type: 'boolean', help: 'print the sizes, write nothing' },
    force: { type: 'boolean', help: 'replace an existing OUT' },
    json,
  },
} as const satisfies CommandSpec;

export const imatrixSpec = {
  name: 'imatrix',
  args: 'MODEL TEXTFILE',
  positionals: { min: 2, max: 2 },
  summary: 'an importance matrix from calibration text, like llama-imatrix',
  description:
    'Runs MODEL over TEXTFILE as llama-imatrix does (chunks of --ctx tokens, each from an empty cache starting with\n' +
    'BOS; all chunks unless --chunks) and writes the mean squared input of every column of every layer weight, in\n' +
    "llama-imatrix's GGUF layout, for 'nibble quantize --imatrix'. The text needs at least two chunks.",
  flags: {
    output: { type: 'string', short: 'o', value: 'OUT.gguf', help: 'where to write the imatrix (required)' },
    ctx: { type: 'integer', value: 'N', min: 2, default: 512, help: 'tokens per chunk' },
    chunks: { type: 'integer', value: 'N', min: 1, help: 'chunks to evaluate (default: all)' },
    'process-output': { type: 'boolean', help: 'also collect output.weight' },
    backend: modelFlags.backend,
    threads: modelFlags.threads,
    json,
  },
} as const satisfies CommandSpec;

export const sizesSpec = {
  name: 'sizes',
  summary: 'size of every quantization preset for real llama shapes',
  description:
    'Prints the tensor data size of each llama-quantize preset for LLaMA 7B/13B/30B/65B, Llama-2 70B and Llama-3\n' +
    "1B/3B/8B shapes, from the format table and llama.cpp's per-tensor rules (no weights needed), beside the figures\n" +
    'llama.cpp published, and why they differ.',
  flags: {
    model: { type: 'string', value: 'NAME', multiple: true, help: 'one shape (llama-7b, llama-3.1-8b, ...)' },
    preset: { type: 'string', value: 'P', multiple: true, help: 'one preset' },
    json,
  },
} as const satisfies CommandSpec;

export const tokenizeSpec = {
  name: 'tokenize',
  args: 'FILE',
  positionals: { min: 1, max: 1 },
  summary: 'token ids of a text, or of a llama.cpp .inp test file',
  description:
    "FILE is a GGUF file, a llama2.c tokenizer.bin or a Hugging Face tokenizer.json. --inp reads llama.cpp's test\n" +
    'cases (separated by "\\n__ggml_vocab_test__\\n", no BOS, no special parsing) and prints one line per case in\n' +
    'the .out format (every id preceded by a space). Give exactly one of --text and --inp.',
  flags: {
    text: { type: 'string', value: 'T', help: 'the text to tokenize' },
    inp: { type: 'string', value: 'F.inp', help: 'a llama.cpp .inp file' },
    'add-special': { type: 'boolean', help: 'add BOS/EOS as the vocabulary asks' },
    'parse-special': { type: 'boolean', help: 'recognize control tokens written in the text' },
    json,
  },
} as const satisfies CommandSpec;

export const benchSpec = {
  name: 'bench',
  summary: 'quantize/dequantize throughput of every format on this machine',
  description:
    'GB/s of f32, one thread, median of --runs runs. The side-by-side benchmarks against peers are in the\n' +
    "repository's benchmarks/ (pnpm bench).",
  flags: {
    values: {
      type: 'integer',
      value: 'N',
      min: 4096,
      max: 1 << 28,
      default: 1 << 22,
      help: 'f32 values per run (rounded down to a multiple of 4096)',
    },
    runs: { type: 'integer', value: 'R', min: 1, max: 1000, default: 5, help: 'runs per format' },
    json,
  },
} as const satisfies CommandSpec;

export const chatSpec = {
  name: 'chat',
  args: 'MODEL',
  positionals: { min: 1, max: 1 },
  summary: 'chat with a model in the terminal (or one turn with --json)',
  description:
    'Without --prompt or --messages: an interactive chat. Type a message and press Enter; the reply streams. /reset\n' +
    'starts over (keeping --system), /exit or Ctrl-D quits, Ctrl-C stops the current reply. When the conversation\n' +
    'outgrows the context its oldest turns are dropped (--context-full error refuses instead).\n\n' +
    'With --prompt P (one user message after --system) or --messages (a JSON array of { "role", "content" }): one\n' +
    'reply. --json prints { text, ids, promptTokens, cachedTokens, generatedTokens, finishReason } instead of the\n' +
    "text. The prompt is the model's own chat template (tokenizer.chat_template).",
  flags: {
    system: { type: 'string', value: 'S', help: 'the system message' },
    prompt: { type: 'string', short: 'p', value: 'P', help: 'one user message: answer it and exit' },
    messages: {
      type: 'string',
      value: 'CONVERSATION.json',
      help: 'a conversation to answer (a JSON array of { role, content }) and exit',
    },
    ...samplingFlags,
    'max-tokens': { ...samplingFlags['max-tokens'], default: 512, help: 'most tokens to sample per reply' },
    'ignore-eos': { type: 'boolean', help: 'keep sampling past end-of-turn and end-of-text tokens' },
    'context-full': {
      type: 'string',
      value: 'POLICY',
      choices: ['error', 'drop-oldest'],
      default: 'drop-oldest',
      help: 'when the conversation outgrows the context: refuse, or drop the oldest turns',
    },
    ...modelFlags,
    json,
  },
} as const satisfies CommandSpec;

export const chatTemplateSpec = {
  name: 'chat-template',
  args: 'MODEL.gguf|TEMPLATE.jinja',
  positionals: { min: 1, max: 1 },
  summary: "print a conversation rendered with a model's (or a .jinja) chat template",
  description:
    "Renders a chat template as Hugging Face transformers' apply_chat_template does and prints the prompt exactly, with\n" +
    'no newline added. From a GGUF file the template is tokenizer.chat_template and bos_token/eos_token are the texts\n' +
    "of its BOS/EOS tokens (the flags override them); from a .jinja file they are the flags' values, and left out they\n" +
    "stay undefined (not ''). A template's raise_exception is a runtime failure (exit 1).",
  flags: {
    messages: {
      type: 'string',
      value: 'CONVERSATION.json',
      help: 'the conversation: a JSON array of { role, content } (required)',
    },
    'add-generation-prompt': { type: 'boolean', help: "end with the assistant's turn header" },
    'continue-final-message': { type: 'boolean', help: 'leave the last message open, to be continued (a prefill)' },
    'bos-token': {
      type: 'string',
      value: 'T',
      help: "bos_token's text (default: the GGUF's BOS token; none for .jinja)",
    },
    'eos-token': {
      type: 'string',
      value: 'T',
      help: "eos_token's text (default: the GGUF's EOS token; none for .jinja)",
    },
  },
} as const satisfies CommandSpec;

/** Every subcommand's spec, in `nibble help` order. */
export const specs: readonly CommandSpec[] = [
  demoSpec,
  formatsSpec,
  inspectSpec,
  quantizeSpec,
  imatrixSpec,
  sizesSpec,
  tokenizeSpec,
  runSpec,
  chatSpec,
  chatTemplateSpec,
  perplexitySpec,
  benchSpec,
];
