/**
 * The size-and-quality page's generated parts:
 *
 * - the size of real llama shapes (LLaMA 7B/13B/30B/65B, Llama-2 70B, Llama-3 1B/3B/8B) under every preset, from
 *   `nibble sizes --json` (llama.cpp's rules applied to each shape's tensor table), beside llama.cpp's published
 *   figures;
 * - stories260K under every preset, from benchmarks/results/quality.json (`pnpm bench quality`): file size against
 *   the perplexity and the KL divergence each preset adds to the F32 model's, as charts, and the table behind them.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { barChart } from '../../benchmarks/lib/chart.js';
import { type BenchCase, type BenchFile, makeCase } from '../../benchmarks/lib/results.js';

/** One model of `nibble sizes --json`. */
export interface SizesModel {
  model: string;
  published?: { f16: number; q4: number; source: string };
  presets: { preset: string; bytes: number; bitsPerWeight: number }[];
}

/** Runs `nibble sizes --json` from the repository's sources and returns what it printed. */
export function runNibbleSizes(root: string): SizesModel[] {
  const r = spawnSync(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', join(root, 'packages/cli/src/cli.ts'), 'sizes', '--json'],
    { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 },
  );
  if (r.status !== 0) throw new Error(`nibble sizes --json failed (${r.status ?? r.error}): ${r.stderr}`);
  return JSON.parse(r.stdout) as SizesModel[];
}

const modelNames: Record<string, string> = {
  'llama-7b': 'LLaMA 7B',
  'llama-13b': 'LLaMA 13B',
  'llama-30b': 'LLaMA 30B',
  'llama-65b': 'LLaMA 65B',
  'llama-2-70b': 'Llama-2 70B',
  'llama-3.2-1b': 'Llama-3.2 1B',
  'llama-3.2-3b': 'Llama-3.2 3B',
  'llama-3.1-8b': 'Llama-3.1 8B',
};

/**
 * The size table: one row per preset (smallest first on LLaMA 7B), one column per model, in GB of tensor data, and
 * llama.cpp's published figures in rows of their own.
 */
export function sizesSection(models: readonly SizesModel[]): string {
  if (models.length === 0) throw new Error('nibble sizes printed no models');
  const first = models[0];
  const order = [...first.presets].sort((a, b) => a.bytes - b.bytes).map((p) => p.preset);
  const gb = (b: number) => (b / 1e9).toFixed(2);
  const head = `| preset | bits per weight (${modelNames[first.model] ?? first.model}) | ${models.map((m) => modelNames[m.model] ?? m.model).join(' | ')} |`;
  const rule = `|---|---:|${models.map(() => '---:').join('|')}|`;
  const rows = order.map((preset) => {
    const cells = models.map((m) => {
      const p = m.presets.find((x) => x.preset === preset);
      return p ? gb(p.bytes) : '';
    });
    const bpw = first.presets.find((x) => x.preset === preset)?.bitsPerWeight ?? 0;
    return `| ${preset} | ${bpw.toFixed(2)} | ${cells.join(' | ')} |`;
  });
  const published = (key: 'f16' | 'q4', label: string) =>
    `| *${label}* | | ${models.map((m) => (m.published ? `*${m.published[key]}*` : '')).join(' | ')} |`;
  const source = models.find((m) => m.published)?.published?.source ?? "llama.cpp's README";
  return [
    head,
    rule,
    ...rows,
    published('f16', 'F16, published'),
    published('q4', '4-bit, published'),
    '',
    `GB (10⁹ bytes) of tensor data, written by \`nibble sizes --json\` when the site was built: llama-quantize's per-tensor rules applied to each model's tensor table (F16 weights, F32 norms), no weights needed. The published rows are ${source}.`,
    '',
  ].join('\n');
}

interface QualityRow {
  preset: string;
  fileBytes: number;
  bitsPerWeight: number;
  perplexity: number;
  meanKld: number;
  p99Kld: number;
  topTokenAgreement: number;
  llamaCppPerplexity?: number;
  sameBytesAsLlamaCpp?: boolean;
  sameTensorsAs?: string;
}

