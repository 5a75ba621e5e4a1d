// `npm test`: installs what is missing, type-checks, runs the three test layers
// (unit, gpu, e2e) in one Vitest run and prints one summary line for all of them.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { ensureDebianPackages, ensureNodeModules, root } from './setup.mjs';

ensureNodeModules();
ensureDebianPackages();

const env = {
  ...process.env,
  VK_DRIVER_FILES: process.env.VK_DRIVER_FILES ?? '/usr/lib/chromium/vk_swiftshader_icd.json',
  XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp',
};
const extra = process.argv.slice(2);

let checkFailed = 0;
if (!extra.length) {
  console.log('[test] npm run check (tsc + svelte-check)');
  const check = spawnSync('npm', ['run', '--silent', 'check'], { stdio: 'inherit', cwd: root, env });
  if (check.status !== 0) checkFailed = 1;
}

mkdirSync(`${root}test-results`, { recursive: true });
const report = `${root}test-results/vitest.json`;
const vitest = spawnSync(
  'npx',
  ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...extra],
  { stdio: 'inherit', cwd: root, env },
);

let passed = 0, failed = 0, skipped = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests ?? 0;
  failed = (r.numFailedTests ?? 0) + (r.testResults ?? []).filter((f) => f.status === 'failed' && (f.assertionResults ?? []).length === 0).length;
  skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
}
if (!extra.length) {
  if (checkFailed) failed += 1; else passed += 1; // the type check counts as one test
}
if (vitest.status !== 0 && failed === 0) failed = 1; // a crash with no report is a failure
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
