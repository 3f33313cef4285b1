/**
 * In a real browser: Debian's Chromium (headless, driven by playwright-core) opens a page served from 127.0.0.1 with
 * COOP/COEP (so SharedArrayBuffer exists), the page loads stories260K and runs the greedy gold on 'wasm' with 2
 * threads, and the test compares the ids with llama2.c's.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturePath, type GreedyRef, readJson } from '../../runner/src/test/fixtures.js';

const chromium = '/usr/bin/chromium';
const greedy = readJson<GreedyRef>('reference', 'stories260K-greedy-llama2c.json');

/**
 * A static server on 127.0.0.1 with the cross-origin isolation headers, serving `files` (path -> bytes). The part to
 * swap for the shared harness (tests/browser/harness.ts) once it lands.
 */
async function serveIsolated(
  files: Record<string, { body: Uint8Array | string; type: string }>,
): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const f = files[new URL(req.url ?? '/', 'http://x').pathname];
    // /plain/ is the same page without the isolation headers (no SharedArrayBuffer there).
    if (!req.url?.startsWith('/plain/')) {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
      res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    }
    if (f === undefined) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader('Content-Type', f.type);
    res.end(f.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Headless Chromium with toolchain.md's flags and a fresh profile (the other part to swap for the harness). */
async function launchChromium() {
  const { chromium: pw } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'nibble-chromium-'));
  const context = await pw.launchPersistentContext(profile, {
    executablePath: chromium,
    headless: true,
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

describe.skipIf(!existsSync(chromium))('wasm backend in Chromium (COOP/COEP page, 2 threads)', () => {
  let server: Awaited<ReturnType<typeof serveIsolated>>;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  beforeAll(async () => {
    const bundle = async (name: string) =>
      (
        await build({
          entryPoints: [fileURLToPath(new URL(`./browser/${name}`, import.meta.url))],
          bundle: true,
          write: false,
          format: 'esm',
          platform: 'browser',
          target: 'es2022',
          conditions: ['source'],
          logLevel: 'silent',
        })
      ).outputFiles[0].text;
    const golden: Record<string, { body: Uint8Array; type: string }> = {};
    const goldenDir = fixturePath('golden', 'ggml-synthetic');
    for (const sub of ['', 'inputs/', 'q4_0/', 'q4_1/']) {
      for (const f of readdirSync(join(goldenDir, sub))) {
        if (f.includes('.'))
          golden[`/golden/${sub}${f}`] = {
            body: readFileSync(join(goldenDir, sub, f)),
            type: 'application/octet-stream',
          };
      }
    }
    server = await serveIsolated({
      ...golden,
      '/relaxed/': {
        body: '<!doctype html><meta charset="utf-8"><script type="module" src="/relaxed-page.js"></script>',
        type: 'text/html',
      },
      '/relaxed-page.js': { body: await bundle('relaxed-page.ts'), type: 'text/javascript' },
      '/stories260K-Q4_0.gguf': {
        body: readFileSync(fixturePath('models', 'stories260K-Q4_0.gguf')),
        type: 'application/octet-stream',
      },
      '/': {
        body: '<!doctype html><meta charset="utf-8"><script type="module" src="/page.js"></script>',
        type: 'text/html',
      },
      '/plain/': {
        body: '<!doctype html><meta charset="utf-8"><script type="module" src="/page.js"></script>',
        type: 'text/html',
      },
      '/page.js': { body: await bundle('page.ts'), type: 'text/javascript' },
      '/stories260K.gguf': {
        body: readFileSync(fixturePath('models', 'stories260K.gguf')),
        type: 'application/octet-stream',
      },
    });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function runPage(path: string) {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(server.url + path);
    await page.waitForFunction(() => (globalThis as { __nibble?: unknown }).__nibble !== undefined, undefined, {
      timeout: 90_000,
    });
    const r = (await page.evaluate(() => (globalThis as { __nibble?: unknown }).__nibble)) as {
      ids?: number[];
      backend?: string;
      simd?: string;
      threads?: number;
      note?: string | null;
      isolated?: boolean;
      error?: string;
    };
    await page.close();
    return { r, errors };
  }

  it('generates the 200 greedy ids of llama2.c on wasm with 2 threads', async () => {
    const { r, errors } = await runPage('');
    expect(errors).toEqual([]);
    expect(r.error).toBeUndefined();
    expect(r.isolated).toBe(true);
    expect(r.backend).toBe('wasm');
    // Chromium has relaxed SIMD: the default picks that build.
    expect(r.simd).toBe('relaxed-simd');
    expect(r.note).toBeNull();
    expect(r.threads).toBe(2);
    expect(r.ids).toEqual(greedy.tokens);
  });

  it('runs one thread on a page without cross-origin isolation, says why, and still gives the gold ids', async () => {
    const { r, errors } = await runPage('plain/');
    expect(errors).toEqual([]);
    expect(r.error).toBeUndefined();
    expect(r.isolated).toBe(false);
    expect(r.threads).toBe(1);
    expect(r.note).toMatch(/running 1 thread instead of 2: SharedArrayBuffer is not available/);
    expect(r.ids).toEqual(greedy.tokens);
  });

  for (const threads of [1, 2]) {
    it(`relaxed SIMD, ${threads} thread(s): chosen, bit-identical to the plain build, golden dots, greedy gold`, async () => {
      const { r, errors } = await runPage(`relaxed/?threads=${threads}`);
      const x = r as unknown as {
        error?: string;
        relaxed: string;
        plain: string;
        threads: number[];
        matmuls: { cases: number; mismatch?: string };
        q4Logits: { length: number; firstDiff: number };
        q4Ids: { relaxed: number[]; plain: number[] };
        ids: number[];
        conformance: { passed: string[]; failed: string[] };
      };
      expect(errors).toEqual([]);
      expect(x.error).toBeUndefined();
      expect(x.relaxed).toBe('wasm (relaxed-simd)');
      expect(x.plain).toBe('wasm (simd128)');
      expect(x.threads).toEqual([threads, threads]);
      expect(x.matmuls.mismatch).toBeUndefined();
      expect(x.matmuls.cases).toBe(112);
      expect(x.q4Logits.length).toBe(512 * 16 + 512 * 24);
      expect(x.q4Logits.firstDiff).toBe(-1);
      expect(x.q4Ids.relaxed).toHaveLength(100);
      expect(x.q4Ids.relaxed).toEqual(x.q4Ids.plain);
      expect(x.ids).toEqual(greedy.tokens);
      expect(x.conformance.failed).toEqual([]);
      expect(x.conformance.passed).toContain('matmul: ggml golden dot products (ggml-synthetic)');
      expect(x.conformance.passed).toContain('matmul: every claimed weight dtype x every activation mode, vs float64');
    }, 180_000);
  }
});
