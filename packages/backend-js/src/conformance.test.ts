import { readFileSync } from 'node:fs';
import { formats } from '@nibble/formats';
import { loadGoldenDots, runConformance } from '@nibble/tensor/testing';
import { describe, it } from 'vitest';
import { js } from './index.js';

const dir = new URL('../../../fixtures/golden/ggml-synthetic/', import.meta.url);
const golden = loadGoldenDots((p) => new Uint8Array(readFileSync(new URL(p, dir))));

// Default mode f32; the suite runs every node in both activation modes the backend claims.
runConformance(js, { describe, it }, { codecs: formats, golden });
