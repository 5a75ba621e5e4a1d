/**
 * The dedicated module worker that owns the GPU. The page never touches
 * WebGPU; it calls this API through comlink.
 */
import * as Comlink from 'comlink';
import { BrowserLab } from '../lab/browser-run';
import { detectGpu } from '../lab/detect-gpu';
import type { LabApi } from './api';

// navigator.gpu is typed as always present; a browser without WebGPU leaves it undefined.
const gpu = (self as unknown as { navigator: { gpu?: GPU } }).navigator.gpu;

// The site's root, where public/ is served: the worker script itself lives
// elsewhere (/src/worker/… under `vite`, /assets/… after `vite build`), so
// resolve Vite's base against the origin rather than against the script.
// (An absolute base such as "/" or "/qlab/"; a relative base "./" would need the page's address.)
const siteRoot = new URL(import.meta.env.BASE_URL, self.location.origin);

const lab = new BrowserLab({ gpu, siteRoot });

const api: LabApi = {
  detectGpu: () => detectGpu(gpu, self.isSecureContext),

  async runExperiment(spec, onProgress) {
    try {
      return await lab.run(spec, (p) => void onProgress(p));
    } finally {
      // onProgress arrives as a comlink proxy of the page's callback: free its port.
      (onProgress as unknown as Partial<Comlink.ProxyMethods>)[Comlink.releaseProxy]?.();
    }
  },

  cancel: () => lab.cancel(),
};

Comlink.expose(api);
