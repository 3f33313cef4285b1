/**
 * The WebAssembly quantizers (the AssemblyScript of assembly/, built by scripts/build-wasm.mjs): every type llama-quantize writes that
 * `@nibble/formats` has a codec for, from F32, F16 or BF16 rows. The K-quant searches run four sub-blocks at once in
 * SIMD lanes. Bit-exact with `@nibble/formats` and with ggml (tests compare them on the golden sets, ggml's bytes on
 * adversarial rows, and random input); {@link JobRunner} uses them when they are loaded.
 */
import { getFormat } from '@nibble/formats';
import type { DTypeName } from '@nibble/tensor';
import { quantizersWasm } from './wasm-module.js';

// ggml type ids, which the module takes.
const typeIds: Partial<Record<DTypeName, number>> = {
  f32: 0,
  f16: 1,
  q4_0: 2,
  q4_1: 3,
  q5_0: 6,
  q5_1: 7,
  q8_0: 8,
  q2_K: 10,
  q3_K: 11,
  q4_K: 12,
  q5_K: 13,
  q6_K: 14,
  iq4_nl: 20,
  iq4_xs: 23,
  bf16: 30,
  tq1_0: 34,
  tq2_0: 35,
  mxfp4: 39,
};

/** The types the module writes. */
export const wasmTypes: ReadonlySet<DTypeName> = new Set(Object.keys(typeIds) as DTypeName[]);

/** The stored types the module reads rows from. */
export const wasmSources: ReadonlySet<DTypeName> = new Set<DTypeName>(['f32', 'f16', 'bf16']);

interface Exports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  firstNonFinite(from: number, src: number, count: number): number;
  firstBadScale(p: number, nBlocks: number, bytesPerBlock: number, off0: number, off1: number): number;
  quantize(
    from: number,
    type: number,
    src: number,
    rows: number,
    n: number,
    imp: number,
    row: number,
    dst: number,
  ): number;
}

/**
 * One instance of the module with its own memory: input rows, a scratch row, importance and output, laid out in
 * turn above the heap base. The memory grows to the largest job and stays (no allocation per job after that).
 *
 * @example
 * ```ts
 * const q = new WasmQuantizers(await loadQuantizerModule());
 * const out = new Uint8Array(8 * 18);
 * q.quantize('q4_0', new Float32Array(256).fill(0.5), 256, undefined, out); // true
 * ```
 */
export class WasmQuantizers {
  readonly #x: Exports;
  readonly #base: number;
  /**
   * After {@link convert}: the first output block whose fp16 scale overflowed (ggml stores ±Inf there, and
   * llama.cpp's validation then refuses the tensor), or -1. Only types with fp16 scales are checked.
   */
  overflowBlock = -1;

  constructor(module: WebAssembly.Module) {
    this.#x = new WebAssembly.Instance(module, { env: { log2: Math.log2 } }).exports as unknown as Exports;
    this.#base = (this.#x.heapBase() + 15) & ~15;
  }

  /**
   * Quantizes `rows` rows of `rowLength` values stored as `from` (f32, f16 or bf16 bytes in `src`) to `to` into
   * `dst` (exactly the output size), with importance weights (`rowLength` of them) or none. Returns the index of the
   * first NaN or infinity in the input (then nothing is written), -1 when done, or -2 for a pair of types the module
   * does not have.
   */
  convert(
    from: DTypeName,
    to: DTypeName,
    src: Uint8Array,
    rows: number,
    rowLength: number,
    importance: Float32Array | undefined,
    dst: Uint8Array,
  ): number {
    const fromId = typeIds[from];
    const toId = typeIds[to];
    if (fromId === undefined || toId === undefined || !wasmSources.has(from)) return -2;
    const count = rows * rowLength;
    const inBytes = count * (from === 'f32' ? 4 : 2);
    if (src.byteLength < inBytes) throw new RangeError(`expected ${inBytes} input bytes, got ${src.byteLength}`);
    const srcAt = this.#base;
    const rowAt = srcAt + align(inBytes);
    const impAt = rowAt + align(rowLength * 4);
    const dstAt = impAt + align(importance ? rowLength * 4 : 0);
    this.#reserve(dstAt + dst.byteLength);
    const mem = this.#x.memory.buffer;
    new Uint8Array(mem, srcAt, inBytes).set(src.subarray(0, inBytes));
    const bad = this.#x.firstNonFinite(fromId, srcAt, count);
    if (bad >= 0) return bad;
    if (importance) new Float32Array(mem, impAt, rowLength).set(importance);
    // One call per row: V8 runs a WebAssembly function in its baseline compiler until the function is hot, and
    // switches to the optimized code at a call, never inside one; a whole job in one call would run unoptimized.
    const inRow = inBytes / rows;
    const outRow = dst.byteLength / rows;
    const imp = importance ? impAt : 0;
    for (let r = 0; r < rows; r++) {
      const written = this.#x.quantize(fromId, toId, srcAt + r * inRow, 1, rowLength, imp, rowAt, dstAt + r * outRow);
      if (written !== outRow) throw new RangeError(`${to}: the module wrote ${written} bytes for a row of ${outRow}`);
    }
    const codec = getFormat(to);
    const offsets = codec.scaleOffsets;
    this.overflowBlock =
      offsets.length === 0
        ? -1
        : this.#x.firstBadScale(
            dstAt,
            dst.byteLength / codec.info.bytesPerBlock,
            codec.info.bytesPerBlock,
            offsets[0],
            offsets[offsets.length - 1],
          );
    dst.set(new Uint8Array(mem, dstAt, dst.byteLength));
    return -1;
  }

  /**
   * Quantizes f32 `values` (whole rows of `rowLength`) to `type` into `dst`. Returns false for a type the module
   * does not have. The values must be finite (the codecs' checks are not repeated here).
   */
  quantize(
    type: DTypeName,
    values: Float32Array,
    rowLength: number,
    importance: Float32Array | undefined,
    dst: Uint8Array,
  ): boolean {
    if (typeIds[type] === undefined) return false;
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    return this.convert('f32', type, bytes, values.length / rowLength, rowLength, importance, dst) !== -2;
  }

  #reserve(end: number): void {
    const have = this.#x.memory.buffer.byteLength;
    if (end > have) this.#x.memory.grow(Math.ceil((end - have) / 65536));
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
