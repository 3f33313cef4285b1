// `nibble` from an install, not from the repository: pack every workspace package (pnpm pack), install the tarballs
// with npm in a temporary folder outside the repository, and run the installed binary. The bundled model and text
// must come with @nibble/cli itself. Needs the packages built (`pnpm build`, as .ci/run does before the tests).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const packagesDir = fileURLToPath(new URL('../../', import.meta.url));
/** @nibble/cli and every workspace package it depends on, directly or not (folder names). */
function workspaceClosure(start: string): string[] {
  const seen = new Set<string>();
  const visit = (dir: string) => {
    if (seen.has(dir)) return;
    seen.add(dir);
    const pkg = JSON.parse(readFileSync(join(packagesDir, dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    for (const dep of Object.keys(pkg.dependencies ?? {})) if (dep.startsWith('@nibble/')) visit(dep.slice(8));
  };
  visit(start);
  return [...seen];
}
const names = workspaceClosure('cli');
const built = names.every((n) => existsSync(join(packagesDir, n, 'dist', 'index.js')));

describe.skipIf(!built)('installed @nibble/cli (skipped: run `pnpm build` first)', () => {
  const root = mkdtempSync(join(tmpdir(), 'nibble-install-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('packs, installs and runs demo and run with the bundled model', { timeout: 180_000 }, () => {
    const tgz = join(root, 'tgz');
    mkdirSync(tgz);
    for (const n of names) {
      execFileSync('pnpm', ['pack', '--pack-destination', tgz], { cwd: join(packagesDir, n), stdio: 'pipe' });
    }
    const file = (n: string) => `file:${join(tgz, readdirSync(tgz).find((f) => f.startsWith(`nibble-${n}-`))!)}`;
    const app = join(root, 'app');
    mkdirSync(app);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'app',
        private: true,
        dependencies: { '@nibble/cli': file('cli') },
        // The workspace packages are not on a registry: every @nibble/* dependency resolves to its tarball.
        overrides: Object.fromEntries(names.filter((n) => n !== 'cli').map((n) => [`@nibble/${n}`, file(n)])),
      }),
    );
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: app, stdio: 'pipe' });
    const installed = join(app, 'node_modules', '@nibble', 'cli');
    expect(existsSync(join(installed, 'assets', 'stories260K.gguf'))).toBe(true);
    expect(existsSync(join(installed, 'assets', 'cs336-tinystories_sample.txt'))).toBe(true);
    const nibble = (...args: string[]) =>
      execFileSync(join(app, 'node_modules', '.bin', 'nibble'), args, { cwd: root, encoding: 'utf8' });

    const demo = JSON.parse(nibble('demo', '--json', '--table-only')) as { model: string; rows: { format: string }[] };
    expect(demo.model).toMatch(/5 layers, dim 64/);
    expect(demo.rows.map((r) => r.format)).toContain('Q4_0');

    const model = join(installed, 'assets', 'stories260K.gguf');
    const run = JSON.parse(nibble('run', model, '-n', '5', '--temperature', '0', '--json')) as { text: string };
    expect(run.text).toBe('Once upon a time,');
  });
});
