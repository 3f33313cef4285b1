// The webgpu benchmark's record (bench.ts, also what the GPU machine returns) in the common shape of
// ../lib/results.ts, so the report and the docs page show it beside the other topics.
import { type BenchCase, type BenchFile, makeCase, SCHEMA } from '../lib/results.js';

/** The part of webgpu.json's record the cases read. */
export interface WebgpuDetails {
  date: string;
  adapter: string;
  machine: string;
  sizes: 'full' | 'tiny';
  copy?: { gbs: number };
  matvec: { format: string; shape: string; gbs: number; gbsStream?: number; kernel?: string; maxRelErr?: number }[];
  models: { file: string; decodeTokS: number; promptTokS: number; promptTokens?: number }[];
  llamaBench?: { build_commit?: string; model_filename?: string }[];
  ratios?: { file: string; llamaDecodeTokS?: number; llamaPromptTokS?: number }[];
  notes?: string[];
}

/** Whether `x` looks like a webgpu record (not yet in the common shape). */
export function isWebgpuRecord(x: unknown): x is WebgpuDetails {
  const r = x as Partial<WebgpuDetails>;
  return typeof r?.adapter === 'string' && Array.isArray(r.matvec) && Array.isArray(r.models);
}

export function webgpuCases(d: WebgpuDetails): BenchCase[] {
  const cases: BenchCase[] = [];
  for (const shape of [...new Set(d.matvec.map((m) => m.shape))])
    for (const m of d.matvec.filter((x) => x.shape === shape))
      cases.push(
        makeCase({
          group: `matrix × vector, ${shape}`,
          name: m.format,
          unit: 'GB/s of weights',
          higherIsBetter: true,
          results: [
            { engine: 'nibble (webgpu)', ours: true, median: m.gbs },
            // The same matvec over distinct copies totalling several times L2: weights from memory, GPU time.
            ...(m.gbsStream !== undefined
              ? [{ engine: 'nibble (webgpu), streaming copies', ours: true, median: m.gbsStream }]
              : []),
            ...(d.copy ? [{ engine: 'vec4 copy kernel (same run)', ours: false, median: d.copy.gbs }] : []),
          ],
        }),
      );
  for (const [group, key, peerKey] of [
    ['decode', 'decodeTokS', 'llamaDecodeTokS'],
    ['prompt processing', 'promptTokS', 'llamaPromptTokS'],
  ] as const)
    for (const m of d.models) {
      const peer = d.ratios?.find((r) => r.file === m.file)?.[peerKey];
      cases.push(
        makeCase({
          group,
          name: m.file.replace(/\.gguf$/, ''),
          unit: 'tok/s',
          higherIsBetter: true,
          results: [
            { engine: 'nibble (webgpu)', ours: true, median: m[key] },
            ...(peer === undefined ? [] : [{ engine: 'llama.cpp (CUDA, llama-bench)', ours: false, median: peer }]),
          ],
        }),
      );
    }
  return cases;
}

/** The record as a results file of the common shape. */
export function webgpuToCommon(d: WebgpuDetails): BenchFile {
  const commit = d.llamaBench?.find((b) => b.build_commit)?.build_commit;
  return {
    schema: SCHEMA,
    topic: 'webgpu',
    title: `WebGPU backend on ${d.adapter}`,
    date: d.date,
    quick: d.sizes === 'tiny',
    // The record names the platform, Node and the adapter only, not the CPU or nibble's commit.
    machine: {
      cpu: 'CPU not recorded',
      cores: 0,
      memoryGiB: 0,
      os: d.machine.replace(/, node .*$/, ''),
      node: d.machine.replace(/^.*node /, ''),
      gpu: d.adapter,
    },
    versions: { nibble: 'commit not recorded', ...(commit ? { 'llama.cpp': commit } : {}) },
    method:
      "dawn.node on the adapter named above. Matrix-vector GB/s of weights from GPU timestamps beside a plain vec4 copy kernel of the same run (the card's practical bandwidth); decode (greedy on the GPU, 128 steps) and prompt (512 tokens) tok/s on synthetic TinyLlama- and 7B-shaped files, beside llama.cpp's CUDA llama-bench on the same files in the same lease.",
    notes: d.notes,
    cases: webgpuCases(d),
    details: d,
  };
}
