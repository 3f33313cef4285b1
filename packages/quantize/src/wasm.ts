/**
 * The WebAssembly quantizers (assembly/quantizers.ts, built by scripts/build-wasm.mjs): Q4_K, Q5_K and Q6_K, the K-quant
 * searches that plain TypeScript runs at a quarter of ggml's speed. Bit-exact with `@nibble/formats` (tests compare
 * them on the golden sets and on random input); {@link JobRunner} uses them when they are loaded.
 */
import type { DTypeName } from '@nibble/tensor';
import { quantizersWasm } from './wasm-module.js';

/** The types the module quantizes. */
export const wasmTypes: ReadonlySet<DTypeName> = new Set<DTypeName>(['q4_K', 'q5_K', 'q6_K']);

const typeIds: Partial<Record<DTypeName, number>> = { q4_K: 12, q5_K: 13, q6_K: 14 };

interface Exports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  quantize(type: number, src: number, rows: number, n: number, imp: number, dst: number): number;
}

/** One instance of the module with its own memory: input rows, importance and output blocks, laid out in turn. */
export class WasmQuantizers {
  readonly #x: Exports;
  readonly #base: number;

  constructor(module: WebAssembly.Module) {
    this.#x = new WebAssembly.Instance(module, {}).exports as unknown as Exports;
    this.#base = (this.#x.heapBase() + 15) & ~15;
  }

  /**
   * A float32 view of the module's input area for `rows` rows of `rowLength` values (valid until the next call), with
   * room for the importance weights and `outBytes` of output reserved too: dequantize straight into it to skip a copy.
   */
  input(rows: number, rowLength: number, outBytes: number): Float32Array {
    const n = rows * rowLength;
    this.#reserve(align(n * 4) + align(rowLength * 4) + outBytes);
    return new Float32Array(this.#x.memory.buffer, this.#base, n);
  }

  /**
   * Quantizes `rows` rows of `rowLength` values to `type` into `dst`. `values` may be the view {@link input} gave
   * (then nothing is copied in). Returns false for a type the module does not have.
   */
  quantize(
    type: DTypeName,
    values: Float32Array,
    rowLength: number,
    importance: Float32Array | undefined,
    dst: Uint8Array,
  ): boolean {
    const id = typeIds[type];
    if (id === undefined) return false;
    const n = values.length;
    const inBytes = n * 4;
    const impAt = this.#base + align(inBytes);
    const dstAt = impAt + align(importance ? rowLength * 4 : 0);
    const own = values.buffer === this.#x.memory.buffer && values.byteOffset === this.#base;
    // Growing detaches views of the old memory: the view input() gave was made with the room already reserved.
    if (!own) this.#reserve(dstAt - this.#base + dst.byteLength);
    const mem = this.#x.memory.buffer;
    if (!own) new Float32Array(mem, this.#base, n).set(values);
    if (importance) new Float32Array(mem, impAt, rowLength).set(importance);
    const written = this.#x.quantize(id, this.#base, n / rowLength, rowLength, importance ? impAt : 0, dstAt);
    dst.set(new Uint8Array(mem, dstAt, written));
    return true;
  }

  #reserve(bytes: number): void {
    const need = this.#base + bytes;
    const have = this.#x.memory.buffer.byteLength;
    if (need > have) this.#x.memory.grow(Math.ceil((need - have) / 65536));
  }
}

const align = (n: number) => (n + 15) & ~15;

function bytesOf(b64: string): Uint8Array {
  if (typeof atob === 'function') return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  throw new Error('no base64 decoder');
}

let module: WebAssembly.Module | undefined;
let pending: Promise<WebAssembly.Module> | undefined;

/**
 * Compiles the module (once; asynchronously, as a browser's main thread requires).
 *
 * @example
 * ```ts
 * const q = new WasmQuantizers(await loadQuantizerModule());
 * ```
 */
export function loadQuantizerModule(): Promise<WebAssembly.Module> {
  if (module) return Promise.resolve(module);
  pending ??= WebAssembly.compile(bytesOf(quantizersWasm) as BufferSource).then((m) => (module = m));
  return pending;
}

/** The compiled module if {@link loadQuantizerModule} finished, else compiled now (fine in workers and Node). */
export function quantizerModuleSync(): WebAssembly.Module {
  module ??= new WebAssembly.Module(bytesOf(quantizersWasm) as BufferSource);
  return module;
}

/** The module if it is compiled already. */
export function loadedQuantizerModule(): WebAssembly.Module | undefined {
  return module;
}
