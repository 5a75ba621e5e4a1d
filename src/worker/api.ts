/**
 * The lab's API as the page sees it through comlink. The worker implements
 * it (lab.worker.ts); the UI holds a `Remote<LabApi>` (client.ts). Everything
 * crossing this boundary is structured-cloneable data, except the progress
 * callback, which the page wraps in `Comlink.proxy`.
 */
import type { ExperimentSpec, Result } from '../core/experiment';
import type { AdapterReport } from '../gpu/device';
import type { GpuDetection } from '../lab/detect-gpu';
import type { CANCELLED_ERROR as CancelledName, DEVICE_LOST_ERROR as DeviceLostName, ExperimentProgress } from '../lab/browser-run';

export type { AdapterReport, ExperimentProgress, ExperimentSpec, GpuDetection, Result };

// Error names the worker's runs reject with (src/lab/browser-run.ts); restated
// here so the page does not bundle the engine, and typed so the two agree.
/** `Error.name` of the error a run rejects with after `cancel()`. */
export const CANCELLED_ERROR: typeof CancelledName = 'RunCancelled';
/** `Error.name` of the error a run rejects with when the GPU device was lost. */
export const DEVICE_LOST_ERROR: typeof DeviceLostName = 'GpuDeviceLost';

export interface LabApi {
  /** Asks the worker's navigator.gpu for an adapter and describes it, or says why there is none. */
  detectGpu(): Promise<GpuDetection>;
  /**
   * Runs one experiment (load, quantize, perplexity, decode speed) on the
   * worker's GPU device. Rejects with a readable message; after `cancel()`
   * with an error named `CANCELLED_ERROR`, after a lost device with one named
   * `DEVICE_LOST_ERROR`. One run at a time.
   */
  runExperiment(spec: ExperimentSpec, onProgress: (p: ExperimentProgress) => void): Promise<Result>;
  /** Stops the run in progress within one tensor, window or decode step; nothing when none runs. */
  cancel(): void;
}

/** A model shipped with the lab under public/models/<id>/. */
export interface EmbeddedModel {
  id: string;
  architecture: string;
  summary: string;
  parameters: number;
  /** dtype of model.safetensors */
  dtype: string;
  /** bytes of model.safetensors */
  fileBytes: number;
  /** longest window the model takes */
  context: number;
  /** tokens of the WikiText-2 test text under its tokenizer (windows = floor(tokens / length)) */
  wikitextTokens: number;
}

/** The embedded models (numbers from their README.md and tests/fixtures/reference). */
export const EMBEDDED_MODELS: readonly EmbeddedModel[] = [
  {
    id: 'qlab-llama-6m',
    architecture: 'Llama',
    summary: '6 layers, hidden 256, 8 query / 2 KV heads, SwiGLU 768, RoPE, untied head',
    parameters: 6_622_464,
    dtype: 'bf16',
    fileBytes: 13_251_080,
    context: 512,
    wikitextTokens: 442_974,
  },
  {
    id: 'qlab-gpt2-6m',
    architecture: 'GPT-2',
    summary: '6 layers, hidden 256, 8 heads, GELU MLP 1024, learned positions, head tied to the embedding',
    parameters: 5_918_720,
    dtype: 'f16',
    fileBytes: 11_844_840,
    context: 512,
    wikitextTokens: 442_974,
  },
];
