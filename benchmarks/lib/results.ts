/**
 * The common shape of every results file in benchmarks/results/ (`schema: 'nibble-bench/1'`), and the helpers the
 * benchmarks use to write it. A file holds the machine, the versions of nibble and of every peer, the date, and a
 * list of cases: one measured quantity (a format's quantize GB/s, a model's decode tok/s) with the median of each
 * engine that measured it in the same run, and the ratios of nibble to each peer. The topic's full record stays
 * under `details`. Results from another machine (the GPU machine's WebGPU runs) use the same shape, so the report
 * and the docs page take any file that has it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SCHEMA = 'nibble-bench/1';

const here = dirname(fileURLToPath(import.meta.url));
/** benchmarks/ */
export const benchDir = join(here, '..');
const repo = join(benchDir, '..');

/** One engine's figure for a case. */
export interface EngineResult {
  /** e.g. `nibble (js)`, `ggml`, `llama.cpp`, `@huggingface/gguf`. */
  engine: string;
  /** Whether this engine is nibble (anything else is a peer). */
  ours: boolean;
  /** Median of `runs` measurements, in the case's unit. */
  median: number;
  runs?: number;
  /** How this figure was obtained when it differs from the rest (e.g. quoted from another run). */
  note?: string;
}

/** nibble beside one peer: above 1 means nibble is better (faster, smaller), whatever the unit's direction. */
export interface Ratio {
  ours: string;
  peer: string;
  ratio: number;
}

/** One measured quantity. */
export interface BenchCase {
  /** Cases of one group share a unit and are charted together, e.g. `quantize, GB/s of f32`. */
  group: string;
  /** e.g. `q4_0`, `stories260K (Q4_0), 1 thread`. */
  name: string;
  unit: string;
  higherIsBetter: boolean;
  results: EngineResult[];
  ratios: Ratio[];
}

/** The machine a file was measured on. */
export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  loadAverage1m?: number;
  /** The GPU or WebGPU adapter, for GPU results. */
  gpu?: string;
  note?: string;
}

/** The machine of a record written before the common shape, which did not note it (what little is known goes in). */
export function unrecordedMachine(os = 'not recorded', node = 'not recorded'): Machine {
  return {
    cpu: 'CPU not recorded',
    cores: 0,
    memoryGiB: 0,
    os,
    node,
    note: "the benchmark's own record, from before the common shape: the machine was not recorded",
  };
}

/** A results file. */
export interface BenchFile {
  schema: typeof SCHEMA;
  topic: string;
  title: string;
  date: string;
  /** `pnpm bench --quick`: smaller sizes and fewer runs, for checking the pipeline, not for quoting. */
  quick: boolean;
  machine: Machine;
  /** nibble's version and commit, and every peer's version. */
  versions: Record<string, string>;
  /** How the figures were measured, in a sentence or two. */
  method: string;
  notes?: string[];
  cases: BenchCase[];
  details?: unknown;
}

/** Whether a benchmark runs with `--quick` (set by run-all.ts through the environment). */
export const quick = process.env.NIBBLE_BENCH_QUICK === '1';

/** Where results go: NIBBLE_BENCH_OUT, else benchmarks/results/quick for quick runs, else benchmarks/results. */
export function resultsDir(): string {
  return process.env.NIBBLE_BENCH_OUT ?? join(benchDir, 'results', ...(quick ? ['quick'] : []));
}

