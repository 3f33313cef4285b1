// The harness itself: isolation headers on and off, range requests, error collection and WebGPU on SwiftShader.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChromiumSession, launchChromium, openPage, serveStatic } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'nibble-harness-'));
writeFileSync(
  join(dir, 'index.html'),
  '<!doctype html><title>ok</title><p id="iso"></p><script>document.getElementById("iso").textContent = String(crossOriginIsolated)</script>',
);
writeFileSync(
  join(dir, 'broken.html'),
  '<!doctype html><title>broken</title><img src="missing.png"><script>console.error("boom"); null.x</script>',
);
writeFileSync(
  join(dir, 'bytes.bin'),
  new Uint8Array(256).map((_, i) => i),
);

let chromium: ChromiumSession;
beforeAll(async () => {
  chromium = await launchChromium({ webgpu: true });
});
afterAll(async () => {
  await chromium?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('browser harness', () => {
  it('serves with and without cross-origin isolation', async () => {
    for (const isolation of [true, false]) {
      const server = await serveStatic({ root: dir, isolation });
      try {
        const tab = await openPage(chromium, `${server.url}/`);
        expect(await tab.page.textContent('#iso')).toBe(String(isolation));
        expect(await tab.page.evaluate(() => typeof SharedArrayBuffer)).toBe(isolation ? 'function' : 'undefined');
        expect(tab.errors()).toEqual([]);
        await tab.page.close();
      } finally {
        await server.close();
      }
    }
  });

  it('answers range requests with exactly the bytes asked for', async () => {
    const server = await serveStatic({ root: dir });
    try {
      const r = await fetch(`${server.url}/bytes.bin`, { headers: { range: 'bytes=10-13' } });
      expect(r.status).toBe(206);
      expect(r.headers.get('content-range')).toBe('bytes 10-13/256');
      expect([...new Uint8Array(await r.arrayBuffer())]).toEqual([10, 11, 12, 13]);
      const outside = await fetch(`${server.url}/../package.json`);
      expect(outside.status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('collects console errors, uncaught exceptions and missing files', async () => {
    const server = await serveStatic({ root: dir });
    try {
      const tab = await openPage(chromium, `${server.url}/broken.html`);
      const errors = tab.errors().join('\n');
      expect(errors).toContain('console.error: boom');
      expect(errors).toContain('uncaught: ');
      expect(errors).toMatch(/HTTP 404: .*missing\.png/);
      expect(server.notFound).toContain('/missing.png');
      await tab.page.close();
    } finally {
      await server.close();
    }
  });

  it('gives a WebGPU adapter (SwiftShader) when asked for WebGPU', async () => {
    const server = await serveStatic({ root: dir });
    try {
      const tab = await openPage(chromium, `${server.url}/`);
      const adapter = await tab.page.evaluate(async () => {
        const gpu = (
          navigator as Navigator & {
            gpu?: {
              requestAdapter(): Promise<{
                info?: { vendor: string; architecture: string; description: string };
              } | null>;
            };
          }
        ).gpu;
        if (!gpu) return 'no navigator.gpu';
        const a = await gpu.requestAdapter();
        return a ? `${a.info?.vendor} ${a.info?.architecture} ${a.info?.description}` : 'no adapter';
      });
      expect(adapter.toLowerCase()).toContain('swiftshader');
      await tab.page.close();
    } finally {
      await server.close();
    }
  });
});
