/**
 * The dedicated module worker that owns the GPU. The page never touches
 * WebGPU; it calls this API through comlink.
 */
import * as Comlink from 'comlink';
import { BrowserLab } from '../lab/browser-run';
import { requestLabDevice } from '../gpu/device';
import { detectGpu } from '../lab/detect-gpu';
import { batchProgress, LabQueue } from '../lab/queue';
import { idbKeyValue, LabStore } from '../lab/store';
import type { LabApi } from './api';
import { describeModel } from '../lab/model-sources';
import type { PlanLimits } from '../lab/memory-plan';

// navigator.gpu is typed as always present; a browser without WebGPU leaves it undefined.
const gpu = (self as unknown as { navigator: { gpu?: GPU } }).navigator.gpu;

// The site's root, where public/ is served: the worker script itself lives
// elsewhere (/src/worker/… under `vite`, /assets/… after `vite build`), so
// resolve Vite's base against the origin rather than against the script.
// (An absolute base such as "/" or "/qlab/"; a relative base "./" would need the page's address.)
const siteRoot = new URL(import.meta.env.BASE_URL, self.location.origin);

// ?hub=<address> in the page's URL points Hub downloads at a mirror (or a test server); the page passes it on
// through setHub, and a token reaches only the origin it is bound to (src/lab/hub.ts hubTokenFor)
const lab = new BrowserLab({ gpu, siteRoot });

/** The adapter's limits for memory plans (null without an adapter). */
async function planLimits(budgetBytes: number | null): Promise<PlanLimits | null> {
  const adapter = await gpu?.requestAdapter({ powerPreference: 'high-performance' });
  return adapter ? { maxBufferSize: adapter.limits.maxBufferSize, maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, budgetBytes } : null;
}
// Without IndexedDB (some private windows) the lab still runs; its results then last as long as the page.
const hasIndexedDb = typeof indexedDB !== 'undefined';
const queue = new LabQueue(lab, hasIndexedDb ? new LabStore(idbKeyValue()) : null, hasIndexedDb ? [] : ['This browser gives the lab no IndexedDB, so results will not survive a reload.']);

/** Frees the port of a comlink proxy the page passed in. */
const release = (proxy: unknown): void => (proxy as Partial<Comlink.ProxyMethods>)[Comlink.releaseProxy]?.();

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

  async benchKernels(onProgress) {
    const adapter = await gpu?.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) throw new Error('This browser gives the page no WebGPU adapter, so there is nothing to measure.');
    const device = await requestLabDevice(adapter);
    try {
      const [{ runPageBench }, { tuningFor }] = await Promise.all([import('../../bench/page-bench'), import('../gpu/tuning')]);
      return await runPageBench(device, (p) => void onProgress(p), { small: tuningFor(device).cpu });
    } finally {
      device.destroy();
      release(onProgress);
    }
  },

  restore: () => queue.restore(),
  subscribe(listener) {
    // one page per worker: the listener lives as long as the page does
    queue.subscribe(batchProgress((e) => void listener(e)));
  },
  enqueue: (specs, front) => queue.enqueue(specs, front),
  remove: (id) => queue.remove(id),
  startQueue: () => queue.start(),
  cancelQueue: () => queue.cancelQueue(),
  async saveSettings(settings, deviceLost) {
    queue.setDeviceLostPolicy(deviceLost);
    await queue.saveSettings(settings);
  },
  importResults: (results) => queue.importResults(results),
  memory: () => lab.memory(),
  loseDevice: () => lab.loseDevice(),
  async inspect(request, onProgress) {
    try {
      return await lab.inspect(request, (done, total, detail) => void onProgress?.(done, total, detail));
    } finally {
      release(onProgress);
    }
  },

  async setHub(settings) {
    lab.sources.setHub(settings);
    return { baseUrl: lab.sources.hubBase(), hasToken: lab.sources.hasToken(), tokenOrigin: lab.sources.tokenOrigin() };
  },
  async downloadHubModel(ref, plan, onProgress) {
    try {
      const { source } = await lab.sources.resolve({ kind: 'hub', ...ref }, { onDownload: (p) => void onProgress(p) });
      return await describeModel(source, plan.specs, await planLimits(plan.budgetBytes));
    } finally {
      release(onProgress);
    }
  },
  async addLocalModel(name, files, plan) {
    lab.sources.addLocal(name, files);
    const { source } = await lab.sources.resolve({ kind: 'local', name });
    return describeModel(source, plan.specs, await planLimits(plan.budgetBytes));
  },
  listHubCache: () => lab.sources.listCache(),
  clearHubCache: (filter) => lab.sources.clearCache(filter),
  async exportModel(request, onProgress) {
    // AWQ and GPTQ calibrate on a GPU device of the export's own, freed when it is done
    const held: { device: GPUDevice | null } = { device: null };
    try {
      const [{ exportModel, fetchWikitext, fetchCalibrationText }, { browserOrt }] = await Promise.all([import('../export/model-export'), import('../export/ort-browser')]);
      const { source } = await lab.sources.resolve(request.result.spec.model);
      const out = await exportModel(request, {
        source, ort: browserOrt, onProgress: (p) => void onProgress?.(p),
        text: () => fetchWikitext(siteRoot),
        calibrationText: () => fetchCalibrationText(siteRoot),
        device: async () => {
          const adapter = await gpu?.requestAdapter({ powerPreference: 'high-performance' });
          if (!adapter) throw new Error('This method calibrates on the GPU, and the browser gave no WebGPU adapter.');
          return (held.device = await requestLabDevice(adapter));
        },
      });
      return out.kind === 'file' ? Comlink.transfer(out, [out.bytes.buffer as ArrayBuffer]) : out;
    } finally {
      held.device?.destroy();
      release(onProgress);
    }
  },
};

Comlink.expose(api);
