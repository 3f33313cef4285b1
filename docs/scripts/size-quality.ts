/**
 * The size-against-quality section from benchmarks/results/quality.json: a scatter plot of file size against
 * perplexity (nibble's, and llama.cpp's where it has a figure) and the table behind it.
 */
import { type ScatterPoint, scatterChart } from '../../benchmarks/lib/chart.js';
import type { BenchFile } from '../../benchmarks/lib/results.js';

interface QualityRow {
  format: string;
  fileBytes: number;
  bitsPerWeight: number;
  perplexity: number;
  llamaCppPerplexity?: number;
}

/** The fragment, or a line saying how to make the results when there are none. */
export function sizeQualitySection(file: BenchFile | undefined): string {
  const rows = (file?.details as { rows?: QualityRow[] } | undefined)?.rows;
  if (!file || !rows?.length) return 'No quality results yet: `pnpm bench quality` measures them.\n';
  const points: ScatterPoint[] = rows.flatMap((r) => [
    { label: r.format, x: r.fileBytes / 1024, y: r.perplexity, series: 'nibble (js)' },
    ...(r.llamaCppPerplexity === undefined
      ? []
      : [{ label: r.format, x: r.fileBytes / 1024, y: r.llamaCppPerplexity, series: 'llama.cpp (its own file)' }]),
  ]);
  const svg = scatterChart(points, {
    title: 'stories260K: file size against perplexity',
    subtitle: `lower and further left is better · TinyStories sample · ${file.date.slice(0, 10)} · ${file.machine.cpu}`,
    xLabel: 'file size (KiB)',
    yLabel: 'perplexity',
  });
  const base = rows.find((r) => r.format === 'F32')?.perplexity ?? rows[0].perplexity;
  const lines = [
    '| format | file | bits per weight (whole file) | perplexity | change from F32 | llama.cpp |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.format} | ${(r.fileBytes / 1024).toFixed(1)} KiB | ${r.bitsPerWeight.toFixed(2)} | ${r.perplexity.toFixed(4)} | ${r.perplexity === base ? '' : `${(((r.perplexity - base) / base) * 100).toFixed(2)} %`} | ${r.llamaCppPerplexity?.toFixed(4) ?? ''} |`,
    ),
  ];
  return `<div class="bench-chart-wrap">${svg}</div>\n\n${lines.join('\n')}\n\n${file.method}\n`;
}
