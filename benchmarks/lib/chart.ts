/**
 * A small SVG bar chart: one row per case, one bar per engine, nibble's engines in blues and peers in warm colours,
 * values printed at the bar ends. Text and axes use `currentColor`, so the chart follows a page's light or dark
 * theme when inlined; `background` gives it a fill for standalone files.
 */
import type { BenchCase } from './results.js';

/** Options of {@link barChart}. */
export interface ChartOptions {
  title: string;
  /** A line under the title (unit, direction, machine). */
  subtitle?: string;
  width?: number;
  /** Paint a background and a text colour (for .svg files viewed on their own). */
  background?: string;
  foreground?: string;
  /** `auto` (default): log when the figures span more than 100x. */
  scale?: 'auto' | 'linear' | 'log';
}

const OURS = ['#2563eb', '#60a5fa', '#1e3a8a', '#93c5fd'];
const PEERS = ['#ea580c', '#a3a3a3', '#16a34a', '#facc15', '#be185d'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A figure with 3 significant digits, without exponent notation for everyday sizes. */
export function formatValue(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 0.01) return String(+v.toPrecision(3));
  return v.toExponential(2);
}

/** The engines of `cases` in first-seen order, nibble's first. */
export function enginesOf(cases: readonly BenchCase[]): { engine: string; ours: boolean }[] {
  const seen = new Map<string, boolean>();
  for (const c of cases) for (const r of c.results) if (!seen.has(r.engine)) seen.set(r.engine, r.ours);
  const all = [...seen].map(([engine, ours]) => ({ engine, ours }));
  return [...all.filter((e) => e.ours), ...all.filter((e) => !e.ours)];
}

/**
 * The SVG of a group of cases sharing one unit.
 *
 * @example
 * ```ts
 * const svg = barChart(cases, { title: 'quantize, GB/s of f32', subtitle: 'higher is better' });
 * ```
 */
