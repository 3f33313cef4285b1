/**
 * One nibble run of the quantize benchmark, in its own process so that its peak RSS is its own:
 *   node --conditions=source --import tsx worker.ts IN OUT PRESET THREADS
 * Prints {"seconds", "peakRssMB"}.
 */
import { quantizeFile } from '@nibble/quantize/node';

const [input, output, preset, threads] = process.argv.slice(2);
const t0 = performance.now();
await quantizeFile(input, output, { preset, threads: Number(threads), overwrite: true });
const seconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ seconds, peakRssMB: process.resourceUsage().maxRSS / 1024 }));
