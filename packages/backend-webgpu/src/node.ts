/**
 * `@nibble/backend-webgpu/node`: the WebGPU backend in Node through dawn.node (the `webgpu` package). Importing it
 * registers `'webgpu'` on dawn.node. Without a GPU, point Vulkan at a software driver, e.g. Chromium's SwiftShader:
 * `VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json LD_LIBRARY_PATH=/usr/lib/chromium`.
 *
 * @example
 * ```ts
 * import '@nibble/backend-webgpu/node';
 * const backend = await createBackend('webgpu');
 * ```
 * @packageDocumentation
 */
/// <reference types="@webgpu/types" />
import { type BackendFactory, registerBackend } from '@nibble/tensor';
import { create } from 'webgpu';
import type { WebGpuBackendOptions } from './backend.js';
import { webgpuFactory } from './index.js';

export * from './index.js';

let gpu: GPU | undefined;

/**
 * dawn.node's WebGPU entry point, made once per process.
 *
 * @example
 * ```ts
 * const adapter = await nodeGpu().requestAdapter();
 * ```
 */
export function nodeGpu(): GPU {
  // dawn.node flags, e.g. NIBBLE_DAWN_FLAGS='enable-dawn-features=allow_unsafe_apis,disable_robustness' (';' between).
  const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
  gpu ??= create((env?.NIBBLE_DAWN_FLAGS ?? '').split(';').filter((f) => f !== '')) as GPU;
  return gpu;
}

/**
 * The WebGPU backend's factory on dawn.node.
 *
 * @example
 * ```ts
 * const backend = await createBackend(webgpuNode);
 * ```
 */
export const webgpuNode: BackendFactory = Object.freeze({
  name: 'webgpu',
  create: (options?: WebGpuBackendOptions) => webgpuFactory(nodeGpu()).create(options),
});

registerBackend(webgpuNode);
