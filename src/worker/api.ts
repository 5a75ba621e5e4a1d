/**
 * The lab's API as the page sees it through comlink. The worker implements
 * it (lab.worker.ts); the UI holds a `Remote<LabApi>` (client.ts). Everything
 * crossing this boundary is structured-cloneable data.
 */
import type { AdapterReport } from '../gpu/device';
import type { GpuDetection } from '../lab/detect-gpu';

export type { AdapterReport, GpuDetection };

export interface LabApi {
  /** Asks the worker's navigator.gpu for an adapter and describes it, or says why there is none. */
  detectGpu(): Promise<GpuDetection>;
}
