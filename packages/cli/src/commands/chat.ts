/**
 * `nibble chat MODEL`: an interactive chat in the terminal (readline; replies stream as they are generated;
 * `/reset`, `/exit`; Ctrl-C stops the current reply, not the program), or one turn for scripts with `--json`.
 * The model keeps the conversation's KV cache between turns, so each turn evaluates only what is new.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { ChatMessage, ChatOptions, Model } from '@nibble/runner';
import { loadModel } from '@nibble/runner/node';
import { readConversation } from './chat-template.js';

const usage = `usage: nibble chat MODEL [--system S] [--prompt P | --messages CONVERSATION.json] [--json]
                  [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S]
                  [--ctx N] [--context-full error|drop-oldest] [--backend B] [--threads K] [--ignore-eos]

Without --prompt or --messages: an interactive chat. Type a message and press Enter; the reply streams. /reset
starts over (keeping --system), /exit or Ctrl-D quits, Ctrl-C stops the current reply. When the conversation
outgrows the context its oldest turns are dropped (--context-full error refuses instead).

With --prompt P (one user message after --system) or --messages (a JSON array of { "role", "content" }): one reply.
--json prints { text, ids, promptTokens, cachedTokens, generatedTokens, finishReason } instead of the text.

The prompt is the model's own chat template (tokenizer.chat_template). Defaults: --max-tokens 512,
--temperature 0.8, --top-k 40, --top-p 0.95, --min-p 0.05, --ctx the file's context (at most 2048), --backend js.
Exit codes: 0 done, 1 failure (file, model, template), 2 usage.`;

const options = {
  system: { type: 'string' },
  prompt: { type: 'string' },
  messages: { type: 'string' },
  json: { type: 'boolean' },
  'max-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'min-p': { type: 'string' },
  seed: { type: 'string' },
  ctx: { type: 'string' },
  'context-full': { type: 'string' },
  backend: { type: 'string' },
  threads: { type: 'string' },
  'ignore-eos': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

class Usage extends Error {}

/** A numeric flag checked against its range; integers where `integer`. */
function num(v: string | undefined, flag: string, dflt: number, min: number, max: number, integer: boolean): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw new Usage(`--${flag} must be ${integer ? 'an integer' : 'a number'} in ${min}..${max}, got '${v}'`);
  }
  return n;
}

/** Loads the backend packages a --backend value names, so that they register. */
async function registerBackends(names: string[]): Promise<void> {
  for (const n of names) {
    try {
      await import(n === 'auto' ? '@nibble/backend-js' : `@nibble/backend-${n}`);
    } catch (e) {
      throw new Usage(`backend '${n}' is not available (${(e as Error).message.split('\n')[0]})`);
    }
  }
}

