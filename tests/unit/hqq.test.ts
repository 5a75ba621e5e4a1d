/**
 * HQQ (src/core/quant/hqq.ts) on random groups: the half-quadratic iterates
 * against a plain float64 transcription, the error never above RTN's, the
 * packed result consistent with what it reports.
 */
import { describe, expect, it } from 'vitest';
import { dequantize, type QuantBits } from '../../src/core/quant/format';
import { groupSquaredError, hqqGroup, quantizeHqq, referenceHqqIterates, type HqqTrace } from '../../src/core/quant/hqq';
import { quantizeRtn, rtnParams } from '../../src/core/quant/rtn';
import { randomF32, rng } from '../helpers/random';

/** Heavy-tailed groups (a Gaussian-ish bulk and a few large weights), as LLM weights. */
function heavyTailed(count: number, seed: number): Float32Array {
  const r = rng(seed);
  const w = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const u = r() + r() + r() - 1.5;
    w[i] = u * 0.05 * (r() < 0.02 ? 8 : 1);
  }
  return w;
}

describe('HQQ', () => {
  it('follows the float64 reference iterate by iterate', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const w = heavyTailed(128, seed);
      const bits = ([2, 3, 4] as QuantBits[])[seed % 3];
      const trace: HqqTrace = { zeros: [], errors: [] };
      hqqGroup(w, bits, false, {}, trace);
      const ref = referenceHqqIterates([...w], bits);
      expect(trace.zeros.length).toBe(ref.zeros.length);
      expect(trace.zeros.length).toBeGreaterThan(1);
      trace.zeros.forEach((z, i) => expect(Math.abs(z - ref.zeros[i])).toBeLessThan(1e-9));
      trace.errors.forEach((e, i) => expect(Math.abs(e - ref.errors[i])).toBeLessThan(1e-12));
    }
  });

  it('never has a larger squared error than RTN, group by group, and often a smaller one', () => {
    let better = 0;
    const groups = 300;
    for (let seed = 0; seed < groups; seed++) {
      const w = seed % 2 ? heavyTailed(64, 100 + seed) : randomF32(64, 100 + seed, 0.1);
      const bits = ([2, 3, 4, 8] as QuantBits[])[seed % 4];
      const symmetric = seed % 5 === 0;
      const r = hqqGroup(w, bits, symmetric);
      const lo = Math.min(...w);
      const hi = Math.max(...w);
      const base = rtnParams(lo, hi, bits, symmetric);
      const e = groupSquaredError(w, r.scale, r.zero, bits);
      const eRtn = groupSquaredError(w, base.scale, base.zero, bits);
      expect(e).toBeLessThanOrEqual(eRtn);
      expect(Number.isInteger(r.zero) && r.zero >= 0 && r.zero < 2 ** bits).toBe(true);
      if (e < eRtn * 0.99) better++;
    }
    expect(better).toBeGreaterThan(groups / 3);
  });

  it('packs what it reports: the dequantized matrix has the reported error, below RTN at 3 bits', () => {
    const n = 24;
    const k = 256;
    const w = heavyTailed(n * k, 7);
    const scheme = { bits: 3 as const, groupSize: 128, symmetric: false };
    const { packed, stats } = quantizeHqq(w, n, k, scheme);
    const back = dequantize(packed);
    let err = 0;
    for (let i = 0; i < n * k; i++) err += (w[i] - back[i]) ** 2;
    expect(Math.abs(err - stats.squaredError) / err).toBeLessThan(1e-9);
    const rtn = dequantize(quantizeRtn(w, n, k, scheme));
    let rtnErr = 0;
    for (let i = 0; i < n * k; i++) rtnErr += (w[i] - rtn[i]) ** 2;
    expect(Math.abs(rtnErr - stats.rtnSquaredError) / rtnErr).toBeLessThan(1e-9);
    expect(err).toBeLessThan(rtnErr * 0.95);
    expect(stats.meanIterations).toBeGreaterThan(1);
  });
});

describe('HQQ options', () => {
  it('an option given as undefined takes its default (the method passes its spec through)', () => {
    const w = heavyTailed(128, 3);
    const a = hqqGroup(w, 3, false, { iterations: undefined });
    const b = hqqGroup(w, 3, false);
    expect(a).toEqual(b);
    expect(a.iterations).toBeGreaterThan(1);
  });
});
