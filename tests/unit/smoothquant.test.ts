import { describe, expect, it } from 'vitest';
import { int8At, int8DotRef, int8RescaleRef, quantizeInt8Rows, scaleColumns, smoothingFactors, weightChannelMax } from '../../src/core/quant/smoothquant';
import { randomF32 } from '../helpers/random';

describe('SmoothQuant pieces', () => {
  it('smoothing factors follow max|X|^α / max|W|^(1−α) and leave x·Wᵀ unchanged', () => {
    const [m, n, k] = [4, 5, 8];
    const x = randomF32(m * k, 1, 1);
    for (let r = 0; r < m; r++) x[r * k + 3] *= 40; // an outlier channel
    const w = randomF32(n * k, 2, 0.2);
    const act = new Float32Array(k).map((_, j) => Math.max(...Array.from({ length: m }, (_, r) => Math.abs(x[r * k + j]))));
    const wmax = weightChannelMax(w, n, k);
    const s = smoothingFactors(act, wmax, 0.5);
    for (let j = 0; j < k; j++) expect(s[j]).toBeCloseTo(Math.sqrt(act[j]) / Math.sqrt(wmax[j]), 5);
    // the outlier channel's range moves into the weights: after smoothing, activation and weight maxima are equal (α = 0.5)
    for (let j = 0; j < k; j++) expect(act[j] / s[j]).toBeCloseTo(wmax[j] * s[j], 4);
    const ws = w.slice();
    scaleColumns(ws, n, k, s);
    for (let a = 0; a < m; a++) for (let b = 0; b < n; b++) {
      let y = 0, ys = 0;
      for (let j = 0; j < k; j++) {
        y += x[a * k + j] * w[b * k + j];
        ys += (x[a * k + j] / s[j]) * ws[b * k + j];
      }
      expect(ys).toBeCloseTo(y, 5);
    }
    expect(smoothingFactors([4], [1], 1)[0]).toBeCloseTo(4, 6);
    expect(smoothingFactors([4], [2], 0)[0]).toBeCloseTo(0.5, 6);
    expect(() => smoothingFactors([1], [1], 1.5)).toThrow(/choose a value from 0 to 1/);
  });

  it('int8 rows: codes in −127 … 127, the largest magnitude at ±127, error at most half a step', () => {
    const [rows, k] = [6, 20];
    const x = randomF32(rows * k, 3, 5);
    const q = quantizeInt8Rows(x, rows, k);
    for (let r = 0; r < rows; r++) {
      let top = 0;
      for (let j = 0; j < k; j++) {
        const c = int8At(q.codes, k, r, j);
        expect(Math.abs(c)).toBeLessThanOrEqual(127);
        top = Math.max(top, Math.abs(c));
        expect(Math.abs(c * q.scales[r] - x[r * k + j])).toBeLessThanOrEqual(q.scales[r] / 2 + 1e-7);
      }
      expect(top).toBe(127);
    }
    expect(() => quantizeInt8Rows(x, 1, 6)).toThrow(/multiple of 4/);
  });

  it('the integer product and its rescale', () => {
    const x = quantizeInt8Rows(Float32Array.from([1, -2, 3, 4, 0, 0, 0, 8]), 2, 4);
    const w = quantizeInt8Rows(Float32Array.from([1, 1, 1, 1]), 1, 4);
    const acc = int8DotRef(x, w);
    const cx = [0, 1, 2, 3].map((j) => int8At(x.codes, 4, 0, j));
    expect(acc[0]).toBe(cx.reduce((s, c) => s + c * 127, 0));
    const y = int8RescaleRef(acc, x, w, [0.5]);
    expect(y[0]).toBeCloseTo(6.5, 1);
    expect(y[1]).toBeCloseTo(8.5, 1);
  });
});
