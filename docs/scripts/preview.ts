/**
 * `pnpm docs:preview`: serves the built site (docs/.vitepress/dist) on 127.0.0.1 with the headers that make it
 * cross-origin isolated (COOP/COEP/CORP), which `vitepress preview` cannot send. PORT picks the port (default 4173).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveStatic } from '../../tests/browser/harness.js';

const dist = join(dirname(fileURLToPath(import.meta.url)), '../.vitepress/dist');
if (!existsSync(join(dist, 'index.html'))) {
  console.error('docs:preview: no built site in docs/.vitepress/dist; run pnpm docs:build first');
  process.exit(1);
}
const server = await serveStatic({ root: dist, port: Number(process.env.PORT ?? 4173) });
console.log(`the built site, cross-origin isolated: ${server.url}/ (Ctrl-C stops it)`);
