// Every package's exports map: `source` first (so TypeScript and Vitest with the `source` condition read src/ without
// tsconfig paths), then `types`, then `import`, all pointing at files that exist or that the build writes. The
// published shape itself is checked by publint and @arethetypeswrong/cli after the build (`pnpm check:exports`).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../', import.meta.url));

interface Manifest {
  name: string;
  sideEffects?: boolean | string[];
  files?: string[];
  exports: Record<string, Record<string, string>>;
}

const packages = readdirSync(`${root}packages`).map((dir) => ({
  dir,
  pkg: JSON.parse(readFileSync(`${root}packages/${dir}/package.json`, 'utf8')) as Manifest,
}));

describe('exports maps', () => {
  it.each(packages.map((p) => [p.pkg.name, p] as const))('%s: source, types, import in that order', (_name, p) => {
    // false, or the files that register something on import (a backend registering itself).
    expect(p.pkg.sideEffects === false || Array.isArray(p.pkg.sideEffects), 'sideEffects').toBe(true);
    expect(p.pkg.files).toContain('dist');
    const entries = Object.entries(p.pkg.exports);
    expect(entries.length).toBeGreaterThan(0);
    for (const [sub, conditions] of entries) {
      expect(Object.keys(conditions), sub).toEqual(['source', 'types', 'import']);
      const base = conditions.source.replace(/^\.\/src\//, '').replace(/\.ts$/, '');
      expect(existsSync(`${root}packages/${p.dir}/${conditions.source}`), conditions.source).toBe(true);
      expect(conditions.types, sub).toBe(`./dist/${base}.d.ts`);
      expect(conditions.import, sub).toBe(`./dist/${base}.js`);
    }
  });
});
