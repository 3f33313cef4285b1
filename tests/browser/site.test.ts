/**
 * The built docs site in Debian's Chromium: every page renders without console errors and every link inside the
 * site resolves (page and #anchor); the live demo quantizes stories260K to Q4_0 with the very bytes Node writes and
 * llama.cpp's llama_model_quantize wrote (and to Q4_K_M with an importance matrix on two Web Workers, llama.cpp's
 * bytes again), generates llama2.c's greedy gold text on every backend it offers, and chats as Node does.
 * Screenshots of the demo are taken on every run; with NIBBLE_SCREENSHOTS=1 they replace the committed ones in
 * benchmarks/results/screenshots/ (otherwise they go to a temporary folder, so a test run leaves the tree clean).
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../../packages/backend-js/src/index.js';
import { openGgufFile } from '../../packages/gguf/src/node.js';
import { presets, quantizeToBlob } from '../../packages/quantize/src/index.js';
import { loadModel } from '../../packages/runner/src/node.js';
import { type ChromiumSession, launchChromium, openPage, type StaticServer, serveStatic } from './harness.js';
import { buildSite, repoRoot } from './site.js';

const fixture = (p: string) => join(repoRoot, 'fixtures', p);
const gold = (
  JSON.parse(readFileSync(fixture('reference/stories260K-llama2c-gold.json'), 'utf8')) as {
    cases: { id: string; expected_text?: string }[];
  }
).cases.find((c) => c.id === 'greedy-200')?.expected_text as string;
const keepScreenshots = process.env.NIBBLE_SCREENSHOTS === '1';
const screenshots = keepScreenshots
  ? join(repoRoot, 'benchmarks/results/screenshots')
  : mkdtempSync(join(tmpdir(), 'nibble-screenshots-'));
/** The demo's part of the page, as a JPEG (a full PNG of the page is 400 KB), without the site's sticky bars. */
async function shot(tab: Awaited<ReturnType<typeof openPage>>, name: string): Promise<void> {
  await tab.page.addStyleTag({ content: '.VPNav, .VPLocalNav { display: none !important; }' });
  await tab.page
    .locator('.nibble-demo')
    .screenshot({ path: join(screenshots, `${name}.jpg`), type: 'jpeg', quality: 80 });
}
// SHA-256 of the files llama.cpp's llama_model_quantize wrote from stories260K (fixtures/quantize/generate.py).
const llamaCppSha = (label: string): string => {
  const runs = (
    JSON.parse(readFileSync(fixture('quantize/manifest.json'), 'utf8')) as {
      runs: { model: string; label: string; sha256?: string }[];
    }
  ).runs;
  const sha = runs.find((r) => r.model === 'stories260K' && r.label === label)?.sha256;
  if (!sha) throw new Error(`no llama.cpp run '${label}' in fixtures/quantize/manifest.json`);
  return sha;
};
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
// The backends the demo must offer in Chromium with WebGPU on SwiftShader, each generating the gold text.
const requiredBackends = ['webgpu', 'wasm', 'js'];

let site: string;
let server: StaticServer;
let chromium: ChromiumSession;

beforeAll(async () => {
  site = buildSite();
  server = await serveStatic({ root: site });
  chromium = await launchChromium({ webgpu: true });
  mkdirSync(screenshots, { recursive: true });
}, 300_000);
afterAll(async () => {
  await chromium?.close();
  await server?.close();
  if (site) rmSync(site, { recursive: true, force: true });
  if (!keepScreenshots) rmSync(screenshots, { recursive: true, force: true });
});

function pagesOf(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'assets') out.push(...pagesOf(p));
    } else if (name.endsWith('.html') && name !== '404.html') out.push(`/${relative(site, p)}`);
  }
  return out.sort();
}

