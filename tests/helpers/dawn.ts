/**
 * A real WebGPU device under Node for the gpu test layer: Dawn (npm `webgpu`)
 * over whatever Vulkan driver VK_DRIVER_FILES names (SwiftShader in CI).
 * One device per test file, shared by its tests.
 */
import { nodeDevice } from '../../src/cli/dawn';

let cached: Promise<{ adapter: GPUAdapter; device: GPUDevice }> | null = null;

export function dawnDevice(): Promise<{ adapter: GPUAdapter; device: GPUDevice }> {
  cached ??= nodeDevice().then(({ adapter, device }) => ({ adapter, device }));
  return cached;
}
