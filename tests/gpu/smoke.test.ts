/**
 * First real kernel on Dawn: shaders/smoke_matmul.wgsl against a float64 CPU
 * reference on random inputs and odd shapes, and the memory ledger's byte
 * accounting around it.
 */
import { describe, expect, it } from 'vitest';
import { KERNEL_CHECKS } from '../../src/cli/checks';
import {
  compareMatmul,
  dotProductTolerance,
  matmulReference,
  randomUniform,
  runSmokeMatmul,
  type MatmulDims,
} from '../../src/cli/checks/smoke-matmul';
import { MemoryLedger } from '../../src/gpu/ledger';
import { dawnDevice } from '../helpers/dawn';

// Tolerance, per entry of C: |gpu − ref| ≤ (K + 1)·2⁻²³·Σ_k |A[m,k]·B[k,n]|,
// twice the classical bound for an f32 dot product summed in order.
describe('smoke matmul (f32, tiled) on Dawn', () => {
  const shapes: MatmulDims[] = [
    { M: 37, N: 53, K: 29 }, // none a multiple of the 16-wide tile
    { M: 1, N: 17, K: 65 },
    { M: 64, N: 16, K: 1 },
  ];

  for (const dims of shapes) {
    it(`matches the float64 reference at ${dims.M}×${dims.N}×${dims.K}`, async () => {
      const { device } = await dawnDevice();
      const ledger = new MemoryLedger(device);
      const a = randomUniform(dims.M * dims.K, 11);
      const b = randomUniform(dims.K * dims.N, 12);
      const { c } = await runSmokeMatmul(ledger, dims, a, b);
      expect(c.length).toBe(dims.M * dims.N);
      const ref = matmulReference(dims, a, b);
      const cmp = compareMatmul(dims, c, ref);
      expect(cmp.compared).toBe(dims.M * dims.N);
      expect(cmp.maxErrorRatio).toBeLessThanOrEqual(1);
      // Inputs are random and nonzero, so a kernel writing zeros cannot pass.
      expect(Math.max(...ref.value.map(Math.abs))).toBeGreaterThan(0.5);
    });
  }

  it('fails the comparison when one entry is off by more than its tolerance', () => {
    const dims = { M: 3, N: 4, K: 5 };
    const a = randomUniform(15, 1);
    const b = randomUniform(20, 2);
    const ref = matmulReference(dims, a, b);
    const c = Float32Array.from(ref.value);
    expect(compareMatmul(dims, c, ref).maxErrorRatio).toBeLessThanOrEqual(1);
    c[7] += 4 * dotProductTolerance(dims.K, ref.absSum[7]);
    expect(compareMatmul(dims, c, ref).maxErrorRatio).toBeGreaterThan(1);
  });

  it('allocates through the ledger: peak bytes are exactly its buffers, and all are released', async () => {
    const { device } = await dawnDevice();
    const ledger = new MemoryLedger(device);
    const dims = { M: 37, N: 53, K: 29 };
    await runSmokeMatmul(ledger, dims, randomUniform(dims.M * dims.K, 5), randomUniform(dims.K * dims.N, 6));
    const snap = ledger.snapshot();
    const align4 = (n: number) => Math.ceil(n / 4) * 4;
    // A, B, C, the 16-byte dims uniform and C's readback copy.
    const expected = align4(37 * 29 * 4) + align4(29 * 53 * 4) + 2 * align4(37 * 53 * 4) + 16;
    expect(snap.peak.scratch).toBe(expected);
    expect(snap.peakTotal).toBe(expected);
    expect(snap.currentTotal).toBe(0);
    expect(snap.buffers).toBe(0);
  });

  it('runs the light cases of every kernel check the GPU entry runs', async () => {
    const { device } = await dawnDevice();
    const ledger = new MemoryLedger(device);
    for (const check of KERNEL_CHECKS) {
      for (const c of check.cases.filter((c) => !c.heavy)) {
        const outcome = await c.run(ledger);
        expect(outcome.passed, `${check.name} ${c.label}: err/tol ${outcome.maxErrorRatio}`).toBe(true);
      }
    }
  });
});
