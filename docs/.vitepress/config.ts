/**
 * VitePress configuration of the nibble site. docs/ is a private workspace package that depends on the nibble
 * packages; the `source` export condition makes Vite take their TypeScript sources, so `pnpm docs:build` needs no
 * package build first.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type DefaultTheme, defineConfig } from 'vitepress';

const docs = join(dirname(fileURLToPath(import.meta.url)), '..');

// Multi-threaded WebAssembly needs SharedArrayBuffer, which browsers give only to cross-origin isolated pages.
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

// TypeDoc writes the API pages and their sidebar (`pnpm docs:api`); the site builds without them too.
const apiSidebarPath = join(docs, 'api/typedoc-sidebar.json');
// A package with several entry points (`@nibble/gguf` and `@nibble/gguf/node`) gets one item per entry, which TypeDoc
// calls `index` and `node`; the sidebar names them by their import path instead.
const entryNames = (items: DefaultTheme.SidebarItem[]): DefaultTheme.SidebarItem[] =>
  items.map((pkg) => ({
    ...pkg,
    ...(pkg.items
      ? { items: pkg.items.map((e) => ({ ...e, text: e.text === 'index' ? pkg.text : `${pkg.text}/${e.text}` })) }
      : {}),
  }));
const apiSidebar: DefaultTheme.SidebarItem[] = existsSync(apiSidebarPath)
  ? entryNames(JSON.parse(readFileSync(apiSidebarPath, 'utf8')))
  : [];

// Pages other work adds to docs/ appear in the sidebar as soon as their file exists.
const optional = (file: string, item: DefaultTheme.SidebarItem): DefaultTheme.SidebarItem[] =>
  existsSync(join(docs, file)) ? [item] : [];

export default defineConfig({
  title: 'nibble',
  description: 'Composable quantization primitives for GPT-style language models, in TypeScript.',
  lang: 'en-US',
  cleanUrls: false,
  lastUpdated: false,
  head: [['link', { rel: 'icon', type: 'image/svg+xml', href: '/favicon.svg' }]],
  // Generated fragments are included into pages, never pages themselves.
  srcExclude: ['parts/**', 'snippets/**', 'scripts/**', 'README.md'],
  markdown: {
    lineNumbers: false,
    // Pages may link repository files outside docs/ (`../tests/backend-kit/naive-backend.ts`): the site does not serve
    // them, so such a link becomes its path as text instead of a link that 404s.
    config(md) {
      md.core.ruler.push('repository-links', (state) => {
        const page = (state.env as { relativePath?: string }).relativePath;
        if (!page) return;
        for (const block of state.tokens) {
          const kids = block.children ?? [];
          for (let i = 0; i < kids.length; i++) {
            const href = kids[i].type === 'link_open' ? kids[i].attrGet('href') : null;
            if (!href || /^([a-z]+:|#|\/)/i.test(href)) continue;
            const target = posix.normalize(posix.join(posix.dirname(page), href.split('#')[0]));
            if (!target.startsWith('../')) continue;
            const close = kids.findIndex((t, j) => j > i && t.type === 'link_close' && t.level === kids[i].level);
            kids[i].type = 'repository_link_open';
            kids[i].tag = 'span';
            kids[i].attrs = [
              ['class', 'repository-path'],
              ['title', `${target.slice(3)} in the repository`],
            ];
            if (close > 0) {
              kids[close].type = 'repository_link_close';
              kids[close].tag = 'span';
            }
          }
        }
      });
    },
  },
  themeConfig: {
    nav: [
      { text: 'Guide', link: '/getting-started' },
      { text: 'Demo', link: '/demo' },
      { text: 'Benchmarks', link: '/benchmarks' },
      { text: 'API', link: '/api/' },
    ],
    sidebar: [
      {
        text: 'Introduction',
        items: [
          { text: 'Getting started', link: '/getting-started' },
          { text: 'Live demo', link: '/demo' },
        ],
      },
      {
        text: 'Concepts',
        items: [
          { text: 'Number formats', link: '/concepts/formats' },
          { text: 'Size and quality', link: '/concepts/size-and-quality' },
          { text: 'Backends', link: '/concepts/backends' },
          { text: 'GGUF files', link: '/concepts/gguf' },
          { text: 'Tokenizers', link: '/concepts/tokenizers' },
          { text: 'The graph IR', link: '/concepts/graph-ir' },
          ...optional('backend-guide.md', { text: 'Writing a backend', link: '/backend-guide' }),
        ],
      },
      {
        text: 'Guides',
        items: [
          { text: 'Choose a format', link: '/guides/choose-a-format' },
          { text: 'Quantize a model', link: '/guides/quantize-a-model' },
          { text: 'Run on WebGPU', link: '/guides/webgpu' },
          { text: 'Use one package alone', link: '/guides/one-package' },
        ],
      },
      {
        text: 'Project',
        items: [
          { text: 'Benchmarks', link: '/benchmarks' },
          { text: 'Architecture as built', link: '/architecture' },
        ],
      },
      { text: 'API reference', link: '/api/', collapsed: true, items: apiSidebar },
    ],
    search: { provider: 'local' },
    outline: { level: [2, 3] },
  },
  vite: {
    // Vite's server.headers reach the modules but not the pages VitePress renders: set them on every response.
    plugins: [
      {
        name: 'nibble-cross-origin-isolation',
        configureServer(server) {
          server.middlewares.use((_req, res, next) => {
            for (const [k, v] of Object.entries(isolation)) res.setHeader(k, v);
            next();
          });
        },
      },
    ],
    resolve: { conditions: ['source'] },
    ssr: { resolve: { conditions: ['source'] } },
    server: { headers: isolation },
    worker: { format: 'es' },
    build: { chunkSizeWarningLimit: 2000 },
  },
});
