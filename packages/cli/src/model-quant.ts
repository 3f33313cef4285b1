/**
 * Quantizing a whole model the way llama-quantize does (spec §7): which tensors are quantized, and which type a
 * tensor falls back to when its rows do not fit the target's block size.
 */
import { type Codec, getFormat } from '@nibble/formats';
import type { GgufFile, GgufWriter } from '@nibble/gguf';
import { type DTypeName, dtypes, findDType, type HostTensor, UnsupportedError } from '@nibble/tensor';

/**
 * Whether llama-quantize quantizes a tensor: names ending in `weight` with at least 2 dimensions, except norms,
 * MoE router weights, position/token-type embeddings and a few architecture-specific tensors.
 */
export function isQuantizable(name: string, shape: readonly number[]): boolean {
  if (!name.endsWith('weight') || shape.length < 2) return false;
  return !/(_norm\.weight|ffn_gate_inp\.weight|position_embd|token_types|ssm_conv1d|time_mix_|attn_rel_b)/.test(name);
}

// llama.cpp's fallback chain for rows that are not a multiple of the target's block size (llama_tensor_get_type).
const FALLBACK: Partial<Record<DTypeName, DTypeName>> = {
  q2_K: 'iq4_nl',
  q3_K: 'iq4_nl',
  iq4_xs: 'iq4_nl',
  q4_K: 'q5_0',
  q5_K: 'q5_1',
  q6_K: 'q8_0',
  tq1_0: 'q4_0',
  tq2_0: 'q4_0',
};

/**
 * The type a tensor with rows of `rowLength` is stored in when the target is `target`: the target if its block size
 * divides the row, else llama.cpp's fallback for it, else F16.
 *
 * @example
 * ```ts
 * storedType('q4_K', 64);  // 'q5_0' (K-quants need rows of 256)
 * storedType('q4_0', 172); // 'f16'
 * ```
 */
export function storedType(target: DTypeName, rowLength: number): DTypeName {
  let t: DTypeName | undefined = target;
  while (t !== undefined) {
    if (rowLength % dtypes[t].blockSize === 0) return t;
    t = FALLBACK[t];
  }
  return 'f16';
}

/**
 * The type llama-quantize gives a weight tensor for a target type. Like llama.cpp, `output.weight` gets Q6_K (or its
 * fallback, Q8_0, when rows are not multiples of 256) for every quantized target except Q8_0; with `pure`, every
 * tensor gets the target. Other per-tensor overrides of llama.cpp's K-quant mixes (attn_v, ffn_down) are not applied.
 *
 * @example
 * ```ts
 * tensorType('output.weight', 'q4_0', 64);        // 'q8_0'
 * tensorType('blk.0.attn_q.weight', 'q4_0', 64);  // 'q4_0'
 * ```
 */
export function tensorType(name: string, target: DTypeName, rowLength: number, pure = false): DTypeName {
  if (!pure && name === 'output.weight' && dtypes[target].quantized && target !== 'q8_0') {
    return storedType('q6_K', rowLength);
  }
  return storedType(target, rowLength);
}

/** A tensor's values as f32 (a copy when the stored bytes are not f32 or not 4-byte aligned). */
export function tensorToF32(t: HostTensor): Float32Array {
  if (t.dtype === 'f32') {
    if (t.data.byteOffset % 4 === 0) return new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4);
    return new Float32Array(t.data.slice().buffer);
  }
  const count = t.shape.reduce((a, b) => a * b, 1);
  return codecOf(t.dtype).dequantize(t.data, count);
}

/** The codec of a stored dtype, with an error that names it when nibble has none. */
export function codecOf(dtype: DTypeName | string): Codec {
  const info = findDType(dtype);
  if (!info) throw new UnsupportedError(`no codec for dtype '${dtype}'`);
  return getFormat(info.name);
}

// llama.cpp's `llama_ftype` for a model whose weights are all of one type (llama-quantize --pure).
const FTYPE: Partial<Record<DTypeName, number>> = {
  f32: 0,
  f16: 1,
  q4_0: 2,
  q4_1: 3,
  q8_0: 7,
  q5_0: 8,
  q5_1: 9,
  q2_K: 10,
  q3_K: 11,
  q4_K: 14,
  q5_K: 16,
  q6_K: 18,
  iq4_nl: 25,
  iq4_xs: 30,
  bf16: 32,
  tq1_0: 36,
  tq2_0: 37,
  mxfp4: 38,
};

/** Options of {@link quantizeModel}. */
export interface QuantizeModelOptions {
  /** Quantize tensors that are already quantized (after dequantizing them), like `--allow-requantize`. */
  allowRequantize?: boolean;
  /** Give every tensor the target type, like `llama-quantize --pure` (default: llama.cpp's output.weight rule). */
  pure?: boolean;
  /** Called after each tensor with its name and stored type. */
  onTensor?(name: string, storedAs: DTypeName, index: number, count: number): void;
}

/**
 * Writes `file` with every quantizable weight tensor stored as `target` (or llama.cpp's fallback for rows that do not
 * fit), and every other tensor copied unchanged, like llama-quantize (see {@link tensorType}). Streams tensor by tensor: only one
 * tensor's f32 values exist at a time.
 *
 * @example
 * ```ts
 * const out = blobSink();
 * await quantizeModel(parseGguf(bytes), 'q4_0', new GgufWriter(out));
 * ```
 */
export async function quantizeModel(
  file: GgufFile,
  target: DTypeName,
  writer: GgufWriter,
  options: QuantizeModelOptions = {},
): Promise<void> {
  const codec = codecOf(target);
  if (codec.info.internal) throw new UnsupportedError(`${target} is an activation format and cannot store weights`);
  writer.metadata.copyFrom(file);
  writer.metadata.setU32('general.quantization_version', 2);
  const ftype = FTYPE[codec.name];
  if (ftype !== undefined) writer.metadata.setU32('general.file_type', ftype);
  else writer.metadata.delete('general.file_type');
  const plan = file.tensors.map((t) => {
    const quantize = isQuantizable(t.name, t.shape) && t.dtype !== undefined;
    const storedAs = quantize ? tensorType(t.name, codec.name, t.shape[t.shape.length - 1], options.pure) : t.dtype;
    if (quantize && t.dtype !== 'f32' && t.dtype !== 'f16' && t.dtype !== 'bf16' && t.dtype !== storedAs) {
      if (!options.allowRequantize) {
        throw new UnsupportedError(`tensor ${t.name} is already ${t.dtype}; pass allowRequantize to requantize it`);
      }
    }
    return { info: t, quantize: quantize && t.dtype !== storedAs, storedAs };
  });
  for (const p of plan)
    writer.addTensor({ name: p.info.name, dtype: p.storedAs ?? p.info.ggmlType, shape: p.info.shape });
  try {
    for (let i = 0; i < plan.length; i++) {
      const { info, quantize, storedAs } = plan[i];
      if (quantize && storedAs) {
        const values = tensorToF32(await file.readTensor(info.name));
        const q = codecOf(storedAs).quantize(values, { rowLength: info.shape[info.shape.length - 1] });
        await writer.writeTensor(info.name, q);
      } else {
        await writer.writeTensor(info.name, await file.readTensorBytes(info));
      }
      if (storedAs) options.onTensor?.(info.name, storedAs, i, plan.length);
    }
    await writer.finish();
  } catch (e) {
    await writer.abort(e);
    throw e;
  }
}
