/**
 * model.chat on the committed synthetic models (fixtures/models/synthetic, each with its family's real chat
 * template): end-of-turn tokens from the metadata, the KV cache kept across turns (only the new turn evaluated, and
 * the same reply as a session that evaluates everything), assistant prefill, and both context-full policies.
 */
import '@nibble/backend-js';
import { readFileSync } from 'node:fs';
import { NibbleError } from '@nibble/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../index.js';
import type { Model } from '../model.js';
import { fixturePath } from '../test/fixtures.js';
import { committedSynthetic, syntheticModel } from '../test/synthetic.js';
import { prepareChat, reusablePrefix } from './chat.js';
import { ChatTemplate } from './template.js';

const load = (name: string, contextSize = 256) =>
  loadModel(readFileSync(fixturePath('models', 'synthetic', `${name}.gguf`)), { backend: 'js', contextSize });

describe('synthetic model files', () => {
  it('are what src/test/synthetic.ts writes, byte for byte', async () => {
    for (const spec of committedSynthetic) {
      const committed = readFileSync(fixturePath('models', 'synthetic', `${spec.name}.gguf`));
      expect(Buffer.compare(committed, Buffer.from(await syntheticModel(spec))), spec.name).toBe(0);
    }
  });
});

describe('end-of-turn tokens', () => {
  for (const [name, eot] of [
    ['qwen2', '<|im_end|>'],
    ['llama3', '<|eot_id|>'],
    ['gemma2', '<end_of_turn>'],
    ['phi3', '<|end|>'],
  ] as const) {
    it(`${name}: ${eot} ends a reply`, async () => {
      const model = await load(name);
      try {
        const [id] = model.tokenizer.encodeSpecial(eot);
        expect(model.tokenizer.encodeSpecial(eot)).toEqual([id]);
        expect(model.tokenizer.isEndOfGeneration(id)).toBe(true);
        expect(model.tokenizer.isEndOfGeneration(model.tokenizer.encodeSpecial('a')[0])).toBe(false);
      } finally {
        await model.dispose();
      }
    });
  }
});

describe('model.chat', () => {
  let model: Model;
  beforeAll(async () => {
    model = await load('qwen2');
  });
  afterAll(async () => {
    await model?.dispose();
  });

  const first = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Tell me a story.' },
  ];

  it('renders with the file template and special tokens, and evaluates only the new turn next time', async () => {
    const t1 = model.chat(first, { temperature: 0, maxTokens: 12 });
    const r1 = await t1.collect();
    expect(r1.ids.length).toBeGreaterThan(0);
    const template = model.chatTemplate;
    expect(template?.source).toContain('<|im_start|>');
    const p1 = prepareChat(
      { template: new ChatTemplate(template?.source as string) },
      model.tokenizer,
      first,
      model.contextSize,
      {},
    );
    expect(p1.prompt.endsWith('<|im_start|>assistant\n')).toBe(true);
    expect(r1.stats.promptTokens).toBe(p1.ids.length);
    expect(r1.stats.cachedTokens).toBe(0);

    const second = [...first, { role: 'assistant', content: r1.text }, { role: 'user', content: 'Go on.' }];
    const r2 = await model.chat(second, { temperature: 0, maxTokens: 12 }).collect();
    const p2 = prepareChat(
      { template: new ChatTemplate(template?.source as string) },
      model.tokenizer,
      second,
      256,
      {},
    );
    // The first prompt was cached (but perhaps its last token, which BPE may merge with the reply's first text);
    // the rest (the reply's end, the new question) was evaluated.
    expect(r2.stats.cachedTokens).toBeGreaterThanOrEqual(p1.ids.length - 1);
    expect(r2.stats.cachedTokens + r2.stats.promptTokens).toBe(p2.ids.length);
    // And the reply is what a fresh session that evaluates the whole conversation gives.
    const fresh = await model.generate(p2.ids, { temperature: 0, maxTokens: 12 }).collect();
    expect(r2.ids).toEqual(fresh.ids);
  });

  it('continues an assistant prefill instead of opening a new turn', async () => {
    const messages = [...first, { role: 'assistant', content: 'Once upon' }];
    const p = prepareChat(
      { template: new ChatTemplate(model.chatTemplate?.source as string) },
      model.tokenizer,
      messages,
      256,
      {},
    );
    expect(p.prompt.endsWith('<|im_start|>assistant\nOnce upon')).toBe(true);
    const r = await model.chat(messages, { temperature: 0, maxTokens: 4 }).collect();
    const fresh = await model.generate(p.ids, { temperature: 0, maxTokens: 4 }).collect();
    expect(r.ids).toEqual(fresh.ids);
  });

  it('refuses a conversation that outgrows the context, or drops its oldest turns', async () => {
    const small = await load('qwen2', 96);
    try {
      const long: { role: string; content: string }[] = [{ role: 'system', content: 'S.' }];
      for (let i = 0; i < 6; i++) {
        long.push({ role: 'user', content: `Question ${i} about the sea?` });
        long.push({ role: 'assistant', content: `Answer ${i}.` });
      }
      long.push({ role: 'user', content: 'Last question?' });
      const err = await small
        .chat(long, { maxTokens: 8 })
        .collect()
        .catch((e) => e);
      expect(err).toBeInstanceOf(NibbleError);
      expect((err as NibbleError).code).toBe('E_CONTEXT_FULL');
      const t = { template: new ChatTemplate(small.chatTemplate?.source as string) };
      const p = prepareChat(t, small.tokenizer, long, 96, { maxTokens: 8, contextFull: 'drop-oldest' });
      expect(p.dropped).toBeGreaterThan(0);
      expect(p.dropped % 2).toBe(0); // whole turns: a question and its answer
      expect(p.ids.length + 8).toBeLessThanOrEqual(96);
      expect(p.prompt).toContain('S.');
      expect(p.prompt).toContain('Last question?');
      expect(p.prompt).not.toContain('Question 0');
      const r = await small.chat(long, { maxTokens: 8, temperature: 0, contextFull: 'drop-oldest' }).collect();
      expect(r.stats.promptTokens + r.stats.cachedTokens).toBe(p.ids.length);
    } finally {
      await small.dispose();
    }
  });

  it('names a missing template and keeps at least one token to evaluate', async () => {
    const stories = await loadModel(readFileSync(fixturePath('models', 'stories260K.gguf')), { backend: 'js' });
    try {
      expect(() => stories.chat([{ role: 'user', content: 'Hi' }])).toThrow(/no 'tokenizer.chat_template'/);
    } finally {
      await stories.dispose();
    }
    expect(reusablePrefix([1, 2, 3], [1, 2, 3])).toBe(2);
    expect(reusablePrefix([1, 2, 3], [1, 5])).toBe(1);
    expect(reusablePrefix([], [7])).toBe(0);
  });
});
