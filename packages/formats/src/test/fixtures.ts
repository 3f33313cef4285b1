// Test-only helpers that read the repository's fixtures/ folder (never ../shared).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Absolute path of a file under the repository's fixtures/ folder. */
export function fixturePath(rel: string): string {
  return fileURLToPath(new URL(`../../../../fixtures/${rel}`, import.meta.url));
}

export function readBytes(rel: string): Uint8Array {
  const b = readFileSync(fixturePath(rel));
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Reads a little-endian f32 file into a fresh (aligned) Float32Array. */
export function readF32(rel: string): Float32Array {
  const b = readBytes(rel);
  return new Float32Array(b.slice().buffer);
}

export function readJson<T = unknown>(rel: string): T {
  return JSON.parse(readFileSync(fixturePath(rel), 'utf8')) as T;
}

export function sha256(bytes: ArrayBufferView): string {
  return createHash('sha256')
    .update(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength))
    .digest('hex');
}

/** Index of the first differing byte, or -1. */
export function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Bytes of a float array, to compare floats bit for bit (NaN payloads and -0 included). */
export function bitsOf(f: Float32Array): Uint8Array {
  return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
}
