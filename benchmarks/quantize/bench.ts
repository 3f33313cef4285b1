/**
 * Quantizing a whole model: nibble beside llama.cpp's own llama_model_quantize (through llama_quantize.py and the
 * libllama node-llama-cpp ships), the same input file, one thread each, `pure` on both sides (every weight tensor
 * gets the target type, or the same fallback where rows do not fit), wall time including reading and writing the
 * files, median of runs. After each pair the tensor bytes of the two outputs are compared: equal bytes mean both did
 * the same work.
 *
 *   npx tsx --conditions=source benchmarks/quantize/bench.ts [--runs 3] [--types q8_0,q4_0,q4_K,q6_K]
 *
 * Inputs: stories260K (F32, 1.2 MB) and a synthetic F16 llama (TinyLlama's shape with 4 layers, 614 MB; with
 * NIBBLE_BENCH_QUICK=1 a 76 MB one, 1 run, q8_0/q4_0/q4_K). Writes benchmarks/results/quantize.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGgufFileWriter, openGgufFile } from '@nibble/gguf/node';
import type { DTypeName } from '@nibble/tensor';
// The CLI's model quantizer, until @nibble/quantize lands.
import { quantizeModel } from '../../packages/cli/src/model-quant.js';
import { makeCase, median, quick, writeResults } from '../lib/results.js';
import { fullShape, llamaF16Path, quickShape } from './generate.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../..');
const args = process.argv.slice(2);
const flag = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const runs = Number(flag('runs', quick ? '1' : '3'));
const types = flag('types', quick ? 'q8_0,q4_0,q4_K' : 'q8_0,q4_0,q4_K,q6_K').split(',') as DTypeName[];
// llama_ftype of a model whose weights are all of one type (with pure, Q4_K_S is all Q4_K, Q6_K all Q6_K).
const FTYPE: Partial<Record<DTypeName, number>> = {
  f16: 1,
  q4_0: 2,
  q4_1: 3,
  q8_0: 7,
  q5_0: 8,
  q5_1: 9,
  q2_K: 10,
  q4_K: 14,
  q5_K: 16,
  q6_K: 18,
  iq4_nl: 25,
};

const models = [
  { name: 'stories260K (F32, 1.2 MB)', path: join(root, 'fixtures/models/stories260K.gguf') },
  quick
    ? { name: 'synthetic llama (F16, 76 MB)', path: await llamaF16Path('quick-llama', quickShape) }
    : { name: 'TinyLlama-shaped, 4 layers (F16, 614 MB)', path: await llamaF16Path('tinyllama-4l', fullShape) },
];

const work = mkdtempSync(join(tmpdir(), 'nibble-quantize-bench-'));

async function nibbleOnce(input: string, output: string, type: DTypeName): Promise<number> {
  rmSync(output, { force: true });
  const t0 = performance.now();
  const file = await openGgufFile(input);
  try {
    await quantizeModel(file, type, await createGgufFileWriter(output), { pure: true });
  } finally {
    await file.close();
  }
  return (performance.now() - t0) / 1000;
}

function llamaCpp(input: string, output: string, ftype: number): { seconds: number[]; library: string } | string {
  const r = spawnSync(
    'python3',
    [
      join(here, 'llama_quantize.py'),
      '--input',
      input,
      '--output',
      output,
      '--ftype',
      String(ftype),
      '--threads',
      '1',
      '--runs',
      String(runs),
      '--pure',
    ],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  if (r.error || r.status !== 0) return (r.stderr || String(r.error)).trim();
  const j = JSON.parse(r.stdout) as { seconds: number[]; library: string };
  return j;
}

async function sameTensorBytes(a: string, b: string): Promise<boolean> {
  const [fa, fb] = [await openGgufFile(a), await openGgufFile(b)];
  try {
    if (fa.tensors.length !== fb.tensors.length) return false;
    for (const t of fa.tensors) {
      const u = fb.getTensor(t.name);
      if (!u || u.ggmlType !== t.ggmlType) return false;
      const [x, y] = [await fa.readTensorBytes(t), await fb.readTensorBytes(u)];
      if (
        Buffer.compare(
          Buffer.from(x.buffer, x.byteOffset, x.byteLength),
          Buffer.from(y.buffer, y.byteOffset, y.byteLength),
        ) !== 0
      )
        return false;
    }
    return true;
  } finally {
    await fa.close();
    await fb.close();
  }
}

interface Row {
  model: string;
  inputMB: number;
  type: string;
  nibbleSeconds: number;
  llamaCppSeconds?: number;
  sameTensorBytes?: boolean;
  peerError?: string;
}
const rows: Row[] = [];
let library = '';
try {
  for (const m of models) {
    const inputMB = statSync(m.path).size / 1e6;
    for (const type of types) {
      const ours = join(work, `nibble-${type}.gguf`);
      const theirs = join(work, `llama-${type}.gguf`);
      const t: number[] = [];
      for (let r = 0; r < runs; r++) t.push(await nibbleOnce(m.path, ours, type));
      const peer =
        FTYPE[type] === undefined ? `no llama_ftype for ${type}` : llamaCpp(m.path, theirs, FTYPE[type] as number);
      const row: Row = { model: m.name, inputMB, type, nibbleSeconds: median(t) };
      if (typeof peer === 'string') row.peerError = peer;
      else {
        library = peer.library;
        row.llamaCppSeconds = median(peer.seconds);
        row.sameTensorBytes = await sameTensorBytes(ours, theirs);
      }
      rows.push(row);
      console.error(
        `${m.name} ${type}: nibble ${row.nibbleSeconds.toFixed(3)} s, llama.cpp ${row.llamaCppSeconds?.toFixed(3) ?? row.peerError} s, same bytes ${row.sameTensorBytes}`,
      );
      rmSync(ours, { force: true });
      rmSync(theirs, { force: true });
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const details = { date: new Date().toISOString(), runs, threads: 1, pure: true, rows };
const cases = rows.map((r) =>
  makeCase({
    group: r.model,
    name: r.type,
    unit: 's',
    higherIsBetter: false,
    results: [
      { engine: 'nibble', ours: true, median: r.nibbleSeconds, runs },
      ...(r.llamaCppSeconds === undefined
        ? []
        : [{ engine: 'llama.cpp (llama_model_quantize)', ours: false, median: r.llamaCppSeconds, runs }]),
    ],
  }),
);
const differ = rows.filter((r) => r.sameTensorBytes === false).map((r) => `${r.model} ${r.type}`);
writeResults({
  topic: 'quantize',
  title: 'Quantize a whole model',
  method: `Seconds to quantize a GGUF model to one type (pure: every weight tensor, with llama.cpp's fallback for rows that do not fit), reading and writing the files included, one thread each, median of ${runs} run${runs > 1 ? 's' : ''}; llama.cpp's llama_model_quantize called through ctypes on node-llama-cpp's prebuilt ${library || 'libllama'}.`,
  peers: ['node-llama-cpp', '@node-llama-cpp/linux-x64'],
  notes: [
    differ.length
      ? `Tensor bytes differ from llama.cpp's for: ${differ.join(', ')}.`
      : `The output's tensor bytes equal llama.cpp's in every case measured against it (${rows.filter((r) => r.sameTensorBytes).length}).`,
    ...rows.filter((r) => r.peerError).map((r) => `llama.cpp did not run for ${r.model} ${r.type}: ${r.peerError}`),
  ],
  cases,
  details,
});

console.log(`| model | type | nibble s | llama.cpp s | llama.cpp / nibble | same tensor bytes |`);
console.log('|---|---|---:|---:|---:|:---:|');
for (const r of rows) {
  const ratio = r.llamaCppSeconds === undefined ? '' : `${(r.llamaCppSeconds / r.nibbleSeconds).toFixed(2)}×`;
  console.log(
    `| ${r.model} | ${r.type} | ${r.nibbleSeconds.toFixed(3)} | ${r.llamaCppSeconds?.toFixed(3) ?? ''} | ${ratio} | ${r.sameTensorBytes === undefined ? '' : r.sameTensorBytes ? 'yes' : 'NO'} |`,
  );
}
if (differ.length) process.exitCode = 1;
