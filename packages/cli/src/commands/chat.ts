/**
 * `nibble chat MODEL`: an interactive chat in the terminal (readline; replies stream as they are generated;
 * `/reset`, `/exit`; Ctrl-C stops the current reply, not the program), or one turn for scripts with `--json`.
 * The model keeps the conversation's KV cache between turns, so each turn evaluates only what is new.
 */
import { createInterface } from 'node:readline';
import type { ChatMessage, ChatOptions, Model } from '@nibble/runner';
import { parseOrHelp, UsageError } from '../args.js';
import { progressBar } from '../progress.js';
import { chatSpec } from '../specs.js';
import { readConversation } from './chat-template.js';
import { loadFromFlags, samplingFromFlags, streamGeneration } from './run.js';

export async function run(args: string[]): Promise<number> {
  const p = parseOrHelp(chatSpec, args);
  if (!p) return 0;
  const v = p.values;
  const [path] = p.positionals;
  if (v.prompt !== undefined && v.messages !== undefined) throw new UsageError('give --prompt or --messages, not both');
  if (v.json && v.prompt === undefined && v.messages === undefined) {
    throw new UsageError('--json answers one turn: give --prompt P or --messages CONVERSATION.json');
  }
  const options: ChatOptions = {
    ...samplingFromFlags(v),
    ignoreEos: v['ignore-eos'],
    contextFull: v['context-full'] as 'error' | 'drop-oldest',
  };
  const system: ChatMessage[] = v.system === undefined ? [] : [{ role: 'system', content: v.system }];
  let oneShot: ChatMessage[] | undefined;
  if (v.messages !== undefined) oneShot = await readConversation(v.messages);
  else if (v.prompt !== undefined) oneShot = [...system, { role: 'user', content: v.prompt }];

  const model = await loadFromFlags(path, v, progressBar(v.json));
  try {
    if (oneShot === undefined) return await interactive(model, system, options);
    const gen = model.chat(oneShot, options);
    const { ids, text } = await streamGeneration(gen, v.json);
    const s = gen.stats;
    if (v.json) {
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
