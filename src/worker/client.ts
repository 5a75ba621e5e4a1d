/**
 * Starts the lab worker and wraps it with comlink. The UI's only way to the GPU.
 */
import * as Comlink from 'comlink';
import type { ExperimentProgress, ExperimentSpec, InspectRequest, LabApi, LayerInspection, QueueEvent, Result } from './api';

export type LabClient = Comlink.Remote<LabApi>;

export interface LabWorker {
  lab: LabClient;
  /** Rejects with a readable message if the worker script fails to load or crashes. */
  failed: Promise<never>;
  terminate(): void;
}

export function startLabWorker(): LabWorker {
  const worker = new Worker(new URL('./lab.worker.ts', import.meta.url), { type: 'module', name: 'qlab' });
  const failed = new Promise<never>((_, reject) => {
    worker.addEventListener('error', (e) => {
      reject(
        new Error(
          `The lab's worker could not start${e.message ? `: ${e.message}` : ''}. ` +
            'The lab needs a browser with module workers (Chrome/Edge 80+, Firefox 114+, Safari 15+); reload to try again.',
        ),
      );
    });
  });
  failed.catch(() => {}); // only observed when someone races it
  return { lab: Comlink.wrap<LabApi>(worker), failed, terminate: () => worker.terminate() };
}

/** Runs one experiment in the worker; `onProgress` is called in the page for each progress event. */
export function runInWorker(lab: LabClient, spec: ExperimentSpec, onProgress: (p: ExperimentProgress) => void): Promise<Result> {
  return lab.runExperiment(spec, Comlink.proxy(onProgress));
}

/** Listens to the worker's queue: `listener` is called in the page for each event. */
export function subscribeToQueue(lab: LabClient, listener: (e: QueueEvent) => void): Promise<void> {
  return lab.subscribe(Comlink.proxy(listener));
}

/** The layer inspector's numbers, computed in the worker; `onProgress` is called in the page. */
export function inspectInWorker(lab: LabClient, request: InspectRequest, onProgress: (done: number, total: number, detail: string) => void): Promise<LayerInspection> {
  return lab.inspect(request, Comlink.proxy(onProgress));
}
