/**
 * What can go wrong under a run that is not the experiment's own doing, and
 * how a run ends when it does:
 *
 * - Numerical faults: a window whose loss (or KL divergence) is NaN or
 *   infinite. Evaluation stops there (NumericalFaultError, thrown by
 *   measurePerplexity); the run reruns that one window capturing the residual
 *   stream after each block to name the first layer whose output is not
 *   finite, and ends as a failed Result carrying `numericalFault`, which keeps
 *   it off the frontier.
 * - Device loss (`device.lost`: a driver reset, the browser reclaiming the GPU,
 *   `device.destroy()`): the run stops at its next tensor, window or readback
 *   and ends as an interrupted Result with its partial progress; every buffer
 *   goes back through the ledger.
 * - Runs whose buffers exceed the device's limits are refused before they
 *   start, with what would fit (checkRunFits, from the memory plan).
 * - Allocation failures that get past the memory plan: GPU errors (out of
 *   memory, validation) are caught in error scopes around the whole run and
 *   end it with a message instead of numbers read from invalid buffers.
 */
import type { DecoderConfig } from '../core/decoder';
import { methodName, type ExperimentSpec, type NumericalFault, type PartialProgress, type Result } from '../core/experiment';
import type { EvalWindow } from '../core/protocols';
import type { AdapterReport } from '../gpu/device';
import type { DecoderExecutor } from '../gpu/model';
import { formatBytes, planExperiment, type PlanLimits } from './memory-plan';

/** A window whose loss or KL divergence is not finite; thrown by measurePerplexity. */
export class NumericalFaultError extends Error {
  /** the layer where non-finite values first appear, once located (locateNumericalFault) */
  layer: string | null = null;
  constructor(
    message: string,
    readonly metric: 'nll' | 'kl',
    readonly window: EvalWindow,
    /** position in the window */
    readonly position: number,
    readonly value: number,
    /** windows scored before this one, and their NLL sums */
    readonly windowNll: number[],
    readonly windowsTotal: number,
  ) {
    super(message);
    this.name = 'NumericalFault';
  }
}

