// Every library entry point except the Node subpaths must bundle for a browser: no `node:` built-ins, no fs.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../', import.meta.url));
const NODE_ONLY = /(^|\/)node$/; // `@nibble/gguf/node` and the like are Node-only by design
const NOT_LIBRARIES = new Set(['@nibble/cli']);

interface Manifest {
  name: string;
  exports: Record<string, { source: string }>;
}

const entries: string[] = [];
for (const dir of readdirSync(`${root}packages`)) {
  const pkg = JSON.parse(readFileSync(`${root}packages/${dir}/package.json`, 'utf8')) as Manifest;
  if (NOT_LIBRARIES.has(pkg.name)) continue;
  for (const sub of Object.keys(pkg.exports)) {
    if (sub === './testing' || NODE_ONLY.test(sub)) continue;
    entries.push(sub === '.' ? pkg.name : `${pkg.name}${sub.slice(1)}`);
  }
}

describe('browser bundles', () => {
  it.each(entries)(
    '%s bundles for the browser without Node built-ins',
    async (entry) => {
      const result = await build({
        stdin: { contents: `export * from '${entry}';`, resolveDir: `${root}packages/cli`, loader: 'ts' },
        bundle: true,
        write: false,
        format: 'esm',
        platform: 'browser',
        conditions: ['source'],
        metafile: true,
        logLevel: 'silent',
      });
      const imports = Object.values(result.metafile.outputs).flatMap((o) => o.imports.map((i) => i.path));
      expect(imports.filter((p) => p.startsWith('node:') || ['fs', 'path', 'worker_threads'].includes(p))).toEqual([]);
    },
    60_000,
  );
});
