/**
 * Headless Debian Chromium for the e2e layer, with or without WebGPU.
 * With --enable-unsafe-webgpu Chromium on Linux hands out SwiftShader's
 * Vulkan device as a fallback adapter (vendor "google", architecture "swiftshader").
 */
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.QLAB_CHROMIUM ?? '/usr/lib/chromium/chromium';

const COMMON_FLAGS = [
  '--no-sandbox', // tests often run as root, where Chromium's sandbox refuses to start
  '--disable-gpu-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/**
 * - `webgpu`: WebGPU on, backed by SwiftShader (a CPU Vulkan driver).
 * - `no-adapter`: Chromium's default on Linux: navigator.gpu exists but requestAdapter() gives null.
 * - `no-webgpu`: navigator.gpu is undefined. No Chromium flag removes the API
 *   (--disable-webgpu and --disable-blink-features=WebGPU only null the adapter),
 *   but browsers offer WebGPU to secure contexts only, so the lab is opened
 *   from a plain-http host name that is not localhost (see `labUrlFor`).
 */
export type WebGpuMode = 'webgpu' | 'no-adapter' | 'no-webgpu';

/** A host name that resolves to 127.0.0.1 inside the test browser but is not a secure origin. */
export const INSECURE_HOST = 'lab.test';

const MODE_FLAGS: Record<WebGpuMode, string[]> = {
  webgpu: ['--enable-unsafe-webgpu', '--use-angle=swiftshader', '--enable-features=Vulkan'],
  'no-adapter': [],
  'no-webgpu': ['--enable-unsafe-webgpu', `--host-resolver-rules=MAP ${INSECURE_HOST} 127.0.0.1`],
};

export function launchChromium(mode: WebGpuMode): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...COMMON_FLAGS, ...MODE_FLAGS[mode]] });
}

/** The address to open the lab at in `mode`. */
export function labUrlFor(mode: WebGpuMode, labUrl: string): string {
  if (mode !== 'no-webgpu') return labUrl;
  const url = new URL(labUrl);
  url.hostname = INSECURE_HOST;
  return url.href;
}

/**
 * Opens the lab at `labUrl` in a fresh Chromium and collects uncaught errors
 * from the page and its worker. The caller closes `browser`.
 */
export async function openLab(mode: WebGpuMode, labUrl: string): Promise<{ browser: Browser; page: Page; errors: string[] }> {
  const browser = await launchChromium(mode);
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`page: ${err.message}`));
  page.on('worker', (worker) => worker.on('console', (m) => m.type() === 'error' && errors.push(`worker: ${m.text()}`)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  await page.goto(labUrlFor(mode, labUrl));
  return { browser, page, errors };
}
