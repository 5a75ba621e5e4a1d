/**
 * One experiment, start to end: load the model, prepare the method's weights,
 * upload (quantizing on load), measure perplexity under the spec's protocol,
 * measure decode speed, free the GPU, and return a Result. A quantized run
 * also loads the f32 model beside it and measures KL divergence and top-1
 * agreement against it on the same windows (RunOptions.kl). Progress for each
 * stage; an AbortSignal cancels within one layer or window.
 */
import { methodName, type ExperimentSpec, type Result, type RunMetrics } from '../core/experiment';
import { canonicalTensors, type DecoderConfig } from '../core/decoder';
import { evalWindows, summarizeProtocol } from '../core/protocols';
import { packedBytes } from '../core/quant/format';
import type { AdapterReport } from '../gpu/device';
import { MemoryLedger } from '../gpu/ledger';
import { F32Linear } from '../gpu/linear';
import { DecoderExecutor, type TensorReader } from '../gpu/model';
import { QuantLinear } from '../gpu/qlinear';
import { loadModel, type LoadedModel, type ModelSource } from './load';
import type { MethodInput, PreparedWeights } from './methods/method';
import { rtn } from './methods/rtn';
import { awq } from './methods/awq';
import { gptq } from './methods/gptq';
import { hqq } from './methods/hqq';
import { mixllm } from './methods/mixllm';
import { smoothquant } from './methods/smoothquant';
import { atom } from './methods/atom';
import { measurePerplexity } from './perplexity';
import { cleanModelRef } from '../core/share';
import { checkRunFits, DeviceLostError, deviceLostResult, locateNumericalFault, NumericalFaultError, numericalFaultResult, partialFrom, watchDevice, withGpuErrorScopes } from './faults';

export interface RunProgress {
  stage: 'load' | 'quantize' | 'evaluate' | 'speed';
  done: number;
  total: number;
  detail?: string;
  /** evaluation stage: the running perplexity over the windows done so far */
  perplexity?: number;
}

export interface RunOptions {
  device: GPUDevice;
  adapter: AdapterReport;
  source: ModelSource;
  /** WikiText-2 test text (public/data) */
  text: string;
  /** calibration text (public/data/calibration.txt) for methods that collect activation statistics */
  calibrationText?: string;
  signal?: AbortSignal;
  onProgress?: (p: RunProgress) => void;
  /** tokens of `text` under this model's tokenizer, when the caller has them cached */
  tokens?: number[];
  /** decode steps timed for decodeTokensPerSecond (0 skips) */
  decodeSteps?: number;
  /** the ledger to allocate through (the caller's, to watch memory); a fresh one by default */
  ledger?: MemoryLedger;
  /**
   * Compare a quantized run with the f32 model on the same windows (KL
   * divergence, top-1 agreement), loading a second, f32 copy of the weights on
   * the GPU. Default: on for quantized runs where that copy is small
   * (klByDefault), off for the baseline. The copy is
   * allocated through a ledger of its own, so the run's memory metrics are
   * the quantized model's alone.
   */
  kl?: boolean;
}

/** f32 weights up to this size get a reference copy for KL divergence by default. */
export const KL_DEFAULT_MAX_BYTES = 512 * 2 ** 20;

/** Whether a run compares with the f32 model when RunOptions.kl is not given: when its f32 weights and kept log-probs are small. */
export function klByDefault(config: DecoderConfig, windowLength: number): boolean {
  const weights = canonicalTensors(config).reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1) * 4, 0);
  return weights + windowLength * config.vocabSize * 4 <= KL_DEFAULT_MAX_BYTES;
}

/** A TensorReader over a loaded model: null for tensors the file does not have. */
export function tensorReader(model: LoadedModel): TensorReader {
  const names = new Set(model.tensors.map((t) => t.canonical));
  return async (name) => (names.has(name) ? model.getTensor(name) : null);
}

