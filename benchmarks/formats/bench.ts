/**
 * Quantize / dequantize throughput of every @nibble/formats codec, in GB/s of f32 (input bytes for quantize,
 * output bytes for dequantize), one thread, median of runs, beside ggml measured in the same run: after each
 * format, ggml_peer.py times ggml's own quantize (ggml_quantize_chunk) and to_float on the same values, through
 * the x86-64 libggml-base.so that node-llama-cpp ships. The figures quoted in the formats issue stay as context.
 *
 * Also measures what the imatrix path buys on real weights: the importance-weighted squared error of the
 * stories260K token embedding quantized with and without a fixed log-normal importance vector.
 *
 *   npx tsx --conditions=source benchmarks/formats/bench.ts [--values 16777216] [--runs 5] [--only q4_K,q6_K]
 *
 * With NIBBLE_BENCH_QUICK=1 (`pnpm bench --quick`) the defaults are 1M values and 3 runs.
 *
 * Without python3 or the library, the ggml columns stay empty and the reason is printed and recorded.
 *
 * Writes benchmarks/results/formats.json (the common shape of lib/results.ts) and prints markdown tables.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Codec, formats } from '@nibble/formats';
import { quick, writeResults } from '../lib/results.js';
import { formatsCases, formatsMethod, formatsNotes, formatsTitle, formatsVersions } from './cases.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../..');
const args = process.argv.slice(2);
const flag = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const nValues = Number(flag('values', String((quick ? 1 : 16) * 1024 * 1024)));
const runs = Number(flag('runs', quick ? '3' : '5'));
const only = flag('only', '');
const rowLength = 4096;

/** ggml's single-thread figures as quoted in the formats issue, GB/s of f32: [quantize, dequantize]. */
const ggmlQuoted: Record<string, [number, number]> = {
  q4_K: [0.06, 21.4],
  q6_K: [0.14, 3.5],
  q4_0: [3.6, 8.0],
  q8_0: [1.0, 19.4],
  f16: [2.2, 3.5],
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Deterministic N(0, 1) weights (a typical weight distribution, scale does not matter to these codecs' speed).
const x = new Float32Array(nValues - (nValues % rowLength));
{
  let s = 1;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) + 0.5) / 2 ** 32;
  for (let i = 0; i < x.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(rand()));
    const t = 2 * Math.PI * rand();
    x[i] = r * Math.cos(t);
    x[i + 1] = r * Math.sin(t);
  }
}
const gb = (x.length * 4) / 1e9;

