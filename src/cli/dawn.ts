/** A WebGPU device under Node through Dawn (npm `webgpu`), for the CLI entries. */
import { create, globals } from 'webgpu';
import { describeAdapter, requestLabDevice, type AdapterReport } from '../gpu/device';

export async function nodeDevice(): Promise<{ adapter: GPUAdapter; device: GPUDevice; report: AdapterReport }> {
  Object.assign(globalThis, globals);
  const gpu = create([]);
  // Dawn is torn down if the object create() returns is garbage-collected.
  (globalThis as unknown as { __qlabDawn: unknown }).__qlabDawn = gpu;
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new Error(
      'Dawn found no WebGPU adapter. On Linux it needs the Vulkan loader (libvulkan1) and a Vulkan driver: ' +
        "a GPU's, or SwiftShader's from Debian's chromium (VK_DRIVER_FILES=/usr/lib/chromium/vk_swiftshader_icd.json).",
    );
  }
  const device = await requestLabDevice(adapter);
  device.lost.then((info) => {
    if (info.reason !== 'destroyed') console.error(`the GPU device was lost: ${info.message}`);
  });
  return { adapter, device, report: describeAdapter(adapter) };
}
