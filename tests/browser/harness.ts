/**
 * Browser-test harness: a static file server on 127.0.0.1 (random port) with or without cross-origin isolation, and
 * Debian's Chromium driven by playwright-core, with every console error, page error and failed request collected.
 * Never downloads a browser: it runs /usr/bin/chromium (override with NIBBLE_CHROMIUM).
 *
 * @example
 * ```ts
 * const server = await serveStatic({ root: 'docs/.vitepress/dist' });
 * const chromium = await launchChromium({ webgpu: true });
 * const tab = await openPage(chromium, `${server.url}/demo.html`);
 * expect(tab.errors()).toEqual([]);
 * await chromium.close();
 * await server.close();
 * ```
 */
import { createReadStream, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

/** Where Debian installs Chromium (`apt-get install -y chromium`). */
export const chromiumPath = process.env.NIBBLE_CHROMIUM ?? '/usr/bin/chromium';

/** The headers that make a page cross-origin isolated (`crossOriginIsolated === true`, SharedArrayBuffer). */
export const isolationHeaders: Readonly<Record<string, string>> = Object.freeze({
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
});

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.woff2': 'font/woff2',
  '.gguf': 'application/octet-stream',
};

/** Options of {@link serveStatic}. */
export interface ServeOptions {
  /** The directory to serve. */
  root: string;
  /** Send COOP/COEP/CORP (default true); false serves the same files without cross-origin isolation. */
  isolation?: boolean;
  /** Extra files by URL path (`/stories260K.gguf`), served before `root`. */
  files?: Record<string, string | Uint8Array>;
  /** Port on 127.0.0.1 (default 0: any free one). */
  port?: number;
}

/** A running {@link serveStatic} server. */
export interface StaticServer {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  readonly url: string;
  /** Every URL path requested so far that was not found. */
  readonly notFound: string[];
  close(): Promise<void>;
}

/**
 * Serves `root` on 127.0.0.1 at a random port: GET and HEAD, `Range: bytes=a-b` (GGUF files are read by range),
 * `index.html` for directories, and `x.html` for `/x` (VitePress's clean URLs).
 */
export async function serveStatic(options: ServeOptions): Promise<StaticServer> {
  const root = resolve(options.root);
  const isolation = options.isolation ?? true;
  const notFound: string[] = [];
  const fileOf = (urlPath: string): string | undefined => {
    const extra = options.files?.[urlPath];
    if (typeof extra === 'string') return extra;
    const p = normalize(join(root, decodeURIComponent(urlPath)));
    if (p !== root && !p.startsWith(root + sep)) return undefined; // no ../ out of root
    for (const c of [p, join(p, 'index.html'), `${p}.html`]) if (existsSync(c) && statSync(c).isFile()) return c;
    return undefined;
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const urlPath = new URL(req.url ?? '/', 'http://x').pathname;
    const headers: Record<string, string | number> = { 'Accept-Ranges': 'bytes', 'Cache-Control': 'no-store' };
    if (isolation) Object.assign(headers, isolationHeaders);
    const extra = options.files?.[urlPath];
    const path = extra instanceof Uint8Array ? undefined : fileOf(urlPath);
    if (path === undefined && urlPath === '/favicon.ico') {
      // Browsers ask for it on their own; a site without one is not broken.
      res.writeHead(204, headers).end();
      return;
    }
    if (!(extra instanceof Uint8Array) && path === undefined) {
      notFound.push(urlPath);
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' }).end(`not found: ${urlPath}`);
      return;
    }
    headers['Content-Type'] = contentTypes[extname(path ?? urlPath)] ?? 'application/octet-stream';
    const size = extra instanceof Uint8Array ? extra.byteLength : statSync(path as string).size;
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (range && size > 0) {
      start = range[1] === '' ? Math.max(0, size - Number(range[2])) : Number(range[1]);
      end = range[1] !== '' && range[2] !== '' ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start > end || start >= size) {
        res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}` }).end();
        return;
      }
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    }
    headers['Content-Length'] = end - start + 1;
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || size === 0) res.end();
    else if (extra instanceof Uint8Array) res.end(extra.subarray(start, end + 1));
    else createReadStream(path as string, { start, end }).pipe(res);
  });
  await new Promise<void>((ok) => server.listen(options.port ?? 0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    notFound,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/** Options of {@link launchChromium}. */
export interface LaunchOptions {
  /** Turn WebGPU on with the SwiftShader (software) adapter. */
  webgpu?: boolean;
  /** More command-line flags. */
  args?: string[];
}

/** A launched Chromium with a fresh profile; `close()` ends the browser and removes the profile. */
export interface ChromiumSession {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Launches Debian's Chromium headless with the flags of the project's toolchain notes, in a fresh profile
 * directory: no sandbox (CI runs as root), no background networking, component updates, sync or QUIC.
 */
export async function launchChromium(options: LaunchOptions = {}): Promise<ChromiumSession> {
  if (!existsSync(chromiumPath)) {
    throw new Error(`${chromiumPath} not found: install Debian's chromium (apt-get install -y chromium)`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'nibble-chromium-'));
  const args = [
    '--no-sandbox',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
    '--disable-dev-shm-usage',
    ...(options.webgpu ? ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'] : []),
    ...(options.args ?? []),
  ];
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args,
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** An open tab and what went wrong in it. */
export interface Tab {
  readonly page: Page;
  /** `console.error` messages, uncaught exceptions and failed or 4xx/5xx requests, in order. */
  errors(): string[];
  /** Every console message, `type: text`. */
  readonly console: string[];
}

/**
 * Opens `url` in a new tab of `session` and records its errors from the first request on. Waits for the `load`
 * event (or `waitUntil`).
 */
export async function openPage(
  session: ChromiumSession,
  url: string,
  options: { waitUntil?: 'load' | 'domcontentloaded' | 'networkidle' } = {},
): Promise<Tab> {
  const page = await session.context.newPage();
  const errors: string[] = [];
  const messages: string[] = [];
  page.on('console', (m) => {
    messages.push(`${m.type()}: ${m.text()}`);
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  page.on('requestfailed', (r) => {
    // A navigation or download the page itself cancelled is not an error of the page.
    const why = r.failure()?.errorText ?? 'failed';
    if (!/ERR_ABORTED/.test(why)) errors.push(`request failed: ${r.url()} (${why})`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) errors.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  await page.goto(url, { waitUntil: options.waitUntil ?? 'load' });
  return { page, errors: () => [...errors], console: messages };
}
