/**
 * Perplexity of a loaded model over evaluation windows (src/core/protocols):
 * one GPU forward per window; the per-position NLLs come back (never the
 * logits) and are summed in float64 (src/core/stats). Progress after every
 * window; cancellation is checked between windows, so a cancel stops within
 * one window.
 */
import type { EvalWindow } from '../core/protocols';
import { accumulate, emptyAccumulator, estimate, type PerplexityEstimate } from '../core/stats';
import type { DecoderExecutor } from '../gpu/model';

export interface PerplexityProgress {
  window: number;
  windows: number;
  /** running estimate over the windows done so far */
  estimate: PerplexityEstimate;
  elapsedSeconds: number;
}

export interface PerplexityMeasurement extends PerplexityEstimate {
  nllSum: number;
  /** per-window NLL sums and scored counts, in window order */
  windowNll: number[];
  windowCount: number[];
  seconds: number;
  /** tokens pushed through the model per second (all positions, scored or not), wall clock */
  tokensPerSecond: number;
  /** the same over GPU time from timestamp queries; null where the adapter has none */
  gpuTokensPerSecond: number | null;
}

export interface PerplexityOptions {
  signal?: AbortSignal;
  onProgress?: (p: PerplexityProgress) => void;
  /** sees each window's per-position NLL and argmax (KL divergence, top-1 agreement) */
  onWindow?: (window: EvalWindow, nll: Float32Array, argmax: Uint32Array) => void;
}

export async function measurePerplexity(model: DecoderExecutor, windows: Iterable<EvalWindow>, total: number, options: PerplexityOptions = {}): Promise<PerplexityMeasurement> {
  const start = performance.now();
  let acc = emptyAccumulator();
  let tokens = 0;
  const windowNll: number[] = [];
  const windowCount: number[] = [];
  let done = 0;
  let gpuSeconds: number | null = 0;
  for (const window of windows) {
    options.signal?.throwIfAborted();
    const { nll, argmax, gpuSeconds: gpu } = await model.forward(window.inputIds, window.targets);
    gpuSeconds = gpu === null || gpuSeconds === null ? null : gpuSeconds + gpu;
    let nllSum = 0;
    let nllSquaredSum = 0;
    let scored = 0;
    for (let j = 0; j < window.targets.length; j++) {
      if (window.targets[j] < 0) continue;
      const v = nll[j];
      if (!Number.isFinite(v)) {
        throw new Error(`window ${window.index + 1}: the loss at position ${j} is ${v}: the model's numbers overflowed, so this run has no perplexity`);
      }
      nllSum += v;
      nllSquaredSum += v * v;
      scored++;
    }
    acc = accumulate(acc, { nllSum, nllSquaredSum, scored });
    tokens += window.inputIds.length;
    windowNll.push(nllSum);
    windowCount.push(scored);
    options.onWindow?.(window, nll, argmax);
    done++;
    options.onProgress?.({ window: done, windows: total, estimate: estimate(acc), elapsedSeconds: (performance.now() - start) / 1000 });
  }
  const seconds = (performance.now() - start) / 1000;
  return {
    ...estimate(acc),
    nllSum: acc.nllSum,
    windowNll,
    windowCount,
    seconds,
    tokensPerSecond: tokens / seconds,
    gpuTokensPerSecond: gpuSeconds ? tokens / gpuSeconds : null,
  };
}
