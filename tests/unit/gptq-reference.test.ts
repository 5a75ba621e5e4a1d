/**
 * The float64 GPTQ reference (src/core/quant/gptq.ts) on small random layers:
 * - with H = I there is nothing to feed back, so GPTQ is RTN exactly;
 * - GPTQ's own identity: Ŵ = W − err·U with H'⁻¹ = UᵀU makes the proxy loss
 *   (W − Ŵ) H' (W − Ŵ)ᵀ (H' the dampened Hessian) equal Σ err² = 2·loss;
 * - on a 64×256 layer with a correlated Hessian GPTQ's proxy loss
 *   tr((W − Ŵ) H (W − Ŵ)ᵀ) is well below RTN's, with and without act-order;
 * - act-order's static groups are RTN's groups of the original weights, so
 *   the packed format decodes with no column index;
 * - dead inputs (H_jj = 0) come out as zero weights.
 */
import { describe, expect, it } from 'vitest';
import { dequantize, schemeName, type QuantScheme } from '../../src/core/quant/format';
import { quantizeRtn } from '../../src/core/quant/rtn';
import {
  actOrderPermutation,
  choleskyLower,
  dampeningLambda,
  gptqReference,
  inverseCholeskyUpper,
  proxyLoss,
} from '../../src/core/quant/gptq';
import { randomF32, rng } from '../helpers/random';

/** Weights with a different magnitude per row and a few larger outliers. */
function layerWeights(n: number, k: number, seed: number): Float32Array {
  const w = randomF32(n * k, seed, 0.1);
  const r = rng(seed + 1);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) w[i * k + j] *= 0.5 + (i % 5) * 0.3 + (r() < 0.01 ? 4 : 0);
  return w;
}

/**
 * H = XᵀX (float32-representable values) for X [tokens, k] with correlated
 * neighbouring inputs and channel scales from 0.2 to 3.
 */
function correlatedHessian(k: number, tokens: number, seed: number): Float64Array {
  const z = randomF32(tokens * k, seed);
  const x = new Float64Array(tokens * k);
  for (let t = 0; t < tokens; t++) {
    for (let j = 0; j < k; j++) {
      const v = z[t * k + j] + 0.7 * (j > 0 ? z[t * k + j - 1] : 0) + 0.4 * z[t * k + ((j * 7) % k)];
      x[t * k + j] = v * (0.2 + ((j * 13) % 29) / 10);
    }
  }
  const h = new Float64Array(k * k);
  for (let t = 0; t < tokens; t++) {
    const row = x.subarray(t * k, (t + 1) * k);
    for (let i = 0; i < k; i++) {
      const xi = row[i];
      for (let j = i; j < k; j++) h[i * k + j] += xi * row[j];
    }
  }
  for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) h[i * k + j] = h[j * k + i];
  return h.map(Math.fround);
}

const identity = (k: number) => {
  const h = new Float64Array(k * k);
  for (let j = 0; j < k; j++) h[j * k + j] = 1;
  return h;
};

const SCHEMES: QuantScheme[] = [
  { bits: 4, groupSize: 32, symmetric: false },
  { bits: 3, groupSize: 128, symmetric: true },
  { bits: 2, groupSize: 'row', symmetric: false },
  { bits: 8, groupSize: 64, symmetric: true },
];

