// Runs every benchmark (benchmarks/<topic>/bench.ts) one after another, each in its own process so that one
// benchmark's heap never disturbs the next. Pass topic names to run only those: `pnpm bench formats gguf`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const wanted = process.argv.slice(2);
const topics = readdirSync(here, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(`${here}${d.name}/bench.ts`))
  .map((d) => d.name)
  .filter((t) => wanted.length === 0 || wanted.includes(t));

let failed = 0;
for (const topic of topics) {
  console.log(`\n## ${topic}\n`);
  const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', `${here}${topic}/bench.ts`], {
    stdio: 'inherit',
  });
  if (r.status !== 0) {
    console.error(`benchmark ${topic} failed with status ${r.status}`);
    failed++;
  }
}
console.log(`\nResults: benchmarks/results/<topic>.json`);
process.exitCode = failed > 0 ? 1 : 0;
