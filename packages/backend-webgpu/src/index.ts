/**
 * @nibble/backend-webgpu: WGSL kernels on raw GGUF blocks. Importing it registers the `'webgpu'` backend, which
 * uses `navigator.gpu` (browsers); in Node import `@nibble/backend-webgpu/node` instead, which registers the same
 * backend on dawn.node.
 *
 * @example
 * ```ts
 * import { createBackend } from '@nibble/tensor';
 * import '@nibble/backend-webgpu';
 * const backend = await createBackend(['webgpu', 'js']);
 * ```
 * @packageDocumentation
 */
import { type BackendFactory, registerBackend } from '@nibble/tensor';
import { WebGpuBackend, type WebGpuBackendOptions } from './backend.js';

export type { KernelTime, StepStats, WebGpuBackendOptions } from './backend.js';
export { GpuTensor, WebGpuBackend, webgpuCapabilities } from './backend.js';
export type { DeviceOptions, GpuInfo } from './device.js';
export { GpuDeviceLostError, GpuOutOfMemoryError } from './device.js';

/**
 * Makes a WebGPU backend factory on a given WebGPU entry point (`navigator.gpu`, or dawn.node's `create([])`).
 *
 * @example
 * ```ts
 * registerBackend(webgpuFactory(navigator.gpu));
 * ```
 */
export function webgpuFactory(gpu?: GPU): BackendFactory {
  return Object.freeze({
    name: 'webgpu',
    create: async (options?: WebGpuBackendOptions) => WebGpuBackend.create({ ...options, gpu: options?.gpu ?? gpu }),
  });
}

/**
 * The WebGPU backend's factory on `navigator.gpu`. Pass it to `createBackend`, or use the name `'webgpu'`.
 *
 * @example
 * ```ts
 * const backend = await createBackend(webgpu);
 * ```
 */
export const webgpu: BackendFactory = webgpuFactory();

registerBackend(webgpu);
