// Quantize the file the user picks, in the page, to Q4_K_M, on Web Workers; offer the result as a download.
import { quantizeToBlob, webWorkerPool } from '@nibble/quantize';

const input = document.getElementById('model') as HTMLInputElement;
const progress = document.getElementById('progress') as HTMLProgressElement;
const result = document.getElementById('result') as HTMLElement;

input.addEventListener('change', async () => {
  const file = input.files?.[0];
  if (!file) return;
  // quantize-worker.js is the bundled quantize-worker.ts below; jobs are copied to the workers, so no
  // cross-origin isolation is needed.
  const pool = await webWorkerPool({ threads: 2, url: new URL('quantize-worker.js', location.href) });
  try {
    const { blob, result: r } = await quantizeToBlob(file, {
      preset: 'Q4_K_M',
      pool,
      onProgress: (p) => {
        progress.value = p.bytesDone / p.bytesTotal;
      },
    });
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob); // the file is read by slices and written part by part
    link.download = file.name.replace(/\.gguf$/i, '-Q4_K_M.gguf');
    link.textContent = `${link.download}: ${blob.size} bytes in ${(r.elapsedMs / 1000).toFixed(1)} s`;
    result.replaceChildren(link);
  } catch (e) {
    result.textContent = `failed: ${(e as Error).message}`; // a QuantizeError names the tensor and the reason
  } finally {
    await pool.close();
  }
});