const stringOf = (v: number): string => (Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity');

/** Where a capture name of DecoderExecutor.forward sits in the model, in words. */
export function captureLayer(name: string, numLayers: number): string {
  if (name === 'hidden.0') return 'embed.tokens (the embedding lookup)';
  const block = /^hidden\.(\d+)$/.exec(name);
  if (block) return `layers.${Number(block[1]) - 1} (block ${block[1]} of ${numLayers})`;
  if (name === 'final_norm') return 'final_norm';
  return name;
}

/**
 * Reruns the faulty window through `executor` capturing the residual stream
 * after the embeddings and each block, and names the first that holds a
 * non-finite value ("head" when all of them are finite: the logits or the
 * log-softmax overflowed). Sets `fault.layer` and rethrows.
 */
export async function locateNumericalFault(error: unknown, executor: DecoderExecutor): Promise<never> {
  if (!(error instanceof NumericalFaultError) || error.layer !== null) throw error;
  let first: string | null = null;
  try {
    await executor.forward(error.window.inputIds, error.window.targets, 0, {
      capture: (name, rows) => {
        if (first === null && !rows.every(Number.isFinite)) first = name;
      },
    });
  } catch {
    // locating is a courtesy: the fault itself is reported either way
  }
  error.layer = first === null ? 'head (the logits or their log-softmax)' : captureLayer(first, executor.config.numLayers);
  error.message = `${error.message}; the first non-finite values appear after ${error.layer}`;
  throw error;
}

function deviceOf(adapter: AdapterReport): Result['device'] {
  return { vendor: adapter.vendor, architecture: adapter.architecture, description: adapter.description, features: adapter.features };
}

/** The Result of a run stopped by a numerical fault: failed, off the frontier, saying where the numbers broke. */
export function numericalFaultResult(spec: ExperimentSpec, adapter: AdapterReport, fault: NumericalFaultError, textTokens: number, timing: Record<string, number>): Result {
  const numericalFault: NumericalFault = {
    metric: fault.metric,
    window: fault.window.index,
    position: fault.position,
    value: stringOf(fault.value),
    layer: fault.layer ?? 'unknown',
  };
  return {
    id: `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
    spec,
    status: 'failed',
    createdAt: new Date().toISOString(),
    device: deviceOf(adapter),
    protocol: { protocol: spec.eval.protocol, windowLength: spec.eval.windowLength, windowsTotal: fault.windowsTotal, windows: fault.windowNll.length, scoredTokens: 0, textTokens },
    metrics: null,
    timing,
    kernels: [],
    windowNll: fault.windowNll,
    methodReport: {},
    error: fault.message,
    numericalFault,
  };
}

/** How far a run got, from its last progress event (null: none yet). */
export function partialFrom(p: { stage: string; done: number; total: number; perplexity?: number } | null, windowsTotal: number | null): PartialProgress | undefined {
  if (!p) return undefined;
  const evaluating = p.stage === 'evaluate';
  return {
    stage: p.stage,
    done: p.done,
    total: p.total,
    windowsDone: evaluating ? p.done : 0,
    windowsTotal: evaluating ? p.total : windowsTotal,
    perplexity: evaluating && p.perplexity !== undefined ? p.perplexity : null,
    at: new Date().toISOString(),
  };
}

function where(p: PartialProgress | undefined): string {
  if (!p) return 'before it reported any progress';
  if (p.stage === 'evaluate') return `during evaluation, after window ${p.windowsDone} of ${p.windowsTotal ?? '?'}${p.perplexity === null ? '' : ` (running perplexity ${p.perplexity.toFixed(2)})`}`;
  if (p.stage === 'load') return `while loading the model onto the GPU (tensor ${p.done} of ${p.total})`;
  if (p.stage === 'quantize') return `while quantizing (${p.done} of ${p.total})`;
  return `during the ${p.stage} stage`;
}

/** The Result of a run whose GPU device was lost: interrupted, with how far it got. */
export function deviceLostResult(spec: ExperimentSpec, adapter: AdapterReport, info: GPUDeviceLostInfo, partial: PartialProgress | undefined, timing: Record<string, number>): Result {
  const reason = info.reason === 'destroyed' ? 'it was destroyed' : 'the driver or the browser took it back';
  const message =
    `The GPU device was lost (${reason}${info.message ? `: ${info.message}` : ''}) ${where(partial)}. ` +
    'The run is kept as interrupted with what it had; every GPU buffer it held was released. Run it again on a new device ' +
    '(reload the page if the browser does not give one).';
  const e = spec.eval;
  return {
    id: `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
    spec,
    status: 'interrupted',
    createdAt: new Date().toISOString(),
    device: deviceOf(adapter),
    protocol: { protocol: e.protocol, windowLength: e.windowLength, windowsTotal: partial?.windowsTotal ?? e.windows ?? 0, windows: partial?.windowsDone ?? 0, scoredTokens: 0, textTokens: 0 },
    metrics: null,
    timing,
    kernels: [],
    windowNll: [],
    methodReport: {},
    error: message,
    ...(partial ? { partial } : {}),
  };
}

/** Watches `device.lost`: `info` is set once it resolves. */
export function watchDevice(device: GPUDevice): { readonly info: GPUDeviceLostInfo | null; settled(): Promise<GPUDeviceLostInfo | null> } {
  let info: GPUDeviceLostInfo | null = null;
  const lost = device.lost.then((i) => (info = i));
  return {
    get info() {
      return info;
    },
    /** the loss, when the device is lost or is found so within a moment (an engine error usually comes first) */
    async settled() {
      if (info) return info;
      await Promise.race([lost, new Promise((resolve) => setTimeout(resolve, 100))]);
      return info;
    },
  };
}

/** An error raised at the run's next step once the device is known to be lost, to stop it early. */
export class DeviceLostError extends Error {
  constructor() {
    super('the GPU device was lost');
    this.name = 'GpuDeviceLost';
  }
}

/**
 * Runs `body` inside out-of-memory and validation error scopes: a GPU error
 * anywhere in it (an allocation the memory plan did not foresee failing, a
 * kernel the device refused) ends the run with a message, never with numbers
 * read from invalid buffers.
 */
export async function withGpuErrorScopes<T>(device: GPUDevice, what: string, body: () => Promise<T>): Promise<T> {
  device.pushErrorScope('validation');
  device.pushErrorScope('out-of-memory');
  let value: T;
  try {
    value = await body();
  } catch (err) {
    const gpu = await popBoth(device);
    if (gpu) throw gpuError(what, gpu, err);
    throw err;
  }
  const gpu = await popBoth(device);
  if (gpu) throw gpuError(what, gpu, null);
  return value;
}

async function popBoth(device: GPUDevice): Promise<{ kind: 'out of memory' | 'validation'; message: string } | null> {
  // popped even when lost (they resolve null then); a stack already emptied by loss rejects, which is no GPU error of ours
  const oom = await device.popErrorScope().catch(() => null);
  const validation = await device.popErrorScope().catch(() => null);
  if (oom) return { kind: 'out of memory', message: oom.message };
  if (validation) return { kind: 'validation', message: validation.message };
  return null;
}

function gpuError(what: string, gpu: { kind: 'out of memory' | 'validation'; message: string }, cause: unknown): Error {
  const first = gpu.message.split('\n')[0].slice(0, 300);
  const text =
    gpu.kind === 'out of memory'
      ? `The GPU ran out of memory during ${what} (${first}). Every buffer of the run was released. Choose a lower bit width, a shorter window or a smaller model, or close other tabs that use the GPU.`
      : `The GPU refused an operation during ${what} (${first}): the run's numbers could not be trusted, so it was stopped and its buffers released. This is a bug in qlab or the browser's WebGPU; please report it with the device card.`;
  return new Error(text, cause ? { cause } : undefined);
}

/**
 * Refuses, before anything is prepared or allocated, a run whose largest GPU
 * buffer would exceed the device's maxBufferSize or maxStorageBufferBindingSize
 * (the memory plan, src/lab/memory-plan.ts, says which buffer), naming what
 * would fit instead: a shorter window, the embeddings and head quantized too,
 * a quantized method for the f32 baseline, or no KL reference.
 */
export function checkRunFits(config: DecoderConfig, spec: ExperimentSpec, limits: PlanLimits, options: { kl: boolean; timestamps: boolean }): void {
  const plan = planExperiment(config, spec, limits, options);
  if (plan.fits) return;
  const alternatives: string[] = [];
  const tryAlt = (what: string, alt: ExperimentSpec, kl = options.kl) => {
    const p = planExperiment(config, alt, limits, { ...options, kl });
    if (p.fits) alternatives.push(`${what} (${formatBytes(p.total)})`);
    return p.fits;
  };
  for (let w = spec.eval.windowLength >> 1; w >= 16; w >>= 1) {
    if (tryAlt(`a window of ${w} tokens`, { ...spec, eval: { ...spec.eval, windowLength: w } })) break;
  }
  const method = spec.method as ExperimentSpec['method'] & { quantizeHead?: boolean; quantizeEmbeddings?: boolean };
  if (method.id === 'none') {
    tryAlt('RTN W8 row with the embeddings and head quantized too', { ...spec, method: { id: 'rtn', bits: 8, groupSize: 'row', symmetric: false, quantizeHead: true, quantizeEmbeddings: true } });
  } else if (!method.quantizeHead || !method.quantizeEmbeddings) {
    tryAlt(`${methodName(spec.method)} with the embeddings and head quantized too`, { ...spec, method: { ...method, quantizeHead: true, quantizeEmbeddings: true } as ExperimentSpec['method'] });
  }
  if (options.kl) tryAlt('the same run without the f32 reference for KL divergence', spec, false);
  throw new Error(
    `${methodName(spec.method)} at a window of ${spec.eval.windowLength} does not fit this GPU: ${plan.problems.join('; ')}. ` +
      (alternatives.length ? `What would fit: ${alternatives.join('; ')}.` : 'Nothing close to it fits: choose a smaller model.'),
  );
}
