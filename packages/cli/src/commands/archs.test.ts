/**
 * The scripts' commands on every architecture: `nibble run ... --temperature 0 --json` prints the generated ids
 * (only those) and their text, and `nibble perplexity ... --json` prints the perplexity of BOS + every token, both as
 * the runner's API computes them, for the committed synthetic model of each architecture.
 */
import '@nibble/backend-js';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '@nibble/runner';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../../../', import.meta.url));
const cli = ['--conditions=source', '--import', 'tsx', join(repo, 'packages/cli/src/cli.ts')];
const text = join(repo, 'fixtures/text/cs336-tinystories_sample.txt');

function nibble(...args: string[]) {
  const r = spawnSync(process.execPath, [...cli, ...args], { cwd: repo, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe.each(['llama', 'llama3', 'qwen2', 'qwen3', 'gemma2', 'gemma3', 'phi3'])('%s', (name) => {
  const path = join(repo, 'fixtures/models/synthetic', `${name}.gguf`);

  it('run --json and perplexity --json give what the API gives', async () => {
    // One context size for both (Phi 3's LongRoPE factors depend on it).
    const run = nibble(
      'run',
      path,
      '--prompt',
      'Once upon a time',
      '--temperature',
      '0',
      '--max-tokens',
      '8',
      '--ctx',
      '128',
      '--backend',
      'js',
      '--json',
    );
    const ppl = nibble('perplexity', path, text, '--ctx', '128', '--backend', 'js', '--json');
    const model = await loadModel(new Uint8Array(readFileSync(path)), { backend: 'js', contextSize: 128 });
    try {
      const g = await model.generate('Once upon a time', { temperature: 0, maxTokens: 8 }).collect();
      expect(run.ids).toEqual(g.ids);
      expect(run.text).toBe(g.text);
      const prompt = model.tokenizer.encode('Once upon a time', true);
      expect(run.promptTokens).toBe(prompt.length);
      const p = await model.perplexity(readFileSync(text, 'utf8'));
      expect(ppl.perplexity).toBe(p.perplexity);
      expect(ppl.predictions).toBe(p.count);
      expect(Number.isFinite(ppl.perplexity)).toBe(true);
    } finally {
      await model.dispose();
    }
  });
});
