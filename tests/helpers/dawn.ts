/**
 * A real WebGPU device under Node for the gpu test layer: Dawn (npm `webgpu`)
 * over whatever Vulkan driver VK_DRIVER_FILES names (SwiftShader in CI).
 */
import { create, globals } from 'webgpu';
import { requestLabDevice } from '../../src/gpu/device';

let cached: Promise<{ adapter: GPUAdapter; device: GPUDevice }> | null = null;

export function dawnDevice(): Promise<{ adapter: GPUAdapter; device: GPUDevice }> {
  if (!cached) {
    cached = (async () => {
      Object.assign(globalThis, globals);
      const gpu = create([]);
      // Dawn is torn down if the object create() returns is garbage-collected.
      (globalThis as unknown as { __qlabDawn: unknown }).__qlabDawn = gpu;
      const adapter = await gpu.requestAdapter();
      if (!adapter) {
        throw new Error(
          'Dawn found no WebGPU adapter: install Debian\'s chromium and libvulkan1 (npm test does) ' +
            'and point VK_DRIVER_FILES at /usr/lib/chromium/vk_swiftshader_icd.json.',
        );
      }
      const device = await requestLabDevice(adapter);
      device.addEventListener('uncapturederror', (e) => {
        console.error('WebGPU uncaptured error:', (e as GPUUncapturedErrorEvent).error.message);
      });
      return { adapter, device };
    })();
  }
  return cached;
}
