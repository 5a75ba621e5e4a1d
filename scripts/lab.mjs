// `npm run lab -- <command> ...`: builds the Node bundle of the lab CLI when the
// sources are newer, then runs it on Dawn (WebGPU for Node).
import { spawnSync } from 'node:child_process';
import { ensureDebianPackages, ensureNodeModules, root } from './setup.mjs';

ensureNodeModules();
ensureDebianPackages();
const { buildNode } = await import('./build-node.mjs');
await buildNode(['lab']);
const env = { ...process.env };
if (!env.VK_DRIVER_FILES && !process.env.QLAB_GPU) {
  // Without a GPU Vulkan driver named, use SwiftShader (slow, but everywhere).
  const { existsSync } = await import('node:fs');
  const nvidia = '/usr/share/vulkan/icd.d/nvidia_icd.json';
  env.VK_DRIVER_FILES = existsSync(nvidia) ? nvidia : '/usr/lib/chromium/vk_swiftshader_icd.json';
}
env.XDG_RUNTIME_DIR ??= '/tmp';
const r = spawnSync(process.execPath, [`${root}dist-node/lab.mjs`, ...process.argv.slice(2)], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
