/**
 * Calibration for AWQ and GPTQ: samples of the calibration text
 * (public/data/calibration.txt — never WikiText, which stays evaluation only)
 * pushed through the model on the GPU block by block, so that what a method
 * sees of a linear layer's input comes from the blocks before it *as already
 * quantized* (the sequential protocol of GPTQ's and AWQ's implementations).
 *
 *   samples: n windows of L tokens, evenly spaced over the tokenized text
 *            (they overlap only when the text is shorter than n·L tokens)
 *   state:   one GPU buffer [L, hidden] per sample, the residual stream
 *            entering the current block; memory stays at n·L·hidden floats
 *            plus one block's scratch, whatever the depth of the model
 *
 * Per block, a method runs `pass()` with a hook that sees each group's input
 * (q/k/v, o, gate/up, down) one sample at a time and accumulates what it needs
 * on the GPU (mean |x| and a strided subsample of rows for AWQ, XᵀX for GPTQ),
 * replaces the block's linears with quantized ones, then `advance()`s the
 * state through the quantized block.
 */
import type { DecoderConfig } from '../../core/decoder';
import { CalibrationKernels } from '../../gpu/calibration';
import { MemoryLedger } from '../../gpu/ledger';
import { F32Linear } from '../../gpu/linear';
import { DecoderExecutor, type BlockHook, type LinearSite, type TensorReader } from '../../gpu/model';
import { readF32 } from '../../gpu/readback';

export interface CalibrationParams {
  /** number of samples n */
  samples: number;
  /** tokens per sample L */
  length: number;
}

/**
 * Defaults sized for the model: the embedded models (a few million
 * parameters, 512 positions) take 32 × 256 tokens; larger models AWQ's usual
 * 128 × 512 (bounded by the model's context).
 */
export function defaultCalibration(config: DecoderConfig): CalibrationParams {
  const small = config.hiddenSize * config.numLayers <= 4096;
  return small ? { samples: 32, length: Math.min(256, config.maxPositions) } : { samples: 128, length: Math.min(512, config.maxPositions) };
}

/** n windows of L tokens evenly spaced over `tokens` (the first at 0, the last ending at the end). */
export function calibrationWindows(tokens: ArrayLike<number>, params: CalibrationParams): Int32Array[] {
  const { samples, length } = params;
  if (!(Number.isInteger(samples) && samples >= 1 && Number.isInteger(length) && length >= 2)) {
    throw new Error(`calibration of ${samples} samples × ${length} tokens: give at least 1 sample of at least 2 tokens`);
  }
  if (tokens.length < length) {
    throw new Error(`the calibration text has ${tokens.length} tokens, fewer than one sample of ${length}: choose shorter samples`);
  }
  const span = tokens.length - length;
  return Array.from({ length: samples }, (_, i) => {
    const start = samples === 1 ? 0 : Math.round((i * span) / (samples - 1));
    return Int32Array.from({ length }, (_, j) => tokens[start + j]);
  });
}

/** What a collecting pass gathered for one site. */
export interface SiteCapture {
  /** K of the site's input */
  k: number;
  /** mean |x| per input channel over every calibration token */
  actMean: Float32Array;
  /** a strided subsample of the input rows [rows, K] on the GPU */
  x: GPUBuffer;
  rows: number;
}

export class CalibrationRun {
  readonly kernels: CalibrationKernels;
  private readonly states: GPUBuffer[] = [];

  private constructor(
    readonly ledger: MemoryLedger,
    readonly executor: DecoderExecutor,
    readonly samples: Int32Array[],
    private readonly signal: AbortSignal | undefined,
  ) {
    this.kernels = new CalibrationKernels(ledger.device);
  }

