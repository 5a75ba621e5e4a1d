/**
 * What the lab knows about a WebGPU adapter and device. `src/gpu` takes a
 * GPUDevice from its caller (browser worker, Node + Dawn, tests), so nothing
 * here creates one; this module only describes and requests.
 */
export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  features: string[];
  limits: {
    maxBufferSize: number;
    maxStorageBufferBindingSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupsPerDimension: number;
    maxStorageBuffersPerShaderStage: number;
  };
}

/** The optional features the lab uses when the adapter has them. */
export const WANTED_FEATURES: GPUFeatureName[] = ['timestamp-query', 'shader-f16', 'subgroups'];

export function describeAdapter(adapter: GPUAdapter): AdapterReport {
  const info = adapter.info;
  const l = adapter.limits;
  // isFallbackAdapter moved from GPUAdapter to GPUAdapterInfo; read both.
  const fallback =
    (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter ??
    (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter ??
    false;
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: Boolean(fallback),
    features: [...adapter.features].map(String).sort(),
    limits: {
      maxBufferSize: l.maxBufferSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
  };
}

/** Requests a device with the adapter's full buffer limits and the wanted features it has. */
export async function requestLabDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f));
  const l = adapter.limits;
  return adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxBufferSize: l.maxBufferSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
  });
}