/** The median of a list (the mean of the middle two for even lengths). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** This machine. */
export function machineInfo(): Machine {
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${process.platform} ${release()}`,
    node: process.version,
    loadAverage1m: Math.round(loadavg()[0] * 100) / 100,
  };
}

function packageVersion(dir: string): string | undefined {
  const p = join(dir, 'package.json');
  if (!existsSync(p)) return undefined;
  return (JSON.parse(readFileSync(p, 'utf8')) as { version?: string }).version;
}

/** nibble's package version and git commit, and the installed version of each peer package named. */
export function versions(peers: readonly string[] = []): Record<string, string> {
  const v: Record<string, string> = {};
  const ours = packageVersion(join(repo, 'packages/tensor'));
  let commit = '';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repo, encoding: 'utf8' }).trim();
  } catch {}
  v.nibble = `${ours ?? '?'}${commit ? ` (${commit})` : ''}`;
  for (const peer of peers) {
    const found = packageVersion(join(benchDir, 'node_modules', peer));
    if (found) v[peer] = found;
  }
  return v;
}

/** The ratios of every nibble engine to every peer of a case (nibble better: above 1). */
export function ratiosOf(c: Omit<BenchCase, 'ratios'>): Ratio[] {
  const out: Ratio[] = [];
  for (const o of c.results.filter((r) => r.ours))
    for (const p of c.results.filter((r) => !r.ours)) {
      if (!(o.median > 0) || !(p.median > 0)) continue;
      out.push({ ours: o.engine, peer: p.engine, ratio: c.higherIsBetter ? o.median / p.median : p.median / o.median });
    }
  return out;
}

/** A case from its results, dropping engines without a finite figure and computing the ratios. */
export function makeCase(c: Omit<BenchCase, 'ratios'>): BenchCase {
  const results = c.results.filter((r) => Number.isFinite(r.median));
  return { ...c, results, ratios: ratiosOf({ ...c, results }) };
}

/** What a benchmark passes to {@link writeResults}. */
export interface ResultsInput {
  topic: string;
  title: string;
  method: string;
  /** Peer packages whose versions to record (as installed in benchmarks/node_modules). */
  peers?: string[];
  /** More versions (a native library's build, a Python peer's ggml commit). */
  extraVersions?: Record<string, string>;
  notes?: string[];
  cases: BenchCase[];
  details?: unknown;
  machine?: Partial<Machine>;
  /** Write here instead of `<resultsDir>/<topic>.json`. */
  path?: string;
}

/**
 * Writes `<resultsDir>/<topic>.json` (or `input.path`) in the common shape (through a temporary file) and returns its path.
 *
 * @example
 * ```ts
 * writeResults({ topic: 'formats', title: 'Format throughput', method: '...', peers: [], cases });
 * ```
 */
export function writeResults(input: ResultsInput): string {
  const file: BenchFile = {
    schema: SCHEMA,
    topic: input.topic,
    title: input.title,
    date: new Date().toISOString(),
    quick,
    machine: { ...machineInfo(), ...input.machine },
    versions: { ...versions(input.peers), ...input.extraVersions },
    method: input.method,
    ...(input.notes?.length ? { notes: input.notes } : {}),
    cases: input.cases,
    details: input.details,
  };
  const path = input.path ?? join(resultsDir(), `${input.topic}.json`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, `${JSON.stringify(file, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
  return path;
}

/** Why `x` is not a results file of the common shape, or undefined when it is one. */
export function shapeProblem(x: unknown): string | undefined {
  if (typeof x !== 'object' || x === null) return 'not a JSON object';
  const f = x as Partial<BenchFile>;
  if (f.schema !== SCHEMA) return `schema is ${JSON.stringify(f.schema)}, expected "${SCHEMA}"`;
  for (const k of ['topic', 'title', 'date', 'method'] as const)
    if (typeof f[k] !== 'string') return `"${k}" is not a string`;
  if (typeof f.machine !== 'object' || f.machine === null || typeof f.machine.cpu !== 'string')
    return '"machine.cpu" is missing';
  if (typeof f.versions !== 'object' || f.versions === null) return '"versions" is missing';
  if (!Array.isArray(f.cases)) return '"cases" is not an array';
  for (const [i, c] of f.cases.entries()) {
    if (typeof c?.group !== 'string' || typeof c.name !== 'string' || typeof c.unit !== 'string')
      return `case ${i} lacks group, name or unit`;
    if (typeof c.higherIsBetter !== 'boolean') return `case ${i} (${c.name}) lacks higherIsBetter`;
    if (!Array.isArray(c.results) || c.results.some((r) => typeof r?.engine !== 'string' || !Number.isFinite(r.median)))
      return `case ${i} (${c.name}) has a result without engine or finite median`;
    if (!Array.isArray(c.ratios)) return `case ${i} (${c.name}) lacks ratios`;
  }
  return undefined;
}

/** Turns a topic's own record into the common shape, or returns undefined when `x` is not that record. */
export type ResultsAdapter = (x: unknown) => BenchFile | undefined;

/**
 * Every results file of the common shape in `dir` (sorted by topic), and the files skipped with the reason. A file
 * of another shape is converted by the first of `adapters` that recognizes it (lib/adapters.ts has them).
 */
export function readResults(
  dir: string,
  adapters: readonly ResultsAdapter[] = [],
): { files: BenchFile[]; skipped: { file: string; reason: string }[] } {
  const files: BenchFile[] = [];
  const skipped: { file: string; reason: string }[] = [];
  if (!existsSync(dir)) return { files, skipped };
  for (const name of readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .sort()) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(join(dir, name), 'utf8'));
    } catch (e) {
      skipped.push({ file: name, reason: `not JSON (${(e as Error).message})` });
      continue;
    }
    let problem = shapeProblem(parsed);
    if (problem) {
      for (const adapt of adapters) {
        const converted = adapt(parsed);
        if (converted && !shapeProblem(converted)) {
          parsed = converted;
          problem = undefined;
          break;
        }
      }
    }
    if (problem) skipped.push({ file: name, reason: problem });
    else files.push(parsed as BenchFile);
  }
  files.sort((a, b) => a.topic.localeCompare(b.topic) || a.date.localeCompare(b.date));
  return { files, skipped };
}
