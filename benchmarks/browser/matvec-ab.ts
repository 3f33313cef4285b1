/**
 * The q4_0 decode matvec of nibble-wasm in headless Chromium (Debian's), relaxed-SIMD build against the plain SIMD
 * build (`relaxedSimd: false`), on TinyLlama's shapes ([2048, 2048], [5632, 2048], [2048, 5632]) with one token and
 * one thread: the calls alternate between the two builds, and each build's figure is the median (and the minimum)
 * of its calls, as GB/s of weight bytes read. Both builds' outputs are compared bit for bit on the way.
 *
 *   npx tsx --conditions=source benchmarks/browser/matvec-ab.ts [--calls 60] [--copies 1]
 *
 * `--copies K` uploads K copies of each weight and cycles through them: with K = 16 (over 100 MB per shape) the
 * weights stream from memory as in a model's decode step; with 1 they stay in the last-level cache.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const i = args.indexOf('--calls');
const calls = i >= 0 ? Number(args[i + 1]) : 60;
const j = args.indexOf('--copies');
const copies = j >= 0 ? Number(args[j + 1]) : 1;

const page = await build({
  entryPoints: [join(here, 'matvec-page.ts')],
  bundle: true,
  write: false,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  conditions: ['source'],
  logLevel: 'silent',
});
const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
  if (path === '/') {
    res.setHeader('Content-Type', 'text/html');
    res.end('<!doctype html><meta charset="utf-8"><script type="module" src="/page.js"></script>');
  } else if (path === '/page.js') {
    res.setHeader('Content-Type', 'text/javascript');
    res.end(page.outputFiles[0].text);
  } else {
    res.statusCode = 404;
    res.end();
  }
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
const { chromium } = await import('playwright-core');
const profile = mkdtempSync(join(tmpdir(), 'nibble-matvec-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
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
try {
  const p = await context.newPage();
  await p.goto(`${base}?calls=${calls}&copies=${copies}`);
  await p.waitForFunction(() => (globalThis as { __bench?: unknown }).__bench !== undefined, undefined, {
    timeout: 600_000,
  });
  const r = (await p.evaluate(() => (globalThis as { __bench?: unknown }).__bench)) as {
    error?: string;
    rows?: { shape: string; build: string; medianGBs: number; bestGBs: number; medianMs: number }[];
    identical?: boolean;
  };
  if (r.error) throw new Error(r.error);
  console.log(`outputs bit-identical: ${r.identical}`);
  console.log('| shape [out, in] | build | median ms | median GB/s | best GB/s |');
  console.log('|---|---|---|---|---|');
  for (const x of r.rows ?? [])
    console.log(
      `| ${x.shape} | ${x.build} | ${x.medianMs.toFixed(3)} | ${x.medianGBs.toFixed(2)} | ${x.bestGBs.toFixed(2)} |`,
    );
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  server.close();
}
