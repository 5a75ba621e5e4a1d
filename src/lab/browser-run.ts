/**
 * The lab inside the page's worker, around `runExperiment`:
 *
 * - one GPU device, requested on the first run and kept; when it is lost the
 *   run in flight fails with a clear message and the next run asks for a new one;
 * - embedded models read from the site (public/models/<id>/) with Range requests;
 * - the WikiText-2 test text fetched and verified once, its tokens cached per
 *   model (tokenizing 1.3 MB takes seconds);
 * - one run at a time, cancelled through an AbortController.
 */
import type { ExperimentSpec, ModelRef, Result } from '../core/experiment';
import { formatCount } from '../core/format';
import { verifyWikitext2Test, WIKITEXT2_TEST } from '../core/wikitext';
import { describeAdapter, requestLabDevice, type AdapterReport } from '../gpu/device';
import { MemoryLedger, type LedgerSnapshot } from '../gpu/ledger';
import { inspectLayers, prepareForInspector, type LayerInspection } from './inspect';
import { opfsCache } from './hub-cache';
import { loadModel, urlSource, type ModelSource } from './load';
import { ModelSources } from './model-sources';
import { runExperiment, tensorReader, type RunProgress } from './run';

/** What the layer inspector looks at: a model, a method, and how many evaluation tokens feed it. */
export interface InspectRequest {
  model: ModelRef;
  method: ExperimentSpec['method'];
  /** evaluation tokens the layer inputs come from (default 32) */
  tokens?: number;
}

/**
 * Progress of one run: the engine's stages plus `prepare` (evaluation text
 * and its tokens), which comes first.
 */
export type ExperimentProgress = RunProgress | { stage: 'prepare'; done: number; total: number; detail?: string };

/** `Error.name` of the error a run rejects with after `cancel()`. */
export const CANCELLED_ERROR = 'RunCancelled' as const;
/** `Error.name` of the error a run rejects with when the GPU device was lost. */
export const DEVICE_LOST_ERROR = 'GpuDeviceLost' as const;

export interface BrowserLabOptions {
  /** the context's navigator.gpu (undefined where the browser has no WebGPU) */
  gpu: GPU | undefined;
  /** the site's root: models/<id>/ and data/… resolve against it */
  siteRoot: URL;
  fetch?: typeof fetch;
  /** decode steps timed per run (runExperiment's default when absent) */
  decodeSteps?: number;
  /** the Hugging Face Hub's address (or a mirror's); https://huggingface.co by default */
  hubBase?: string;
}

/**
 * GPU memory as the lab sees it: the ledger its runs allocate through, and
 * every buffer alive on its device (created and not yet destroyed), counted
 * at the device itself so nothing that bypasses the ledger is missed.
 */
export interface GpuMemoryReport {
  /** null before the first run has a device */
  ledger: LedgerSnapshot | null;
  liveBuffers: number;
  liveBytes: number;
}

interface GpuHandle {
  device: GPUDevice;
  adapter: AdapterReport;
  /** the ledger every run on this device allocates through */
  ledger: MemoryLedger;
  /** buffers created on the device and not yet destroyed */
  live: { buffers: number; bytes: number };
  /** rejects with a readable error when the device is lost; never resolves */
  lost: Promise<never>;
}

const EMBEDDED_ID = /^[A-Za-z0-9][\w.-]*$/;

/**
 * Vite's servers (and many static hosts) answer a request for a missing file
 * with the site's index.html and status 200. No model or data file is HTML,
 * so such an answer means "no such file": turn it into the 404 that
 * `urlSource` reads as absent (model.safetensors.index.json, tokenizer_config.json).
 */
export function withoutHtmlFallback(fetchFn: typeof fetch): typeof fetch {
  return async (input, init) => {
    const response = await fetchFn(input, init);
    if (response.ok && (response.headers.get('content-type') ?? '').startsWith('text/html')) {
      await response.body?.cancel();
      return new Response(null, { status: 404, statusText: 'Not Found (the site answered with its HTML page)' });
    }
    return response;
  };
}
const CANCEL = Symbol('cancelled by the person');

function namedError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

/** Any thrown value as an Error whose message a person can read (DOMExceptions and strings included). */
function readable(err: unknown): Error {
  if (err instanceof Error) return err.name === 'Error' ? err : namedError(err.name, err.message);
  if (typeof DOMException !== 'undefined' && err instanceof DOMException) return namedError(err.name, err.message);
  return new Error(String(err));
}