/** The stories260K charts and table, or a line saying how to make the results when there are none. */
export function qualitySection(file: BenchFile | undefined): string {
  const rows = (file?.details as { rows?: QualityRow[] } | undefined)?.rows;
  if (!file || !rows?.length || rows[0].preset === undefined)
    return 'No quality results yet: `pnpm bench quality` measures them.\n';
  // Presets that fall back to the same tensors as another make the same point: one point, named by all of them.
  const distinct = rows.filter((r) => !r.sameTensorsAs);
  const alias = (r: QualityRow) => {
    const same = rows.filter((x) => x.sameTensorsAs === r.preset).map((x) => x.preset);
    return same.length ? `${r.preset} (= ${same.join(', ')})` : r.preset;
  };
  const when = `${file.date.slice(0, 10)} · ${file.machine.cpu}${file.quick ? ' · quick run' : ''}`;
  const base = rows.find((r) => r.preset === 'F32')?.perplexity ?? rows[0].perplexity;
  const llamaBase = rows.find((r) => r.preset === 'F32')?.llamaCppPerplexity;
  // One bar per distinct file, largest first: the loss grows down the chart as the files shrink.
  const quantized = distinct.filter((r) => r.preset !== 'F32').sort((a, b) => b.fileBytes - a.fileBytes);
  const label = (r: QualityRow) => `${r.preset} · ${(r.fileBytes / 1024).toFixed(0)} KiB`;
  const pplCases: BenchCase[] = quantized.map((r) =>
    makeCase({
      group: 'perplexity',
      name: label(r),
      unit: '%',
      higherIsBetter: false,
      results: [
        { engine: 'nibble (js)', ours: true, median: (100 * (r.perplexity - base)) / base },
        ...(r.llamaCppPerplexity === undefined || llamaBase === undefined
          ? []
          : [
              {
                engine: 'llama.cpp (its own file, from the fixtures)',
                ours: false,
                median: (100 * (r.llamaCppPerplexity - llamaBase)) / llamaBase,
              },
            ]),
      ],
    }),
  );
  const kldCases: BenchCase[] = quantized.map((r) =>
    makeCase({
      group: 'kld',
      name: label(r),
      unit: 'nats',
      higherIsBetter: false,
      results: [{ engine: 'nibble (js)', ours: true, median: r.meanKld }],
    }),
  );
  const pplSvg = barChart(pplCases, {
    title: 'stories260K: perplexity above the F32 model, per preset (%)',
    subtitle: `shorter is better · TinyStories sample · ${when}`,
    scale: 'linear',
  });
  const kldSvg = barChart(kldCases, {
    title: 'stories260K: mean KL divergence from the F32 model, per preset (nats)',
    subtitle: `shorter is better · same 1804 predictions · ${when}`,
    scale: 'linear',
  });
  const pct = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(2)} %`;
  const table = [
    "| preset | file | bits per weight (whole file) | perplexity | change | mean KLD | 99th pct KLD | same top token | llama.cpp perplexity | llama.cpp's bytes |",
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|',
    ...rows
      .map((r) =>
        [
          r.sameTensorsAs ? `${r.preset} (= ${r.sameTensorsAs})` : r.preset,
          `${(r.fileBytes / 1024).toFixed(1)} KiB`,
          r.bitsPerWeight.toFixed(2),
          r.perplexity.toFixed(4),
          r.preset === 'F32' ? '' : pct((r.perplexity - base) / base),
          r.preset === 'F32' ? '' : r.meanKld.toExponential(2),
          r.preset === 'F32' ? '' : r.p99Kld.toExponential(2),
          `${(100 * r.topTokenAgreement).toFixed(1)} %`,
          r.llamaCppPerplexity?.toFixed(4) ?? '',
          r.sameBytesAsLlamaCpp === undefined ? '' : r.sameBytesAsLlamaCpp ? 'same' : '**differ**',
        ].join(' | '),
      )
      .map((line) => `| ${line} |`),
  ];
  const groups = distinct.filter((r) => rows.some((x) => x.sameTensorsAs === r.preset)).map(alias);
  return [
    `<div class="bench-chart-wrap">${pplSvg}</div>`,
    '',
    `<div class="bench-chart-wrap">${kldSvg}</div>`,
    '',
    ...table,
    '',
    file.method,
    ...(groups.length ? ['', `Same tensors on this model: ${groups.join('; ')}.`] : []),
    ...(file.notes?.length ? ['', ...file.notes] : []),
    '',
  ].join('\n');
}
