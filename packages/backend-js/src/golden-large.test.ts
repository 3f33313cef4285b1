import { readFileSync } from 'node:fs';
import { type DTypeName, GraphBuilder, hostTensor } from '@nibble/tensor';
import { defaultTolerances, loadGoldenDots } from '@nibble/tensor/testing';
import { describe, expect, it } from 'vitest';
import { JsBackend } from './index.js';

// The conformance suite checks ggml's dots on 4-row weights; large matrices take other kernels here (the lookup
// table of the 4-bit formats, the Int8Array q8_0 kernel). Stack the golden rows 16 times to reach them. With 3 copies
// of the activation row, the same dots go through the multi-token tile (and, for q4_1/q5_1 in ggml mode, the stored-s
// min term).
const dir = new URL('../../../fixtures/golden/ggml-synthetic/', import.meta.url);
const golden = loadGoldenDots((p) => new Uint8Array(readFileSync(new URL(p, dir))));

describe('ggml golden dots through the large-matrix kernels', () => {
  for (const [mode, tokens] of [
    ['ggml', 1],
    ['f32', 1],
    ['ggml', 3],
    ['f32', 3],
  ] as const) {
    it(`${mode} activations, 64-row weights, ${tokens} token(s)`, async () => {
      const backend = new JsBackend({ matmulActivations: mode });
      const bound = mode === 'ggml' ? defaultTolerances.goldenGgml : defaultTolerances.goldenF32;
      let checked = 0;
      for (const t of golden.types) {
        for (const c of t.cases) {
          const reps = 16;
          const w = new Uint8Array(c.weight.length * reps);
          for (let i = 0; i < reps; i++) w.set(c.weight, i * c.weight.length);
          const handle = await backend.upload(hostTensor(t.type as DTypeName, [t.rows * reps, t.cols], w));
          const g = new GraphBuilder();
          g.output('y', g.matmul(g.weight(handle), g.input('x', 'f32', [tokens, t.cols])));
          const x = new Float32Array(tokens * t.cols);
          for (let k = 0; k < tokens; k++) x.set(golden.activation, k * t.cols);
          const { y } = await backend.run(g.build(), { x });
          for (let r = 0; r < tokens * t.rows * reps; r++) {
            const row = (r % (t.rows * reps)) % t.rows;
            let mag = 0;
            for (let i = 0; i < t.cols; i++) mag += Math.abs(c.dequantized[row * t.cols + i] * golden.activation[i]);
            const diff = Math.abs(y[r] - c.dots[row]);
            expect(diff, `${t.type}/${c.name} row ${r}`).toBeLessThanOrEqual(bound * mag + 1e-30);
          }
          checked++;
        }
      }
      expect(checked).toBe(17 * 13);
    });
  }
});
