// The common-shape cases of the formats benchmark (see ../lib/results.ts), from the record bench.ts writes.
import { type BenchCase, makeCase } from '../lib/results.js';

/** The part of formats.json's record the cases read. */
export interface FormatsDetails {
  runs: number;
  values: number;
  ggmlPeer: string | { ggmlVersion: string | null; ggmlCommit: string | null; library: string };
  rows: {
    format: string;
    quantizeGBs: number;
    dequantizeGBs: number;
    ggmlQuantizeGBs?: number;
    ggmlDequantizeGBs?: number;
    ggmlQuantizePath?: string;
    ggmlSameBytes?: boolean;
  }[];
}

export const formatsTitle = 'Quantize and dequantize throughput per format';

export function formatsMethod(d: FormatsDetails): string {
  return `GB/s of f32 (input bytes for quantize, output bytes for dequantize), one thread, ${d.values.toLocaleString('en-US')} N(0, 1) values in rows of 4096, median of ${d.runs} runs; ggml's own quantize (ggml_quantize_chunk) and to_float timed on the same values in the same run through node-llama-cpp's libggml-base.so, its quantized bytes compared with ours.`;
}

export function formatsCases(d: FormatsDetails): BenchCase[] {
  const cases: BenchCase[] = [];
  for (const [group, ours, theirs] of [
    ['quantize', 'quantizeGBs', 'ggmlQuantizeGBs'],
    ['dequantize', 'dequantizeGBs', 'ggmlDequantizeGBs'],
  ] as const) {
    for (const r of d.rows) {
      const peer = r[theirs];
      const note =
        group === 'quantize' && r.ggmlQuantizePath && r.ggmlQuantizePath !== 'ggml_quantize_chunk'
          ? `times ${r.ggmlQuantizePath}`
          : undefined;
      cases.push(
        makeCase({
          group: `${group}, one thread`,
          name: r.format,
          unit: 'GB/s of f32',
          higherIsBetter: true,
          results: [
            { engine: 'nibble', ours: true, median: r[ours], runs: d.runs },
            ...(peer === undefined
              ? []
              : [{ engine: 'ggml (C reference)', ours: false, median: peer, runs: d.runs, ...(note ? { note } : {}) }]),
          ],
        }),
      );
    }
  }
  return cases;
}

/** ggml's version as the peer reported it. */
export function formatsVersions(d: FormatsDetails): Record<string, string> {
  if (typeof d.ggmlPeer === 'string') return {};
  return { ggml: `${d.ggmlPeer.ggmlVersion ?? '?'} (${d.ggmlPeer.ggmlCommit ?? '?'})` };
}

export function formatsNotes(d: FormatsDetails): string[] {
  const notes: string[] = [];
  if (typeof d.ggmlPeer === 'string') notes.push(d.ggmlPeer);
  const differ = d.rows.filter((r) => r.ggmlSameBytes === false).map((r) => r.format);
  const same = d.rows.filter((r) => r.ggmlSameBytes === true).length;
  if (same)
    notes.push(
      `Quantized bytes equal ggml's for ${same} of ${d.rows.length} formats${differ.length ? `; differ for ${differ.join(', ')}` : ''}.`,
    );
  return notes;
}