/** `promise`, or its rejection with the signal's reason as soon as the signal aborts (the work itself goes on). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Where a run was when it was cancelled, from its last progress event. */
function whereCancelled(p: ExperimentProgress | null): string {
  const of = (unit: string, q: ExperimentProgress) => `${unit} ${formatCount(q.done)} of ${formatCount(q.total)}`;
  switch (p?.stage) {
    case undefined:
    case 'prepare':
      return 'while preparing the evaluation text';
    case 'load':
    case 'quantize':
      return p.total > 0 && p.done >= p.total ? 'after loading the model, before the first window' : `while loading the model, after ${of('tensor', p)}`;
    case 'evaluate':
      return `during evaluation, after ${of('window', p)}`;
    case 'speed':
      return 'while timing decode speed';
  }
}

/** Methods that read the calibration text (activation statistics, Hessians): all but the baseline, RTN and HQQ. */
function needsCalibration(method: ExperimentSpec['method']): boolean {
  return method.id !== 'none' && method.id !== 'rtn' && method.id !== 'hqq';
}

/**
 * Counts the buffers alive on `device`: its createBuffer is wrapped (on this
 * one object) so each buffer adds its size when created and takes it away
 * once destroyed.
 */
function countBuffers(device: GPUDevice): { buffers: number; bytes: number } {
  const live = { buffers: 0, bytes: 0 };
  const create = device.createBuffer.bind(device);
  device.createBuffer = (descriptor: GPUBufferDescriptor): GPUBuffer => {
    const buffer = create(descriptor);
    const size = buffer.size;
    live.buffers++;
    live.bytes += size;
    const destroy = buffer.destroy.bind(buffer);
    let destroyed = false;
    buffer.destroy = () => {
      if (!destroyed) {
        destroyed = true;
        live.buffers--;
        live.bytes -= size;
      }
      destroy();
    };
    return buffer;
  };
  return live;
}

export class BrowserLab {
  readonly #options: BrowserLabOptions;
  readonly #fetch: typeof fetch;
  #gpu: GpuHandle | null = null;
  #text: Promise<string> | null = null;
  readonly #tokens = new Map<string, number[]>();
  #controller: AbortController | null = null;
  #inspecting: AbortController | null = null;
  #calibration: Promise<string> | null = null;

