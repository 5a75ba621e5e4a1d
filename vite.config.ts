import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { readFileSync } from 'node:fs';

/**
 * The policy of index.html's meta tag (the one place it is written), plus
 * frame-ancestors (which only a header can set) and the origins in
 * QLAB_HUB_ORIGINS (space-separated, e.g. a Hub mirror's https://hf-mirror.example).
 */
function previewCsp(): string {
  const html = readFileSync(new URL('./index.html', import.meta.url), 'utf8');
  const policy = /<meta http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)?.[1];
  if (!policy) throw new Error('index.html has no Content-Security-Policy meta tag: put it back (README, "Safety").');
  const extra = (process.env.QLAB_HUB_ORIGINS ?? '').split(/\s+/).filter((o) => /^https?:\/\/[\w.*:-]+$/.test(o));
  return `${policy.replace(/connect-src ([^;]+)/, (_, list: string) => `connect-src ${[list, ...extra].join(' ')}`)}; frame-ancestors 'none'`;
}

// One config for the app build and for the three test layers (unit, gpu, e2e).
// SwiftShader (the CPU Vulkan driver from Debian's chromium) backs the gpu layer.
const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';

export default defineConfig({
  plugins: [svelte()],
  worker: { format: 'es' },
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
  server: { host: '127.0.0.1' },
  // the page's Content-Security-Policy as a header too: it then covers the worker, which a meta tag does not
  preview: { host: '127.0.0.1', headers: { 'Content-Security-Policy': previewCsp() } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        extends: true,
        test: {
          name: 'gpu',
          include: ['tests/gpu/**/*.test.ts'],
          environment: 'node',
          // SwiftShader is a CPU rasterizer: one file at a time keeps 2 cores usable.
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 120_000,
          env: {
            VK_DRIVER_FILES: process.env.VK_DRIVER_FILES ?? swiftshader,
            XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp',
          },
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts'],
          environment: 'node',
          // Builds dist/ once and serves it for every e2e file; tests inject('labUrl').
          globalSetup: ['tests/e2e/server.ts'],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
