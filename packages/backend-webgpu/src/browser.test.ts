/**
 * The greedy gold of stories260K in headless Chromium on 'webgpu' (navigator.gpu on SwiftShader): a page bundled
 * from browser/page.ts, served from loopback, reports its ids, which must equal llama2.c's.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { expect, it } from 'vitest';

const fixture = (p: string) => new URL(`../../../fixtures/${p}`, import.meta.url);
const greedy = JSON.parse(readFileSync(fixture('reference/stories260K-greedy-llama2c.json'), 'utf8')) as {
  tokens: number[];
};
const gold = JSON.parse(readFileSync(fixture('reference/stories260K-llama2c-gold.json'), 'utf8')) as {
  cases: { id: string; expected_text?: string }[];
};

/** Flags from toolchain.md: WebGPU on SwiftShader, nothing reaching outside. */
const chromiumArgs = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/**
 * Serves `files` (path -> bytes) on loopback, opens `/` in headless Chromium and returns what the page leaves in
 * `window.nibbleResult`. The one place that knows about servers and browsers (to swap for tests/browser/harness.ts).
 */
async function runPage(files: Record<string, { type: string; body: Uint8Array | string }>, timeoutMs: number) {
  const server: Server = createServer((req, res) => {
    const f = files[req.url ?? ''];
    if (f === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': f.type, 'cross-origin-opener-policy': 'same-origin' }).end(f.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: chromiumArgs });
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(String(e)));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(
      () => (window as unknown as { nibbleResult?: unknown }).nibbleResult !== undefined,
      null,
      {
        timeout: timeoutMs,
      },
    );
    const result = await page.evaluate(() => (window as unknown as { nibbleResult: unknown }).nibbleResult);
    return { result: result as Record<string, unknown>, logs };
  } finally {
    await browser.close();
    server.close();
  }
}

it('headless Chromium runs the stories260K greedy gold on webgpu (navigator.gpu)', async () => {
  const bundle = await build({
    entryPoints: [new URL('./browser/page.ts', import.meta.url).pathname],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    conditions: ['source'],
    logLevel: 'silent',
  });
  const { result, logs } = await runPage(
    {
      '/': { type: 'text/html', body: '<!doctype html><script type="module" src="/page.js"></script>' },
      '/page.js': { type: 'text/javascript', body: bundle.outputFiles[0].text },
      '/model.gguf': { type: 'application/octet-stream', body: readFileSync(fixture('models/stories260K.gguf')) },
    },
    240_000,
  );
  expect(result.error, logs.join('\n')).toBeUndefined();
  expect(String(result.adapter)).toMatch(/swiftshader/i);
  expect(result.ids).toEqual(greedy.tokens);
  expect(result.text).toBe(gold.cases.find((c) => c.id === 'greedy-200')?.expected_text);
}, 300_000);
