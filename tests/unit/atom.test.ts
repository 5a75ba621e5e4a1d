import { describe, expect, it } from 'vitest';
import { atomCodeAt, atomWeightBytes, checkAtomShape, dequantizeAtomRows, outlierOrder, quantizeAtomRows } from '../../src/core/quant/atom';
import { atomOutliers } from '../../src/lab/methods/atom';
import { randomF32 } from '../helpers/random';

describe('Atom W4A4 with outliers', () => {
  it('orders channels: the largest magnitudes first, the rest in place', () => {
    expect(Array.from(outlierOrder([1, 9, 3, 7, 2, 8], 3))).toEqual([1, 5, 3, 0, 2, 4]);
    expect(Array.from(outlierOrder([1, 2, 3], 0))).toEqual([0, 1, 2]);
  });

  it('outliers in int8, the rest in int4 groups: each within half a step of its scale', () => {
    const [rows, k, outliers, groupSize] = [3, 48, 8, 8];
    const mag = new Float32Array(k).map((_, j) => (j % 6 === 1 ? 30 : 1));
    const x = randomF32(rows * k, 7).map((v, i) => v * mag[i % k]);
    const perm = outlierOrder(mag, outliers);
    const q = quantizeAtomRows(x, rows, k, perm, outliers, groupSize);
    const d = dequantizeAtomRows(q);
    const groups = (k - outliers) / groupSize;
    for (let r = 0; r < rows; r++) for (let j = 0; j < k; j++) {
      const c = atomCodeAt(q, r, j);
      const s = j < outliers ? q.scales[r * (1 + groups)] : q.scales[r * (1 + groups) + 1 + Math.floor((j - outliers) / groupSize)];
      expect(Math.abs(c)).toBeLessThanOrEqual(j < outliers ? 127 : 7);
      expect(Math.abs(d[r * k + j] - x[r * k + perm[j]])).toBeLessThanOrEqual(s / 2 + 1e-6);
    }
    // the outlier scale is set by the large channels; the int4 groups never see them
    for (let r = 0; r < rows; r++) expect(q.scales[r * (1 + groups)]).toBeGreaterThan(10 / 127);
    expect(atomWeightBytes(10, 256, 128, 128)).toBe(10 * 128 + 10 * 64 + 10 * 2 * 4 + 256 * 4);
  });

  it('shape rules and the outlier count a layer gets', () => {
    expect(() => checkAtomShape(256, 100, 128)).toThrow(/not a multiple of the group size 128/);
    expect(() => checkAtomShape(256, 6, 8)).toThrow(/multiple of 4/);
    expect(atomOutliers(256, 128, 128)).toBe(128);
    expect(atomOutliers(768, 128, 128)).toBe(128);
    expect(atomOutliers(320, 128, 128)).toBe(192);
    expect(atomOutliers(128, 128, 128)).toBeNull();
  });
});