export async function run(args: string[]): Promise<number> {
  let values: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true; strict: true }>>['values'];
  let positionals: string[];
  let model: Model;
  let chatOptions: ChatOptions;
  let oneShot: ChatMessage[] | undefined;
  try {
    ({ values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true }));
    if (values.help) {
      console.log(usage);
      return 0;
    }
    if (positionals.length !== 1) throw new Usage('give one MODEL');
    if (values.prompt !== undefined && values.messages !== undefined) throw new Usage('give --prompt or --messages');
    if (values.json && values.prompt === undefined && values.messages === undefined) {
      throw new Usage('--json answers one turn: give --prompt P or --messages CONVERSATION.json');
    }
    const contextFull = values['context-full'] ?? 'drop-oldest';
    if (contextFull !== 'error' && contextFull !== 'drop-oldest') {
      throw new Usage(`--context-full must be error or drop-oldest, got '${contextFull}'`);
    }
    chatOptions = {
      maxTokens: num(values['max-tokens'], 'max-tokens', 512, 1, 1 << 20, true),
      temperature: num(values.temperature, 'temperature', 0.8, 0, 100, false),
      topK: num(values['top-k'], 'top-k', 40, 0, 1 << 30, true),
      topP: num(values['top-p'], 'top-p', 0.95, 0, 1, false),
      minP: num(values['min-p'], 'min-p', 0.05, 0, 1, false),
      seed: values.seed === undefined ? undefined : num(values.seed, 'seed', 0, 0, Number.MAX_SAFE_INTEGER, true),
      ignoreEos: values['ignore-eos'] ?? false,
      contextFull,
    };
    const threads = num(values.threads, 'threads', 1, 1, 256, true);
    const ctx = values.ctx === undefined ? undefined : num(values.ctx, 'ctx', 0, 2, 1 << 20, true);
    const backend = values.backend ?? 'js';
    await registerBackends(backend.split(','));
    const system: ChatMessage[] = values.system === undefined ? [] : [{ role: 'system', content: values.system }];
    if (values.messages !== undefined) oneShot = await readConversation(values.messages);
    else if (values.prompt !== undefined) oneShot = [...system, { role: 'user', content: values.prompt }];
    model = await loadModel(positionals[0], {
      backend: backend === 'auto' ? 'auto' : backend.split(','),
      threads,
      contextSize: ctx,
    });
    if (oneShot === undefined) {
      try {
        return await interactive(model, system, chatOptions);
      } finally {
        await model.dispose();
      }
    }
  } catch (e) {
    if (!(e instanceof Usage) && !isParseError(e)) throw e;
    console.error(`nibble chat: ${(e as Error).message}\n\n${usage}`);
    return 2;
  }

  try {
    const gen = model.chat(oneShot, chatOptions);
    const ids: number[] = [];
    let text = '';
    for await (const t of gen) {
      ids.push(t.id);
      text += t.text;
      if (!values.json) process.stdout.write(t.text);
    }
    const s = gen.stats;
    if (values.json) {
      console.log(
        JSON.stringify({
          text,
          ids,
          promptTokens: s.promptTokens,
          cachedTokens: s.cachedTokens,
          generatedTokens: s.generatedTokens,
          finishReason: s.finishReason,
        }),
      );
    } else process.stdout.write('\n');
    return 0;
  } finally {
    await model.dispose();
  }
}

function isParseError(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

/** The interactive loop: one line in, one streamed reply out, until /exit or end of input. */
async function interactive(model: Model, system: ChatMessage[], options: ChatOptions): Promise<number> {
  const input = process.stdin;
  const out = process.stdout;
  const rl = createInterface({ input, output: out, terminal: input.isTTY === true, prompt: '> ' });
  let messages: ChatMessage[] = [...system];
  let current: AbortController | undefined;
  const interrupt = () => {
    if (current) current.abort(new Error('stopped'));
    else {
      out.write('\n(/exit or Ctrl-D quits)\n');
      rl.prompt();
    }
  };
  // On a terminal readline turns Ctrl-C into its own event; from a pipe it arrives as the process signal.
  rl.on('SIGINT', interrupt);
  if (!input.isTTY) process.on('SIGINT', interrupt);
  out.write(
    `chat with ${model.hparams.architecture} (${model.contextSize} context). /reset, /exit; Ctrl-C stops a reply.\n`,
  );
  rl.prompt();
  try {
    for await (const line of rl) {
      const text = line.trim();
      if (text === '/exit') break;
      if (text === '/reset') {
        messages = [...system];
        out.write('(conversation reset)\n');
      } else if (text !== '') {
        messages.push({ role: 'user', content: line });
        current = new AbortController();
        let reply = '';
        try {
          for await (const t of model.chat(messages, { ...options, signal: current.signal })) {
            reply += t.text;
            out.write(t.text);
            // A backend that computes on this thread resolves every token without visiting the event loop: let it
            // read the keyboard (Ctrl-C) between tokens.
            await new Promise((resolve) => setImmediate(resolve));
          }
          out.write('\n');
        } catch (e) {
          if (!current.signal.aborted) throw e;
          out.write('\n(stopped)\n');
        } finally {
          current = undefined;
        }
        // What was shown is the assistant's turn, stopped or not.
        messages.push({ role: 'assistant', content: reply });
      }
      rl.prompt();
    }
  } finally {
    rl.close();
    process.off('SIGINT', interrupt);
  }
  return 0;
}
