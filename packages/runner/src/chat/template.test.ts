/**
 * Every chat template of llama.cpp's collection (fixtures/templates) with every conversation of
 * fixtures/chat/conversations.json, against Python jinja2's rendering in transformers' environment
 * (fixtures/chat/expected.json, made by fixtures/chat/render.py): the same text exactly, or an error in both.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fixturePath } from '../test/fixtures.js';
import { ChatTemplate, ChatTemplateError, type ChatTemplateOptions, renderChatTemplate, strftime } from './template.js';

interface Conversation {
  id: string;
  addGenerationPrompt: boolean;
  continueFinalMessage?: boolean;
  specialTokens?: boolean;
  tools?: unknown[];
  messages: { role: string; content: string }[];
}
type Result = { output: string } | { error: string };

const conversations = JSON.parse(readFileSync(fixturePath('chat', 'conversations.json'), 'utf8')) as Conversation[];
const expected = JSON.parse(readFileSync(fixturePath('chat', 'expected.json'), 'utf8')) as {
  now: string;
  templates: Record<string, Record<string, Result>>;
};
const now = new Date(expected.now);

/**
 * Where Python fails for a reason of Python's own and we render: jinja2's `map` is a generator, which json.dumps
 * cannot serialize (transformers fails on this template with tools too).
 */
const pythonOnlyErrors = new Set(['llama-cpp-deepseek-r1/with-tools']);

function options(c: Conversation): ChatTemplateOptions {
  return {
    addGenerationPrompt: c.addGenerationPrompt,
    continueFinalMessage: c.continueFinalMessage,
    tools: c.tools,
    now,
    ...(c.specialTokens === false ? {} : { bosToken: '<|bos|>', eosToken: '<|eos|>' }),
  };
}

describe('chat templates render as transformers renders them with jinja2', () => {
  const names = readdirSync(fixturePath('templates'))
    .filter((f) => f.endsWith('.jinja'))
    .map((f) => f.slice(0, -'.jinja'.length));

  it('covers every template of the collection', () => {
    expect(names.length).toBe(68);
    expect(Object.keys(expected.templates).sort()).toEqual([...names].sort());
  });

  for (const name of names) {
    it(name, () => {
      const template = new ChatTemplate(readFileSync(fixturePath('templates', `${name}.jinja`), 'utf8'));
      for (const c of conversations) {
        const want = expected.templates[name][c.id];
        const key = `${name}/${c.id}`;
        if ('output' in want) {
          expect(template.render(c.messages, options(c)), key).toBe(want.output);
        } else if (pythonOnlyErrors.has(key)) {
          expect(() => template.render(c.messages, options(c)), key).not.toThrow();
        } else {
          // raise_exception's message comes through as is; other failures are errors in both.
          const raised = want.error.match(/^TemplateError: (.*)$/s)?.[1];
          expect(() => template.render(c.messages, options(c)), key).toThrow(raised ?? ChatTemplateError);
        }
      }
    });
  }
});

describe('chat template variables', () => {
  const echo =
    '{{ bos_token is defined }}|{{ bos_token }}|{{ eos_token is defined }}|{{ add_generation_prompt }}|{{ tools is none }}';

  it('leaves bos_token and eos_token undefined when not given, not empty strings', () => {
    expect(renderChatTemplate(echo, [])).toBe('False||False|False|True');
    expect(renderChatTemplate(echo, [], { bosToken: '<s>', eosToken: '', addGenerationPrompt: true })).toBe(
      'True|<s>|True|True|True',
    );
  });

  it('formats strftime_now like Python in the C locale', () => {
    const d = new Date(2026, 0, 5, 9, 7, 3);
    expect(strftime(d, '%d %b %Y')).toBe('05 Jan 2026');
    expect(strftime(d, '%B %d, %Y %H:%M:%S %a %A %j %I%p %-d %%')).toBe(
      'January 05, 2026 09:07:03 Mon Monday 005 09AM 5 %',
    );
    expect(renderChatTemplate('{{ strftime_now("%Y-%m-%d") }}', [], { now: d })).toBe('2026-01-05');
  });

  it('raises raise_exception as a typed error with the message', () => {
    expect(() => renderChatTemplate("{{ raise_exception('no system role') }}", [])).toThrow(
      new ChatTemplateError('no system role'),
    );
    expect(() => new ChatTemplate('{% if %}')).toThrow(ChatTemplateError);
  });

  it('cuts an assistant prefill after its content (continue_final_message)', () => {
    const t = '{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}</{{ m.role }}>{% endfor %}';
    const messages = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello there  ' },
    ];
    expect(renderChatTemplate(t, messages, { continueFinalMessage: true })).toBe(
      '<user>Hi</user><assistant>Hello there',
    );
    expect(() => renderChatTemplate('x', messages, { continueFinalMessage: true })).toThrow(/does not appear/);
  });
});
