// `npm run lab -- <command> ...`: builds the Node bundle of the lab CLI when the
// sources are newer, then runs it on Dawn (WebGPU for Node).
import { spawnSync } from 'node:child_process';
import { ensureDebianPackages, ensureNodeModules, root } from './setup.mjs';

ensureNodeModules();
ensureDebianPackages();
const { buildNode } = await import('./build-node.mjs');
await buildNode(['lab']);
const env = { ...process.env };
env.XDG_RUNTIME_DIR ??= '/tmp';
if (!env.VK_DRIVER_FILES) {
  // Use the machine's own Vulkan drivers when Dawn finds a hardware adapter
  // through them; otherwise SwiftShader from Debian's chromium (slow, but everywhere).
  const probe = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', "import { create, globals } from 'webgpu'; Object.assign(globalThis, globals); const g = create([]); globalThis.g = g; const a = await g.requestAdapter(); console.log(a && !a.info.isFallbackAdapter && !/swiftshader|llvmpipe/i.test(a.info.architecture + a.info.description) ? 'gpu' : 'none'); process.exit(0);"],
    { cwd: root, env, encoding: 'utf8', timeout: 60_000 },
  );
  if (!probe.stdout?.includes('gpu')) {
    env.VK_DRIVER_FILES = '/usr/lib/chromium/vk_swiftshader_icd.json';
    console.error('lab: no hardware WebGPU adapter found through Vulkan; using SwiftShader (CPU, slow). Set VK_DRIVER_FILES to choose a driver.');
  }
}
const r = spawnSync(process.execPath, [`${root}dist-node/lab.mjs`, ...process.argv.slice(2)], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
