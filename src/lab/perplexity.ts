/**
 * Perplexity of a loaded model over evaluation windows (src/core/protocols):
 * one GPU forward per window; the per-position NLLs come back (never the
 * logits) and are summed in float64 (src/core/stats). Progress after every
 * window; cancellation is checked between windows, so a cancel stops within
 * one window.
 *
 * With a reference model (the unquantized one), each window runs through it
 * first, keeping its log-probs on the GPU; the measured forward then scores
 * KL(P_reference ‖ P_model) and top-1 agreement per position on the GPU, and
 * only those come back.
 */
import type { EvalWindow } from '../core/protocols';
import { accumulate, emptyAccumulator, estimate, type PerplexityEstimate } from '../core/stats';
import type { DecoderExecutor, ReferenceLogProbs } from '../gpu/model';
import { NumericalFaultError } from './faults';

export interface PerplexityProgress {
  window: number;
  windows: number;
  /** running estimate over the windows done so far */
  estimate: PerplexityEstimate;
  /** running mean KL divergence against the reference model, when there is one */
  klDivergence?: number;
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
  /** against the reference model, over the same scored positions; absent without one */
  comparison?: ComparisonMeasurement;
}

export interface ComparisonMeasurement {
  /** mean KL(P_reference ‖ P_model) per scored position, nats */
  klDivergence: number;
  /** its standard error over positions */
  klStdError: number;
  /** fraction of scored positions where both models' most likely token is the same */
  top1Agreement: number;
  positions: number;
  /** seconds spent in the reference model's forwards (not in tokensPerSecond) */
  referenceSeconds: number;
}

export interface PerplexityOptions {
  signal?: AbortSignal;
  onProgress?: (p: PerplexityProgress) => void;
  /** sees each window's per-position NLL and argmax (KL divergence, top-1 agreement) */
  onWindow?: (window: EvalWindow, nll: Float32Array, argmax: Uint32Array) => void;
  /**
   * The unquantized model, loaded with the same maxRows (and head chunk) on the
   * same device: KL divergence and top-1 agreement against it.
   */
  reference?: DecoderExecutor;
}

export async function measurePerplexity(model: DecoderExecutor, windows: Iterable<EvalWindow>, total: number, options: PerplexityOptions = {}): Promise<PerplexityMeasurement> {
  const start = performance.now();
  let acc = emptyAccumulator();
  let tokens = 0;
  const windowNll: number[] = [];
  const windowCount: number[] = [];
  let done = 0;
  let gpuSeconds: number | null = 0;
  let referenceSeconds = 0;
  const kl = { sum: 0, squaredSum: 0, agree: 0, positions: 0 };
  let store: ReferenceLogProbs | null = null;
  try {
    for (const window of windows) {
      options.signal?.throwIfAborted();
      if (options.reference) {
        store ??= options.reference.createReferenceLogProbs();
        const t = performance.now();
        await options.reference.forward(window.inputIds, window.targets, 0, { keepLogProbs: store });
        referenceSeconds += (performance.now() - t) / 1000;
      }
      const score = await model.forward(window.inputIds, window.targets, 0, store ? { compareWith: store } : undefined);
      const { nll, argmax, gpuSeconds: gpu } = score;
      gpuSeconds = gpu === null || gpuSeconds === null ? null : gpuSeconds + gpu;
      let nllSum = 0;
      let nllSquaredSum = 0;
      let scored = 0;
      for (let j = 0; j < window.targets.length; j++) {
        if (window.targets[j] < 0) continue;
        const v = nll[j];
        if (!Number.isFinite(v)) {
          throw new NumericalFaultError(`window ${window.index + 1}: the loss at position ${j} is ${v}: the model's numbers overflowed, so this run has no perplexity`, 'nll', window, j, v, windowNll.slice(), total);
        }
        nllSum += v;
        nllSquaredSum += v * v;
        scored++;
        if (score.kl && score.agree) {
          const d = score.kl[j];
          if (!Number.isFinite(d)) throw new NumericalFaultError(`window ${window.index + 1}: the KL divergence at position ${j} is ${d}: the model's numbers overflowed`, 'kl', window, j, d, windowNll.slice(), total);
          kl.sum += d;
          kl.squaredSum += d * d;
          kl.agree += score.agree[j];
          kl.positions++;
        }
      }
      acc = accumulate(acc, { nllSum, nllSquaredSum, scored });
      tokens += window.inputIds.length;
      windowNll.push(nllSum);
      windowCount.push(scored);
      options.onWindow?.(window, nll, argmax);
      done++;
      options.onProgress?.({ window: done, windows: total, estimate: estimate(acc), ...(kl.positions ? { klDivergence: kl.sum / kl.positions } : {}), elapsedSeconds: (performance.now() - start) / 1000 });
    }
  } finally {
    store?.destroy();
  }
  const seconds = (performance.now() - start) / 1000;
  // the model's own speed: the reference's forwards are not part of it
  const modelSeconds = seconds - referenceSeconds;
  return {
    ...estimate(acc),
    nllSum: acc.nllSum,
    windowNll,
    windowCount,
    seconds,
    tokensPerSecond: tokens / modelSeconds,
    gpuTokensPerSecond: gpuSeconds ? tokens / gpuSeconds : null,
    ...(options.reference ? { comparison: summarizeComparison(kl, referenceSeconds) } : {}),
  };
}

function summarizeComparison(kl: { sum: number; squaredSum: number; agree: number; positions: number }, referenceSeconds: number): ComparisonMeasurement {
  const n = kl.positions;
  const mean = n ? kl.sum / n : NaN;
  // rounding can leave the variance slightly negative
  const stdError = n > 1 ? Math.sqrt(Math.max(0, kl.squaredSum / n - mean * mean) / (n - 1)) : NaN;
  return { klDivergence: mean, klStdError: stdError, top1Agreement: n ? kl.agree / n : NaN, positions: n, referenceSeconds };
}
