// Shared set-up for the README's two commands: installs what a fresh machine lacks.
// Node built-ins only, so it runs before `npm ci`.
import { execSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;

function run(cmd, opts = {}) {
  const r = spawnSync(cmd, { shell: true, stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) throw new Error(`"${cmd}" failed with exit code ${r.status}`);
}

/** npm ci when node_modules is missing or older than the lockfile. */
export function ensureNodeModules() {
  const marker = `${root}node_modules/.package-lock.json`;
  const lock = `${root}package-lock.json`;
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
  console.log('[setup] installing npm packages (npm ci)');
  run('npm ci --no-audit --no-fund');
}

/** Debian packages: chromium (headless browser + SwiftShader Vulkan) and the Vulkan loader for Dawn. */
export function ensureDebianPackages() {
  const need = [];
  if (!existsSync('/usr/lib/chromium/chromium') || !existsSync('/usr/lib/chromium/vk_swiftshader_icd.json')) need.push('chromium');
  const hasVulkan = (() => {
    try {
      return execSync('ldconfig -p', { encoding: 'utf8' }).includes('libvulkan.so.1');
    } catch {
      return false;
    }
  })();
  if (!hasVulkan) need.push('libvulkan1');
  if (need.length === 0) return;
  const sudo = process.getuid && process.getuid() !== 0 ? 'sudo ' : '';
  console.log(`[setup] installing Debian packages: ${need.join(' ')}`);
  run(`${sudo}apt-get update -qq`);
  run(`${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${need.join(' ')}`);
}

export { root, run };

if (process.argv[1] && process.argv[1].endsWith('setup.mjs')) {
  ensureNodeModules();
  ensureDebianPackages();
  void readFileSync;
}
