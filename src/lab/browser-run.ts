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
import type { ExperimentSpec, Result } from '../core/experiment';
import { formatCount } from '../core/format';
import { verifyWikitext2Test, WIKITEXT2_TEST } from '../core/wikitext';
import { describeAdapter, requestLabDevice, type AdapterReport } from '../gpu/device';
import { loadModel, urlSource } from './load';
import { runExperiment, type RunProgress } from './run';

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
}

interface GpuHandle {
  device: GPUDevice;
  adapter: AdapterReport;
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

export class BrowserLab {
  readonly #options: BrowserLabOptions;
  readonly #fetch: typeof fetch;
  #gpu: GpuHandle | null = null;
  #text: Promise<string> | null = null;
  readonly #tokens = new Map<string, number[]>();
  #controller: AbortController | null = null;

  constructor(options: BrowserLabOptions) {
    this.#options = options;
    this.#fetch = withoutHtmlFallback(options.fetch ?? ((input, init) => fetch(input, init)));
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

  async #run(spec: ExperimentSpec, gpu: GpuHandle, signal: AbortSignal, progress: (p: ExperimentProgress) => void): Promise<Result> {
    const ref = spec.model;
    if (ref.kind !== 'embedded') {
      const what = ref.kind === 'hub' ? `the Hugging Face repository ${ref.repo}` : `local files (${ref.name})`;
      throw new Error(`This version of the lab runs its embedded models only; ${what} cannot be loaded yet.`);
    }
    if (!EMBEDDED_ID.test(ref.id)) throw new Error(`"${ref.id}" is not the name of an embedded model (letters, digits, ".", "_" and "-" only).`);
    const source = urlSource(new URL(`models/${ref.id}/`, this.#options.siteRoot).href, ref.id, this.#fetch);

    progress({ stage: 'prepare', done: 0, total: 2, detail: 'downloading the WikiText-2 test text' });
    // Downloads are shared and cached, so a cancel stops waiting for them rather than stopping them.
    const text = await abortable(this.#wikitext(), signal);
    let tokens = this.#tokens.get(ref.id);
    if (!tokens) {
      progress({ stage: 'prepare', done: 1, total: 2, detail: `tokenizing it with ${ref.id}'s tokenizer` });
      const model = await abortable(loadModel(source), signal);
      if (!model.tokenizer) throw new Error(`${ref.id} has no tokenizer.json: the lab needs it to tokenize WikiText-2.`);
      tokens = model.tokenizer.encode(text);
      this.#tokens.set(ref.id, tokens);
      signal.throwIfAborted();
    }
    progress({ stage: 'prepare', done: 2, total: 2, detail: `${formatCount(tokens.length)} tokens` });

    const decodeSteps = this.#options.decodeSteps;
    return runExperiment(spec, {
      device: gpu.device,
      adapter: gpu.adapter,
      source,
      text,
      tokens,
      signal,
      decodeSteps,
      onProgress: (p) => {
        progress(p);
        // runExperiment times decode right after the last window and reports no progress for it.
        if (p.stage === 'evaluate' && p.done === p.total) progress({ stage: 'speed', done: 0, total: 1, detail: 'decoding one token at a time' });
      },
    });
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
    this.#gpu = { device, adapter: describeAdapter(adapter), lost };
    return this.#gpu;
  }
}
