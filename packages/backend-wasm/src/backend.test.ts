import { formats } from '@nibble/formats';
import { openGgufFile } from '@nibble/gguf/node';
import { fromGgufFile, loadModelFrom } from '@nibble/runner';
import { loadModel } from '@nibble/runner/node';
import { createBackend, type DTypeName, hostTensor } from '@nibble/tensor';
import { describe, expect, it } from 'vitest';
import { fixturePath } from '../../runner/src/test/fixtures.js';
import { type WasmBackend, wasmCapabilities } from './backend.js';
import './node.js';

describe('wasm backend', () => {
  it('says which kernel build runs; relaxedSimd: false forces the plain one; a non-boolean is refused', async () => {
    const plain = (await createBackend('wasm', { threads: 1, relaxedSimd: false })) as WasmBackend;
    expect(plain.simd).toBe('simd128');
    expect(plain.info).toBe('wasm (simd128)');
    plain.dispose();
    // Node 20 has no relaxed SIMD (the build fails validation): the default falls back to the plain build there.
    const auto = (await createBackend('wasm', { threads: 1 })) as WasmBackend;
    expect(['simd128', 'relaxed-simd']).toContain(auto.simd);
    expect(auto.info).toBe(`wasm (${auto.simd})`);
    auto.dispose();
    await expect(createBackend('wasm', { threads: 1, relaxedSimd: 'yes' })).rejects.toThrow(
      /relaxedSimd must be true or false, got yes/,
    );
  });

  it('declares wasm32 memory as its total limit', () => {
    expect(wasmCapabilities().limits.maxTotalBytes).toBeLessThan(2 ** 32);
    expect(wasmCapabilities().limits.maxTotalBytes).toBeGreaterThan(3.5 * 2 ** 30);
  });

  it('makes the runner refuse a model above the limit before reading any tensor, naming its size and the limit', async () => {
    const file = await openGgufFile(fixturePath('models', 'stories260K.gguf'));
    const backend = await createBackend('wasm', { threads: 1 });
    try {
      // The same backend with a limit below stories260K's 1 MB (a 4 GiB model is not something to ship as a fixture).
      const caps = backend.capabilities;
      Object.defineProperty(backend, 'capabilities', {
        value: { ...caps, limits: { ...caps.limits, maxTotalBytes: 500_000 } },
      });
      let reads = 0;
      const counted = {
        metadata: file.metadata,
        tensors: file.tensors,
        readTensor: (n: string) => {
          reads++;
          return file.readTensor(n);
        },
      };
      await expect(loadModelFrom({ file: counted, tokenizer: fromGgufFile(file) }, { backend })).rejects.toThrow(
        /the model's weights are \d+ bytes \(0\.\d\d GiB\), above backend 'wasm''s limit of 500000 bytes/,
      );
      expect(reads).toBe(0);
    } finally {
      backend.dispose();
      await file.close();
    }
  });

  it('gives the stored bytes back on download, regrouped and unpacked formats included', async () => {
    const b = await createBackend('wasm', { threads: 1 });
    try {
      for (const dtype of ['q4_0', 'q8_0', 'q4_K', 'q6_K', 'f16', 'tq1_0'] as DTypeName[]) {
        const rows = 13;
        const cols = 512;
        const src = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.7));
        const bytes = formats[dtype].quantize(src, { rowLength: cols });
        const t = await b.upload(hostTensor(dtype, [rows, cols], bytes));
        expect((await b.download(t)).data, dtype).toEqual(bytes);
        b.free(t);
      }
    } finally {
      b.dispose();
    }
  });

  it('gives a session’s memory back when it is disposed: repeated sessions do not grow the memory', async () => {
    const model = await loadModel(fixturePath('models', 'stories260K.gguf'), {
      backend: 'wasm',
      threads: 1,
      contextSize: 256,
    });
    try {
      const backend = model.backend as unknown as WasmBackend;
      const sizes: number[] = [];
      for (let i = 0; i < 6; i++) {
        const s = await model.createSession();
        await s.evaluate([1, 2, 3]);
        s.dispose();
        sizes.push(backend.memoryBytes);
      }
      expect(sizes[5]).toBe(sizes[1]);
    } finally {
      await model.dispose();
    }
  });

  it('checks the thread count', async () => {
    await expect(createBackend('wasm', { threads: 0 })).rejects.toThrow(
      /threads must be an integer in 1\.\.256, got 0/,
    );
    await expect(createBackend('wasm', { threads: 1.5 })).rejects.toThrow(/threads must be an integer/);
  });
});
