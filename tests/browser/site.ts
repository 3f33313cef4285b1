/**
 * Builds the docs site for the browser tests into a fresh folder: `docs:gen`, TypeDoc (only when docs/api is
 * missing: CI runs `pnpm docs:api` before the tests) and `vitepress build`, failing on any warning it prints. One
 * test file (site.test.ts) builds it; keep the tests that need the site there, so it is built once.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

const bin = (name: string) => join(repoRoot, 'node_modules/.bin', name);

/** Builds the site into a new temporary folder and returns it; remove it with `rmSync(dir, { recursive: true })`. */
export function buildSite(): string {
  const siteDir = mkdtempSync(join(tmpdir(), 'nibble-site-'));
  const run = (cmd: string, args: string[]): string => {
    const r = spawnSync(cmd, args, { cwd: repoRoot, encoding: 'utf8', maxBuffer: 1 << 26 });
    // Without the terminal's colour codes (ESC [ ... m).
    const output = `${r.stdout}${r.stderr}`.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '');
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.error}):\n${output}`);
    return output;
  };
  run(process.execPath, ['--conditions=source', '--import', 'tsx', 'docs/scripts/generate.ts']);
  if (!existsSync(join(repoRoot, 'docs/api/index.md'))) run(bin('typedoc'), []);
  const out = run(bin('vitepress'), ['build', 'docs', '--outDir', siteDir]);
  if (/warn|error|\(!\)/i.test(out)) throw new Error(`vitepress build printed warnings:\n${out}`);
  return siteDir;
}
