/**
 * `nibble chat-template (MODEL.gguf | TEMPLATE.jinja) --messages CONVERSATION.json`: prints the rendered prompt,
 * exactly (no newline added): the tool to check what a model is fed.
 */
import { open, readFile } from 'node:fs/promises';
import { openGgufFile } from '@nibble/gguf/node';
import { type ChatMessage, ChatTemplate, ggufChatTemplate } from '@nibble/runner';
import { NibbleError } from '@nibble/tensor';
import { parseOrHelp, UsageError } from '../args.js';
import { chatTemplateSpec } from '../specs.js';

/** A file's text, or an E_IO error naming it. */
export async function readText(path: string): Promise<string> {
  return readFile(path, 'utf8').catch((e: Error) => {
    throw new NibbleError('E_IO', `cannot read ${path}: ${e.message}`);
  });
}

/** Whether a file starts with the GGUF magic. */
async function isGguf(path: string): Promise<boolean> {
  const fh = await open(path, 'r').catch((e: Error) => {
    throw new NibbleError('E_IO', `cannot read ${path}: ${e.message}`);
  });
  try {
    const head = new Uint8Array(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    return bytesRead === 4 && new TextDecoder().decode(head) === 'GGUF';
  } finally {
    await fh.close();
  }
}

/** Reads and checks a conversation file: a JSON array of messages with a string role and content. */
export async function readConversation(path: string): Promise<ChatMessage[]> {
  const text = await readText(path);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new NibbleError('E_FORMAT', `cannot read the conversation ${path}: ${(e as Error).message}`);
  }
  if (!Array.isArray(data)) throw new NibbleError('E_FORMAT', `${path}: expected a JSON array of messages`);
  data.forEach((m, i) => {
    if (typeof m !== 'object' || m === null || typeof m.role !== 'string' || typeof m.content !== 'string') {
      throw new NibbleError('E_FORMAT', `${path}: message ${i} needs a string "role" and a string "content"`);
    }
  });
  return data as ChatMessage[];
}

export async function run(args: string[]): Promise<number> {
  const p = parseOrHelp(chatTemplateSpec, args);
  if (!p) return 0;
  const v = p.values;
  const [path] = p.positionals;
  if (v.messages === undefined) throw new UsageError('--messages CONVERSATION.json is required');

  let source: string;
  let bosToken = v['bos-token'];
  let eosToken = v['eos-token'];
  if (await isGguf(path)) {
    const file = await openGgufFile(path);
    try {
      const t = ggufChatTemplate(file.metadata);
      if (t === undefined) throw new NibbleError('E_NO_CHAT_TEMPLATE', `${path} has no tokenizer.chat_template`);
      source = t.source;
      bosToken ??= t.bosToken;
      eosToken ??= t.eosToken;
    } finally {
      await file.close();
    }
  } else source = await readText(path);

  const messages = await readConversation(v.messages);
  const prompt = new ChatTemplate(source).render(messages, {
    addGenerationPrompt: v['add-generation-prompt'],
    continueFinalMessage: v['continue-final-message'],
    bosToken,
    eosToken,
  });
  process.stdout.write(prompt);
  return 0;
}
