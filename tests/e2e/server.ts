/**
 * Global setup of the e2e layer: builds the lab once (vite build → dist/) and
 * serves dist/ with Vite's preview server — what `npm start` serves — on
 * 127.0.0.1 and a free port. Tests read the address with `inject('labUrl')`.
 */
import { build, preview } from 'vite';
import type { TestProject } from 'vitest/node';
import { INSECURE_HOST } from './browser';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Address of the built lab, e.g. http://127.0.0.1:40123/ */
    labUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = new URL('../..', import.meta.url).pathname;
  // QLAB_E2E_OUT lets several e2e runs share one checkout without overwriting each other's build
  const outDir = process.env.QLAB_E2E_OUT ?? 'dist';
  // the page may fetch from local stand-ins for the Hub (tests/e2e/hub.test.ts): loopback joins connect-src (vite.config.ts)
  process.env.QLAB_HUB_ORIGINS = [process.env.QLAB_HUB_ORIGINS, 'http://127.0.0.1:*'].filter(Boolean).join(' ');
  await build({ root, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  const server = await preview({
    root,
    logLevel: 'warn',
    build: { outDir },
    preview: { host: '127.0.0.1', port: 0, strictPort: false, open: false, allowedHosts: [INSECURE_HOST] },
  });
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error('The e2e preview server started but reported no local address to open.');
  project.provide('labUrl', url);
  return () => server.close();
}
