/**
 * The docs' examples run: every `<<< @/snippets/NAME.ts` a page includes is bundled (esbuild, the packages' `source`
 * condition) and run, and what it prints must equal the ```text block the page shows under it. `pnpm typecheck`
 * compiles the same files. Getting started may hold nothing else but `sh` blocks, whose commands run too: `npm install`
 * lines must name this repository's public packages, `npx nibble ...` runs the CLI from source. The page snippet
 * (`*-page.ts`) runs in Chromium. On top of equal output, results are checked against other tools: the generated
 * story is llama2.c's gold text, and the quantized files are llama.cpp's, byte for byte (SHA-256).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChromiumSession, launchChromium, openPage, serveStatic } from '../browser/harness.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const docs = join(root, 'docs');
const fixture = (p: string) => join(root, 'fixtures', p);
const gold = (
  JSON.parse(readFileSync(fixture('reference/stories260K-llama2c-gold.json'), 'utf8')) as {
    cases: { id: string; expected_text?: string }[];
  }
).cases.find((c) => c.id === 'greedy-200')?.expected_text as string;

/** SHA-256 of the file llama.cpp's llama_model_quantize wrote from stories260K (fixtures/quantize/manifest.json). */
function llamaCppSha(label: string): string | undefined {
  const manifest = JSON.parse(readFileSync(fixture('quantize/manifest.json'), 'utf8')) as {
    runs: { model: string; label: string; sha256?: string }[];
  };
  return manifest.runs.find((r) => r.model === 'stories260K' && r.label === label)?.sha256;
}

/** A fenced block or an include, in page order. */
type Block = { kind: 'fence'; lang: string; text: string } | { kind: 'include'; file: string };

function blocksOf(markdown: string): Block[] {
  const out: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const inc = /^<<< @\/(snippets\/[\w.-]+)/.exec(lines[i]);
    if (inc) {
      out.push({ kind: 'include', file: inc[1] });
      continue;
    }
    const fence = /^```(\w*)/.exec(lines[i]);
    if (!fence) continue;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i].startsWith('```'); i++) body.push(lines[i]);
    out.push({ kind: 'fence', lang: fence[1], text: body.join('\n') });
  }
  return out;
}

/** The snippet includes of a page, each with the text block right after it (its output), if any. */
function examplesOf(page: string): { file: string; output?: string }[] {
  const blocks = blocksOf(readFileSync(join(docs, page), 'utf8'));
  return blocks.flatMap((b, i) => {
    if (b.kind !== 'include') return [];
    const next = blocks[i + 1];
    return [{ file: b.file, output: next?.kind === 'fence' && next.lang === 'text' ? next.text : undefined }];
  });
}

/** Bundles a snippet for Node or the browser, resolving the nibble packages from docs/ through their sources. */
async function bundle(file: string, out: string, platform: 'node' | 'browser'): Promise<void> {
  await build({
    entryPoints: [join(docs, file)],
    bundle: true,
    platform,
    format: 'esm',
    target: platform === 'node' ? 'node20' : 'es2022',
    outfile: out,
    conditions: ['source'],
    logLevel: 'silent',
  });
}

/** Runs the CLI from source in the work folder. */
function runCli(args: string[]) {
  return spawnSync(
    process.execPath,
    [
      '--conditions=source',
      '--import',
      join(root, 'node_modules/tsx/dist/esm/index.mjs'),
      join(root, 'packages/cli/src/cli.ts'),
      ...args,
    ],
    { cwd: work, encoding: 'utf8' },
  );
}

/** A CLI line without what the clock decides (`in 0.1 s, 20.3 MB/s`): everything else must match exactly. */
const untimed = (s: string) => s.replace(/in \d+(\.\d+)? s, \d+(\.\d+)? MB\/s/g, 'in <time>');

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nibble-snippets-'));
  copyFileSync(fixture('models/stories260K.gguf'), join(work, 'stories260K.gguf'));
});
// One Chromium per set of flags, started by the first page test that needs it.
const sessions = new Map<boolean, Promise<ChromiumSession>>();
const chromiumWith = (webgpu: boolean) => {
  let s = sessions.get(webgpu);
  if (!s) {
    s = launchChromium({ webgpu });
    sessions.set(webgpu, s);
  }
  return s;
};
afterAll(async () => {
  for (const s of sessions.values()) await (await s).close();
  rmSync(work, { recursive: true, force: true });
});

