import { readFileSync } from 'node:fs';
import { formats } from '@nibble/formats';
import { loadGoldenDots, runConformance, type TestContext } from '@nibble/tensor/testing';
import { describe, it } from 'vitest';
import { webgpuNode } from './node.js';

const dir = new URL('../../../fixtures/golden/ggml-synthetic/', import.meta.url);
const golden = loadGoldenDots((p) => new Uint8Array(readFileSync(new URL(p, dir))));

// On SwiftShader through dawn.node (vitest.config.ts points Vulkan at it). Compiling a kernel per format takes
// SwiftShader about a second, so the matmul test gets more time than vitest's default.
const slowIt = (name: string, fn: (ctx: TestContext) => Promise<void> | void) => it(name, fn, 400_000);
runConformance(webgpuNode, { describe, it: slowIt }, { codecs: formats, golden, numRuns: 6 });
