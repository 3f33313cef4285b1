/**
 * The runner's llama.cpp parity cases (every architecture, synthetic models, llama.cpp live as the oracle:
 * packages/runner/src/test/parity.ts) on the WebGPU backend (SwiftShader in CI). The F32 files only: the backend's
 * matmuls take f32 activations, while llama.cpp's CPU backend quantizes them to Q8_0 for Q8_0 weights (0.09..0.29
 * apart in log p on these random-weight models, with up to 5 near-ties in 100); js-parity.test.ts checks the
 * quantized weights against the JS backend's f32 activations instead.
 */
import { createBackend } from '@nibble/tensor';
import { describeLlamaParity } from '../../runner/src/test/parity.js';
import { webgpuNode } from './node.js';

// Measured on SwiftShader: F32 7.1e-6..1.3e-5 (Gemma 1.84e-3, 2.21e-3), argmax equal at 100/100 everywhere.
describeLlamaParity([
  {
    name: 'webgpu',
    create: () => createBackend(webgpuNode),
    skipQ8_0: "llama.cpp's CPU backend quantizes activations to Q8_0, this backend keeps them f32",
  },
]);