/** The method input of AWQ, GPTQ and HQQ: the calibration text tokenized, progress per layer as the 'quantize' stage. */
function calibrated<P>(params: P, model: LoadedModel, options: RunOptions): MethodInput<P> {
  return {
    config: model.config, read: tensorReader(model), params, device: options.device, signal: options.signal,
    calibrationTokens: options.calibrationText === undefined ? undefined : model.tokenizer?.encode(options.calibrationText),
    onProgress: (p) => options.onProgress?.({ stage: 'quantize', done: p.done, total: p.total, detail: p.item ?? p.stage }),
  };
}

async function prepare(spec: ExperimentSpec, model: LoadedModel, options: RunOptions): Promise<PreparedWeights> {
  const read = tensorReader(model);
  const m = spec.method;
  switch (m.id) {
    case 'none':
      return { read, quantize: () => null, report: {} };
    case 'rtn':
      return rtn.prepare({ config: model.config, read, params: m, device: options.device, signal: options.signal });
    case 'awq':
      return awq.prepare(calibrated(m, model, options));
    case 'gptq':
      return gptq.prepare(calibrated(m, model, options));
    case 'hqq':
      return hqq.prepare({ ...calibrated(m, model, { ...options, calibrationText: undefined }) });
    case 'mixllm':
      return mixllm.prepare(calibrated(m, model, options));
    case 'smoothquant':
      return smoothquant.prepare(calibrated(m, model, options));
    case 'atom':
      return atom.prepare(calibrated(m, model, options));
  }
}

/**
 * Runs one experiment. Ends with a Result also when the GPU device is lost
 * (status 'interrupted', with its partial progress) or the loss becomes NaN
 * or infinite (status 'failed', with `numericalFault`); a GPU allocation or
 * validation error ends it with a message (src/lab/faults.ts). Every buffer
 * goes back through the ledger in all cases.
 */
export async function runExperiment(spec: ExperimentSpec, options: RunOptions): Promise<Result> {
  spec = { ...spec, model: cleanModelRef(spec.model) }; // a token spread into the reference never reaches the Result
  const { device } = options;
  const watch = watchDevice(device);
  let last: RunProgress | null = null;
  const onProgress = (p: RunProgress): void => {
    // the engine's next tensor, window or step after a loss stops the run
    if (watch.info) throw new DeviceLostError();
    last = p;
    options.onProgress?.(p);
  };
  const lostResult = (info: GPUDeviceLostInfo) => deviceLostResult(spec, options.adapter, info, partialFrom(last, spec.eval.windows), {});
  if (watch.info) return lostResult(watch.info);
  try {
    return await withGpuErrorScopes(device, `the run of ${methodName(spec.method)}`, () => runExperimentOnce(spec, { ...options, onProgress }));
  } catch (err) {
    const lost = await watch.settled();
    if (lost) return lostResult(lost);
    if (err instanceof NumericalFaultError) return numericalFaultResult(spec, options.adapter, err, options.tokens?.length ?? 0, {});
    throw err;
  }
}

