/**
 * Perplexity and its uncertainty from per-window NLL sums.
 *
 * For N scored tokens with negative log-likelihoods x₁…x_N (natural log):
 *   mean NLL      m  = Σx / N
 *   perplexity    P  = exp(m)
 *   SE of m       se = sqrt((Σx²/N − m²) / (N − 1))      (= sample sd / √N)
 *   SE of P       P·se                                   (delta method)
 * exactly as llama.cpp's perplexity tool prints "PPL = P +/- P·se". Tokens of a
 * window are correlated, so this per-token SE is optimistic; the SE over the
 * windows' mean NLLs is reported beside it (needs ≥ 2 windows).
 *
 * Everything is a pure function of an accumulator, so a run can print a
 * running estimate after every window, as llama.cpp does.
 */

/** What the GPU reduction returns for one window. */
export interface WindowNll {
  /** Σ NLL over the window's scored tokens */
  nllSum: number;
  /** Σ NLL² over the window's scored tokens */
  nllSquaredSum: number;
  /** number of scored tokens */
  scored: number;
}

export interface NllAccumulator {
  windows: number;
  tokens: number;
  nllSum: number;
  nllSquaredSum: number;
  /** Σ and Σ² of the windows' mean NLLs */
  windowMeanSum: number;
  windowMeanSquaredSum: number;
}

export interface PerplexityEstimate {
  windows: number;
  tokens: number;
  meanNll: number;
  /** standard error of the mean NLL over tokens (llama.cpp's); NaN below 2 tokens */
  meanNllSe: number;
  perplexity: number;
  /** perplexity · meanNllSe */
  perplexitySe: number;
  /** standard error of the mean NLL over windows; NaN below 2 windows */
  meanNllSeByWindow: number;
}

/** Σ and Σ² of per-token NLLs (CPU reference for the GPU reduction). */
export function windowNll(tokenNlls: ArrayLike<number>): WindowNll {
  let nllSum = 0;
  let nllSquaredSum = 0;
  for (let i = 0; i < tokenNlls.length; i++) {
    nllSum += tokenNlls[i];
    nllSquaredSum += tokenNlls[i] * tokenNlls[i];
  }
  return { nllSum, nllSquaredSum, scored: tokenNlls.length };
}

export function emptyAccumulator(): NllAccumulator {
  return { windows: 0, tokens: 0, nllSum: 0, nllSquaredSum: 0, windowMeanSum: 0, windowMeanSquaredSum: 0 };
}

/** The accumulator with one more window (a new object; the argument is unchanged). */
export function accumulate(acc: NllAccumulator, window: WindowNll): NllAccumulator {
  if (!(window.scored > 0) || !Number.isFinite(window.nllSum) || !Number.isFinite(window.nllSquaredSum)) {
    throw new Error(
      `a window's NLL is ${window.nllSum} over ${window.scored} tokens: the model produced non-finite logits ` +
        `(a broken kernel or a quantization that destroyed the model) or the window scored nothing.`,
    );
  }
  const mean = window.nllSum / window.scored;
  return {
    windows: acc.windows + 1,
    tokens: acc.tokens + window.scored,
    nllSum: acc.nllSum + window.nllSum,
    nllSquaredSum: acc.nllSquaredSum + window.nllSquaredSum,
    windowMeanSum: acc.windowMeanSum + mean,
    windowMeanSquaredSum: acc.windowMeanSquaredSum + mean * mean,
  };
}

/** Standard error of a mean from Σx, Σx², n: sqrt((Σx²/n − m²)/(n−1)). */
function standardError(sum: number, squaredSum: number, n: number): number {
  if (n < 2) return NaN;
  const mean = sum / n;
  const variance = Math.max(0, squaredSum / n - mean * mean); // rounding can make it slightly negative
  return Math.sqrt(variance / (n - 1));
}

export function estimate(acc: NllAccumulator): PerplexityEstimate {
  if (acc.tokens === 0) {
    return { windows: 0, tokens: 0, meanNll: NaN, meanNllSe: NaN, perplexity: NaN, perplexitySe: NaN, meanNllSeByWindow: NaN };
  }
  const meanNll = acc.nllSum / acc.tokens;
  const meanNllSe = standardError(acc.nllSum, acc.nllSquaredSum, acc.tokens);
  const perplexity = Math.exp(meanNll);
  return {
    windows: acc.windows,
    tokens: acc.tokens,
    meanNll,
    meanNllSe,
    perplexity,
    perplexitySe: perplexity * meanNllSe,
    meanNllSeByWindow: standardError(acc.windowMeanSum, acc.windowMeanSquaredSum, acc.windows),
  };
}

/** Perplexity over a list of windows. */
export function perplexity(windows: Iterable<WindowNll>): PerplexityEstimate {
  let acc = emptyAccumulator();
  for (const w of windows) acc = accumulate(acc, w);
  return estimate(acc);
}

/** The running estimates after each window: [P₁, P₁₂, P₁₂₃, …] (llama.cpp prints these as it goes). */
export function runningPerplexity(windows: Iterable<WindowNll>): PerplexityEstimate[] {
  const out: PerplexityEstimate[] = [];
  let acc = emptyAccumulator();
  for (const w of windows) {
    acc = accumulate(acc, w);
    out.push(estimate(acc));
  }
  return out;
}

/** "23.41 ± 0.31" (the ± omitted when unknown). */
export function formatPerplexity(e: PerplexityEstimate, digits = 2): string {
  const p = e.perplexity.toFixed(digits);
  return Number.isFinite(e.perplexitySe) ? `${p} ± ${e.perplexitySe.toFixed(digits)}` : p;
}
