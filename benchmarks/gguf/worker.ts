/**
 * One measurement in its own process (so peak RSS belongs to one library): open the file, index every tensor
 * (name -> absolute offset, shape, type), repeat `reps` times; print JSON with the first (cold) time, the median of
 * the rest (warm), the peak RSS and the RSS before opening.
 *
 * usage: worker.ts nibble|hf file|url PATH_OR_URL REPS
 */
import { gguf } from '@huggingface/gguf';
import { openGguf } from '@nibble/gguf';
import { openGgufFile } from '@nibble/gguf/node';

const [lib, mode, where, repsArg] = process.argv.slice(2);
const reps = Number(repsArg ?? 5);

interface Entry {
  offset: number;
  shape: readonly number[];
  type: number;
}

async function nibble(): Promise<Map<string, Entry>> {
  const file = mode === 'url' ? await openGguf(where) : await openGgufFile(where);
  const index = new Map<string, Entry>();
  for (const t of file.tensors) index.set(t.name, { offset: t.byteOffset, shape: t.shape, type: t.ggmlType });
  await file.close();
  return index;
}

async function hf(): Promise<Map<string, Entry>> {
  const { tensorInfos, tensorDataOffset } = await gguf(where, { allowLocalFile: mode === 'file' });
  const index = new Map<string, Entry>();
  const base = Number(tensorDataOffset);
  for (const t of tensorInfos) {
    index.set(t.name, { offset: base + Number(t.offset), shape: t.shape.map(Number).reverse(), type: t.dtype });
  }
  return index;
}

const run = lib === 'nibble' ? nibble : hf;
const rssBefore = process.memoryUsage().rss;
const times: number[] = [];
let tensors = 0;
let lastOffset = 0;
for (let i = 0; i < reps; i++) {
  const t0 = performance.now();
  const index = await run();
  times.push(performance.now() - t0);
  tensors = index.size;
  lastOffset = Math.max(...[...index.values()].map((e) => e.offset));
}
const warm = times.slice(1).sort((a, b) => a - b);
console.log(
  JSON.stringify({
    lib,
    mode,
    tensors,
    lastOffset,
    coldMs: times[0],
    warmMs: warm.length ? warm[warm.length >> 1] : times[0],
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    rssBeforeMB: rssBefore / 2 ** 20,
  }),
);