describe('GPTQ reference', () => {
  it.each(SCHEMES)('with H = I equals RTN exactly: %o', (scheme) => {
    const n = 24;
    const k = 256;
    const w = layerWeights(n, k, 7);
    const rtn = quantizeRtn(w, n, k, scheme);
    for (const actOrder of [false, true]) {
      const { packed } = gptqReference(w, n, k, identity(k), scheme, { actOrder });
      expect(packed.codes).toEqual(rtn.codes);
      expect(packed.scales).toEqual(rtn.scales);
      expect(packed.zeros).toEqual(rtn.zeros);
    }
  });

  it('U is the upper Cholesky factor of H⁻¹', () => {
    const k = 64;
    const h = correlatedHessian(k, 200, 3);
    const u = inverseCholeskyUpper(h, k);
    // U H Uᵀ = I
    let worst = 0;
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        if (i > j) expect(u[i * k + j]).toBe(0);
        let s = 0;
        for (let a = i; a < k; a++) for (let b = j; b < k; b++) s += u[i * k + a] * h[a * k + b] * u[j * k + b];
        worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
      }
    }
    expect(worst).toBeLessThan(1e-9);
    expect(() => choleskyLower(new Float64Array([1, 2, 2, 1]), 2)).toThrow(/not positive definite at column 1/);
  });

  const n = 64;
  const k = 256;
  const w = layerWeights(n, k, 11);
  const h = correlatedHessian(k, 512, 12);
  const damped = (order: Int32Array) => {
    const lambda = dampeningLambda(Array.from({ length: k }, (_, j) => h[j * k + j]), 0.01);
    const hp = Float64Array.from(h);
    for (let j = 0; j < k; j++) hp[j * k + j] += lambda;
    expect(order.length).toBe(k);
    return hp;
  };

  for (const scheme of [
    { bits: 4, groupSize: 128, symmetric: false },
    { bits: 3, groupSize: 32, symmetric: true },
    { bits: 3, groupSize: 'row', symmetric: false },
  ] as QuantScheme[]) {
    for (const actOrder of [false, true]) {
      it(`${schemeName(scheme)}${actOrder ? ' act-order' : ''}: loss identity, and a lower proxy loss than RTN`, () => {
        const result = gptqReference(w, n, k, h, scheme, { actOrder });
        expect(dequantize(result.packed)).toEqual(result.dequantized);
        // Σ err² = (W − Ŵ) H' (W − Ŵ)ᵀ exactly (up to float64 rounding).
        const exact = proxyLoss(w, result.dequantized, n, k, damped(result.order));
        expect(Math.abs(exact - 2 * result.loss) / exact).toBeLessThan(1e-9);
        const gptq = proxyLoss(w, result.dequantized, n, k, h);
        const rtn = proxyLoss(w, dequantize(quantizeRtn(w, n, k, scheme)), n, k, h);
        expect(gptq).toBeLessThan(0.85 * rtn);
      });
    }
  }

  it('act-order visits columns by descending diag(H) with static groups: RTN grids of the original weights', () => {
    const scheme: QuantScheme = { bits: 4, groupSize: 32, symmetric: false };
    const result = gptqReference(w, n, k, h, scheme, { actOrder: true });
    const diag = Array.from({ length: k }, (_, j) => h[j * k + j]);
    expect(Array.from(result.order)).toEqual(Array.from(actOrderPermutation(diag)));
    for (let j = 1; j < k; j++) expect(diag[result.order[j - 1]]).toBeGreaterThanOrEqual(diag[result.order[j]]);
    expect(new Set(result.order).size).toBe(k);
    const rtn = quantizeRtn(w, n, k, scheme);
    expect(result.packed.scales).toEqual(rtn.scales);
    expect(result.packed.zeros).toEqual(rtn.zeros);
    expect(result.packed.codes).not.toEqual(rtn.codes);
  });

  it('dead inputs become zero weights', () => {
    const hd = Float64Array.from(h);
    for (const dead of [5, 100]) for (let j = 0; j < k; j++) hd[dead * k + j] = hd[j * k + dead] = 0;
    const scheme: QuantScheme = { bits: 4, groupSize: 64, symmetric: false };
    for (const actOrder of [false, true]) {
      const { dequantized } = gptqReference(w, n, k, hd, scheme, { actOrder });
      for (let r = 0; r < n; r++) {
        expect(dequantized[r * k + 5]).toBe(0);
        expect(dequantized[r * k + 100]).toBe(0);
      }
    }
  });
});
