/**
 * `nibble chat-template (MODEL.gguf | TEMPLATE.jinja) --messages CONVERSATION.json`: prints the rendered prompt,
 * exactly (no newline added): the tool to check what a model is fed.
 */
import { open, readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { openGgufFile } from '@nibble/gguf/node';
import { type ChatMessage, ChatTemplate, ggufChatTemplate } from '@nibble/runner';
import { NibbleError } from '@nibble/tensor';

const usage = `usage: nibble chat-template (MODEL.gguf | TEMPLATE.jinja) --messages CONVERSATION.json
                           [--add-generation-prompt] [--continue-final-message]
                           [--bos-token T] [--eos-token T]

Renders a chat template as Hugging Face transformers' apply_chat_template does and prints the prompt exactly, with no
newline added. CONVERSATION.json is a JSON array of { "role", "content" } objects. From a GGUF file the template is
tokenizer.chat_template and bos_token/eos_token are the texts of its BOS/EOS tokens (the flags override them); from a
.jinja file they are the flags' values, and left out they stay undefined (not '').

Exit codes: 0 printed, 1 the file or template failed (a template's raise_exception included), 2 usage.`;

const options = {
  messages: { type: 'string' },
  'add-generation-prompt': { type: 'boolean' },
  'continue-final-message': { type: 'boolean' },
  'bos-token': { type: 'string' },
  'eos-token': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** A command-line mistake: printed with the usage, exit code 2. */
function usageError(message: string): number {
  console.error(`nibble chat-template: ${message}\n\n${usage}`);
  return 2;
}

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
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    return usageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (positionals.length !== 1) return usageError('give one MODEL.gguf or TEMPLATE.jinja');
  if (values.messages === undefined) return usageError('--messages CONVERSATION.json is required');
  const [path] = positionals;

  let source: string;
  let bosToken = values['bos-token'];
  let eosToken = values['eos-token'];
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

  const messages = await readConversation(values.messages);
  const prompt = new ChatTemplate(source).render(messages, {
    addGenerationPrompt: values['add-generation-prompt'] ?? false,
    continueFinalMessage: values['continue-final-message'] ?? false,
    bosToken,
    eosToken,
  });
  process.stdout.write(prompt);
  return 0;
}
