/**
 * Chat on a model: render the conversation with the file's chat template, tokenize it with special tokens parsed (as
 * transformers tokenizes an applied template: no extra BOS), and feed only what the session's KV cache does not
 * already hold — a conversation that grows by a turn re-evaluates only the new turn.
 */
import { NibbleError, ValueError } from '@nibble/tensor';
import type { Metadata } from '../hparams.js';
import type { GenerateOptions } from '../session.js';
import type { RunnerTokenizer } from '../text.js';
import type { ChatMessage, ChatTemplate, ChatTemplateOptions } from './template.js';

/** Options of `model.chat`. */
export interface ChatOptions extends GenerateOptions {
  /** A template source to use instead of the file's `tokenizer.chat_template`. */
  template?: string;
  /**
   * What to do when the conversation leaves less than the reply's room in the context: `'error'` (default) throws
   * `E_CONTEXT_FULL`; `'drop-oldest'` drops the oldest turns (a user message and the replies after it), keeping
   * leading system messages and the last message, until it fits.
   */
  contextFull?: 'error' | 'drop-oldest';
  /** Positions kept free for the reply when checking that the conversation fits. Default min(maxTokens, context/2). */
  reserve?: number;
  /**
   * End with the assistant's turn header. Default: true, unless the last message is the assistant's (then that
   * message is continued: a prefill).
   */
  addGenerationPrompt?: boolean;
  /** Template variables: tools, documents, the date of `strftime_now`, extra keys (e.g. `enable_thinking`). */
  templateOptions?: Pick<ChatTemplateOptions, 'tools' | 'documents' | 'now' | 'variables'>;
}

/** The file's chat template and the special-token texts it is rendered with. */
export interface GgufChatTemplate {
  readonly source: string;
  /** The text of `tokenizer.ggml.bos_token_id`, when the file has one. */
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
}

/**
 * The chat template stored in GGUF metadata (`tokenizer.chat_template`) with the BOS and EOS token texts, or
 * undefined when the file has no template.
 *
 * @example
 * ```ts
 * const t = ggufChatTemplate(file.metadata); // { source, bosToken: '<|begin_of_text|>', eosToken: '<|eot_id|>' }
 * ```
 */
export function ggufChatTemplate(meta: Metadata): GgufChatTemplate | undefined {
  const source = meta.get('tokenizer.chat_template');
  if (source === undefined) return undefined;
  if (typeof source !== 'string')
    throw new NibbleError('E_FORMAT', "metadata key 'tokenizer.chat_template' is not a string");
  const tokens = meta.get('tokenizer.ggml.tokens');
  const text = (key: string): string | undefined => {
    const id = meta.get(key);
    const n = typeof id === 'bigint' ? Number(id) : id;
    return Array.isArray(tokens) && typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < tokens.length
      ? String(tokens[n])
      : undefined;
  };
  return { source, bosToken: text('tokenizer.ggml.bos_token_id'), eosToken: text('tokenizer.ggml.eos_token_id') };
}

/** A conversation rendered and tokenized, after any turns the context-full policy dropped. */
export interface PreparedChat {
  readonly ids: number[];
  readonly prompt: string;
  /** Messages dropped from the front (after the system messages) to fit. */
  readonly dropped: number;
}

/**
 * Renders and tokenizes `messages` for a context of `contextSize`, applying the context-full policy.
 *
 * @example
 * ```ts
 * const { ids } = prepareChat(template, tokenizer, messages, 2048, {}); // ids to feed
 * ```
 */
export function prepareChat(
  template: { readonly template: ChatTemplate; readonly bosToken?: string; readonly eosToken?: string },
  tokenizer: RunnerTokenizer,
  messages: readonly ChatMessage[],
  contextSize: number,
  options: ChatOptions,
): PreparedChat {
  if (messages.length === 0) throw new ValueError('chat needs at least one message', 0, 0);
  const maxTokens = options.maxTokens ?? 256;
  const reserve = options.reserve ?? Math.min(maxTokens, Math.floor(contextSize / 2));
  if (!Number.isSafeInteger(reserve) || reserve < 1 || reserve >= contextSize) {
    throw new ValueError(`reserve ${reserve} must be in 1..${contextSize - 1}`, 0, 0);
  }
  const policy = options.contextFull ?? 'error';
  if (policy !== 'error' && policy !== 'drop-oldest') {
    throw new ValueError(`contextFull must be 'error' or 'drop-oldest', got '${String(policy)}'`, 0, 0);
  }
  const render = (msgs: readonly ChatMessage[]) => {
    const prefill = msgs[msgs.length - 1].role === 'assistant';
    const add = options.addGenerationPrompt ?? !prefill;
    const prompt = template.template.render(msgs, {
      ...options.templateOptions,
      addGenerationPrompt: add,
      continueFinalMessage: prefill && !add,
      bosToken: template.bosToken,
      eosToken: template.eosToken,
    });
    return { prompt, ids: tokenizer.encodeSpecial(prompt) };
  };
  let msgs = [...messages];
  let dropped = 0;
  for (;;) {
    const r = render(msgs);
    if (r.ids.length === 0) throw new ValueError('the rendered conversation has no tokens', 0, 0);
    if (r.ids.length + reserve <= contextSize) return { ...r, dropped };
    const system = msgs.findIndex((m) => m.role !== 'system');
    // The oldest turn: the first non-system message and the non-user messages after it.
    let end = system + 1;
    while (end < msgs.length - 1 && msgs[end].role !== 'user') end++;
    if (policy === 'error' || system < 0 || end >= msgs.length) {
      throw new NibbleError(
        'E_CONTEXT_FULL',
        `the conversation is ${r.ids.length} tokens; with ${reserve} kept for the reply it does not fit the context of ${contextSize}` +
          (policy === 'error'
            ? " (contextFull: 'drop-oldest' drops the oldest turns)"
            : ', even with only the last message'),
      );
    }
    dropped += end - system;
    msgs = [...msgs.slice(0, system), ...msgs.slice(end)];
  }
}

/**
 * How many leading ids two sequences share, keeping at least one id of `next` to feed (the model needs the logits of
 * the last prompt token).
 *
 * @example
 * ```ts
 * reusablePrefix([1, 2, 3, 9], [1, 2, 3, 4, 5]); // 3
 * ```
 */
export function reusablePrefix(cached: readonly number[], next: readonly number[]): number {
  let n = 0;
  while (n < cached.length && n < next.length && cached[n] === next[n]) n++;
  return Math.min(n, next.length - 1);
}
