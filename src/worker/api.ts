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

import type { SourcedResult } from '../core/results-import';
import type { GpuMemoryReport, InspectRequest } from '../lab/browser-run';
import type { LayerHistogram, LayerInspection } from '../lab/inspect';
import type { CachedModel } from '../lab/hub-cache';
import type { DownloadProgress, HubToken } from '../lab/hub';
import type { ModelSummary } from '../lab/model-sources';
import type { DeviceLostPolicy, QueueEvent, QueueItem, QueueState } from '../lab/queue';
import type { ExportedFile, ExportProgress, ExportRequest, OnnxVerification } from '../export/model-export';
import type { PageBenchProgress, PageBenchResult } from '../../bench/page-bench';
export type { PageBenchProgress, PageBenchResult };

export type { AdapterReport, DeviceLostPolicy, ExperimentProgress, ExperimentSpec, GpuDetection, GpuMemoryReport, InspectRequest, LayerHistogram, LayerInspection, QueueEvent, QueueItem, QueueState, Result };

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
  /** Runs the kernel bench (bench/page-bench.ts) on a GPU device of its own, freed after; small shapes on CPU adapters. */
  benchKernels(onProgress: (p: PageBenchProgress) => void): Promise<PageBenchResult>;

  // ---- the run queue (src/lab/queue.ts), kept in the worker with the GPU

  /** Reads saved results, queue and settings (once); runs a closed page left running come back interrupted. */
  restore(): Promise<{ state: QueueState; settings: unknown }>;
  /** Calls `listener` (a Comlink.proxy) with each queue event: state changes, and each run's start, progress and end. */
  subscribe(listener: (e: QueueEvent) => void): void;
  /** Adds experiments at the end of the queue, or right after the running one (`front`). */
  enqueue(specs: ExperimentSpec[], front?: boolean): Promise<QueueState>;
  remove(id: string): Promise<void>;
  /** Works through the queue in order; resolves when it stops (empty, cancelled, or waiting after a lost device). */
  startQueue(): Promise<void>;
  /** Stops the run in flight and drops what waits; finished results stay. */
  cancelQueue(): Promise<void>;
  /** Keeps the page's form settings with the results; `deviceLost` says what the queue does when the GPU device is lost. */
  saveSettings(settings: unknown, deviceLost: DeviceLostPolicy): Promise<void>;
  /** Adds results measured elsewhere (already checked by parseResultsFile). */
  importResults(results: SourcedResult[]): Promise<{ added: number; skipped: number }>;
  /** Destroys the lab's GPU device as a driver reset would (demos and tests of what happens when the GPU is lost). */
  loseDevice(): void;
  /** The lab's GPU memory now: its ledger and every buffer alive on its device. */
  memory(): GpuMemoryReport;
  /** The layer inspector's numbers for a model and method (src/lab/inspect.ts). */
  inspect(request: InspectRequest, onProgress?: (done: number, total: number, detail: string) => void): Promise<LayerInspection>;

  // ---- models from the Hugging Face Hub and from local files (src/lab/model-sources.ts)

  /**
   * Sets the Hub's address (or a mirror's) and/or the access token, which stays in the worker's memory (null forgets it).
   * The token comes bound to the origin it was given for and is sent only there; `hasToken` says whether it goes to
   * the current address, `tokenOrigin` where it is bound.
   */
  setHub(settings: { baseUrl?: string; token?: HubToken | null }): Promise<{ baseUrl: string; hasToken: boolean; tokenOrigin: string | null }>;
  /** Downloads a Hub model into the browser's cache (resuming a partial download), then describes it and plans the experiments of `plan`. */
  downloadHubModel(ref: { repo: string; revision: string }, plan: PlanRequest, onProgress: (p: DownloadProgress) => void): Promise<ModelSummary>;
  /** Hands files the person picked (config.json, tokenizer.json, *.safetensors) to the worker under `name`, describes them and plans `specs`. */
  addLocalModel(name: string, files: Record<string, Blob>, plan: PlanRequest): Promise<ModelSummary>;
  /** Models in the download cache, with their sizes. */
  listHubCache(): Promise<CachedModel[]>;
  /** Removes a repository (and revision) from the cache, or everything; returns bytes freed. */
  clearHubCache(filter?: { repo?: string; revision?: string }): Promise<number>;

  // ---- export (src/export/model-export.ts)

  /** Re-creates a result's quantized weights and returns them as one file (ONNX, or a ZIP of the AutoAWQ checkpoint), or runs the ONNX export in onnxruntime-web on the result's first windows beside the lab's own perplexity. */
  exportModel(request: ExportRequest, onProgress?: (p: ExportProgress) => void): Promise<ExportedFile | OnnxVerification>;
}

/** What a memory plan needs of an experiment. */
export type PlanSpec = Pick<ExperimentSpec, 'method' | 'eval' | 'kv'>;

/** The experiments to plan, and a GPU memory budget in bytes beyond the adapter's buffer limits (null: none). */
export interface PlanRequest {
  specs: PlanSpec[];
  budgetBytes: number | null;
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
  /** its shape, from config.json, for estimates made before loading it */
  shape: ModelShape;
}

/** What memory and time estimates need of a model's config (a subset of DecoderConfig). */
export interface ModelShape {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositions: number;
  norm: 'rmsnorm' | 'layernorm';
  positions: 'rope' | 'learned';
  mlp: 'swiglu' | 'gelu';
  attnBias: boolean;
  attnOutBias: boolean;
  mlpBias: boolean;
  tiedEmbeddings: boolean;
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
    shape: {
      vocabSize: 4096, hiddenSize: 256, numLayers: 6, numHeads: 8, numKvHeads: 2, headDim: 32, intermediateSize: 768, maxPositions: 512,
      norm: 'rmsnorm', positions: 'rope', mlp: 'swiglu', attnBias: false, attnOutBias: false, mlpBias: false, tiedEmbeddings: false,
    },
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
    shape: {
      vocabSize: 4096, hiddenSize: 256, numLayers: 6, numHeads: 8, numKvHeads: 8, headDim: 32, intermediateSize: 1024, maxPositions: 512,
      norm: 'layernorm', positions: 'learned', mlp: 'gelu', attnBias: true, attnOutBias: true, mlpBias: true, tiedEmbeddings: true,
    },
  },
];
