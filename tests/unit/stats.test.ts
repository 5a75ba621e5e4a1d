import { describe, expect, test } from 'vitest';
import { accumulate, emptyAccumulator, estimate, formatPerplexity, perplexity, runningPerplexity, windowNll } from '../../src/core/stats';
import { rng } from '../helpers/random';

/** Per-token NLLs of `windows` windows of `n` tokens, seeded. */
function tokenNlls(windows: number, n: number, seed: number): number[][] {
  const r = rng(seed);
  return Array.from({ length: windows }, () => Array.from({ length: n }, () => 1 + 4 * r()));
}

describe('perplexity', () => {
  const nlls = tokenNlls(6, 50, 3);
  const all = nlls.flat();
  const mean = all.reduce((a, b) => a + b, 0) / all.length;
  const sd = Math.sqrt(all.reduce((a, b) => a + (b - mean) ** 2, 0) / (all.length - 1));

  test('exp(mean NLL over scored tokens); SE = sample sd / √N; ppl ± by the delta method', () => {
    const e = perplexity(nlls.map(windowNll));
    expect(e.windows).toBe(6);
    expect(e.tokens).toBe(300);
    expect(e.meanNll).toBeCloseTo(mean, 12);
    expect(e.perplexity).toBeCloseTo(Math.exp(mean), 10);
    expect(e.meanNllSe).toBeCloseTo(sd / Math.sqrt(300), 12);
    expect(e.perplexitySe).toBeCloseTo(Math.exp(mean) * (sd / Math.sqrt(300)), 10);
  });

  test('SE over windows uses the windows’ mean NLLs', () => {
    const means = nlls.map((w) => w.reduce((a, b) => a + b, 0) / w.length);
    const m = means.reduce((a, b) => a + b, 0) / means.length;
    const s = Math.sqrt(means.reduce((a, b) => a + (b - m) ** 2, 0) / (means.length - 1));
    expect(perplexity(nlls.map(windowNll)).meanNllSeByWindow).toBeCloseTo(s / Math.sqrt(6), 12);
  });

  test('windows of different sizes weigh by tokens', () => {
    const e = perplexity([windowNll([1, 1, 1]), windowNll([4])]);
    expect(e.meanNll).toBe(7 / 4);
  });

  test('a known case: constant NLL ln 20 gives 20 ± 0', () => {
    const e = perplexity([windowNll(new Array(10).fill(Math.log(20)))]);
    expect(e.perplexity).toBeCloseTo(20, 12);
    expect(e.perplexitySe).toBeCloseTo(0, 6);
    expect(e.meanNllSeByWindow).toBeNaN();
    expect(formatPerplexity(e)).toBe('20.00 ± 0.00');
  });

  test('running estimate after each window, accumulator untouched', () => {
    const running = runningPerplexity(nlls.map(windowNll));
    expect(running.length).toBe(6);
    expect(running[0].tokens).toBe(50);
    expect(running[5]).toEqual(perplexity(nlls.map(windowNll)));
    const acc = emptyAccumulator();
    const next = accumulate(acc, windowNll([2]));
    expect(acc.tokens).toBe(0);
    expect(estimate(next).perplexity).toBeCloseTo(Math.exp(2), 12);
    expect(estimate(emptyAccumulator()).perplexity).toBeNaN();
  });

  test('non-finite NLL or an empty window is an error', () => {
    expect(() => accumulate(emptyAccumulator(), { nllSum: NaN, nllSquaredSum: 0, scored: 3 })).toThrow(/non-finite logits/);
    expect(() => accumulate(emptyAccumulator(), { nllSum: 0, nllSquaredSum: 0, scored: 0 })).toThrow(/scored nothing/);
  });

  test('format', () => {
    expect(formatPerplexity({ windows: 2, tokens: 9, meanNll: 0, meanNllSe: 0, perplexity: 23.4123, perplexitySe: 0.3071, meanNllSeByWindow: 0 })).toBe('23.41 ± 0.31');
  });
});
