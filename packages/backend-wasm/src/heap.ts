import { BackendError } from '@nibble/tensor';

/** wasm32's whole address space: 65536 pages of 64 KiB. */
export const wasm32Limit = 2 ** 32;
const page = 65536;
const align = 64;

/**
 * The JS side's allocator over the one WebAssembly memory: first fit over freed blocks (merged with their
 * neighbours), else the end, growing the memory by whole pages. Every block is 64-byte aligned, so SIMD rows and
 * f32/f64 views need no care.
 */
export class Heap {
  readonly memory: WebAssembly.Memory;
  #end: number;
  /** Free blocks, sorted by address, never adjacent. */
  readonly #free: { at: number; size: number }[] = [];
  readonly #sizes = new Map<number, number>();

  constructor(memory: WebAssembly.Memory, base: number) {
    this.memory = memory;
    this.#end = Math.ceil(base / align) * align;
  }

  /** Bytes in use or free below the end (the memory's high-water mark). */
  get used(): number {
    return this.#end;
  }

  /** A block of `bytes` (rounded up to 64); throws a {@link BackendError} past wasm32's 4 GiB. */
  alloc(bytes: number, what: string): number {
    const size = Math.max(align, Math.ceil(bytes / align) * align);
    for (let i = 0; i < this.#free.length; i++) {
      const f = this.#free[i];
      if (f.size < size) continue;
      const at = f.at;
      f.at += size;
      f.size -= size;
      if (f.size === 0) this.#free.splice(i, 1);
      this.#sizes.set(at, size);
      return at;
    }
    const at = this.#end;
    const end = at + size;
    if (end > wasm32Limit) {
      throw new BackendError(
        `wasm backend: ${what} needs ${size} more bytes, but wasm32 memory is limited to 4 GiB (${wasm32Limit} bytes; ${at} in use)`,
      );
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      try {
        this.memory.grow(Math.ceil((end - have) / page));
      } catch (e) {
        throw new BackendError(`wasm backend: cannot grow memory to ${end} bytes for ${what}: ${(e as Error).message}`);
      }
    }
    this.#end = end;
    this.#sizes.set(at, size);
    return at;
  }

  /** Gives a block back. */
  free(at: number): void {
    const size = this.#sizes.get(at);
    if (size === undefined) return;
    this.#sizes.delete(at);
    const f = this.#free;
    let k = 0;
    while (k < f.length && f[k].at < at) k++;
    f.splice(k, 0, { at, size });
    if (k + 1 < f.length && f[k].at + f[k].size === f[k + 1].at) {
      f[k].size += f[k + 1].size;
      f.splice(k + 1, 1);
    }
    if (k > 0 && f[k - 1].at + f[k - 1].size === f[k].at) {
      f[k - 1].size += f[k].size;
      f.splice(k, 1);
    }
    // A free block at the end lowers the end (the memory itself cannot shrink).
    const last = f[f.length - 1];
    if (last !== undefined && last.at + last.size === this.#end) {
      this.#end = last.at;
      f.pop();
    }
  }
}
