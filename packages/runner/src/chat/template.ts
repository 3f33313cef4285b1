/**
 * Chat templates (`tokenizer.chat_template`, Jinja) rendered with `@huggingface/jinja` (the engine transformers.js and
 * node-llama-cpp use), with the variables Hugging Face transformers' `apply_chat_template` provides — `messages`,
 * `add_generation_prompt`, `bos_token`, `eos_token`, `tools`, `documents`, `raise_exception`, `strftime_now` — and its
 * `continue_final_message` truncation, so that the output equals what transformers renders with Python's jinja2 (the
 * tests check every template of llama.cpp's collection against jinja2's own output).
 *
 * Where @huggingface/jinja 0.5.11 differs from jinja2 on real templates, `PythonJinjaInterpreter` corrects it.
 */
import { Environment, Template } from '@huggingface/jinja';
import { NibbleError } from '@nibble/tensor';
import { PythonJinjaInterpreter } from './python-jinja.js';

/** One message of a conversation: a role and its content, plus whatever else a template reads (tool calls, ...). */
export interface ChatMessage {
  readonly role: string;
  readonly content: string;
  readonly [key: string]: unknown;
}

/** Options of {@link ChatTemplate.render}. */
export interface ChatTemplateOptions {
  /** End with the header of an assistant turn (transformers' `add_generation_prompt`). Default false. */
  addGenerationPrompt?: boolean;
  /**
   * Cut the output right after the last message's content, so the model continues that message (an assistant
   * prefill; transformers' `continue_final_message`). Default false.
   */
  continueFinalMessage?: boolean;
  /** `bos_token`; left out, the variable is undefined (as for a tokenizer without one), not ''. */
  bosToken?: string;
  /** `eos_token`; left out, undefined. */
  eosToken?: string;
  /** `tools`: JSON schemas of callable tools; default none (`None`, as transformers passes). */
  tools?: readonly unknown[];
  /** `documents` for retrieval templates; default none. */
  documents?: readonly unknown[];
  /** The time `strftime_now` formats. Default: now. */
  now?: Date;
  /** Further variables (transformers' `**kwargs`, e.g. `enable_thinking`). */
  variables?: Readonly<Record<string, unknown>>;
}

/**
 * A template refused the conversation (`raise_exception`), or failed to parse or render.
 *
 * @example
 * ```ts
 * try { t.render(messages); } catch (e) { if (e instanceof ChatTemplateError) console.error(e.message); }
 * ```
 */
export class ChatTemplateError extends NibbleError {
  constructor(message: string) {
    super('E_CHAT_TEMPLATE', message);
  }
}

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/**
 * Python's `datetime.strftime` in the C locale, for the directives chat templates use (`%Y %m %d %H %M %S %b %B %a
 * %A %y %j %p %I %%`, and glibc's `%-d` style unpadded forms).
 *
 * @example
 * ```ts
 * strftime(new Date(2026, 0, 15), '%d %b %Y'); // '15 Jan 2026'
 * ```
 */
export function strftime(date: Date, format: string): string {
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const start = new Date(date.getFullYear(), 0, 1);
  const yday =
    Math.round((new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime() - start.getTime()) / 864e5) + 1;
  const hour12 = date.getHours() % 12 === 0 ? 12 : date.getHours() % 12;
  const fields: Record<string, [number | string, number]> = {
    Y: [date.getFullYear(), 4],
    y: [date.getFullYear() % 100, 2],
    m: [date.getMonth() + 1, 2],
    d: [date.getDate(), 2],
    H: [date.getHours(), 2],
    I: [hour12, 2],
    M: [date.getMinutes(), 2],
    S: [date.getSeconds(), 2],
    j: [yday, 3],
    b: [MONTHS[date.getMonth()].slice(0, 3), 0],
    B: [MONTHS[date.getMonth()], 0],
    a: [DAYS[date.getDay()].slice(0, 3), 0],
    A: [DAYS[date.getDay()], 0],
    p: [date.getHours() < 12 ? 'AM' : 'PM', 0],
  };
  return format.replace(/%(-?)([a-zA-Z%])/g, (all, unpadded: string, d: string) => {
    if (d === '%') return '%';
    const f = fields[d];
    if (f === undefined) return all;
    const [v, width] = f;
    return typeof v === 'string' || unpadded ? String(v) : pad(v, width);
  });
}

/**
 * A parsed chat template.
 *
 * @example
 * ```ts
 * const t = new ChatTemplate(file.metadata.get('tokenizer.chat_template') as string);
 * const prompt = t.render([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true, bosToken: '<s>' });
 * ```
 */
export class ChatTemplate {
  readonly source: string;
  readonly #template: Template;

  constructor(source: string) {
    this.source = source;
    try {
      this.#template = new Template(source);
    } catch (e) {
      throw new ChatTemplateError(`the chat template does not parse: ${(e as Error).message}`);
    }
  }

  /** Renders `messages` as transformers' `apply_chat_template(messages, tokenize=False, ...)` would. */
  render(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    const env = new Environment();
    const now = options.now ?? new Date();
    const globals: Record<string, unknown> = {
      false: false,
      true: true,
      none: null,
      False: false,
      True: true,
      None: null,
      range,
      raise_exception: (message: unknown) => {
        throw new ChatTemplateError(String(message));
      },
      strftime_now: (format: unknown) => strftime(now, String(format)),
      ...options.variables,
      messages,
      tools: options.tools ?? null,
      documents: options.documents ?? null,
      add_generation_prompt: options.addGenerationPrompt ?? false,
    };
    // transformers passes the tokenizer's special tokens only when it has them: an absent one is undefined.
    if (options.bosToken !== undefined) globals.bos_token = options.bosToken;
    if (options.eosToken !== undefined) globals.eos_token = options.eosToken;
    for (const [k, v] of Object.entries(globals)) env.set(k, v);
    let out: string;
    try {
      out = new PythonJinjaInterpreter(env).run(this.#template.parsed).value as string;
    } catch (e) {
      if (e instanceof ChatTemplateError) throw e;
      throw new ChatTemplateError(`the chat template failed: ${(e as Error).message}`);
    }
    return options.continueFinalMessage ? continueFinal(out, messages) : out;
  }
}

/**
 * Renders a chat template once ({@link ChatTemplate} parses it each call).
 *
 * @example
 * ```ts
 * renderChatTemplate(source, [{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
 * ```
 */
export function renderChatTemplate(
  source: string,
  messages: readonly ChatMessage[],
  options: ChatTemplateOptions = {},
): string {
  return new ChatTemplate(source).render(messages, options);
}

function range(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

/** transformers' `continue_final_message`: keep the text up to the end of the final message's content. */
function continueFinal(out: string, messages: readonly ChatMessage[]): string {
  const final = messages.at(-1)?.content;
  if (typeof final !== 'string') throw new ChatTemplateError('continueFinalMessage needs a final message with text');
  const stripped = final.trim();
  const at = out.lastIndexOf(stripped);
  if (stripped === '' || at < 0) {
    throw new ChatTemplateError('continueFinalMessage: the final message does not appear in the rendered chat');
  }
  // The template kept the message's spacing: cut after it; it trimmed trailing spaces: cut after the trimmed text.
  const left = final.trimStart();
  return out.slice(0, out.slice(at, at + left.length) === final ? at + left.length : at + stripped.length);
}
