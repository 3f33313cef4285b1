// The common results shape: ratios point the right way, bad files are refused with a reason, and the report and its
// charts show every engine and ratio.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isWebgpuRecord, webgpuToCommon } from '../webgpu/cases.js';
import { resultsAdapters } from './adapters.js';
import { barChart, scatterChart } from './chart.js';
import { renderReport } from './report.js';
import { type BenchFile, benchDir, makeCase, readResults, SCHEMA, shapeProblem } from './results.js';

const faster = makeCase({
  group: 'decode',
  name: 'stories260K',
  unit: 'tok/s',
  higherIsBetter: true,
  results: [
    { engine: 'nibble (js)', ours: true, median: 300 },
    { engine: 'llama.cpp', ours: false, median: 600 },
  ],
});
const smaller = makeCase({
  group: 'memory',
  name: 'open',
  unit: 'MB',
  higherIsBetter: false,
  results: [
    { engine: 'nibble', ours: true, median: 20 },
    { engine: 'peer', ours: false, median: 50 },
    { engine: 'broken peer', ours: false, median: Number.NaN },
  ],
});
const file: BenchFile = {
  schema: SCHEMA,
  topic: 'demo',
  title: 'A demo topic',
  date: '2026-12-01T00:00:00.000Z',
  quick: false,
  machine: { cpu: 'Test CPU', cores: 2, memoryGiB: 8, os: 'linux', node: 'v20' },
  versions: { nibble: '0.1.0', peer: '1.2.3' },
  method: 'Medians of 3 runs.',
  cases: [faster, smaller],
};

