/**
 * The page's kernel bench (bench/page-bench.ts, shared core bench/core.ts) on
 * this machine's adapter at its small shapes: every row timed (positive µs)
 * and every kernel's sampled outputs within 1e-4 · Σ|x·w| of the float64
 * reference, the ceiling measured.
 */
import { beforeAll, expect, it } from 'vitest';
import { runPageBench } from '../../bench/page-bench';
import { dawnDevice } from '../helpers/dawn';

let device: GPUDevice;

beforeAll(async () => {
  ({ device } = await dawnDevice());
});

it('measures the ceiling, GEMV (f32, 4-bit, 8-bit) and GEMM at the small shapes, each checked', async () => {
  const steps: string[] = [];
  const r = await runPageBench(device, (p) => steps.push(p.what), { small: true });
  expect(r.ceilingGbps).toBeGreaterThan(0);
  expect(r.rows.map((x) => `${x.shape} ${x.kernel} ${x.bits}`)).toEqual([
    '256x256 gemv 32', '256x256 gemm 32', '256x256 gemv 4', '256x256 gemm 4', '256x256 gemv 8',
    '384x256 gemv 32', '384x256 gemm 32', '384x256 gemv 4', '384x256 gemm 4', '384x256 gemv 8',
  ]);
  for (const row of r.rows) {
    expect(row.us, `${row.shape} ${row.kernel} ${row.bits}`).toBeGreaterThan(0);
    expect(row.checkError, `${row.shape} ${row.kernel} ${row.bits}`).toBeLessThan(1e-4);
  }
  expect(steps.length).toBe(11);
});