  /** Loads the float model on the GPU (its own ledger) and embeds every sample. */
  static async open(device: GPUDevice, config: DecoderConfig, read: TensorReader, tokens: number[] | undefined, params: CalibrationParams, signal?: AbortSignal): Promise<CalibrationRun> {
    if (!tokens) throw new Error('calibrated methods need the calibration text (public/data/calibration.txt) tokenized: pass RunOptions.calibrationText');
    const samples = calibrationWindows(tokens, params);
    const ledger = new MemoryLedger(device);
    const executor = await DecoderExecutor.load(device, ledger, config, read, {
      maxRows: params.length,
      signal,
      linear: (name, w, n, k, bias, shared) => new F32Linear(ledger, shared ?? w, n, k, { bias: bias ?? undefined, label: `${name} (calibration)` }),
    });
    const run = new CalibrationRun(ledger, executor, samples, signal);
    try {
      const bytes = params.length * config.hiddenSize * 4;
      for (let i = 0; i < samples.length; i++) {
        const state = ledger.createBuffer('activations', bytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, `calibration state ${i}`);
        run.states.push(state);
        executor.embedInto(samples[i], state, 0);
      }
      await device.queue.onSubmittedWorkDone();
    } catch (error) {
      run.destroy();
      throw error;
    }
    return run;
  }

  get tokens(): number {
    return this.samples.length * this.samples[0].length;
  }

  /** Runs block `index` over every sample with `hook`; the state moves on only when `writeBack`. */
  async pass(index: number, hook: BlockHook | undefined, writeBack: boolean): Promise<void> {
    const L = this.samples[0].length;
    for (let i = 0; i < this.states.length; i++) {
      this.signal?.throwIfAborted();
      this.executor.runBlock(index, this.states[i], 0, L, hook, writeBack);
      // bound the queue (and the uniforms waiting to be freed) every few samples
      if (i % 8 === 7) {
        await this.executor.device.queue.onSubmittedWorkDone();
        this.kernels.releaseUniforms();
      }
    }
    await this.executor.device.queue.onSubmittedWorkDone();
    this.kernels.releaseUniforms();
  }

  /** Moves every sample's state through block `index` as it now is (quantized). */
  advance(index: number): Promise<void> {
    return this.pass(index, undefined, true);
  }

  /**
   * One pass over block `index` collecting, for each of `sites`, the mean |x|
   * per channel over all tokens and about `rows` input rows (the same strided
   * positions of every sample, skipping position 0). The caller releases `x`.
   */
  async collect(index: number, sites: LinearSite[], rows: number): Promise<Map<LinearSite, SiteCapture>> {
    const c = this.executor.config;
    const L = this.samples[0].length;
    const n = this.samples.length;
    const perSample = Math.max(1, Math.min(L, Math.round(rows / n)));
    const stride = Math.max(1, Math.floor(L / perSample));
    const first = Math.min(L - 1 - (perSample - 1) * stride, Math.floor(stride / 2)) | 0;
    const width = (site: LinearSite) => (site === 'down-in' ? c.intermediateSize : site === 'o-in' ? c.numHeads * c.headDim : c.hiddenSize);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const stats = new Map<LinearSite, { stat: GPUBuffer; x: GPUBuffer; k: number }>();
    for (const site of sites) {
      const k = width(site);
      const stat = this.ledger.createBuffer('scratch', k * 4, usage, `calibration |x| ${site}`);
      const x = this.ledger.createBuffer('scratch', n * perSample * k * 4, usage, `calibration rows ${site}`);
      stats.set(site, { stat, x, k });
    }
    let sample = 0;
    const hook: BlockHook = (site, buffer, rowsIn, encoder) => {
      const s = stats.get(site);
      if (!s) return;
      this.kernels.absSum(encoder, buffer, rowsIn, s.k, s.stat);
      this.kernels.gatherRows(encoder, buffer, rowsIn, s.k, first, stride, perSample, s.x, sample * perSample);
    };
    for (const s of stats.values()) this.ledger.device.queue.writeBuffer(s.stat, 0, new Float32Array(s.k));
    for (sample = 0; sample < n; sample++) {
      this.signal?.throwIfAborted();
      this.executor.runBlock(index, this.states[sample], 0, L, hook, false);
      if (sample % 8 === 7) {
        await this.executor.device.queue.onSubmittedWorkDone();
        this.kernels.releaseUniforms();
      }
    }
    const out = new Map<LinearSite, SiteCapture>();
    for (const [site, s] of stats) {
      const sum = await readF32(this.ledger.device, s.stat, s.k);
      this.ledger.release(s.stat);
      out.set(site, { k: s.k, actMean: sum.map((v) => v / (n * L)), x: s.x, rows: n * perSample });
    }
    this.kernels.releaseUniforms();
    return out;
  }

  destroy(): void {
    this.executor.destroy();
    this.ledger.releaseAll();
    this.kernels.releaseUniforms();
  }
}
