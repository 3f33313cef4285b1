// In a browser: a File picked through an <input type=file> is quantized in the page to a Blob (read by slices, written
// part by part) to Q4_0 and Q4_K_M, in the page's thread and on a pool of two Web Workers; the bytes must be the
// ones llama.cpp wrote (the Node tests check the same hashes). Debian's Chromium, driven by playwright-core.
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = fileURLToPath(new URL('.', import.meta.url));
const fixtures = fileURLToPath(new URL('../../../fixtures/', import.meta.url));
const chromiumPath = '/usr/bin/chromium';
const manifest = JSON.parse(readFileSync(`${fixtures}quantize/manifest.json`, 'utf8')) as {
  runs: { model: string; label: string; sha256?: string }[];
};
const llamaSha = (label: string) => manifest.runs.find((r) => r.model === 'stories260K' && r.label === label)?.sha256;

// The page: quantize the picked file with the library and report SHA-256s.
const pageSource = `
import { quantizeToBlob, webWorkerPool } from '@nibble/quantize';
const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
window.quantizePicked = async (preset, threads) => {
  const file = document.querySelector('input').files[0];
  const pool = threads > 1 ? await webWorkerPool({ threads, url: new URL('./worker.js', location.href) }) : undefined;
  try {
    let progress = 0;
    const { blob, result } = await quantizeToBlob(file, { preset, pool, onProgress: () => progress++ });
    return { sha: hex(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer())), size: blob.size, progress, threads: result.threads, inputIsFile: file instanceof File };
  } finally {
    await pool?.close();
  }
};
`;

async function bundle(entry: { contents?: string; file?: string }): Promise<string> {
  const r = await build({
    ...(entry.file
      ? { entryPoints: [entry.file] }
      : { stdin: { contents: entry.contents as string, resolveDir: here, loader: 'js' } }),
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    conditions: ['source'],
    logLevel: 'silent',
  });
  return r.outputFiles[0].text;
}

let server: Server;
let base = '';
let browser: Browser;

beforeAll(async () => {
  const [app, worker] = await Promise.all([bundle({ contents: pageSource }), bundle({ file: `${here}worker-web.ts` })]);
  const files: Record<string, [string, string]> = {
    '/': ['text/html', '<!doctype html><input type="file"><script type="module" src="app.js"></script>'],
    '/app.js': ['text/javascript', app],
    '/worker.js': ['text/javascript', worker],
  };
  server = createServer((req, res) => {
    const f = files[req.url ?? ''];
    if (!f) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': f[0] }).end(f[1]);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  server?.close();
});

describe.runIf(existsSync(chromiumPath))('quantizeModel in Chromium', () => {
  for (const [preset, threads] of [
    ['Q4_0', 1],
    ['Q4_K_M', 1],
    ['Q4_K_M', 2],
  ] as const) {
    it(`a picked File to a Blob: ${preset}, ${threads} thread(s), llama.cpp's bytes`, async () => {
      const page = await browser.newPage();
      try {
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(base);
        await page.waitForFunction(() => 'quantizePicked' in window);
        await page.setInputFiles('input', `${fixtures}models/stories260K.gguf`);
        const r = await page.evaluate(
          ([p, t]) =>
            (
              window as unknown as { quantizePicked(p: string, t: number): Promise<Record<string, unknown>> }
            ).quantizePicked(p, t),
          [preset, threads] as const,
        );
        expect(errors).toEqual([]);
        expect(r.inputIsFile).toBe(true);
        expect(r.threads).toBe(threads);
        expect(r.progress).toBeGreaterThanOrEqual(48);
        expect(r.sha).toBe(llamaSha(preset));
      } finally {
        await page.close();
      }
    });
  }
});
