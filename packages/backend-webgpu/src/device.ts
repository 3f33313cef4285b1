/// <reference types="@webgpu/types" />
/**
 * Adapter and device: the highest limits the adapter allows, the optional features we use, and typed errors for a
 * lost device and for out-of-memory.
 */
import { BackendError } from '@nibble/tensor';

/**
 * The GPU device was lost (driver reset, `destroy()`, tab in the background too long). The backend is unusable; create
 * a new one (and load the model again).
 *
 * @example
 * ```ts
 * try { await backend.run(graph, inputs); } catch (e) { if (e instanceof GpuDeviceLostError) model = await reload(); }
 * ```
 */
export class GpuDeviceLostError extends BackendError {
  /** The reason the device reported (`'destroyed'` or `'unknown'`). */
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(`webgpu backend: the GPU device was lost (${reason}${message ? `: ${message}` : ''}); create a new backend`);
    this.reason = reason;
    (this as { code: string }).code = 'E_DEVICE_LOST';
  }
}

/**
 * The GPU could not allocate a buffer (names the tensor or plan and the size).
 *
 * @example
 * ```ts
 * await backend.upload(huge).catch((e) => e instanceof GpuOutOfMemoryError && console.log(e.bytes));
 * ```
 */
export class GpuOutOfMemoryError extends BackendError {
  /** Bytes that were asked for. */
  readonly bytes: number;
  constructor(what: string, bytes: number) {
    super(`webgpu backend: out of GPU memory allocating ${bytes} bytes for ${what}`);
    this.bytes = bytes;
    (this as { code: string }).code = 'E_GPU_OOM';
  }
}

/** What the backend learned about its device. */
export interface GpuInfo {
  /** Adapter vendor / architecture / device / description, as the adapter reports them. */
  readonly adapter: string;
  readonly features: readonly string[];
  readonly subgroups: boolean;
  readonly subgroupMin: number;
  readonly subgroupMax: number;
  readonly timestamps: boolean;
  readonly shaderF16: boolean;
  /** WGSL's packed_4x8_integer_dot_product (dot4I8Packed, pack4xI8): the int8 matvec. */
  readonly packedDot: boolean;
  readonly maxBufferSize: number;
  readonly maxStorageBufferBindingSize: number;
  readonly maxInvocations: number;
  readonly maxWorkgroupStorage: number;
}

/** Options for getting a device. */
export interface DeviceOptions {
  /** The WebGPU entry point: `navigator.gpu` in browsers, dawn.node's `create([])` in Node. */
  gpu?: GPU;
  /** An adapter to use instead of asking `gpu` for one. */
  adapter?: GPUAdapter;
  powerPreference?: GPUPowerPreference;
}

const wanted: GPUFeatureName[] = ['subgroups', 'timestamp-query', 'shader-f16'] as GPUFeatureName[];

/**
 * Requests an adapter and a device with the adapter's maximum buffer, binding and workgroup limits.
 *
 * @example
 * ```ts
 * const { device, info } = await openDevice({ gpu: navigator.gpu });
 * ```
 */
export async function openDevice(options: DeviceOptions): Promise<{ device: GPUDevice; info: GpuInfo }> {
  let adapter = options.adapter ?? null;
  const entry = options.gpu ?? (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  const packedDot = entry?.wgslLanguageFeatures?.has('packed_4x8_integer_dot_product');
  if (adapter === null) {
    const gpu = entry;
    if (gpu === undefined) {
      throw new BackendError(
        "webgpu backend: no WebGPU here (navigator.gpu is missing; in Node import '@nibble/backend-webgpu/node')",
      );
    }
    adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
    if (adapter === null) throw new BackendError('webgpu backend: requestAdapter() found no GPU adapter');
  }
  const features = wanted.filter((f) => adapter.features.has(f));
  const l = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxBufferSize: l.maxBufferSize,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
  };
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
  } catch (e) {
    throw new BackendError(`webgpu backend: requestDevice failed: ${(e as Error).message}`, [], { cause: e });
  }
  const ai = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  const name = [ai?.vendor, ai?.architecture, ai?.device, ai?.description].filter((s) => s).join(' / ');
  const subgroups = features.includes('subgroups' as GPUFeatureName);
  const info: GpuInfo = Object.freeze({
    adapter: name || 'unknown adapter',
    features: Object.freeze([...adapter.features].map(String).sort()),
    subgroups,
    subgroupMin: subgroups ? (ai?.subgroupMinSize ?? 4) : 0,
    subgroupMax: subgroups ? (ai?.subgroupMaxSize ?? 128) : 0,
    timestamps: features.includes('timestamp-query'),
    shaderF16: features.includes('shader-f16' as GPUFeatureName),
    packedDot: packedDot === true,
    maxBufferSize: device.limits.maxBufferSize,
    maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
    maxInvocations: device.limits.maxComputeInvocationsPerWorkgroup,
    maxWorkgroupStorage: device.limits.maxComputeWorkgroupStorageSize,
  });
  return { device, info };
}

/** GPUBufferUsage bits (the globals do not exist in Node). */
export const Usage = Object.freeze({
  MAP_READ: 1,
  COPY_SRC: 4,
  COPY_DST: 8,
  UNIFORM: 64,
  STORAGE: 128,
  QUERY_RESOLVE: 512,
});