export function barChart(cases: readonly BenchCase[], options: ChartOptions): string {
  const width = options.width ?? 760;
  const engines = enginesOf(cases);
  const colour = new Map<string, string>();
  let o = 0;
  let p = 0;
  for (const e of engines) colour.set(e.engine, e.ours ? OURS[o++ % OURS.length] : PEERS[p++ % PEERS.length]);

  const labelWidth = Math.min(260, 40 + 6.5 * Math.max(8, ...cases.map((c) => c.name.length)));
  const valueRoom = 64;
  const plotLeft = labelWidth;
  const plotWidth = width - labelWidth - valueRoom - 10;
  const bar = 11;
  const gap = 2;
  const rowGap = 10;
  const legendTop = 50;
  // The legend wraps; about 150 px per entry.
  const perLine = Math.max(1, Math.floor((width - 20) / 170));
  const legendLines = Math.ceil(engines.length / perLine);
  let y = legendTop + legendLines * 18 + 8;
  const values = cases.flatMap((c) => c.results.map((r) => r.median)).filter((v) => v > 0);
  const max = Math.max(...values, 0) || 1;
  const min = Math.min(...values, max);
  // Figures spanning more than 100x (K-quant searches beside F32 copies) get a log scale so small bars stay visible.
  const log = options.scale === 'log' || (options.scale !== 'linear' && max / min > 100);
  const floor = min / 2;
  const x = (v: number) =>
    log ? (v <= floor ? 0 : (Math.log(v / floor) / Math.log(max / floor)) * plotWidth) : (v / max) * plotWidth;

  const parts: string[] = [];
  parts.push(`<text x="10" y="20" font-weight="600" font-size="14">${esc(options.title)}</text>`);
  const sub = [options.subtitle, log ? 'log scale' : ''].filter(Boolean).join(' · ');
  if (sub) parts.push(`<text x="10" y="38" font-size="11" opacity="0.75">${esc(sub)}</text>`);
  engines.forEach((e, i) => {
    const lx = 10 + (i % perLine) * 170;
    const ly = legendTop + Math.floor(i / perLine) * 18;
    parts.push(`<rect x="${lx}" y="${ly}" width="12" height="12" fill="${colour.get(e.engine)}"/>`);
    parts.push(`<text x="${lx + 17}" y="${ly + 10}" font-size="11">${esc(e.engine)}</text>`);
  });
  const plotTop = y;
  for (const c of cases) {
    const n = c.results.length;
    const rowHeight = n * (bar + gap) - gap;
    parts.push(
      `<text x="${plotLeft - 8}" y="${y + rowHeight / 2 + 4}" text-anchor="end" font-size="12">${esc(c.name)}</text>`,
    );
    for (const e of engines) {
      const r = c.results.find((q) => q.engine === e.engine);
      if (!r) continue;
      const w = Math.max(1, x(r.median));
      parts.push(
        `<rect x="${plotLeft}" y="${y}" width="${w.toFixed(1)}" height="${bar}" fill="${colour.get(e.engine)}"><title>${esc(`${c.name}, ${e.engine}: ${formatValue(r.median)} ${c.unit}${r.note ? ` (${r.note})` : ''}`)}</title></rect>`,
      );
      parts.push(
        `<text x="${(plotLeft + w + 4).toFixed(1)}" y="${y + bar - 2}" font-size="10">${esc(formatValue(r.median))}${r.note ? '*' : ''}</text>`,
      );
      y += bar + gap;
    }
    y += rowGap - gap;
  }
  parts.push(
    `<line x1="${plotLeft}" y1="${plotTop - 4}" x2="${plotLeft}" y2="${y - rowGap + 4}" stroke="currentColor" stroke-opacity="0.5"/>`,
  );
  const height = y + 8;
  const style = options.background ? `<rect width="100%" height="100%" fill="${options.background}"/>` : '';
  const fg = options.foreground ?? 'currentColor';
  return `<svg xmlns="http://www.w3.org/2000/svg" class="bench-chart" role="img" aria-label="${esc(options.title)}" viewBox="0 0 ${width} ${height}" width="100%" style="max-width:${width}px;color:${fg === 'currentColor' ? 'inherit' : fg}" fill="currentColor" font-family="system-ui, sans-serif">${style}${parts.join('')}</svg>`;
}

/** One point of {@link scatterChart}. */
export interface ScatterPoint {
  label: string;
  x: number;
  y: number;
  /** Points of one series share a colour and a legend entry. */
  series: string;
}

/**
 * An SVG scatter plot with labelled points, e.g. file size against perplexity per format. Axes start at the data's
 * range (padded), not at zero, because the interesting differences are small.
 *
 * @example
 * ```ts
 * scatterChart([{ label: 'Q4_0', x: 270, y: 3.83, series: 'nibble' }], { title: 't', xLabel: 'KiB', yLabel: 'ppl' });
 * ```
 */