  constructor(options: BrowserLabOptions) {
    this.#options = options;
    this.#fetch = withoutHtmlFallback(options.fetch ?? ((input, init) => fetch(input, init)));
    this.sources = new ModelSources({
      embedded: (id) => {
        if (!EMBEDDED_ID.test(id)) throw new Error(`"${id}" is not the name of an embedded model (letters, digits, ".", "_" and "-" only).`);
        return urlSource(new URL(`models/${id}/`, options.siteRoot).href, id, this.#fetch);
      },
      cache: () => opfsCache(),
      fetch: options.fetch,
      hub: { baseUrl: options.hubBase },
    });
  }

  /** Hub, local-file and embedded models; the Hub settings, token and download cache. */
  readonly sources: ModelSources;

  /** The ledger of the current device and the buffers alive on it. */
  memory(): GpuMemoryReport {
    const gpu = this.#gpu;
    return gpu ? { ledger: gpu.ledger.snapshot(), liveBuffers: gpu.live.buffers, liveBytes: gpu.live.bytes } : { ledger: null, liveBuffers: 0, liveBytes: 0 };
  }

  /**
   * Destroys the lab's GPU device, as a driver reset would: the run in flight
   * ends interrupted and the next one asks for a new device. For classroom
   * demos of what the lab does when the GPU goes away, and for tests.
   */
  loseDevice(): void {
    this.#gpu?.device.destroy();
  }

  /** Stops the run in flight within one tensor, window or decode step. */
  cancel(): void {
    this.#controller?.abort(CANCEL);
  }

  async run(spec: ExperimentSpec, onProgress: (p: ExperimentProgress) => void): Promise<Result> {
    if (this.#controller) throw new Error('An experiment is already running: wait for it to finish, or cancel it, before starting another.');
    const controller = new AbortController();
    this.#controller = controller;
    let last: ExperimentProgress | null = null;
    let open = true;
    // After the run has ended (a lost device ends it early) late events are dropped.
    const progress = (p: ExperimentProgress): void => {
      if (!open) return;
      last = p;
      onProgress(p);
    };
    try {
      const gpu = await abortable(this.#device(), controller.signal);
      const work = this.#run(spec, gpu, controller.signal, progress);
      work.catch(() => {}); // observed below; when the device is lost first, its late rejection is expected
      return await Promise.race([work, gpu.lost]);
    } catch (err) {
      if (controller.signal.aborted && controller.signal.reason === CANCEL) {
        throw namedError(CANCELLED_ERROR, `Cancelled ${whereCancelled(last)}.`);
      }
      throw readable(err);
    } finally {
      open = false;
      // a lost device leaves the engine mid-run: stop what is left of it
      if (!controller.signal.aborted) controller.abort(namedError('RunEnded', 'the run has ended'));
      this.#controller = null;
    }
  }

  /**
   * The layer inspector for one model and method (src/lab/inspect.ts): each
   * block linear's relative output error on the first `tokens` evaluation
   * tokens, and its weight histograms. Runs beside the queue (it computes on
   * the CPU); a second call cancels the first.
   */
  async inspect(request: InspectRequest, onProgress: (done: number, total: number, detail: string) => void = () => {}): Promise<LayerInspection> {
    this.#inspecting?.abort(CANCEL);
    const controller = new AbortController();
    this.#inspecting = controller;
    const signal = controller.signal;
    try {
      const gpu = await abortable(this.#device(), signal);
      const { source, id } = await this.#source(request.model, signal, () => {});
      const { text, tokens } = await this.#evaluationTokens(id, source, signal, () => {});
      void text;
      const model = await abortable(loadModel(source), signal);
      const read = tensorReader(model);
      const calibrationText = needsCalibration(request.method) ? await abortable(this.#calibrationText(), signal) : undefined;
      const calibrationTokens = calibrationText === undefined ? undefined : model.tokenizer?.encode(calibrationText);
      const prepared = await prepareForInspector(request.method, model, read, gpu.device, signal, calibrationTokens);
      return await inspectLayers({ model, method: request.method, read, prepared, ids: tokens, rows: request.tokens ?? 32, signal, onProgress });
    } catch (err) {
      if (signal.aborted && signal.reason === CANCEL) throw namedError(CANCELLED_ERROR, 'The layer inspection was replaced by a newer one.');
      throw readable(err);
    } finally {
      if (this.#inspecting === controller) this.#inspecting = null;
    }
  }

  /** A model's files: on the site (embedded), in the download cache (Hub, fetched first) or picked by the person (local). */
  #source(ref: ModelRef, signal: AbortSignal, progress: (p: ExperimentProgress) => void): Promise<{ source: ModelSource; id: string }> {
    return this.sources.resolve(ref, {
      signal,
      onDownload: (p, line) => progress({ stage: 'prepare', done: p.bytes, total: p.total ?? p.bytes, detail: `downloading ${line}` }),
    });
  }

  /** The WikiText-2 test text and its tokens under the model's tokenizer (cached per model). */
  async #evaluationTokens(id: string, source: ModelSource, signal: AbortSignal, progress: (p: ExperimentProgress) => void): Promise<{ text: string; tokens: number[] }> {
    progress({ stage: 'prepare', done: 0, total: 2, detail: 'downloading the WikiText-2 test text' });
    // Downloads are shared and cached, so a cancel stops waiting for them rather than stopping them.
    const text = await abortable(this.#wikitext(), signal);
    let tokens = this.#tokens.get(id);
    if (!tokens) {
      progress({ stage: 'prepare', done: 1, total: 2, detail: `tokenizing it with ${id}'s tokenizer` });
      const model = await abortable(loadModel(source), signal);
      if (!model.tokenizer) throw new Error(`${id} has no tokenizer.json: the lab needs it to tokenize WikiText-2.`);
      tokens = model.tokenizer.encode(text);
      this.#tokens.set(id, tokens);
      signal.throwIfAborted();
    }
    progress({ stage: 'prepare', done: 2, total: 2, detail: `${formatCount(tokens.length)} tokens` });
    return { text, tokens };
  }

  async #run(spec: ExperimentSpec, gpu: GpuHandle, signal: AbortSignal, progress: (p: ExperimentProgress) => void): Promise<Result> {
    const { source, id } = await this.#source(spec.model, signal, progress);
    const { text, tokens } = await this.#evaluationTokens(id, source, signal, progress);

    const decodeSteps = this.#options.decodeSteps;
    const calibrationText = needsCalibration(spec.method) ? await abortable(this.#calibrationText(), signal) : undefined;
    return runExperiment(spec, {
      device: gpu.device,
      adapter: gpu.adapter,
      source,
      text,
      tokens,
      signal,
      decodeSteps,
      calibrationText,
      ledger: gpu.ledger,
      onProgress: (p) => {
        progress(p);
        // runExperiment times decode right after the last window and reports no progress for it.
        if (p.stage === 'evaluate' && p.done === p.total) progress({ stage: 'speed', done: 0, total: 1, detail: 'decoding one token at a time' });
      },
    });
  }

  /** The calibration text (public/data/calibration.txt, never the evaluation text), fetched on first use. */
  #calibrationText(): Promise<string> {
    this.#calibration ??= (async () => {
      const url = new URL('data/calibration.txt', this.#options.siteRoot).href;
      let response: Response;
      try {
        response = await this.#fetch(url);
      } catch (err) {
        throw new Error(`Downloading the calibration text (${url}) failed: ${readable(err).message}. Check the connection to the lab's site and run again.`);
      }
      if (!response.ok) throw new Error(`Downloading the calibration text (${url}) failed with HTTP ${response.status} ${response.statusText}: the site is missing data/calibration.txt.`);
      return response.text();
    })();
    this.#calibration.catch(() => (this.#calibration = null));
    return this.#calibration;
  }

  /** The WikiText-2 test text, fetched and verified on first use. */
  #wikitext(): Promise<string> {
    this.#text ??= (async () => {
      const url = new URL(WIKITEXT2_TEST.path, this.#options.siteRoot).href;
      let response: Response;
      try {
        response = await this.#fetch(url);
      } catch (err) {
        throw new Error(`Downloading the WikiText-2 test text (${url}) failed: ${readable(err).message}. Check the connection to the lab's site and run again.`);
      }
      if (!response.ok) throw new Error(`Downloading the WikiText-2 test text (${url}) failed with HTTP ${response.status} ${response.statusText}: the site is missing ${WIKITEXT2_TEST.path}.`);
      return verifyWikitext2Test(new Uint8Array(await response.arrayBuffer()));
    })();
    this.#text.catch(() => (this.#text = null)); // a failed download is tried again next run
    return this.#text;
  }

  /** The lab's device: requested on first use, again after a loss. */
  async #device(): Promise<GpuHandle> {
    if (this.#gpu) return this.#gpu;
    const gpu = this.#options.gpu;
    if (!gpu) throw new Error('This browser gives the lab no WebGPU (navigator.gpu is missing in its worker): see step 1 for browsers that work.');
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) throw new Error('The browser found no GPU adapter for the lab (requestAdapter() returned null): see step 1 for what to try.');
    let device: GPUDevice;
    try {
      device = await requestLabDevice(adapter);
    } catch (err) {
      throw new Error(`The GPU adapter refused the lab a device: ${readable(err).message}. Close other tabs that use the GPU, or reload the page.`);
    }
    const lost = device.lost.then((info): never => {
      if (this.#gpu?.device === device) this.#gpu = null;
      const error = namedError(
        DEVICE_LOST_ERROR,
        `The GPU device was lost${info.message ? ` (${info.message})` : ''}. The driver may have reset, or the browser took the GPU back ` +
          '(too much GPU memory in use, a shader that ran too long, a laptop that went to sleep). ' +
          'Run again to get a new device; if it keeps happening, try shorter windows or reload the page.',
      );
      this.#controller?.abort(error);
      throw error;
    });
    lost.catch(() => {}); // raced against each run; unobserved between runs
    device.addEventListener('uncapturederror', (e) => console.error(`WebGPU error in the lab: ${(e as GPUUncapturedErrorEvent).error.message}`));
    this.#gpu = { device, adapter: describeAdapter(adapter), lost, ledger: new MemoryLedger(device), live: countBuffers(device) };
    return this.#gpu;
  }
}
