import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

// One entry per `exports` subpath of package.json, so a new format needs no line here.
const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as {
  exports: Record<string, { source: string }>;
};

export default defineConfig({
  entry: Object.values(pkg.exports).map((e) => e.source),
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  platform: 'neutral',
});
