/**
 * Browser vs browser: nibble-wasm and wllama (`@wllama/wllama` 3.8.1, llama.cpp compiled to WebAssembly) in the same
 * headless Chromium (Debian's), from a loopback server with COOP/COEP so both can use threads; decode and prompt
 * tok/s on stories260K and the 620 MB TinyLlama-shaped Q4_0 file, 1 and 2 threads, medians of runs, each run in a
 * fresh page.
 *
 *   npx tsx --conditions=source benchmarks/browser/bench.ts [--threads 1,2] [--runs 3] [--decode 32] [--prompt 32]
 *     [--models stories,TinyLlama] [--engines nibble-wasm,wllama]
 *
 * Engine `nibble-wasm-plain` is nibble-wasm with `relaxedSimd: false` (the plain SIMD kernels), for an A/B of the
 * relaxed-SIMD build (`--engines nibble-wasm,nibble-wasm-plain`). The runs of the engines alternate (run 1 of each,
 * then run 2 of each, ...), so a busy machine weighs on all of them alike.
 *
 * With NIBBLE_BENCH_QUICK=1 (`pnpm bench --quick`): stories260K only, one thread, one run, 16 decode steps. Writes
 * results/browser.json in the common shape (lib/results.ts) and prints a markdown table.
 */
import { createReadStream, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { tinyLlamaQ4_0Path } from '../gguf/generate.js';
import { quick, writeResults } from '../lib/results.js';
import { type BrowserDetails, browserCases, browserMethod, browserTitle } from './cases.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../..');
const args = process.argv.slice(2);
const flag = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const threadCounts = flag('threads', quick ? '1' : '1,2')
  .split(',')
  .map(Number);
const runs = Number(flag('runs', quick ? '1' : '3'));
const decode = Number(flag('decode', quick ? '16' : '32'));
const promptTokens = Number(flag('prompt', '32'));
const engines = flag('engines', 'nibble-wasm,wllama').split(',');
const only = flag('models', quick ? 'stories260K' : '');
const big = 'TinyLlama-shaped synthetic (Q4_0, 620 MB)';
const models = [
  { name: 'stories260K (F32)', path: join(root, 'fixtures/models/stories260K.gguf') },
  // The 620 MB file is made only when this run measures it.
  ...(only === '' || only.split(',').some((o) => big.includes(o))
    ? [{ name: big, path: await tinyLlamaQ4_0Path() }]
    : []),
].filter((m) => (only === '' || only.split(',').some((o) => m.name.includes(o))) && existsSync(m.path));

const page = await build({
  entryPoints: [join(here, 'page.ts')],
  bundle: true,
  write: false,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  conditions: ['source'],
  logLevel: 'silent',
});
const wllamaWasm = join(root, 'benchmarks/node_modules/@wllama/wllama/esm/wasm/wllama.wasm');

/** A loopback server with the cross-origin isolation headers (the part to swap for tests/browser/harness.ts). */
const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  if (path === '/') {
    res.setHeader('Content-Type', 'text/html');
    res.end('<!doctype html><meta charset="utf-8"><script type="module" src="/page.js"></script>');
  } else if (path === '/page.js') {
    res.setHeader('Content-Type', 'text/javascript');
    res.end(page.outputFiles[0].text);
  } else if (path === '/wllama.wasm' || path.startsWith('/model/')) {
    const file = path === '/wllama.wasm' ? wllamaWasm : models[Number(path.slice(7))]?.path;
    if (file === undefined) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader('Content-Type', path.endsWith('.wasm') ? 'application/wasm' : 'application/octet-stream');
    res.setHeader('Content-Length', statSync(file).size);
    createReadStream(file).pipe(res);
  } else {
    res.statusCode = 404;
    res.end();
  }
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

const { chromium } = await import('playwright-core');
const profile = mkdtempSync(join(tmpdir(), 'nibble-bench-chromium-'));
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

interface Result {
  engine: string;
  threads: number;
  promptTokens?: number;
  promptTokPerSec?: number;
  decodeTokPerSec?: number;
  loadMs: number;
  note: string | null;
  /** nibble-wasm: the kernel build that ran ('simd128' or 'relaxed-simd'). */
  simd?: string;
  error?: string;
}
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
const rows: {
  model: string;
  engine: string;
  threads: number;
  promptTokens: number;
  promptTokPerSec: number;
  decodeTokPerSec: number;
}[] = [];
try {
  for (const threads of threadCounts)
    for (const [mi, m] of models.entries()) {
      const byEngine = new Map<string, Result[]>(engines.map((e) => [e, []]));
      for (let r = 0; r < runs; r++)
        for (const engine of engines) {
          const p = await context.newPage();
          await p.goto(
            `${base}?engine=${engine}&model=/model/${mi}&threads=${threads}&prompt=${promptTokens}&decode=${decode}`,
          );
          await p.waitForFunction(() => (globalThis as { __bench?: unknown }).__bench !== undefined, undefined, {
            timeout: 600_000,
          });
          const res = (await p.evaluate(() => (globalThis as { __bench?: unknown }).__bench)) as Result;
          await p.close();
          if (res.error) throw new Error(`${engine} on ${m.name}: ${res.error}`);
          if (res.note) console.error(`${engine}: ${res.note}`);
          console.error(
            `${m.name}, ${threads} thread(s), ${engine}${res.simd ? ` (${res.simd})` : ''}, run ${r + 1}: decode ${res.decodeTokPerSec?.toFixed(2)} tok/s`,
          );
          byEngine.get(engine)?.push(res);
        }
      for (const [engine, results] of byEngine)
        rows.push({
          model: m.name,
          engine,
          threads,
          promptTokens: results[0].promptTokens ?? promptTokens,
          promptTokPerSec: Math.round(100 * median(results.map((x) => x.promptTokPerSec ?? 0))) / 100,
          decodeTokPerSec: Math.round(100 * median(results.map((x) => x.decodeTokPerSec ?? 0))) / 100,
        });
    }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  server.close();
}
const details: BrowserDetails = { date: new Date().toISOString(), runs, decode, quick, rows };
writeResults({
  topic: 'browser',
  title: browserTitle,
  method: browserMethod(details),
  peers: ['@wllama/wllama', 'playwright-core'],
  cases: browserCases(details),
  details,
});
console.log('| model | engine (Chromium) | threads | prompt tokens | prompt tok/s | decode tok/s | decode vs wllama |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) {
  const w = rows.find((x) => x.engine === 'wllama' && x.model === r.model && x.threads === r.threads);
  const ratio =
    w && r.engine !== 'wllama' && w.decodeTokPerSec ? `${(r.decodeTokPerSec / w.decodeTokPerSec).toFixed(1)}x` : '';
  console.log(
    `| ${r.model} | ${r.engine} | ${r.threads} | ${r.promptTokens} | ${r.promptTokPerSec} | ${r.decodeTokPerSec} | ${ratio} |`,
  );
}
