/**
 * Kernel shapes per adapter. GPUs want wide workgroups with tree reductions in
 * workgroup memory; CPU implementations of WebGPU (SwiftShader, the fallback
 * adapter in CI and on machines without a usable GPU) run each workgroup as
 * fibers and pay for every barrier with a switch through all of them, so they
 * get narrow workgroups and barrier-free matrix kernels.
 */
export interface KernelTuning {
  /** invocations per row in norm / NLL reductions (a power of two) */
  reductionWidth: number;
  /** keys per attention tile = invocations per (query, head) (a power of two, ≤ 64) */
  attentionTile: number;
  /** true: a CPU-backed adapter */
  cpu: boolean;
}

export const GPU_TUNING: KernelTuning = { reductionWidth: 256, attentionTile: 64, cpu: false };
export const CPU_TUNING: KernelTuning = { reductionWidth: 4, attentionTile: 4, cpu: true };

/** Picks the tuning from what the device says about its adapter. */
export function tuningFor(device: GPUDevice): KernelTuning {
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  if (!info) return GPU_TUNING;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  const fallback = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return fallback || /swiftshader|llvmpipe|lavapipe|warp|software/.test(text) ? CPU_TUNING : GPU_TUNING;
}
