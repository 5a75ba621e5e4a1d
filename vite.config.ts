import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// One config for the app build and for the three test layers (unit, gpu, e2e).
// SwiftShader (the CPU Vulkan driver from Debian's chromium) backs the gpu layer.
const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';

export default defineConfig({
  plugins: [svelte()],
  worker: { format: 'es' },
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
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
