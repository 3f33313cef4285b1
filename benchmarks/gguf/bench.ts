/**
 * GGUF benchmark: open a 620 MB TinyLlama-shaped Q4_0 file and index all its tensors, from a local path and from a
 * local HTTP server (range requests), with @nibble/gguf and @huggingface/gguf in the same run. Each measurement runs
 * in its own process (worker.ts) so peak RSS is per library; the two libraries alternate to share the machine's noise.
 * Writes results/gguf.json and prints a markdown table.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { quick, writeResults } from '../lib/results.js';
import { ggufCases, ggufMethod, ggufTitle } from './cases.js';
import { tinyLlamaQ4_0Path } from './generate.js';

const here = dirname(fileURLToPath(import.meta.url));
// BENCH_ROUNDS / BENCH_REPS; `--quick` (NIBBLE_BENCH_QUICK=1) defaults to 2 rounds of 3.
const rounds = Number(process.env.BENCH_ROUNDS ?? (quick ? 2 : 5));
const reps = Number(process.env.BENCH_REPS ?? (quick ? 3 : 7));

interface Sample {
  lib: string;
  mode: string;
  tensors: number;
  lastOffset: number;
  coldMs: number;
  warmMs: number;
  peakRssMB: number;
  rssBeforeMB: number;
}

const path = await tinyLlamaQ4_0Path();
const size = statSync(path).size;

// A static file server with Range support, counting the bytes it sends.
let servedBytes = 0;
const server = createServer((req, res) => {
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  if (!m) {
    res.writeHead(200, { 'content-length': size, 'accept-ranges': 'bytes' });
    servedBytes += size;
    createReadStream(path).pipe(res);
    return;
  }
  const start = Number(m[1]);
  const end = Math.min(m[2] === '' ? size - 1 : Number(m[2]), size - 1);
  servedBytes += end - start + 1;
  res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': end - start + 1 });
  createReadStream(path, { start, end }).pipe(res);
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/model.gguf`;

function measure(lib: string, mode: string): Promise<Sample & { servedMB: number }> {
  servedBytes = 0;
  // Run the worker asynchronously so this process can keep serving HTTP.
  return new Promise((resolve, reject) => {
    import('node:child_process').then(({ execFile }) => {
      execFile(
        process.execPath,
        [
          '--conditions=source',
          '--import',
          'tsx',
          join(here, 'worker.ts'),
          lib,
          mode,
          mode === 'url' ? url : path,
          String(reps),
        ],
        (err, stdout) => {
          if (err) return reject(err);
          const s = JSON.parse(stdout.trim().split('\n').pop()!) as Sample;
          resolve({ ...s, servedMB: servedBytes / reps / 2 ** 20 });
        },
      );
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const rows: Record<string, (Sample & { servedMB: number })[]> = {};
for (let r = 0; r < rounds; r++) {
  for (const mode of ['file', 'url']) {
    for (const lib of r % 2 === 0 ? ['nibble', 'hf'] : ['hf', 'nibble']) {
      const s = await measure(lib, mode);
      (rows[`${lib}/${mode}`] ??= []).push(s);
    }
  }
}
server.close();

const check = Object.values(rows).map((s) => `${s[0].tensors}/${s[0].lastOffset}`);
if (new Set(check).size !== 1) throw new Error(`the libraries disagree on the tensor index: ${check.join(' ')}`);

const summary = Object.entries(rows).map(([key, s]) => {
  const [lib, mode] = key.split('/');
  return {
    library: lib === 'nibble' ? '@nibble/gguf' : '@huggingface/gguf 0.4.6',
    source: mode === 'file' ? 'local path' : 'HTTP range (127.0.0.1)',
    tensors: s[0].tensors,
    coldMs: median(s.map((x) => x.coldMs)),
    warmMs: median(s.map((x) => x.warmMs)),
    peakRssMB: median(s.map((x) => x.peakRssMB)),
    rssOverBaselineMB: median(s.map((x) => x.peakRssMB - x.rssBeforeMB)),
    fetchedPerOpenMB: mode === 'url' ? median(s.map((x) => x.servedMB)) : undefined,
  };
});

let cpu = 'unknown';
try {
  cpu = execFileSync('sh', ['-c', "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]).toString().trim();
} catch {}
const result = {
  topic: 'gguf',
  date: new Date().toISOString(),
  machine: { cpu, node: process.version },
  file: {
    bytes: size,
    shape: 'TinyLlama 1.1B, Q4_0 (random weights), llama-spm vocabulary',
    tensors: summary[0].tensors,
  },
  method: `${rounds} rounds x ${reps} opens per process; cold = first open in a fresh process, warm = median of the rest; medians over rounds`,
  rounds,
  results: summary,
};
writeResults({
  topic: 'gguf',
  title: ggufTitle,
  method: ggufMethod(result),
  peers: ['@huggingface/gguf'],
  cases: ggufCases(result),
  details: result,
});

console.log(
  `Open + index ${summary[0].tensors} tensors of a ${(size / 1e6).toFixed(0)} MB Q4_0 GGUF (${cpu}, Node ${process.version})\n`,
);
console.log('| library | source | cold ms | warm ms | peak RSS MB | RSS growth MB | fetched per open MB |');
console.log('|---|---|---:|---:|---:|---:|---:|');
for (const s of summary) {
  const fetched = s.fetchedPerOpenMB === undefined ? '' : s.fetchedPerOpenMB.toFixed(2);
  console.log(
    `| ${s.library} | ${s.source} | ${s.coldMs.toFixed(1)} | ${s.warmMs.toFixed(1)} | ${s.peakRssMB.toFixed(0)} | ${s.rssOverBaselineMB.toFixed(0)} | ${fetched} |`,
  );
}
