/**
 * Markdown report of results files: per topic the machine, date, versions and method, then per group a chart and a
 * table with every engine's median and nibble's ratio to each peer. benchmarks/RESULTS.md and the docs site's
 * Benchmarks page are both made here; the site inlines the charts, RESULTS.md links .svg files beside it.
 */
import { barChart, enginesOf, formatValue } from './chart.js';
import type { BenchCase, BenchFile } from './results.js';

/** How charts are emitted. */
export type ChartMode =
  | { kind: 'inline' }
  /** `write(name, svg)` stores a chart and returns the path to link from the markdown. */
  | { kind: 'files'; write: (name: string, svg: string) => string };

/** Options of {@link renderReport}. */
export interface ReportOptions {
  charts: ChartMode;
  /** Heading level of each topic (2 = `##`). */
  level?: number;
  /** Files that were not of the common shape, listed at the end. */
  skipped?: { file: string; reason: string }[];
}

const md = (s: string) => s.replace(/\|/g, '\\|');

/** The groups of a file's cases, in first-seen order. */
export function groupsOf(cases: readonly BenchCase[]): { group: string; cases: BenchCase[] }[] {
  const m = new Map<string, BenchCase[]>();
  for (const c of cases) {
    if (!m.has(c.group)) m.set(c.group, []);
    m.get(c.group)?.push(c);
  }
  return [...m].map(([group, cs]) => ({ group, cases: cs }));
}

function machineLine(f: BenchFile): string {
  const m = f.machine;
  const bits = [
    `${m.cpu}${m.cores ? `, ${m.cores} cores` : ''}${m.memoryGiB ? `, ${m.memoryGiB} GiB` : ''}`,
    m.os,
    `Node ${m.node}`,
  ];
  if (m.gpu) bits.push(m.gpu);
  if (m.loadAverage1m !== undefined) bits.push(`load ${m.loadAverage1m}`);
  return bits.join(' · ');
}

function table(cases: readonly BenchCase[]): string {
  const engines = enginesOf(cases).map((e) => e.engine);
  const pairs: string[] = [];
  for (const c of cases)
    for (const r of c.ratios) if (!pairs.includes(`${r.ours} / ${r.peer}`)) pairs.push(`${r.ours} / ${r.peer}`);
  const head = ['case', ...engines, ...pairs.map((p) => `${p} ×`)];
  const lines = [
    `| ${head.map(md).join(' | ')} |`,
    `|---|${head
      .slice(1)
      .map(() => '---:')
      .join('|')}|`,
  ];
  for (const c of cases) {
    const cells = engines.map((e) => {
      const r = c.results.find((x) => x.engine === e);
      return r ? `${formatValue(r.median)}${r.note ? '*' : ''}` : '';
    });
    const ratios = pairs.map((p) => {
      const r = c.ratios.find((x) => `${x.ours} / ${x.peer}` === p);
      return r ? `${r.ratio.toFixed(2)}×` : '';
    });
    lines.push(`| ${[c.name, ...cells, ...ratios].map(md).join(' | ')} |`);
  }
  const notes = [
    ...new Set(cases.flatMap((c) => c.results.filter((r) => r.note).map((r) => `${r.engine}: ${r.note}`))),
  ];
  return `${lines.join('\n')}\n${notes.length ? `\n${notes.map((n) => `\\* ${md(n)}`).join('  \n')}\n` : ''}`;
}

const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');

/** Per topic and group, the geometric mean of each nibble / peer ratio over the group's cases. */
export function summaryOf(
  files: readonly BenchFile[],
): { file: BenchFile; group: string; pair: string; geomean: number; cases: number }[] {
  const out: { file: BenchFile; group: string; pair: string; geomean: number; cases: number }[] = [];
  for (const f of files)
    for (const g of groupsOf(f.cases)) {
      const byPair = new Map<string, number[]>();
      for (const c of g.cases)
        for (const r of c.ratios) {
          const k = `${r.ours} / ${r.peer}`;
          if (!byPair.has(k)) byPair.set(k, []);
          byPair.get(k)?.push(r.ratio);
        }
      for (const [pair, rs] of byPair)
        out.push({
          file: f,
          group: g.group,
          pair,
          geomean: Math.exp(rs.reduce((a, r) => a + Math.log(r), 0) / rs.length),
          cases: rs.length,
        });
    }
  return out;
}

function summaryTable(files: readonly BenchFile[]): string {
  const rows = summaryOf(files);
  if (rows.length === 0) return '';
  const lines = [
    '| topic | measured | nibble / peer | geometric mean | cases |',
    '|---|---|---|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${md(r.file.title)}${r.file.quick ? ' (quick)' : ''} | ${md(r.group)} (${md(r.file.cases.find((c) => c.group === r.group)?.unit ?? '')}) | ${md(r.pair)} | ${r.geomean.toFixed(2)}× | ${r.cases} |`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * The report as markdown.
 *
 * @example
 * ```ts
 * const text = renderReport(readResults('benchmarks/results').files, { charts: { kind: 'inline' } });
 * ```
 */
export function renderReport(files: readonly BenchFile[], options: ReportOptions): string {
  const h = '#'.repeat(options.level ?? 2);
  const out: string[] = [];
  const summary = summaryTable(files);
  if (summary) {
    out.push(`${h} At a glance\n`);
    out.push(
      "Each row: the geometric mean over a group's cases of nibble's ratio to one peer (above 1×: nibble is better).\n",
    );
    out.push(summary);
  }
  for (const f of files) {
    out.push(`${h} ${f.title}${f.quick ? ' (quick run)' : ''}\n`);
    out.push(`Topic \`${f.topic}\`, measured ${f.date.slice(0, 10)} on ${machineLine(f)}.\n`);
    const v = Object.entries(f.versions)
      .map(([k, val]) => `${k} ${val}`)
      .join(', ');
    out.push(`Versions: ${v}.\n`);
    out.push(`${f.method}\n`);
    if (f.quick)
      out.push('A quick run: small sizes and few runs, to check the pipeline. Do not quote these figures.\n');
    for (const n of f.notes ?? []) out.push(`- ${n}`);
    if (f.notes?.length) out.push('');
    for (const g of groupsOf(f.cases)) {
      const unit = g.cases[0].unit;
      const better = g.cases[0].higherIsBetter ? 'higher is better' : 'lower is better';
      out.push(`${h}# ${g.group}\n`);
      const chartTitle = `${g.group} (${unit})`;
      const subtitle = `${better}; ratios above 1× mean nibble is better · ${f.date.slice(0, 10)} · ${f.machine.cpu}`;
      if (options.charts.kind === 'inline') {
        out.push(`<div class="bench-chart-wrap">${barChart(g.cases, { title: chartTitle, subtitle })}</div>\n`);
      } else {
        const svg = barChart(g.cases, { title: chartTitle, subtitle, background: '#ffffff', foreground: '#111111' });
        const link = options.charts.write(`${f.topic}-${slug(g.group)}${f.quick ? '-quick' : ''}.svg`, svg);
        out.push(`![${md(chartTitle)}](${link})\n`);
      }
      out.push(table(g.cases));
    }
  }
  if (options.skipped?.length) {
    out.push(`${h} Files not shown\n`);
    for (const s of options.skipped) out.push(`- \`${s.file}\`: ${md(s.reason)}`);
    out.push('');
  }
  return `${out.join('\n')}\n`;
}
