import { type Backend, BackendError, type BackendFactory, type BackendOptions, type BackendSkip } from './backend.js';

/**
 * The backend registry: names (`'js'`, `'wasm'`, `'webgpu'`) to factories. Backend packages register themselves when
 * imported.
 *
 * The table lives on `globalThis` under a `Symbol.for` key, so two copies of `@nibble/tensor` in one bundle (a
 * duplicated dependency) share one registry instead of each holding half of it. Entries are factories, which are
 * stateless, so whichever copy of a backend package registered last serves equally well. The key carries the version
 * of the backend interface and graph IR: copies that speak different IRs (the backend kit's `@2` against `@1`) keep
 * separate tables, so an older runner never gets a newer backend that would misread its graphs (it ran, and
 * generated token 0 over and over).
 */

/** A backend choice: a registered name, a factory, or a list tried in order until one initialises. */
export type BackendSpec = string | BackendFactory | readonly (string | BackendFactory)[];

const registryKey = Symbol.for('@nibble/tensor/backend-registry@2');

function registry(): Map<string, BackendFactory> {
  const g = globalThis as { [registryKey]?: Map<string, BackendFactory> };
  let r = g[registryKey];
  if (r === undefined) {
    r = new Map();
    Object.defineProperty(globalThis, registryKey, {
      value: r,
      enumerable: false,
      configurable: false,
      writable: false,
    });
  }
  return r;
}

/**
 * Registers a factory under its name (replacing an earlier one of the same name). Backend packages call it at import.
 *
 * @example
 * ```ts
 * registerBackend({ name: 'mine', create: async () => new MyBackend() });
 * ```
 */
export function registerBackend(factory: BackendFactory): void {
  if (typeof factory?.name !== 'string' || typeof factory.create !== 'function') {
    throw new BackendError('registerBackend needs an object with a name and a create function');
  }
  registry().set(factory.name, factory);
}

/**
 * The names of every registered backend, in registration order.
 *
 * @example
 * ```ts
 * import '@nibble/backend-js';
 * registeredBackends(); // ['js']
 * ```
 */
export function registeredBackends(): string[] {
  return [...registry().keys()];
}

/** Options of {@link createBackend}: every factory gets them, plus a callback for skipped backends. */
export interface CreateBackendOptions extends BackendOptions {
  /** Called for each backend that was tried and did not initialise, before the next is tried. */
  onSkip?: (skip: BackendSkip) => void;
}

/**
 * Creates a backend and reports the ones skipped on the way.
 *
 * @example
 * ```ts
 * const { backend, skipped } = await selectBackend(['webgpu', 'js']);
 * for (const s of skipped) console.warn(`${s.name} skipped: ${s.reason}`);
 * ```
 */
export async function selectBackend(
  spec: BackendSpec,
  options: CreateBackendOptions = {},
): Promise<{ backend: Backend; skipped: BackendSkip[] }> {
  const list = typeof spec === 'string' || !Array.isArray(spec) ? [spec as string | BackendFactory] : spec;
  if (list.length === 0) throw new BackendError('no backend given (empty list)');
  const { onSkip, ...factoryOptions } = options;
  const skipped: BackendSkip[] = [];
  let lastError: unknown;
  for (const item of list) {
    const name = typeof item === 'string' ? item : item.name;
    const factory = typeof item === 'string' ? registry().get(item) : item;
    let reason: string;
    if (factory === undefined) {
      const known = registeredBackends();
      reason = `not registered (import its package, e.g. '@nibble/backend-${name}'); registered: ${known.length ? known.join(', ') : 'none'}`;
    } else {
      try {
        const backend = await factory.create(factoryOptions);
        return { backend, skipped };
      } catch (e) {
        lastError = e;
        reason = e instanceof Error ? e.message : String(e);
      }
    }
    const skip = Object.freeze({ name, reason });
    skipped.push(skip);
    onSkip?.(skip);
  }
  const detail = skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
  throw new BackendError(`no backend could be created (${detail})`, skipped, { cause: lastError });
}

/**
 * Creates a backend from a name, a factory, or a list (the first that initialises wins; each earlier one's reason goes
 * to `options.onSkip`, and all reasons are in the thrown {@link BackendError} when none works).
 *
 * @example
 * ```ts
 * import '@nibble/backend-js';
 * const backend = await createBackend(['webgpu', 'js'], { onSkip: (s) => console.warn(s.name, s.reason) });
 * ```
 */
export async function createBackend(spec: BackendSpec, options: CreateBackendOptions = {}): Promise<Backend> {
  return (await selectBackend(spec, options)).backend;
}
