/**
 * The GPU parts of calibrated methods against their references on random
 * inputs: calibration statistics (shaders/calibration.wgsl) against plain
 * loops, and AWQ's scale and clipping searches (src/gpu/awq.ts) against the
 * float64 searches of src/core/quant/awq.ts on a 61×256 layer (odd: the clipping kernel takes rows by four) with given
 * activations (a few channels much larger than the rest, as in LLMs).
 *
 * Tolerance: the GPU computes the grid in f32 (as the packed weights are made,
 * src/core/quant/awq.ts fakeQuantDelta): against float64 sums of that f32
 * grid, each loss within 1e-3 (relative). Against the all-float64 reference,
 * within 3e-2: a symmetric grid puts a group's largest weight exactly on a
 * rounding tie (max / scale = 2^(b−1) − ½), which f32 and f64 break either
 * way, half a step of error each time. The chosen α's float64 loss within 3e-2
 * of the float64 minimum; clipping ratios equal on ≥ 97 % of (row, group).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { activationMean, alphaGrid, awqScales, clipGrid, fakeQuantDelta, referenceClipSearch, referenceOutputError, referenceScaleSearch } from '../../src/core/quant/awq';
import type { QuantScheme } from '../../src/core/quant/format';
import { AwqSearch } from '../../src/gpu/awq';
import { CalibrationKernels } from '../../src/gpu/calibration';
import { MemoryLedger } from '../../src/gpu/ledger';
import { readF32 } from '../../src/gpu/readback';
import { dawnDevice } from '../helpers/dawn';
import { randomF32, rng } from '../helpers/random';

let device: GPUDevice;
let ledger: MemoryLedger;
beforeAll(async () => {
  ({ device } = await dawnDevice());
  ledger = new MemoryLedger(device);
});

/** Activations [rows, k] with a few outlier channels (×20), like an LLM's. */
function activations(rows: number, k: number, seed: number): Float32Array {
  const x = randomF32(rows * k, seed);
  const r = rng(seed + 1);
  const big = new Set(Array.from({ length: 6 }, () => Math.floor(r() * k)));
  for (let t = 0; t < rows; t++) for (const c of big) x[t * k + c] *= 20;
  return x;
}

describe('calibration kernels', () => {
  it('accumulate mean |x| per channel and gather strided rows', async () => {
    const rows = 37;
    const k = 96;
    const x = randomF32(rows * k, 11);
    const xb = ledger.upload('scratch', x, 'x');
    const stat = ledger.upload('scratch', new Float32Array(k).fill(0.5), 'stat');
    const dst = ledger.upload('scratch', new Float32Array(10 * k), 'dst');
    const kernels = new CalibrationKernels(device);
    const encoder = device.createCommandEncoder();
    kernels.absSum(encoder, xb, rows, k, stat);
    kernels.gatherRows(encoder, xb, rows, k, 2, 5, 7, dst, 3);
    device.queue.submit([encoder.finish()]);
    const [s, d] = [await readF32(device, stat, k), await readF32(device, dst, 10 * k)];
    kernels.releaseUniforms();
    const mean = activationMean(x, rows, k);
    for (let c = 0; c < k; c++) expect(s[c]).toBeCloseTo(0.5 + mean[c] * rows, 4);
    for (let j = 0; j < 7; j++) for (let c = 0; c < k; c++) expect(d[(3 + j) * k + c]).toBe(x[(2 + 5 * j) * k + c]);
    expect(d.subarray(0, 3 * k).every((v) => v === 0)).toBe(true);
    for (const b of [xb, stat, dst]) ledger.release(b);
  });
});

describe('AWQ search on the GPU', () => {
  const rows = 96;
  const k = 256;
  const cases: QuantScheme[] = [
    { bits: 3, groupSize: 128, symmetric: false },
    { bits: 4, groupSize: 64, symmetric: true },
  ];
  for (const scheme of cases) {
    it(`finds the float64 reference's α and clipping ratios (W${scheme.bits} g${scheme.groupSize} ${scheme.symmetric ? 'sym' : 'asym'})`, async () => {
      const x = activations(rows, k, 5);
      const w1 = randomF32(61 * k, 6, 0.1);
      const w2 = randomF32(32 * k, 7, 0.05);
      const mean = activationMean(x, rows, k);
      const grid = alphaGrid(10);
      const reference = referenceScaleSearch(x, rows, k, [{ w: w1, n: 61 }, { w: w2, n: 32 }], mean, scheme, grid);
      // the search is worth it here: some α beats plain RTN (α = 0)
      expect(Math.min(...reference.losses)).toBeLessThan(reference.losses[0]);

      const xb = ledger.upload('scratch', x, 'x');
      const b1 = ledger.upload('scratch', w1, 'w1');
      const b2 = ledger.upload('scratch', w2, 'w2');
      const search = new AwqSearch(ledger);
      const losses = await search.scaleLosses(xb, rows, k, [{ w: b1, n: 61 }, { w: b2, n: 32 }], mean, scheme, grid);
      for (let i = 0; i < grid.length; i++) {
        const s = awqScales(mean, grid[i]);
        const f32Grid = referenceOutputError(x, rows, k, fakeQuantDelta(w1, 61, k, s, scheme), 61) + referenceOutputError(x, rows, k, fakeQuantDelta(w2, 32, k, s, scheme), 32);
        expect(Math.abs(losses[i] - f32Grid) / f32Grid).toBeLessThan(1e-3);
        expect(Math.abs(losses[i] - reference.losses[i]) / reference.losses[i]).toBeLessThan(3e-2);
      }
      const best = losses.indexOf(Math.min(...losses));
      expect(reference.losses[best]).toBeLessThanOrEqual(reference.losses[reference.best] * (1 + 3e-2));
      const s = awqScales(mean, grid[best]);

      const clip = clipGrid(0.5, 20);
      const expected = referenceClipSearch(x, rows, k, w1, 61, s, scheme, clip);
      const got = await search.clipRatios(xb, rows, k, b1, 61, s, scheme, clip);
      let same = 0;
      for (let i = 0; i < expected.length; i++) if (expected[i] === got.ratios[i]) same++;
      expect(same / expected.length).toBeGreaterThanOrEqual(0.97);
      expect(new Set(got.ratios).size).toBeGreaterThan(1);
      for (const b of [xb, b1, b2]) ledger.release(b);
    });
  }
});
