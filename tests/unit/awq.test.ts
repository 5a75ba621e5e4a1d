/**
 * AWQ's pure parts (src/core/quant/awq.ts) on random matrices: the scales,
 * the scaled and clipped quantizer against plain float64 arithmetic and
 * against RTN, and the float64 scale search on a 64×256 layer with given
 * activations (outlier channels, as in LLMs).
 */
import { describe, expect, it } from 'vitest';
import { activationMean, alphaGrid, awqScales, clipGrid, fakeQuantDelta, quantizeScaled, referenceClipSearch, referenceDelta, referenceOutputError, referenceScaleSearch } from '../../src/core/quant/awq';
import { dequantize, type QuantScheme } from '../../src/core/quant/format';
import { quantizeRtn } from '../../src/core/quant/rtn';
import { randomF32, rng } from '../helpers/random';

function activations(rows: number, k: number, seed: number): Float32Array {
  const x = randomF32(rows * k, seed);
  const r = rng(seed + 1);
  for (let i = 0; i < 6; i++) {
    const c = Math.floor(r() * k);
    for (let t = 0; t < rows; t++) x[t * k + c] *= 20;
  }
  return x;
}

describe('AWQ scales and grids', () => {
  it('s = s_x^α normalized by √(max·min); α = 0 gives ones', () => {
    const mean = [0.5, 2, 8, 1e-6];
    expect([...awqScales(mean, 0)]).toEqual([1, 1, 1, 1]);
    const s = awqScales(mean, 0.5);
    const raw = mean.map((m) => Math.max(m, 1e-4) ** 0.5);
    const norm = Math.sqrt(Math.max(...raw) * Math.min(...raw));
    raw.forEach((v, i) => expect(s[i]).toBeCloseTo(v / norm, 6));
    expect(alphaGrid(4)).toEqual([0, 0.25, 0.5, 0.75]);
    expect(clipGrid(0.5, 20)).toHaveLength(10);
    expect(clipGrid(0.5, 20)[0]).toBe(1);
    expect(clipGrid(0.5, 20)[9]).toBeCloseTo(0.55, 12);
  });
});

describe('scaled, clipped quantization', () => {
  const schemes: QuantScheme[] = [
    { bits: 3, groupSize: 128, symmetric: false },
    { bits: 4, groupSize: 32, symmetric: true },
    { bits: 2, groupSize: 'row', symmetric: false },
  ];
  for (const scheme of schemes) {
    it(`is RTN without scales or clipping, and its f32 delta follows float64 (W${scheme.bits} ${scheme.groupSize})`, () => {
      const n = 19;
      const k = 256;
      const w = randomF32(n * k, 3, 0.2);
      const plain = quantizeScaled(w, n, k, scheme, null, null);
      const rtn = quantizeRtn(w, n, k, scheme);
      expect(plain.codes).toEqual(rtn.codes);
      expect(plain.scales).toEqual(rtn.scales);
      expect(plain.zeros).toEqual(rtn.zeros);

      const s = awqScales(activationMean(activations(40, k, 4), 40, k), 0.6);
      const groups = k / (scheme.groupSize === 'row' ? k : scheme.groupSize);
      const ratios = new Float32Array(n * groups).map((_, i) => [1, 0.9, 0.75][i % 3]);
      // the packed weights of W·diag(s), divided by s, are W + delta at the same clipping
      const packed = quantizeScaled(w, n, k, scheme, s, ratios);
      const back = dequantize(packed);
      const same = quantizeScaled(w, n, k, scheme, s, new Float32Array(n * groups).fill(0.9));
      const delta = fakeQuantDelta(w, n, k, s, scheme, 0.9);
      const sameBack = dequantize(same);
      for (let i = 0; i < n * k; i++) expect(Math.abs(sameBack[i] / s[i % k] - w[i] - delta[i])).toBeLessThan(1e-6);
      // against float64: codes differ only on rare rounding ties (≤ 1 % of weights)
      const ref = referenceDelta(w, n, k, s, scheme, 0.9);
      let differ = 0;
      for (let i = 0; i < n * k; i++) if (Math.abs(ref[i] - delta[i]) > 1e-5) differ++;
      expect(differ / (n * k)).toBeLessThan(0.01);
      // per-(row, group) ratios reach the packed weights: a clipped group's range shrinks
      expect(back.some((v, i) => v !== sameBack[i])).toBe(true);
    });
  }
});

describe('scale and clipping search (float64 reference)', () => {
  it('on a 64×256 layer beats RTN (α = 0) and clipping lowers each (row, group) error', () => {
    const rows = 64;
    const k = 256;
    const n = 64;
    const scheme: QuantScheme = { bits: 3, groupSize: 128, symmetric: false };
    const x = activations(rows, k, 9);
    const w = randomF32(n * k, 10, 0.1);
    const mean = activationMean(x, rows, k);
    const search = referenceScaleSearch(x, rows, k, [{ w, n }], mean, scheme, alphaGrid(10));
    expect(search.losses).toHaveLength(10);
    expect(search.alpha).toBeGreaterThan(0);
    expect(search.losses[search.best]).toBeLessThan(search.losses[0] * 0.9);
    // the search's loss is the output error of the scaled, quantized layer computed directly
    const s = awqScales(mean, search.alpha);
    const packed = dequantize(quantizeScaled(w, n, k, scheme, s, null));
    const direct = new Float64Array(n * k).map((_, i) => packed[i] / s[i % k] - w[i]);
    expect(Math.abs(referenceOutputError(x, rows, k, direct, n) - search.losses[search.best]) / search.losses[search.best]).toBeLessThan(2e-2);

    const ratios = referenceClipSearch(x, rows, k, w, n, s, scheme, clipGrid());
    expect(ratios.some((r) => r < 1)).toBe(true);
    const clipped = dequantize(quantizeScaled(w, n, k, scheme, s, ratios));
    const clippedDelta = new Float64Array(n * k).map((_, i) => clipped[i] / s[i % k] - w[i]);
    expect(referenceOutputError(x, rows, k, clippedDelta, n)).toBeLessThan(search.losses[search.best]);
  });
});