describe('docs site', () => {
  it('renders every page without console errors, and every link inside the site resolves', async () => {
    const pages = pagesOf(site);
    // The pages the sidebar promises, at least.
    for (const p of [
      '/index.html',
      '/getting-started.html',
      '/demo.html',
      '/benchmarks.html',
      '/concepts/formats.html',
    ])
      expect(pages).toContain(p);
    expect(pages.filter((p) => p.startsWith('/api/')).length).toBeGreaterThanOrEqual(7);

    const anchors = new Map<string, Set<string>>(); // page path -> ids on it
    const idsOf = (path: string): Set<string> => {
      let ids = anchors.get(path);
      if (!ids) {
        const html = readFileSync(join(site, path), 'utf8');
        ids = new Set([...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]));
        anchors.set(path, ids);
      }
      return ids;
    };
    const broken: string[] = [];
    const failures: string[] = [];
    for (const path of pages) {
      const tab = await openPage(chromium, `${server.url}${path}`);
      await tab.page.waitForLoadState('networkidle');
      const title = await tab.page.title();
      const h1 = await tab.page.locator('h1').first().textContent();
      if (!title || !h1?.trim()) failures.push(`${path}: no title or h1`);
      for (const e of tab.errors()) failures.push(`${path}: ${e}`);
      const hrefs = await tab.page.$$eval('a[href]', (as) => as.map((a) => (a as HTMLAnchorElement).href));
      for (const href of new Set(hrefs)) {
        const u = new URL(href);
        if (u.origin !== server.url) continue; // external links are not fetched (no network in CI)
        let file = decodeURIComponent(u.pathname);
        if (file.endsWith('/')) file += 'index.html';
        if (!/\.[a-z0-9]+$/i.test(file)) file += '.html';
        let exists = false;
        try {
          exists = statSync(join(site, file)).isFile();
        } catch {}
        if (!exists) broken.push(`${path} -> ${u.pathname}`);
        else if (u.hash && file.endsWith('.html') && !idsOf(file).has(decodeURIComponent(u.hash.slice(1))))
          broken.push(`${path} -> ${u.pathname}${u.hash} (no such anchor)`);
      }
      await tab.page.close();
    }
    expect(failures).toEqual([]);
    expect(broken).toEqual([]);
    expect(server.notFound).toEqual([]);
  }, 300_000);

  it('shows the benchmark charts and the formats page its diagrams and measured table', async () => {
    const bench = await openPage(chromium, `${server.url}/benchmarks.html`);
    expect(await bench.page.locator('svg.bench-chart').count()).toBeGreaterThan(5);
    await bench.page.close();
    const formats = await openPage(chromium, `${server.url}/concepts/formats.html`);
    expect(await formats.page.locator('svg.block-diagram').count()).toBe(2);
    const table = await formats.page.locator('table').filter({ hasText: 'same bytes as ggml' }).textContent();
    expect(table).toContain('q4_K');
    expect(table).not.toMatch(/\bno\b/);
    await formats.page.close();
  }, 60_000);
});