async function runExperimentOnce(spec: ExperimentSpec, options: RunOptions): Promise<Result> {
  const { device, signal } = options;
  const timing: Record<string, number> = {};
  let t0 = performance.now();
  const lap = (stage: string) => {
    const now = performance.now();
    timing[stage] = (timing[stage] ?? 0) + (now - t0) / 1000;
    t0 = now;
  };
  const model = await loadModel(options.source);
  if (!model.tokenizer) throw new Error(`${model.name} has no tokenizer.json: the lab needs it to tokenize WikiText-2`);
  const tokens = options.tokens ?? model.tokenizer.encode(options.text);
  const c = model.config;
  const windowLength = spec.eval.windowLength;
  if (windowLength > c.maxPositions) {
    throw new Error(`a window of ${windowLength} tokens is longer than ${model.name}'s context of ${c.maxPositions}: choose ${c.maxPositions} or less`);
  }
  // refused before anything is prepared or allocated, saying what would fit
  checkRunFits(c, spec, device.limits, { kl: options.kl ?? ((spec.method.id !== 'none' || spec.kv !== undefined) && klByDefault(c, windowLength)), timestamps: device.features.has('timestamp-query') });
  const protocol = summarizeProtocol(spec.eval.protocol, tokens.length, windowLength, spec.eval.windows ?? undefined);
  lap('tokenize');

  const prepared = await prepare(spec, model, options);
  lap('prepare');
  // a method's own stages (calibrate, search, pack, ...), as it timed them inside prepare
  const methodSeconds = prepared.report.seconds;
  if (methodSeconds && typeof methodSeconds === 'object') {
    for (const [stage, t] of Object.entries(methodSeconds)) if (typeof t === 'number') timing[`prepare: ${stage}`] = t;
  }
  const ledger = options.ledger ?? new MemoryLedger(device);
  let quantizedParams = 0;
  let quantizedBits = 0;
  let totalParams = 0;
  let embeddingCounted = false;
  const kernels = new Set<string>();
  let executor: DecoderExecutor | null = null;
  let reference: DecoderExecutor | null = null;
  const referenceLedger = new MemoryLedger(device);
  // the baseline compares with itself only when asked (a check that KL is 0 there)
  const compare = options.kl ?? ((spec.method.id !== 'none' || spec.kv !== undefined) && klByDefault(c, windowLength));
  try {
    executor = await DecoderExecutor.load(device, ledger, c, prepared.read, {
      maxRows: windowLength,
      signal,
      onLoad: (done, total) => options.onProgress?.({ stage: 'load', done, total }),
      quantizeEmbedding: (w, n, k) => {
        const packed = prepared.quantize('embed.tokens', w, n, k);
        if (packed) {
          quantizedParams += n * k;
          quantizedBits += packedBytes(packed) * 8;
          totalParams += n * k;
          embeddingCounted = true;
        }
        return packed;
      },
      tiedHead: (table) => new QuantLinear(ledger, table, { label: 'head (tied to embed.tokens)' }),
      kvCache: spec.kv ?? null,
      linear: (name, w, n, k, bias, shared) => {
        totalParams += n * k;
        // methods with a layer format of their own (SmoothQuant W8A8, Atom W4A4) build it themselves
        const own = prepared.layer?.(ledger, name, w, n, k, bias);
        if (own) {
          quantizedParams += n * k;
          quantizedBits += own.packedBytes * 8;
          return own.layer;
        }
        const packed = prepared.quantize(name, w, n, k);
        if (!packed) return new F32Linear(ledger, shared ?? w, n, k, { bias: bias ?? undefined, label: name });
        quantizedParams += n * k;
        quantizedBits += packedBytes(packed) * 8;
        return new QuantLinear(ledger, packed, { bias: bias ?? undefined, label: name });
      },
    });
    lap('load+quantize');
    if (compare) {
      const read = tensorReader(model);
      reference = await DecoderExecutor.load(device, referenceLedger, c, read, {
        maxRows: windowLength,
        signal,
        onLoad: (done, total) => options.onProgress?.({ stage: 'load', done, total, detail: 'f32 reference' }),
        linear: (name, w, n, k, bias, shared) => new F32Linear(referenceLedger, shared ?? w, n, k, { bias: bias ?? undefined, label: `${name} (f32 reference)` }),
      });
      lap('load reference');
    }
    for (const v of executor.variants()) kernels.add(v);
    ledger.resetPeak();

    const windows = evalWindows(spec.eval.protocol, tokens, {
      windowLength,
      limit: spec.eval.windows ?? undefined,
      bosTokenId: model.tokenizer.bosTokenId ?? c.bosTokenId,
      vocabSize: c.vocabSize,
    });
    const ppl = await measurePerplexity(executor, windows, protocol.windows, {
      signal,
      reference: reference ?? undefined,
      onProgress: (p) => options.onProgress?.({
        stage: 'evaluate', done: p.window, total: p.windows,
        perplexity: p.estimate.perplexity,
        detail: `ppl ${p.estimate.perplexity.toFixed(2)}${p.klDivergence === undefined ? '' : ` kl ${p.klDivergence.toFixed(4)}`}`,
      }),
    }).catch((e: unknown) => locateNumericalFault(e, executor!)); // a NaN loss: name the layer while the model is loaded
    // free the reference before the decode timing, which does not need it
    reference?.destroy();
    reference = null;
    lap('evaluate');

    const decode = await measureDecode(executor, tokens, options.decodeSteps ?? 32, signal);
    lap('decode');
    const snap = ledger.snapshot();
    const metrics: RunMetrics = {
      perplexity: ppl.perplexity,
      perplexitySe: ppl.perplexitySe,
      meanNll: ppl.meanNll,
      meanNllSe: ppl.meanNllSe,
      meanNllSeByWindow: ppl.meanNllSeByWindow,
      nllSum: ppl.nllSum,
      bitsPerWeight: quantizedParams ? quantizedBits / quantizedParams : 32,
      weightBytes: snap.current.weights,
      peakBytes: snap.peakTotal,
      peakByCategory: snap.peak,
      quantizedParams,
      // the f32 embedding table of an untied model went through neither factory
      totalParams: totalParams + (embeddingCounted || c.tiedEmbeddings ? 0 : c.vocabSize * c.hiddenSize),
      prefillTokensPerSecond: ppl.tokensPerSecond,
      decodeTokensPerSecond: decode.wall,
      prefillGpuTokensPerSecond: ppl.gpuTokensPerSecond,
      decodeGpuTokensPerSecond: decode.gpu,
      kvBytesPerToken: executor.kvBytesPerToken(),
      kvContext: windowLength,
      kvBits: spec.kv?.bits ?? 32,
      activationBits: prepared.activationBits ?? 32,
      ...(ppl.comparison ? { klDivergence: ppl.comparison.klDivergence, klStdError: ppl.comparison.klStdError, top1Agreement: ppl.comparison.top1Agreement } : {}),
    };
    return {
      id: `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
      spec,
      status: 'done',
      createdAt: new Date().toISOString(),
      device: { vendor: options.adapter.vendor, architecture: options.adapter.architecture, description: options.adapter.description, features: options.adapter.features },
      protocol,
      metrics,
      timing,
      kernels: [...kernels],
      windowNll: ppl.windowNll,
      methodReport: prepared.report,
    };
  } finally {
    executor?.destroy();
    reference?.destroy();
    ledger.releaseAll();
    referenceLedger.releaseAll();
  }
}

/** Single-token decode steps against the KV cache after a short prefill; steps per second (wall and GPU). */
async function measureDecode(executor: DecoderExecutor, tokens: number[], steps: number, signal?: AbortSignal): Promise<{ wall: number; gpu: number | null }> {
  const none0 = { wall: 0, gpu: null };
  if (steps <= 0) return none0;
  const prefill = Math.min(16, executor.maxRows - steps - 1);
  if (prefill < 1) return none0;
  const ids = Int32Array.from(tokens.slice(0, prefill + steps));
  const none = (n: number) => new Int32Array(n).fill(-1);
  await executor.forward(ids.slice(0, prefill), none(prefill), 0);
  await executor.forward(ids.slice(prefill, prefill + 1), none(1), prefill); // warm-up of the decode pipelines
  const start = performance.now();
  let gpu: number | null = 0;
  for (let i = 1; i < steps; i++) {
    signal?.throwIfAborted();
    const step = await executor.forward(ids.slice(prefill + i, prefill + i + 1), none(1), prefill + i);
    gpu = step.gpuSeconds === null || gpu === null ? null : gpu + step.gpuSeconds;
  }
  return { wall: (steps - 1) / ((performance.now() - start) / 1000), gpu: gpu ? (steps - 1) / gpu : null };
}
