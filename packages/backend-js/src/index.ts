/**
 * @nibble/backend-js: the reference backend in plain TypeScript. Importing it registers the `'js'` backend.
 *
 * @example
 * ```ts
 * import { createBackend } from '@nibble/tensor';
 * import '@nibble/backend-js';
 * const backend = await createBackend('js');
 * ```
 * @packageDocumentation
 */
import { type BackendFactory, registerBackend } from '@nibble/tensor';
import { JsBackend, type JsBackendOptions } from './backend.js';

export type { JsBackendOptions, Plan } from './backend.js';
export { JsBackend, jsCapabilities } from './backend.js';
export type { DecodeRow } from './kernels.js';
export { JsTensor } from './tensor.js';

/**
 * The JS backend's factory. Pass it to `createBackend` directly, or use the name `'js'` after importing this package.
 *
 * @example
 * ```ts
 * const backend = await createBackend(js, { matmulActivations: 'ggml' });
 * ```
 */
export const js: BackendFactory = Object.freeze({
  name: 'js',
  create: async (options?: JsBackendOptions) => new JsBackend(options),
});

registerBackend(js);
