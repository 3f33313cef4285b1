/**
 * `nibble chat` in a real pseudo-terminal (Python's pty module drives the process as a user at a keyboard would:
 * typed lines, Ctrl-C, /reset, /exit), `--json` one-shot mode against model.chat, and `chat-template` printing
 * exactly the rendered prompt.
 */
import '@nibble/backend-js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChatTemplate, ggufChatTemplate, loadModel } from '@nibble/runner';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../../../', import.meta.url));
const fixture = (rel: string) => join(repo, 'fixtures', rel);
const cliArgs = ['--conditions=source', '--import', 'tsx', join(repo, 'packages/cli/src/cli.ts')];
const model = fixture('models/synthetic/phi3.gguf');

function nibble(...args: string[]) {
  const r = spawnSync(process.execPath, [...cliArgs, ...args], { cwd: repo, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// Drives the CLI in a pty: waits for each expected text before sending the next keys; prints a JSON transcript.
const driver = `
import json, os, pty, select, sys, time
argv = json.loads(sys.argv[1])
steps = json.loads(sys.argv[2])
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
buf = b''
def read_until(text, timeout, start):
    global buf
    end = time.time() + timeout
    done = (lambda: len(buf) - start >= text) if isinstance(text, int) else (lambda: text.encode() in buf[start:])
    while not done():
        left = end - time.time()
        if left <= 0:
            return False
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return False
            if not chunk:
                return False
            buf += chunk
    return True
log = []
mark = 0
for wait, send in steps:
    ok = read_until(wait, 60, mark)
    log.append({'waited': wait, 'found': ok})
    if not ok:
        os.kill(pid, 9)
        break
    mark = len(buf) if isinstance(wait, int) else buf.index(wait.encode(), mark) + len(wait.encode())
    if send is not None:
        os.write(fd, send.encode())
_, status = os.waitpid(pid, 0)
try:
    while True:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r: break
        chunk = os.read(fd, 4096)
        if not chunk: break
        buf += chunk
except OSError:
    pass
print(json.dumps({'log': log, 'status': os.waitstatus_to_exitcode(status), 'out': buf.decode('utf8', 'replace')}))
`;

describe('nibble chat in a terminal', () => {
  it('streams replies; Ctrl-C stops a reply, not the program; /reset and /exit work', () => {
    const argv = [process.execPath, ...cliArgs, 'chat', model, '--system', 'Be brief.', '--ctx', '4096'];
    argv.push('--max-tokens', '4000', '--ignore-eos', '--temperature', '0');
    const steps: [string | number, string | null][] = [
      ['> ', 'Hello there\r'],
      // The line is echoed, then 40 bytes of the reply stream: stop it.
      ['Hello there', null],
      [40, '\x03'],
      ['(stopped)', null],
      ['> ', '\x03'],
      ['(/exit or Ctrl-D quits)', null],
      ['> ', '/reset\r'],
      ['(conversation reset)', null],
      ['> ', '/exit\r'],
    ];
    const r = spawnSync('python3', ['-c', driver, JSON.stringify(argv), JSON.stringify(steps)], {
      cwd: repo,
      encoding: 'utf8',
      timeout: 110_000,
    });
    const t = JSON.parse(r.stdout) as { log: { waited: string; found: boolean }[]; status: number; out: string };
    expect(
      t.log.every((s) => s.found),
      `${JSON.stringify(t.log)}\n${t.out}`,
    ).toBe(true);
    expect(t.status).toBe(0);
    // The stopped reply streamed some text and ended long before its 4000 tokens.
    const reply = t.out.slice(t.out.indexOf('Hello there') + 11, t.out.indexOf('(stopped)'));
    expect(reply.length).toBeGreaterThan(20);
    expect(t.out).toMatch(/chat with phi3/);
    // Loading drew the shared progress bar on the terminal before the chat began.
    expect(t.out.slice(0, t.out.indexOf('chat with phi3'))).toMatch(/MiB of weights loaded/);
  });
});

describe('nibble chat --json', () => {
  it('answers one turn as model.chat does', async () => {
    const r = nibble('chat', model, '--json', '--system', 'Be brief.', '--prompt', 'Hi', '--max-tokens', '6');
    const temp = nibble('chat', model, '--json', '--prompt', 'Hi', '--max-tokens', '6', '--temperature', '0');
    expect(r.code, r.err).toBe(0);
    expect(temp.code, temp.err).toBe(0);
    const j = JSON.parse(temp.out);
    const m = await loadModel(new Uint8Array(readFileSync(model)), { backend: 'js' });
    try {
      const want = await m.chat([{ role: 'user', content: 'Hi' }], { maxTokens: 6, temperature: 0 }).collect();
      expect(j).toMatchObject({ ids: want.ids, text: want.text, generatedTokens: 6, finishReason: 'length' });
    } finally {
      await m.dispose();
    }
  });

  it('refuses bad flags with exit code 2', () => {
    const cases: [string[], RegExp][] = [
      [['--json'], /--json answers one turn/],
      [['--prompt', 'x', '--max-tokens', '1.5'], /--max-tokens must be an integer >= 0, got '1\.5'/],
      [['--prompt', 'x', '--temp', '0'], /unknown flag --temp; did you mean --temperature\?/],
      [['--max-token', '5'], /unknown flag --max-token; did you mean --max-tokens\?/],
      [['--prompt', 'x', '--context-full', 'sometimes'], /--context-full must be one of error, drop-oldest/],
      [['--prompt', 'x', '--messages', 'y.json'], /give --prompt or --messages/],
    ];
    for (const [args, message] of cases) {
      const r = nibble('chat', model, ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(/^nibble chat: /);
      expect(r.err).toMatch(message);
    }
  });
});

describe('nibble chat-template', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nibble-chat-'));
  const conv = join(dir, 'conv.json');
  const messages = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Hi' },
  ];
  writeFileSync(conv, JSON.stringify(messages));

  it('prints exactly the rendered prompt of a GGUF file, BOS/EOS from its metadata', async () => {
    const path = fixture('models/synthetic/llama3.gguf');
    const r = nibble('chat-template', path, '--messages', conv, '--add-generation-prompt');
    expect(r.code, r.err).toBe(0);
    const { parseGguf } = await import('@nibble/gguf');
    const t = ggufChatTemplate(parseGguf(new Uint8Array(readFileSync(path))).metadata);
    expect(t?.bosToken).toBe('<|begin_of_text|>');
    const want = new ChatTemplate(t?.source as string).render(messages, {
      addGenerationPrompt: true,
      bosToken: t?.bosToken,
      eosToken: t?.eosToken,
    });
    expect(r.out).toBe(want);
    expect(r.out.startsWith('<|begin_of_text|><|start_header_id|>system')).toBe(true);
    expect(r.out.endsWith('<|start_header_id|>assistant<|end_header_id|>\n\n')).toBe(true);
  });

  it('leaves bos_token undefined without --bos-token, and uses the flags with a .jinja file', () => {
    const jinja = join(dir, 't.jinja');
    writeFileSync(jinja, '{{ bos_token is defined }}:{{ bos_token }}{{ messages[1].content }}{{ eos_token }}');
    expect(nibble('chat-template', jinja, '--messages', conv).out).toBe('False:Hi');
    expect(nibble('chat-template', jinja, '--messages', conv, '--bos-token', '<s>', '--eos-token', '</s>').out).toBe(
      'True:<s>Hi</s>',
    );
  });

  it('exits 1 on a template that refuses the conversation, 2 on usage errors', () => {
    const gemma = fixture('templates/google-gemma-2-2b-it.jinja');
    const refused = nibble('chat-template', gemma, '--messages', conv);
    expect(refused.code).toBe(1);
    expect(refused.err.trim()).toBe('nibble chat-template: System role not supported');
    expect(nibble('chat-template', gemma).code).toBe(2);
    expect(nibble('chat-template', gemma, '--messages', conv, '--bos').code).toBe(2);
    const typo = nibble('chat-template', gemma, '--messags', conv);
    expect(typo.code).toBe(2);
    expect(typo.err).toMatch(/^nibble chat-template: unknown flag --messags; did you mean --messages\?/);
    expect(nibble('chat-template', join(dir, 'missing.jinja'), '--messages', conv).code).toBe(1);
  });
});