describe('live demo', () => {
  // Quantizes in the page and returns the downloaded file's bytes.
  async function quantizeInPage(
    tab: Awaited<ReturnType<typeof openPage>>,
    preset: string,
    threads: number,
  ): Promise<{ bytes: Uint8Array; name: string }> {
    await tab.page.selectOption('[data-testid=demo-preset]', preset);
    await tab.page.selectOption('[data-testid=demo-threads]', String(threads));
    await tab.page.click('[data-testid=demo-quantize]');
    await tab.page.waitForFunction(
      (p) =>
        document.querySelector('[data-testid=demo-download]')?.textContent?.includes(`-${p}.gguf`) ||
        document.querySelector('[data-testid=demo-error]'),
      preset,
      { timeout: 120_000 },
    );
    expect(await tab.page.locator('[data-testid=demo-error]').count()).toBe(0);
    const [download] = await Promise.all([
      tab.page.waitForEvent('download'),
      tab.page.click('[data-testid=demo-download]'),
    ]);
    return { bytes: new Uint8Array(readFileSync(await download.path())), name: download.suggestedFilename() };
  }

  it('quantizes stories260K to Q4_0 in the page, byte for byte what Node writes and llama.cpp wrote', async () => {
    // Node's result, from the same library as `nibble quantize`.
    const src = await openGgufFile(fixture('models/stories260K.gguf'));
    const { blob } = await quantizeToBlob(src, { preset: 'Q4_0' });
    await src.close();
    const nodeBytes = new Uint8Array(await blob.arrayBuffer());

    const tab = await openPage(chromium, `${server.url}/demo.html`);
    await tab.page.waitForSelector('[data-testid=demo-model]', { timeout: 60_000 });
    expect(await tab.page.textContent('[data-testid=demo-isolation]')).toContain('Cross-origin isolated');
    // Every preset of @nibble/quantize is offered, with its planned size for this model.
    const offered = await tab.page.$$eval('[data-testid=demo-preset] option', (os) =>
      os.map((o) => ({ value: (o as HTMLOptionElement).value, text: o.textContent ?? '' })),
    );
    expect(offered.map((o) => o.value)).toEqual(presets.map((p) => p.name));
    expect(offered.find((o) => o.value === 'Q4_K_M')?.text).toMatch(/KiB, \d+\.\d\d bpw/);

    const { bytes, name } = await quantizeInPage(tab, 'Q4_0', 1);
    expect(name).toBe('stories260K-Q4_0.gguf');
    expect(bytes.byteLength).toBe(nodeBytes.byteLength);
    expect(Buffer.compare(Buffer.from(bytes), Buffer.from(nodeBytes))).toBe(0);
    expect(sha256(bytes)).toBe(llamaCppSha('Q4_0'));
    expect(await tab.page.textContent('[data-testid=demo-size]')).toBe(`${(bytes.byteLength / 1024).toFixed(1)} KiB`);
    // One row per converted tensor in the error table (31 Q4_0, 5 F16 fallbacks, output.weight Q8_0), each with a
    // histogram holding every value of the tensor.
    expect(await tab.page.locator('.demo-tensors tbody tr').count()).toBe(37);
    await shot(tab, 'demo-quantized');
    expect(tab.errors()).toEqual([]);
    await tab.page.close();
  }, 180_000);

  it("quantizes to Q4_K_M with an importance matrix on two Web Workers: llama.cpp's bytes", async () => {
    const tab = await openPage(chromium, `${server.url}/demo.html`);
    await tab.page.waitForSelector('[data-testid=demo-model]', { timeout: 60_000 });
    // llama-quantize records the imatrix file name it was given: the fixture ran with 'imatrix.gguf'.
    const dir = mkdtempSync(join(tmpdir(), 'nibble-imatrix-'));
    try {
      copyFileSync(fixture('quantize/imatrix/stories260K.imatrix.gguf'), join(dir, 'imatrix.gguf'));
      await tab.page.setInputFiles('[data-testid=demo-imatrix]', join(dir, 'imatrix.gguf'));
      await tab.page.waitForFunction(() =>
        document.querySelector('[data-testid=demo-preset-info]')?.textContent?.includes('imatrix imatrix.gguf'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const { bytes } = await quantizeInPage(tab, 'Q4_K_M', 2);
    expect(await tab.page.textContent('.demo-progress')).toContain('on 2 threads');
    expect(sha256(bytes)).toBe(llamaCppSha('Q4_K_M +imatrix'));
    expect(tab.errors()).toEqual([]);
    await tab.page.close();
  }, 180_000);

  it('generates the greedy gold text from BOS on every backend it offers, and gives a reason for the others', async () => {
    const tab = await openPage(chromium, `${server.url}/demo.html`);
    await tab.page.waitForSelector('[data-testid=demo-model]', { timeout: 60_000 });
    const options = await tab.page.$$eval('[data-testid=demo-backend] option', (os) =>
      os.map((o) => ({ name: (o as HTMLOptionElement).value, disabled: (o as HTMLOptionElement).disabled })),
    );
    const available = options.filter((o) => !o.disabled).map((o) => o.name);
    for (const name of requiredBackends) expect(available, name).toContain(name);
    // Cross-origin isolated, the WASM backend runs on every core (2 here) and has nothing to say about threads.
    expect(await tab.page.locator('[data-testid=demo-backend-note-wasm]').count()).toBe(0);

    for (const o of options.filter((x) => x.disabled)) {
      const reason = await tab.page.textContent(`[data-testid=demo-backend-reason-${o.name}]`);
      expect(reason?.length ?? 0, o.name).toBeGreaterThan(o.name.length + 10);
    }
    for (const name of available) {
      await tab.page.selectOption('[data-testid=demo-backend]', name);
      await tab.page.selectOption('[data-testid=demo-run-on]', 'original');
      await tab.page.fill('[data-testid=demo-prompt]', '');
      await tab.page.fill('[data-testid=demo-max-tokens]', '200');
      await tab.page.fill('[data-testid=demo-temperature]', '0');
      await tab.page.click('[data-testid=demo-generate]');
      await tab.page.waitForFunction(
        () =>
          document.querySelector('[data-testid=demo-speed]')?.textContent?.includes('tok/s') ||
          document.querySelector('[data-testid=demo-error]'),
        null,
        { timeout: 120_000 },
      );
      expect(await tab.page.locator('[data-testid=demo-error]').count(), name).toBe(0);
      expect(await tab.page.textContent('[data-testid=demo-output]'), name).toBe(gold);
      expect(await tab.page.textContent('[data-testid=demo-speed]')).toContain(`${name} backend`);
      await shot(tab, `demo-generated-${name}`);
    }
    expect(tab.errors()).toEqual([]);
    await tab.page.close();
  }, 300_000);

  it('chats with a chat model opened from a file, turn by turn as Node does, and says why stories260K cannot chat', async () => {
    const tab = await openPage(chromium, `${server.url}/demo.html`);
    await tab.page.waitForSelector('[data-testid=demo-model]', { timeout: 60_000 });
    expect(await tab.page.textContent('[data-testid=demo-chat-unavailable]')).toContain('no tokenizer.chat_template');

    // Node's greedy replies on the same file: a random-weight qwen3 with Qwen3's chat template (its replies depend on the history).
    const path = fixture('models/synthetic/qwen3.gguf');
    const node = await loadModel(path, { backend: 'js' });
    const messages: { role: 'user' | 'assistant'; content: string }[] = [{ role: 'user', content: 'Hello there' }];
    const first = (await node.chat(messages, { maxTokens: 12, temperature: 0 }).collect()).text;
    messages.push({ role: 'assistant', content: first }, { role: 'user', content: 'And then?' });
    const second = (await node.chat(messages, { maxTokens: 12, temperature: 0 }).collect()).text;
    await node.dispose();

    await tab.page.setInputFiles('[data-testid=demo-file]', path);
    await tab.page.waitForFunction(() =>
      document.querySelector('[data-testid=demo-model]')?.textContent?.includes('qwen3.gguf'),
    );
    await tab.page.selectOption('[data-testid=demo-backend]', 'js'); // Node's side ran on js too
    await tab.page.fill('[data-testid=demo-max-tokens]', '12');
    await tab.page.fill('[data-testid=demo-temperature]', '0');
    const replies: string[] = [];
    for (const [turn, text] of ['Hello there', 'And then?'].entries()) {
      await tab.page.fill('[data-testid=demo-chat-input]', text);
      await tab.page.click('[data-testid=demo-chat-send]');
      await tab.page.waitForFunction(
        (n) => document.querySelector('[data-testid=demo-chat-speed]')?.getAttribute('data-turn') === String(n),
        turn + 1,
        { timeout: 60_000 },
      );
      replies.push((await tab.page.locator('[data-testid=demo-chat-assistant] span').nth(turn).textContent()) ?? '');
    }
    expect(first.length * second.length).toBeGreaterThan(0);
    expect(first).not.toBe(second);
    expect(replies).toEqual([first, second]);
    expect(await tab.page.textContent('[data-testid=demo-chat-speed]')).not.toContain(' 0 tokens reused');
    await shot(tab, 'demo-chat');
    expect(tab.errors()).toEqual([]);
    await tab.page.close();
  }, 180_000);

  it('explains the missing cross-origin isolation when the server sends no COOP/COEP, and still works on one WASM thread', async () => {
    const plain = await serveStatic({ root: site, isolation: false });
    try {
      const tab = await openPage(chromium, `${plain.url}/demo.html`);
      await tab.page.waitForSelector('[data-testid=demo-model]', { timeout: 60_000 });
      const note = await tab.page.textContent('[data-testid=demo-isolation]');
      expect(note).toContain('not cross-origin isolated');
      expect(note).toContain('Cross-Origin-Embedder-Policy: require-corp');
      // The WASM backend falls back to one thread and says so; it still writes the gold story.
      expect(await tab.page.textContent('[data-testid=demo-backend-note-wasm]')).toContain('running 1 thread');
      await tab.page.selectOption('[data-testid=demo-backend]', 'wasm');
      await tab.page.fill('[data-testid=demo-max-tokens]', '200');
      await tab.page.click('[data-testid=demo-generate]');
      await tab.page.waitForFunction(
        () =>
          document.querySelector('[data-testid=demo-speed]')?.textContent?.includes('tok/s') ||
          document.querySelector('[data-testid=demo-error]'),
        null,
        { timeout: 120_000 },
      );
      expect(await tab.page.textContent('[data-testid=demo-output]')).toBe(gold);
      await shot(tab, 'demo-not-isolated');
      expect(tab.errors()).toEqual([]);
      await tab.page.close();
    } finally {
      await plain.close();
    }
  }, 120_000);
});
