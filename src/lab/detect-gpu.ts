/**
 * Finds out whether this browser context can give the lab a WebGPU adapter,
 * and if not, says why and what to do about it in words a person can act on.
 */
import { describeAdapter, type AdapterReport } from '../gpu/device';

export type GpuDetection =
  | { ok: true; adapter: AdapterReport }
  | {
      ok: false;
      /** `no-webgpu`: navigator.gpu is missing; `no-adapter`: requestAdapter() gave null; `error`: it threw. */
      cause: 'no-webgpu' | 'no-adapter' | 'error';
      /** One sentence: what went wrong. */
      reason: string;
      /** What to try, one item per browser or remedy. */
      help: string[];
    };

/** Browsers and settings known to give WebGPU (late 2026). */
export const WEBGPU_HELP: readonly string[] = [
  'Use Chrome or Edge 113 or newer on Windows, macOS or ChromeOS.',
  'On Linux, start Chrome with --enable-unsafe-webgpu, or turn on "Unsafe WebGPU Support" at chrome://flags/#enable-unsafe-webgpu and relaunch.',
  'On Android, use Chrome 121 or newer.',
  'On a Mac, iPhone or iPad, use Safari 26 or newer.',
  'On Windows, Firefox 141 or newer also works.',
  'If your browser is one of these: a GPU on its blocklist, or hardware acceleration turned off in its settings, also leads here. Check chrome://gpu (about:support in Firefox) and turn hardware acceleration back on.',
  'WebGPU needs a secure page: open the lab over https://, or at http://localhost or http://127.0.0.1.',
];

/**
 * Asks `gpu` (the context's `navigator.gpu`, possibly missing) for an adapter
 * the way the lab will later ask for its device: high-performance preferred.
 * `secureContext` (the context's isSecureContext) tells the two reasons for a
 * missing navigator.gpu apart: a browser without WebGPU, or a page served over
 * plain http from a host other than localhost.
 */
export async function detectGpu(gpu: GPU | undefined, secureContext = true): Promise<GpuDetection> {
  if (!gpu) {
    return {
      ok: false,
      cause: 'no-webgpu',
      reason: secureContext
        ? "This browser does not offer WebGPU to the lab's worker (navigator.gpu is missing)."
        : 'This page was opened over plain http from a host other than localhost, and browsers offer WebGPU only to secure pages (navigator.gpu is missing).',
      help: [...WEBGPU_HELP],
    };
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    return {
      ok: false,
      cause: 'error',
      reason: `WebGPU is present, but asking it for a GPU adapter failed: ${errorText(err)}`,
      help: [...WEBGPU_HELP],
    };
  }
  if (!adapter) {
    return {
      ok: false,
      cause: 'no-adapter',
      reason:
        'WebGPU is present, but the browser found no GPU it is willing to use (requestAdapter() returned null).',
      help: [...WEBGPU_HELP],
    };
  }
  return { ok: true, adapter: describeAdapter(adapter) };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
