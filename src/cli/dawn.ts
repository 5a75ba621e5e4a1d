/**
 * A WebGPU device under Node through Dawn (npm `webgpu`), for the CLI entries,
 * the benchmarks and the gpu test layer.
 */
import { create, globals } from 'webgpu';
import { describeAdapter, requestLabDevice, type AdapterReport } from '../gpu/device';

export async function nodeDevice(): Promise<{ adapter: GPUAdapter; device: GPUDevice; report: AdapterReport }> {
  // Vulkan's WSI layer complains on every start without it; nothing here draws to a window.
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  Object.assign(globalThis, globals);
  // Timestamps are quantized (to 100 µs, as in Chrome) unless Dawn's toggle is off.
  const gpu = create(['disable-dawn-features=timestamp_quantization']);
  // Dawn is torn down if the object create() returns is garbage-collected.
  (globalThis as unknown as { __qlabDawn: unknown }).__qlabDawn = gpu;
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new Error(
      'Dawn found no WebGPU adapter. On a GPU machine without Node, start with `source .gpu/env.sh &&` (see README); ' +
        "elsewhere it needs the Vulkan loader (libvulkan1) and a Vulkan driver: a GPU's, or SwiftShader's from Debian's chromium " +
        '(VK_DRIVER_FILES=/usr/lib/chromium/vk_swiftshader_icd.json).',
    );
  }
  const device = await requestLabDevice(adapter);
  device.addEventListener('uncapturederror', (e) => {
    console.error('WebGPU uncaptured error:', (e as GPUUncapturedErrorEvent).error.message);
  });
  device.lost.then((info) => {
    if (info.reason !== 'destroyed') console.error(`the GPU device was lost: ${info.message}`);
  });
  return { adapter, device, report: describeAdapter(adapter) };
}
