import { existsSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

// WebGPU tests (dawn.node) run on Chromium's SwiftShader when no Vulkan driver is chosen. Set here, before the
// test workers start, because the Vulkan loader reads these when the process loads it.
const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (process.env.VK_ICD_FILENAMES === undefined && existsSync(swiftshader)) {
  process.env.VK_ICD_FILENAMES = swiftshader;
  process.env.LD_LIBRARY_PATH = ['/usr/lib/chromium', process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
}

// Tests import workspace packages through their `source` export condition,
// so they run against src/ without a build step.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'benchmarks/**/*.test.ts', 'tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
