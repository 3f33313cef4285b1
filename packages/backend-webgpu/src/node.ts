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
  gpu ??= create(dawnFlags(env?.NIBBLE_DAWN_FLAGS ?? '')) as GPU;
  return gpu;
}

/**
 * dawn.node's flags from `NIBBLE_DAWN_FLAGS` (';' between flags), with Dawn's timestamp quantization off unless the
 * flags name it: it rounds GPU timestamps to 65.536 us, a guard against timing attacks in browsers that only makes
 * `lastStep.gpuMs` and profiles useless in Node.
 *
 * @example
 * ```ts
 * dawnFlags('enable-dawn-features=allow_unsafe_apis');
 * // ['enable-dawn-features=allow_unsafe_apis', 'disable-dawn-features=timestamp_quantization']
 * ```
 */
export function dawnFlags(spec: string): string[] {
  const flags = spec.split(';').filter((f) => f !== '');
  if (flags.some((f) => f.includes('timestamp_quantization'))) return flags;
  const i = flags.findIndex((f) => f.startsWith('disable-dawn-features='));
  if (i >= 0) flags[i] = `${flags[i]},timestamp_quantization`;
  else flags.push('disable-dawn-features=timestamp_quantization');
  return flags;
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