describe('results files', () => {
  it('computes ratios with nibble better above 1, whichever way the unit points', () => {
    expect(faster.ratios).toEqual([{ ours: 'nibble (js)', peer: 'llama.cpp', ratio: 0.5 }]);
    expect(smaller.ratios).toEqual([{ ours: 'nibble', peer: 'peer', ratio: 2.5 }]);
    expect(smaller.results.map((r) => r.engine)).toEqual(['nibble', 'peer']); // no NaN figure kept
  });

  it('reads files of the common shape and says why it skips the others', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nibble-results-'));
    try {
      writeFileSync(join(dir, 'good.json'), JSON.stringify(file));
      writeFileSync(join(dir, 'old.json'), JSON.stringify({ date: 'x', rows: [] }));
      writeFileSync(join(dir, 'bad.json'), '{ not json');
      const noUnit = { ...file, cases: [{ ...faster, unit: undefined }] };
      writeFileSync(join(dir, 'nounit.json'), JSON.stringify(noUnit));
      const { files, skipped } = readResults(dir);
      expect(files.map((f) => f.topic)).toEqual(['demo']);
      expect(Object.fromEntries(skipped.map((s) => [s.file, s.reason]))).toEqual({
        'bad.json': expect.stringContaining('not JSON'),
        'nounit.json': 'case 0 lacks group, name or unit',
        'old.json': `schema is undefined, expected "${SCHEMA}"`,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(shapeProblem({ ...file, machine: {} })).toBe('"machine.cpu" is missing');
  });

  it('renders the machine, versions, every engine, every ratio and a chart per group', () => {
    const charts: string[] = [];
    const md = renderReport([file], {
      charts: {
        kind: 'files',
        write: (name, svg) => {
          charts.push(svg);
          return `charts/${name}`;
        },
      },
    });
    expect(md).toContain('Test CPU, 2 cores, 8 GiB');
    expect(md).toContain('nibble 0.1.0, peer 1.2.3');
    expect(md).toContain('| stories260K | 300 | 600 | 0.50× |');
    expect(md).toContain('| open | 20 | 50 | 2.50× |');
    expect(md).toContain('![decode (tok/s)](charts/demo-decode.svg)');
    expect(charts).toHaveLength(2);
    const inline = renderReport([file], { charts: { kind: 'inline' } });
    expect(inline.match(/<svg /g)).toHaveLength(2);
  });

  it('draws one bar per engine and case, and switches to a log scale for wide ranges', () => {
    const svg = barChart([faster], { title: 't' });
    expect(svg.match(/<rect x="\d+(\.\d+)?" y="\d+(\.\d+)?" width="[\d.]+" height="11"/g)).toHaveLength(2);
    expect(svg).not.toContain('log scale');
    const wide = makeCase({
      ...faster,
      results: [
        { engine: 'a', ours: true, median: 0.01 },
        { engine: 'b', ours: false, median: 10 },
      ],
    });
    expect(barChart([wide], { title: 't' })).toContain('log scale');
  });

  it('plots one labelled circle per point in a scatter chart', () => {
    const svg = scatterChart(
      [
        { label: 'Q8_0', x: 370, y: 3.55, series: 'nibble' },
        { label: 'Q4_0', x: 270, y: 3.83, series: 'nibble' },
        { label: 'Q4_0', x: 270, y: 3.83, series: 'llama.cpp' },
      ],
      { title: 't', xLabel: 'KiB', yLabel: 'ppl' },
    );
    expect(svg.match(/<circle cx="[\d.]+" cy="[\d.]+" r="4.5"/g)).toHaveLength(3);
    expect(svg.match(/>Q4_0</g)).toHaveLength(1); // labels on the first series only
  });

  it('puts points a decade apart equally far apart on a log y scale, with a tick per power of ten', () => {
    const pts = [
      { label: 'a', x: 1, y: 1e-4, series: 's' },
      { label: 'b', x: 2, y: 1e-3, series: 's' },
      { label: 'c', x: 3, y: 1e-2, series: 's' },
    ];
    const svg = scatterChart(pts, { title: 't', xLabel: 'x', yLabel: 'y', yScale: 'log' });
    const cy = [...svg.matchAll(/<circle cx="[\d.]+" cy="([\d.]+)" r="4.5"/g)].map((m) => Number(m[1]));
    expect(cy).toHaveLength(3);
    expect(Math.abs(cy[0] - cy[1] - (cy[1] - cy[2]))).toBeLessThan(0.2);
    for (const tick of ['1.00e-4', '1.00e-3', '0.01']) expect(svg).toContain(`>${tick}</text>`);
    expect(() => scatterChart([{ ...pts[0], y: 0 }], { title: 't', xLabel: 'x', yLabel: 'y', yScale: 'log' })).toThrow(
      'log scale',
    );
  });

  it('reads every committed results file, converting the records written before the common shape', () => {
    const { files, skipped } = readResults(join(benchDir, 'results'), resultsAdapters);
    expect(skipped).toEqual([]);
    const topics = files.map((f) => f.topic);
    for (const t of ['browser', 'e2e', 'matmul-wasm', 'quality']) expect(topics).toContain(t);
    const browser = files.find((f) => f.topic === 'browser');
    // wllama beside nibble-wasm in the same page: a ratio per case that has both.
    expect(browser?.cases.some((c) => c.ratios.some((r) => r.peer === 'wllama'))).toBe(true);
    const e2e = files.find((f) => f.topic === 'e2e');
    expect(e2e?.cases.some((c) => c.results.some((r) => r.engine === 'nibble (wasm)'))).toBe(true);
  });

  it("takes the webgpu benchmark's own record (what the GPU machine returns) through its adapter", () => {
    const record = {
      date: '2026-12-02T00:00:00.000Z',
      adapter: 'nvidia / hopper',
      machine: 'linux x64, node v20.20.2',
      sizes: 'full',
      copy: { gbs: 2500 },
      matvec: [{ format: 'q4_0', shape: '11008x4096', gbs: 1500 }],
      models: [{ file: 'tinyllama-q4_0.gguf', decodeTokS: 450, promptTokS: 9000 }],
      ratios: [{ file: 'tinyllama-q4_0.gguf', llamaDecodeTokS: 900, llamaPromptTokS: 36000 }],
      notes: [],
    };
    expect(isWebgpuRecord(record)).toBe(true);
    const f = webgpuToCommon(record as Parameters<typeof webgpuToCommon>[0]);
    expect(shapeProblem(f)).toBeUndefined();
    expect(f.machine.gpu).toBe('nvidia / hopper');
    const ratio = (group: string) => f.cases.find((c) => c.group === group)?.ratios[0]?.ratio;
    expect(ratio('matrix × vector, 11008x4096')).toBe(0.6);
    expect(ratio('decode')).toBe(0.5);
    expect(ratio('prompt processing')).toBe(0.25);
    const dir = mkdtempSync(join(tmpdir(), 'nibble-results-'));
    try {
      writeFileSync(join(dir, 'webgpu.json'), JSON.stringify(record));
      expect(readResults(dir).files).toHaveLength(0);
      expect(readResults(dir, resultsAdapters).files.map((x) => x.topic)).toEqual(['webgpu']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
