/**
 * Node entry of @nibble/runner: everything of the main entry, and `loadModel` that also opens local paths (through
 * a file handle: the header first, then each tensor once; the file is never held twice).
 *
 * @example
 * ```ts
 * import '@nibble/backend-js';
 * import { loadModel } from '@nibble/runner/node';
 * const model = await loadModel('stories260K.gguf', { backend: 'js' });
 * ```
 * @packageDocumentation
 */
import { type GgufSource, openGguf } from '@nibble/gguf';
import { openGgufFile } from '@nibble/gguf/node';
import { type LoadModelOptions, loadModelFrom, type Model } from './model.js';
import { fromGgufFile } from './text.js';

export * from './index.js';

/**
 * Loads a model from a local path, a URL (`URL` object or http(s) string), a Blob/File or bytes.
 *
 * @example
 * ```ts
 * const model = await loadModel('models/stories260K.gguf', { backend: 'js', contextSize: 512 });
 * ```
 */
export async function loadModel(source: GgufSource, options: LoadModelOptions = {}): Promise<Model> {
  const isPath = typeof source === 'string' && !/^[a-z][a-z0-9+.-]*:\/\//i.test(source);
  const file = isPath ? await openGgufFile(source) : await openGguf(source);
  try {
    return await loadModelFrom({ file, tokenizer: fromGgufFile(file), close: () => file.close() }, options);
  } catch (e) {
    await file.close();
    throw e;
  }
}
