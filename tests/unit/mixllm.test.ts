import { describe, expect, it } from 'vitest';
import { dequantizeMixed, mixedBytes, packMixed, rowSalience, selectHighRows, takeRows, weightedRowError } from '../../src/core/quant/mixllm';
import { dequantize, packedBytes } from '../../src/core/quant/format';
import { quantizeRtn } from '../../src/core/quant/rtn';
import { randomF32 } from '../helpers/random';

describe('MixLLM salience and mixed rows', () => {
  it('ranks rows across layers on one scale: the top fraction may all come from one layer', () => {
    const s = new Map([
      ['a', Float64Array.from([1, 30, 2, 3])],
      ['b', Float64Array.from([40, 60, 0.5, 70, 0.1, 0.2])],
    ]);
    const chosen = selectHighRows(s, 0.3); // 3 of 10 rows
    expect(Array.from(chosen.get('a')!)).toEqual([0, 0, 0, 0]);
    expect(Array.from(chosen.get('b')!)).toEqual([1, 1, 0, 1, 0, 0]);
    expect([...chosen.values()].reduce((t, f) => t + f.reduce((x, y) => x + y, 0), 0)).toBe(3);
    expect(Array.from(selectHighRows(s, 0.4).get('a')!)).toEqual([0, 1, 0, 0]);
    expect(() => selectHighRows(s, 2)).toThrow(/from 0 to 1/);
  });

  it('salience is the activation-weighted error of the low width minus that of the high width', () => {
    const [n, k] = [6, 64];
    const w = randomF32(n * k, 3);
    for (let j = 0; j < k; j++) w[2 * k + j] *= 8; // a row with a large range errs more at 4 bits
    const meanSq = new Float32Array(k).map((_, j) => (j < 8 ? 100 : 1));
    const low = { bits: 4 as const, groupSize: 32, symmetric: false };
    const high = { bits: 8 as const, groupSize: 32, symmetric: false };
    const s = rowSalience(w, n, k, meanSq, low, high);
    const lo = weightedRowError(w, dequantize(quantizeRtn(w, n, k, low)), n, k, meanSq);
    const hi = weightedRowError(w, dequantize(quantizeRtn(w, n, k, high)), n, k, meanSq);
    for (let i = 0; i < n; i++) {
      expect(s[i]).toBeCloseTo(lo[i] - hi[i], 12);
      expect(s[i]).toBeGreaterThan(0);
    }
    expect(s.indexOf(Math.max(...s))).toBe(2);
    // the weighting counts: channel errors weigh by E[x²]
    expect(weightedRowError([1, 1], [0, 0.5], 1, 2, [2, 4])[0]).toBeCloseTo(2 + 1, 12);
  });

  it('packs the two row sets separately and puts every row back in place; bytes exact', () => {
    const [n, k] = [7, 64];
    const w = randomF32(n * k, 9);
    const flags = Uint8Array.from([0, 1, 0, 0, 1, 0, 1]);
    const schemes = { high: { bits: 8 as const, groupSize: 32, symmetric: false }, low: { bits: 3 as const, groupSize: 32, symmetric: false } };
    const m = packMixed(w, n, k, flags, schemes);
    expect(m.highCount).toBe(3);
    expect(Array.from(m.rows)).toEqual([1, 4, 6, 0, 2, 3, 5]);
    const d = dequantizeMixed(m);
    const hi = dequantize(quantizeRtn(takeRows(w, k, [1, 4, 6]), 3, k, schemes.high));
    const lo = dequantize(quantizeRtn(takeRows(w, k, [0, 2, 3, 5]), 4, k, schemes.low));
    expect(Array.from(d.subarray(4 * k, 5 * k))).toEqual(Array.from(hi.subarray(k, 2 * k)));
    expect(Array.from(d.subarray(5 * k, 6 * k))).toEqual(Array.from(lo.subarray(3 * k, 4 * k)));
    expect(mixedBytes(m)).toBe(packedBytes(m.high!) + packedBytes(m.low!) + 4 * n);
    const none = packMixed(w, n, k, new Uint8Array(n), schemes);
    expect(none.high).toBeNull();
    expect(mixedBytes(none)).toBe(packedBytes(none.low!) + 4 * n);
  });
});
