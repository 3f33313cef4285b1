/**
 * `pnpm docs:gen`: everything the site shows that code measures or draws, written before VitePress builds.
 *
 * - docs/parts/*.md: fragments the pages include (format error table on real weights, block diagrams, bundle sizes,
 *   model sizes per preset from `nibble sizes`, size against perplexity and KL divergence from the quality results,
 *   the benchmark report with inline charts from benchmarks/results/*.json);
 * - docs/public/models/stories260K.gguf: the model the demo and the examples load, served with the site.
 *
 * Both folders are generated and ignored by git.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resultsAdapters } from '../../benchmarks/lib/adapters.js';
import { renderReport } from '../../benchmarks/lib/report.js';
import { readResults } from '../../benchmarks/lib/results.js';
import { blockDiagram, q4_0Layout, q4_KLayout } from './block-diagrams.js';
import { bundleSizeTable } from './bundle-size.js';
import { formatErrorTable, measureFormatErrors } from './format-errors.js';
import { qualitySection, runNibbleSizes, sizesSection } from './size-quality.js';

const docs = join(dirname(fileURLToPath(import.meta.url)), '..');
const root = join(docs, '..');
const parts = join(docs, 'parts');
mkdirSync(parts, { recursive: true });
const write = (name: string, text: string) => writeFileSync(join(parts, name), text);

const t0 = performance.now();
write('q4_0-block.md', `<div class="block-diagram-wrap">${blockDiagram(q4_0Layout)}</div>\n`);
write('q4_k-block.md', `<div class="block-diagram-wrap">${blockDiagram(q4_KLayout)}</div>\n`);

const errors = measureFormatErrors(root);
write('format-errors.md', formatErrorTable(errors));
const mismatched = errors.rows.filter((r) => r.sameBytesAsGgml === false).map((r) => r.format);
if (mismatched.length) throw new Error(`docs:gen: bytes differ from ggml's golden files for ${mismatched.join(', ')}`);

write('bundle-sizes.md', await bundleSizeTable(root));

const { files, skipped } = readResults(join(root, 'benchmarks/results'), resultsAdapters);
write(
  'benchmarks.md',
  files.length
    ? renderReport(files, { charts: { kind: 'inline' }, skipped })
    : 'No results files yet: run `pnpm bench` (or `pnpm bench --quick`).\n',
);
write('size-quality.md', qualitySection(files.find((f) => f.topic === 'quality')));
write('model-sizes.md', sizesSection(runNibbleSizes(root)));
for (const s of skipped) console.warn(`docs:gen: benchmarks/results/${s.file} left out: ${s.reason}`);

mkdirSync(join(docs, 'public/models'), { recursive: true });
copyFileSync(join(root, 'fixtures/models/stories260K.gguf'), join(docs, 'public/models/stories260K.gguf'));

console.log(
  `docs:gen: ${files.length} results files, ${errors.rows.length} formats, in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