export function scatterChart(
  points: readonly ScatterPoint[],
  options: {
    title: string;
    subtitle?: string;
    xLabel: string;
    yLabel: string;
    width?: number;
    height?: number;
    /** `log` for figures spanning decades (KL divergence); every y must then be above 0. */
    yScale?: 'linear' | 'log';
  },
): string {
  const width = options.width ?? 760;
  const height = options.height ?? 420;
  const left = 64;
  const right = 24;
  const top = 70;
  const bottom = 48;
  const series = [...new Set(points.map((p) => p.series))];
  const colour = new Map(series.map((s, i) => [s, i === 0 ? OURS[0] : PEERS[(i - 1) % PEERS.length]]));
  const range = (vs: number[]) => {
    const lo = Math.min(...vs);
    const hi = Math.max(...vs);
    const pad = (hi - lo || Math.abs(hi) || 1) * 0.08;
    return [lo - pad, hi + pad] as const;
  };
  const log = options.yScale === 'log';
  if (log && points.some((p) => !(p.y > 0))) throw new RangeError('a log scale needs every y above 0');
  const ty = (y: number) => (log ? Math.log10(y) : y);
  const [x0, x1] = range(points.map((p) => p.x));
  const [y0, y1] = range(points.map((p) => ty(p.y)));
  const px = (x: number) => left + ((x - x0) / (x1 - x0)) * (width - left - right);
  const py = (y: number) => height - bottom - ((ty(y) - y0) / (y1 - y0)) * (height - top - bottom);
  const parts: string[] = [];
  parts.push(`<text x="10" y="20" font-weight="600" font-size="14">${esc(options.title)}</text>`);
  if (options.subtitle) parts.push(`<text x="10" y="38" font-size="11" opacity="0.75">${esc(options.subtitle)}</text>`);
  series.forEach((s, i) => {
    parts.push(`<circle cx="${16 + i * 170}" cy="54" r="5" fill="${colour.get(s)}"/>`);
    parts.push(`<text x="${26 + i * 170}" y="58" font-size="11">${esc(s)}</text>`);
  });
  // Axes with five ticks each.
  const axis = 'stroke="currentColor" stroke-opacity="0.5"';
  parts.push(`<line x1="${left}" y1="${height - bottom}" x2="${width - right}" y2="${height - bottom}" ${axis}/>`);
  parts.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${height - bottom}" ${axis}/>`);
  for (let i = 0; i <= 4; i++) {
    const xv = x0 + ((x1 - x0) * i) / 4;
    parts.push(
      `<text x="${px(xv).toFixed(1)}" y="${height - bottom + 16}" text-anchor="middle" font-size="10">${esc(formatValue(xv))}</text>`,
    );
  }
  // y ticks: five even steps, or each power of ten on a log scale.
  const yTicks = log
    ? Array.from({ length: Math.floor(y1) - Math.ceil(y0) + 1 }, (_, i) => 10 ** (Math.ceil(y0) + i))
    : [0, 1, 2, 3, 4].map((i) => y0 + ((y1 - y0) * i) / 4);
  if (yTicks.length === 0) yTicks.push(10 ** y0, 10 ** y1);
  for (const yv of yTicks)
    parts.push(
      `<text x="${left - 6}" y="${(py(yv) + 3).toFixed(1)}" text-anchor="end" font-size="10">${esc(formatValue(yv))}</text>`,
    );
  parts.push(
    `<text x="${(left + width - right) / 2}" y="${height - 10}" text-anchor="middle" font-size="11">${esc(options.xLabel)}</text>`,
  );
  parts.push(
    `<text x="14" y="${(top + height - bottom) / 2}" font-size="11" transform="rotate(-90 14 ${(top + height - bottom) / 2})" text-anchor="middle">${esc(options.yLabel)}</text>`,
  );
  // Labels of close points would overprint each other: move a label down until it clears the ones placed so far.
  const placed: { x: number; y: number; w: number }[] = [];
  const labelAt = (cx: number, cy: number, text: string): [number, number] => {
    const w = 6 * text.length;
    let x = cx + 7;
    let y = cy - 6;
    for (
      let tries = 0;
      tries < 6 && placed.some((q) => Math.abs(q.y - y) < 11 && x < q.x + q.w && q.x < x + w);
      tries++
    ) {
      y += 12;
      x = cx + 9;
    }
    placed.push({ x, y, w });
    return [x, y];
  };
  for (const p of points) {
    const cx = px(p.x);
    const cy = py(p.y);
    parts.push(
      `<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="4.5" fill="${colour.get(p.series)}" fill-opacity="0.85"><title>${esc(`${p.label} (${p.series}): ${formatValue(p.x)}, ${formatValue(p.y)}`)}</title></circle>`,
    );
    if (p.series === series[0]) {
      const [lx, ly] = labelAt(cx, cy, p.label);
      parts.push(`<text x="${lx.toFixed(1)}" y="${ly.toFixed(1)}" font-size="10">${esc(p.label)}</text>`);
    }
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" class="bench-chart" role="img" aria-label="${esc(options.title)}" viewBox="0 0 ${width} ${height}" width="100%" style="max-width:${width}px" fill="currentColor" font-family="system-ui, sans-serif">${parts.join('')}</svg>`;
}
