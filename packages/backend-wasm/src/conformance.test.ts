import { readFileSync } from 'node:fs';
import { formats } from '@nibble/formats';
import { loadGoldenDots, runConformance } from '@nibble/tensor/testing';
import { describe, it } from 'vitest';
import { wasm } from './node.js';

const dir = new URL('../../../fixtures/golden/ggml-synthetic/', import.meta.url);
const golden = loadGoldenDots((p) => new Uint8Array(readFileSync(new URL(p, dir))));

// One thread and two (the pool); the suite runs every node in both activation modes the backend claims.
for (const threads of [1, 2]) {
  describe(`${threads} thread(s)`, () => {
    runConformance(wasm, { describe, it }, { codecs: formats, golden, backendOptions: { threads } });
  });
}
