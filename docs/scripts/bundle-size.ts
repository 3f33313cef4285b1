/**
 * What an import costs in a browser bundle: esbuild bundles, minifies and tree-shakes a one-line entry the way an
 * application's bundler would, and the figure is the minified and the gzipped size of the result.
 */
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

/** One measured import. */
export interface BundleSize {
  /** The entry, e.g. `import { q4_0 } from '@nibble/formats/q4_0'`. */
  entry: string;
  minifiedBytes: number;
  gzipBytes: number;
  /** The nibble sources that ended up in the bundle, relative to the repository. */
  inputs: string[];
}

/**
 * Bundles `code` (an ES module that re-exports what an application would use) from the repository at `root`.
 *
 * @example
 * ```ts
 * await measureBundle(root, "export { q4_0 } from '@nibble/formats/q4_0';");
 * ```
 */
export async function measureBundle(root: string, code: string): Promise<BundleSize> {
  const result = await build({
    stdin: { contents: code, resolveDir: `${root}/packages/cli`, loader: 'ts' },
    bundle: true,
    write: false,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: ['source'],
    metafile: true,
    logLevel: 'silent',
  });
  const out = result.outputFiles[0].contents;
  const inputs = Object.keys(result.metafile.inputs)
    .map((p) => p.replace(/^(\.\.\/)+/, ''))
    .filter((p) => p.startsWith('packages/'))
    .sort();
  return {
    entry: code.trim(),
    minifiedBytes: out.byteLength,
    gzipBytes: gzipSync(out, { level: 9 }).byteLength,
    inputs,
  };
}

/** The imports the "use one package alone" guide compares. */
export const bundleEntries: Record<string, string> = {
  'Q4_0 codec only': "export { q4_0 } from '@nibble/formats/q4_0';",
  'Q8_0 codec only': "export { q8_0 } from '@nibble/formats/q8_0';",
  'Q4_K codec only': "export { q4_K } from '@nibble/formats/q4_k';",
  'every format (the barrel)': "export * from '@nibble/formats';",
  'GGUF reader and writer': "export * from '@nibble/gguf';",
  tokenizers: "export * from '@nibble/tokenizer';",
  'runner + JS backend': "export * from '@nibble/runner'; import '@nibble/backend-js';",
};

/** The bundle-size table as markdown. */
export async function bundleSizeTable(root: string): Promise<string> {
  const lines = ['| what you import | entry | minified | gzip |', '|---|---|---:|---:|'];
  for (const [what, code] of Object.entries(bundleEntries)) {
    const m = await measureBundle(root, code);
    const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
    lines.push(
      `| ${what} | \`${m.entry.replace(/^export /, '').replace(/\|/g, '\\|')}\` | ${kb(m.minifiedBytes)} | ${kb(m.gzipBytes)} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}