// The peer reads the very same values from a temp file of raw f32.
const peerDir = mkdtempSync(join(tmpdir(), 'nibble-formats-'));
const peerInput = join(peerDir, 'x.f32');
writeFileSync(peerInput, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
const peerOutput = join(peerDir, 'q.bin');
const peerScript = join(here, 'ggml_peer.py');
interface PeerRow {
  format: string;
  quantizePath: string | null;
  quantizeGBs: number | null;
  dequantizeGBs: number | null;
  quantizeCpuGBs: number | null;
  dequantizeCpuGBs: number | null;
}
interface PeerRun {
  library: string;
  ggmlVersion: string | null;
  ggmlCommit: string | null;
  rows: PeerRow[];
}
let peerNote: string | undefined;
let peerInfo: Omit<PeerRun, 'rows'> | undefined;
{
  const probe = spawnSync('python3', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) peerNote = 'python3 not found: ggml was not measured in this run';
}
/**
 * Runs ggml_peer.py for one format; undefined (and peerNote set) when the peer cannot run. `ours` is our quantized
 * output: the peer's must equal it byte for byte, or the two sides did not do the same work.
 */
function measurePeer(format: string, ours: Uint8Array): (PeerRow & { sameBytes?: boolean }) | undefined {
  if (peerNote !== undefined) return undefined;
  const r = spawnSync(
    'python3',
    [
      peerScript,
      ...['--input', peerInput, '--save-quantized', peerOutput],
      ...['--row-length', String(rowLength), '--runs', String(runs), '--types', format],
    ],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  if (r.error || r.status !== 0) {
    peerNote = `ggml peer did not run (${(r.stderr || String(r.error)).trim()}): ggml was not measured in this run`;
    return undefined;
  }
  const run = JSON.parse(r.stdout) as PeerRun;
  const { rows: peerRows, ...info } = run;
  peerInfo = info;
  const row = peerRows.find((p) => p.format === format);
  if (row?.quantizePath == null) return row;
  const theirs = readFileSync(peerOutput);
  rmSync(peerOutput);
  return { ...row, sameBytes: Buffer.compare(theirs, ours) === 0 };
}

interface Row {
  format: string;
  bitsPerWeight: number;
  quantizeGBs: number;
  dequantizeGBs: number;
  /** The same from process CPU time instead of wall time: less sensitive to other jobs on the machine. */
  quantizeCpuGBs: number;
  dequantizeCpuGBs: number;
  /** ggml measured in this run (undefined where ggml has no such path or the peer could not run). */
  ggmlQuantizeGBs?: number;
  ggmlDequantizeGBs?: number;
  ggmlQuantizeCpuGBs?: number;
  ggmlDequantizeCpuGBs?: number;
  /** Which ggml function the quantize figure times: ggml_quantize_chunk, or from_float_ref for Q8_1 / Q8_K. */
  ggmlQuantizePath?: string;
  /** Whether ggml's quantized bytes equal ours (both sides did the same work). */
  ggmlSameBytes?: boolean;
  /** ours / ggml, wall time: above 1 means nibble is faster. */
  quantizeRatio?: number;
  dequantizeRatio?: number;
  /** ggml's figures as quoted in the formats issue, for context. */
  quotedGgmlQuantizeGBs?: number;
  quotedGgmlDequantizeGBs?: number;
}
const rows: Row[] = [];
const codecs: Codec[] = Object.values(formats).filter((c) => only === '' || only.split(',').includes(c.name));
for (const codec of codecs) {
  const q = new Uint8Array((x.length / codec.info.blockSize) * codec.info.bytesPerBlock);
  const y = new Float32Array(x.length);
  const tq: number[] = [];
  const td: number[] = [];
  const cq: number[] = [];
  const cd: number[] = [];
  const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;
  for (let r = 0; r < runs; r++) {
    let c0 = process.cpuUsage();
    let t0 = performance.now();
    codec.quantizeInto(x, q, { rowLength });
    tq.push(performance.now() - t0);
    cq.push(cpuMs(process.cpuUsage(c0)));
    c0 = process.cpuUsage();
    t0 = performance.now();
    codec.dequantizeInto(q, y);
    td.push(performance.now() - t0);
    cd.push(cpuMs(process.cpuUsage(c0)));
  }
  const quoted = ggmlQuoted[codec.name];
  const quantizeGBs = gb / (median(tq) / 1000);
  const dequantizeGBs = gb / (median(td) / 1000);
  const peer = measurePeer(codec.name, q);
  const opt = <T>(v: T | null | undefined): T | undefined => v ?? undefined;
  const ggmlQ = opt(peer?.quantizeGBs);
  const ggmlD = opt(peer?.dequantizeGBs);
  rows.push({
    format: codec.name,
    bitsPerWeight: codec.info.bitsPerWeight,
    quantizeGBs,
    dequantizeGBs,
    quantizeCpuGBs: gb / (median(cq) / 1000),
    dequantizeCpuGBs: gb / (median(cd) / 1000),
    ggmlQuantizeGBs: ggmlQ,
    ggmlDequantizeGBs: ggmlD,
    ggmlQuantizeCpuGBs: opt(peer?.quantizeCpuGBs),
    ggmlDequantizeCpuGBs: opt(peer?.dequantizeCpuGBs),
    ggmlQuantizePath: opt(peer?.quantizePath),
    ggmlSameBytes: peer?.sameBytes,
    quantizeRatio: ggmlQ === undefined ? undefined : quantizeGBs / ggmlQ,
    dequantizeRatio: ggmlD === undefined ? undefined : dequantizeGBs / ggmlD,
    quotedGgmlQuantizeGBs: quoted?.[0],
    quotedGgmlDequantizeGBs: quoted?.[1],
  });
  console.error(`${codec.name}: done`);
}

// What the imatrix path buys: weighted error Σ w_j (x - y)^2 / Σ w_j x^2 on the real stories260K embedding.
const embBytes = readFileSync(join(root, 'fixtures/golden/ggml-real/stories260K-token_embd.f32'));
const emb = new Float32Array(embBytes.buffer.slice(embBytes.byteOffset, embBytes.byteOffset + embBytes.byteLength));
const embRow = 256;
const impBytes = readFileSync(join(root, 'fixtures/golden/ggml-imatrix/importance-lognormal256.f32'));
const importance = new Float32Array(
  impBytes.buffer.slice(impBytes.byteOffset, impBytes.byteOffset + impBytes.byteLength),
);
const wErr = (y: Float32Array) => {
  let e = 0;
  let n = 0;
  for (let i = 0; i < emb.length; i++) {
    e += importance[i % embRow] * (emb[i] - y[i]) ** 2;
    n += importance[i % embRow] * emb[i] ** 2;
  }
  return e / n;
};
const imatrix = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K', 'iq4_nl', 'iq4_xs'].map(
  (name) => {
    const c = formats[name];
    const plain = wErr(c.dequantize(c.quantize(emb, { rowLength: embRow })));
    const weighted = wErr(c.dequantize(c.quantize(emb, { rowLength: embRow, importance })));
    return {
      format: name,
      plainWeightedRelErr: plain,
      imatrixWeightedRelErr: weighted,
      reduction: 1 - weighted / plain,
    };
  },
);

rmSync(peerDir, { recursive: true, force: true });

const load = loadavg()[0];
const details = {
  date: new Date().toISOString(),
  node: process.version,
  loadAverage1m: load,
  threads: 1,
  values: x.length,
  rowLength,
  runs,
  ggmlPeer: peerNote ?? peerInfo ?? 'no format run',
  rows,
  imatrix,
};
writeResults({
  topic: 'formats',
  title: formatsTitle,
  method: formatsMethod(details),
  peers: ['@node-llama-cpp/linux-x64'],
  extraVersions: formatsVersions(details),
  notes: formatsNotes(details),
  cases: formatsCases(details),
  details,
});

const f = (v: number | undefined) => (v === undefined ? '' : v < 0.1 ? v.toFixed(3) : v.toFixed(2));
const ratio = (v: number | undefined) => (v === undefined ? '' : `${v.toFixed(2)}×`);
const quoted = (r: Row) =>
  r.quotedGgmlQuantizeGBs === undefined ? '' : `${f(r.quotedGgmlQuantizeGBs)} / ${f(r.quotedGgmlDequantizeGBs)}`;
console.log(`Throughput, GB/s of f32, one thread, ${x.length} values, median of ${runs}, wall time.`);
console.log(
  peerNote ??
    `ggml measured in the same run: ggml ${peerInfo?.ggmlVersion} (${peerInfo?.ggmlCommit}), ${peerInfo?.library}. Ratio = ours / ggml. Quantized bytes equal ggml's: ${rows
      .filter((r) => r.ggmlSameBytes !== undefined)
      .map((r) => `${r.format} ${r.ggmlSameBytes ? 'yes' : 'NO'}`)
      .join(', ')}.`,
);
console.log('');
console.log(
  '| format | bpw | ours quantize | ggml quantize | ratio | ours dequantize | ggml dequantize | ratio | ggml as quoted in the issue (q / dq) |',
);
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.format} | ${r.bitsPerWeight} | ${f(r.quantizeGBs)} | ${f(r.ggmlQuantizeGBs)} | ${ratio(r.quantizeRatio)} | ${f(r.dequantizeGBs)} | ${f(r.ggmlDequantizeGBs)} | ${ratio(r.dequantizeRatio)} | ${quoted(r)} |`,
  );
}
console.log('\nImportance-weighted relative error on stories260K token_embd (128 x 256), log-normal importance:\n');
console.log('| format | without imatrix | with imatrix | reduction |');
console.log('|---|---|---|---|');
for (const r of imatrix) {
  console.log(
    `| ${r.format} | ${r.plainWeightedRelErr.toExponential(3)} | ${r.imatrixWeightedRelErr.toExponential(3)} | ${(100 * r.reduction).toFixed(1)}% |`,
  );
}