async function runNode(file: string): Promise<string> {
  const out = join(work, `${file.replace(/\W/g, '_')}.mjs`);
  await bundle(file, out, 'node');
  const r = spawnSync(process.execPath, [out], { cwd: work, encoding: 'utf8' });
  expect(r.stderr, `${file} wrote to stderr`).toBe('');
  expect(r.status, `${file} exit status`).toBe(0);
  return r.stdout.replace(/\n$/, '');
}

const pages = ['getting-started.md', 'guides/one-package.md', 'guides/webgpu.md', 'guides/quantize-a-model.md'];
const nodeExamples = pages.flatMap((p) =>
  examplesOf(p)
    .filter((e) => e.file.endsWith('.ts') && !/-(page|worker)\.ts$/.test(e.file))
    .map((e) => ({ page: p, ...e })),
);

describe('docs snippets', () => {
  it('getting started holds only included snippet files, their outputs, and sh commands', () => {
    const blocks = blocksOf(readFileSync(join(docs, 'getting-started.md'), 'utf8'));
    const inline = blocks.filter((b) => b.kind === 'fence' && !['text', 'sh'].includes(b.lang));
    expect(inline, 'an inline code block would not be tested: put it in docs/snippets/ and include it').toEqual([]);
    const included = blocks.filter((b) => b.kind === 'include').map((b) => (b as { file: string }).file);
    expect(included.length).toBeGreaterThanOrEqual(6);
    // Every snippet file is shown somewhere, so none rots unseen.
    const shown = new Set(pages.flatMap((p) => examplesOf(p).map((e) => e.file)));
    for (const f of readdirSync(join(docs, 'snippets'))) expect(shown, f).toContain(`snippets/${f}`);
  });

  it.each(nodeExamples)('$file prints what $page shows', async ({ file, output }) => {
    expect(output, `${file} needs a \`\`\`text block with its output after the include`).toBeDefined();
    expect(await runNode(file)).toBe(output);
  });

  it('the Node generation example prints llama2.c greedy gold story', () => {
    const shown = examplesOf('getting-started.md').find((e) => e.file === 'snippets/generate-node.ts');
    expect(shown?.output).toBe(gold);
  });

  it("the model quantization examples write llama.cpp's files, byte for byte", async () => {
    const llamaCpp = llamaCppSha;
    const sha = (file: string) =>
      createHash('sha256')
        .update(readFileSync(join(work, file)))
        .digest('hex');
    rmSync(join(work, 'stories260K-Q8_0.gguf'), { force: true });
    await runNode('snippets/quantize-model.ts');
    expect(sha('stories260K-Q8_0.gguf')).toBe(llamaCpp('Q8_0'));
    // The CLI line of getting started (the sh commands test runs it too, on its own copy).
    const r = runCli(['quantize', 'stories260K.gguf', 'cli-Q4_K_M.gguf', 'Q4_K_M']);
    expect(r.status, r.stderr).toBe(0);
    expect(sha('cli-Q4_K_M.gguf')).toBe(llamaCpp('Q4_K_M'));
  });

  it("runs getting started's sh commands: real package names, and the CLI prints what the page shows", () => {
    const blocks = blocksOf(readFileSync(join(docs, 'getting-started.md'), 'utf8'));
    const workspace = new Map<string, { private?: boolean; exports?: unknown }>();
    for (const d of readdirSync(join(root, 'packages'))) {
      const pkg = JSON.parse(readFileSync(join(root, 'packages', d, 'package.json'), 'utf8'));
      workspace.set(pkg.name, pkg);
    }
    let commands = 0;
    for (const [i, b] of blocks.entries()) {
      if (b.kind !== 'fence' || b.lang !== 'sh') continue;
      for (const line of b.text.split('\n').filter((l) => l.trim())) {
        const install = /^npm install (.+)$/.exec(line);
        const cli = /^npx nibble (.+)$/.exec(line);
        if (install) {
          for (const name of install[1].split(/\s+/)) {
            const pkg = workspace.get(name);
            expect(pkg, `${name} is not a package of this repository`).toBeDefined();
            expect(pkg?.private, `${name} is private`).not.toBe(true);
            expect(pkg?.exports, `${name} has no exports map`).toBeDefined();
          }
        } else if (cli) {
          const args = cli[1].split(/\s+/);
          // Each command runs on a fresh copy, so an output file from an earlier run is no obstacle.
          if (args[0] === 'quantize') rmSync(join(work, args[2]), { force: true });
          const r = runCli(args);
          expect(r.status, r.stderr).toBe(0);
          const next = blocks[i + 1];
          expect(next?.kind === 'fence' && next.lang === 'text', `no output block after ${line}`).toBe(true);
          expect(untimed(r.stdout.replace(/\n$/, ''))).toBe(untimed((next as { text: string }).text));
        } else {
          throw new Error(`untested command in getting started: ${line}`);
        }
        commands++;
      }
    }
    expect(commands).toBeGreaterThanOrEqual(2);
  });

  it('the page example generates the gold story in Chromium', async () => {
    const site = join(work, 'page');
    await bundle('snippets/generate-page.ts', join(site, 'generate-page.js'), 'browser');
    writeFileSync(join(site, 'index.html'), readFileSync(join(docs, 'snippets/generate-page.html')));
    copyFileSync(fixture('models/stories260K.gguf'), join(site, 'stories260K.gguf'));
    const server = await serveStatic({ root: site });
    try {
      const tab = await openPage(await chromiumWith(false), `${server.url}/`);
      await tab.page.waitForSelector('#story[data-done=true]', { timeout: 60_000 });
      expect(await tab.page.textContent('#story')).toBe(gold);
      expect(tab.errors()).toEqual([]);
      await tab.page.close();
    } finally {
      await server.close();
    }
  }, 120_000);

  it("the browser quantization guide's page turns a picked file into llama.cpp's Q4_K_M file on two workers", async () => {
    const site = join(work, 'quantize-page');
    await bundle('snippets/quantize-page.ts', join(site, 'quantize-page.js'), 'browser');
    await bundle('snippets/quantize-worker.ts', join(site, 'quantize-worker.js'), 'browser');
    writeFileSync(join(site, 'index.html'), readFileSync(join(docs, 'snippets/quantize-page.html')));
    const server = await serveStatic({ root: site });
    try {
      const tab = await openPage(await chromiumWith(false), `${server.url}/`);
      await tab.page.setInputFiles('#model', fixture('models/stories260K.gguf'));
      await tab.page.waitForFunction(() => document.getElementById('result')?.textContent, null, { timeout: 60_000 });
      expect(await tab.page.textContent('#result')).toMatch(/^stories260K-Q4_K_M\.gguf: \d+ bytes in [\d.]+ s$/);
      const [download] = await Promise.all([tab.page.waitForEvent('download'), tab.page.click('#result a')]);
      expect(download.suggestedFilename()).toBe('stories260K-Q4_K_M.gguf');
      const bytes = readFileSync(await download.path());
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(llamaCppSha('Q4_K_M'));
      expect(await tab.page.evaluate(() => (document.getElementById('progress') as HTMLProgressElement).value)).toBe(1);
      expect(tab.errors()).toEqual([]);
      await tab.page.close();
    } finally {
      await server.close();
    }
  }, 120_000);

  it.each([
    { webgpu: true, expected: 'webgpu' },
    { webgpu: false, expected: 'wasm' },
  ])(
    'the WebGPU guide page runs on $expected (WebGPU flags: $webgpu) with the gold story',
    async ({ webgpu, expected }) => {
      const site = join(work, `webgpu-page-${expected}`);
      await bundle('snippets/webgpu-page.ts', join(site, 'webgpu-page.js'), 'browser');
      writeFileSync(join(site, 'index.html'), readFileSync(join(docs, 'snippets/webgpu-page.html')));
      copyFileSync(fixture('models/stories260K.gguf'), join(site, 'stories260K.gguf'));
      const server = await serveStatic({ root: site });
      try {
        const tab = await openPage(await chromiumWith(webgpu), `${server.url}/`);
        await tab.page.waitForSelector('body[data-done=true]', { timeout: 90_000 });
        expect(await tab.page.textContent('#backend')).toBe(expected);
        const skipped = (await tab.page.textContent('#skipped')) ?? '';
        if (expected === 'wasm') expect(skipped).toMatch(/^webgpu: .{10,}$/);
        else expect(skipped).toBe('');
        expect(await tab.page.textContent('#story')).toBe(gold);
        expect(tab.errors()).toEqual([]);
        await tab.page.close();
      } finally {
        await server.close();
      }
    },
    150_000,
  );
});
