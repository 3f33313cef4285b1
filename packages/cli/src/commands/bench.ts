/**
 * `nibble bench`: how fast each format quantizes and dequantizes on this machine (GB/s of f32, one thread, median of
 * several runs). The side-by-side benchmarks against peers are in the repository's benchmarks/ (`pnpm bench`).
 */
import { formats } from '@nibble/formats';
import { parseOrHelp } from '../args.js';
import { progressBar } from '../progress.js';
import { benchSpec } from '../specs.js';
import { formatTable } from '../table.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export async function run(args: string[]): Promise<number> {
  const p = parseOrHelp(benchSpec, args);
  if (!p) return 0;
  const { json } = p.values;
  const n = Math.floor(p.values.values / 4096) * 4096;
  const runs = p.values.runs;
  const x = new Float32Array(n);
  let s = 1;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0; // a fixed pseudo-random fill, the same every run
    x[i] = (s / 2 ** 32 - 0.5) * 2;
  }
  const y = new Float32Array(n);
  const rows: { format: string; quantizeGBs: number; dequantizeGBs: number }[] = [];
  const codecs = Object.values(formats).filter((c) => !c.info.internal);
  const bar = progressBar(json);
  bar.start(codecs.length, 0, 'formats');
  try {
    for (const codec of codecs) {
      bar.update(rows.length, codec.name);
      const q = new Uint8Array((n / codec.info.blockSize) * codec.info.bytesPerBlock);
      const tq: number[] = [];
      const td: number[] = [];
      for (let r = 0; r < runs; r++) {
        let t0 = performance.now();
        codec.quantizeInto(x, q, { rowLength: 4096 });
        tq.push(performance.now() - t0);
        t0 = performance.now();
        codec.dequantizeInto(q, y);
        td.push(performance.now() - t0);
      }
      const gb = (4 * n) / 1e9;
      rows.push({ format: codec.name, quantizeGBs: gb / (median(tq) / 1e3), dequantizeGBs: gb / (median(td) / 1e3) });
    }
  } finally {
    bar.stop();
  }
  if (json) {
    console.log(JSON.stringify({ values: n, runs, rows }, null, 2));
    return 0;
  }
  console.log(`${n} f32 values, median of ${runs} runs, one thread (GB/s of f32)\n`);
  const body = rows.map((r) => [r.format, r.quantizeGBs.toFixed(2), r.dequantizeGBs.toFixed(2)]);
  console.log(formatTable(['format', 'quantize', 'dequantize'], body, { align: ['l', 'r', 'r'] }));
  return 0;
}
