/**
 * One nibble run of the quantize benchmark, in its own process so that its peak RSS is its own:
 *   node --conditions=source --import tsx worker.ts IN OUT PRESET THREADS
 * Prints {"seconds", "cpuSeconds", "peakRssMB"} (CPU time of every thread of the process: the workers' too).
 */
import { quantizeFile } from '@nibble/quantize/node';

const [input, output, preset, threads] = process.argv.slice(2);
const cpu = () => {
  const u = process.resourceUsage();
  return (u.userCPUTime + u.systemCPUTime) / 1e6;
};
const t0 = performance.now();
const c0 = cpu();
await quantizeFile(input, output, { preset, threads: Number(threads), overwrite: true });
const seconds = (performance.now() - t0) / 1000;
const cpuSeconds = cpu() - c0;
console.log(JSON.stringify({ seconds, cpuSeconds, peakRssMB: process.resourceUsage().maxRSS / 1024 }));
