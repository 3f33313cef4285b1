import { describe, expect, it } from 'vitest';
import { type Backend, BackendError, type BackendFactory } from './backend.js';
import { createBackend, registerBackend, registeredBackends, selectBackend } from './registry.js';

const fake = (name: string, fail?: string): BackendFactory => ({
  name,
  create: async () => {
    if (fail) throw new Error(fail);
    return { name } as unknown as Backend;
  },
});

describe('backend registry', () => {
  it('resolves registered names and reports skipped backends in order', async () => {
    registerBackend(fake('test-ok'));
    registerBackend(fake('test-nogpu', 'navigator.gpu is missing'));
    expect(registeredBackends()).toEqual(expect.arrayContaining(['test-ok', 'test-nogpu']));
    const seen: string[] = [];
    const { backend, skipped } = await selectBackend(['test-missing', 'test-nogpu', 'test-ok'], {
      onSkip: (s) => seen.push(s.name),
    });
    expect(backend.name).toBe('test-ok');
    expect(seen).toEqual(['test-missing', 'test-nogpu']);
    expect(skipped[0].reason).toMatch(/not registered/);
    expect(skipped[1].reason).toBe('navigator.gpu is missing');
  });

  it('accepts a factory object and throws a BackendError listing every reason', async () => {
    expect((await createBackend(fake('inline'))).name).toBe('inline');
    const err = await createBackend([fake('a', 'no SharedArrayBuffer'), 'test-nothing']).catch((e) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect(err.code).toBe('E_BACKEND');
    expect(err.skipped.map((s: { name: string }) => s.name)).toEqual(['a', 'test-nothing']);
    expect(err.message).toMatch(/a: no SharedArrayBuffer; test-nothing: not registered/);
  });

  it('shares one table between copies of the package through a global symbol', () => {
    const table = (globalThis as Record<symbol, unknown>)[Symbol.for('@nibble/tensor/backend-registry@2')];
    expect(table).toBeInstanceOf(Map);
    expect((table as Map<string, unknown>).has('test-ok')).toBe(true);
  });
});
