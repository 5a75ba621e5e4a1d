/**
 * The kernel checks the Node GPU entry runs: each one runs a kernel family on
 * a few shapes against its CPU reference and reports the error and the time.
 * The gpu test layer runs the same kernels on small shapes under SwiftShader.
 * Add a kernel family by adding one entry to KERNEL_CHECKS.
 */
import { MemoryLedger } from '../../gpu/ledger';
import {
  compareMatmul,
  matmulReference,
  randomUniform,
  runSmokeMatmul,
  sampleEntries,
  SMOKE_MATMUL_TILE,
  type MatmulDims,
} from './smoke-matmul';
import { ACT_QUANT_CHECKS } from './act-quant';

export interface CheckOutcome {
  /** The shape or variant, e.g. "4096×4096×4096". */
  label: string;
  passed: boolean;
  /** Largest |GPU − reference| over the compared entries. */
  maxAbsError: number;
  /** Largest |error| / tolerance; ≤ 1 passes. */
  maxErrorRatio: number;
  /** How many output entries were compared with the reference. */
  compared: number;
  /** Mean milliseconds per dispatch. */
  ms: number;
  /** Work rate, e.g. "512 GFLOP/s". */
  rate: string;
}

export interface CheckCase {
  label: string;
  /** Too slow for a software (fallback) adapter; run there only when asked (--full). */
  heavy: boolean;
  run(ledger: MemoryLedger): Promise<CheckOutcome>;
}

export interface KernelCheck {
  /** Kernel family name, e.g. "smoke-matmul". */
  name: string;
  /** How it is measured: inputs, reference, tolerance, timing. Printed before the cases run. */
  protocol: string;
  cases: CheckCase[];
}

/** Floating-point operations per second with a unit that keeps three significant digits. */
export function flopRate(perSecond: number): string {
  const [scale, unit] = perSecond >= 1e12 ? [1e12, 'TFLOP/s'] : perSecond >= 1e9 ? [1e9, 'GFLOP/s'] : [1e6, 'MFLOP/s'];
  const v = perSecond / scale;
  return `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${unit}`;
}

function smokeMatmulCase(dims: MatmulDims, heavy: boolean): CheckCase {
  const { M, N, K } = dims;
  return {
    label: `${M}×${N}×${K}`,
    heavy,
    async run(ledger) {
      const a = randomUniform(M * K, 1 + M);
      const b = randomUniform(K * N, 2 + N);
      // Full reference for small shapes; 512 sampled entries (plus the corners) for big ones.
      const entries = M * N * K <= 2 ** 27 ? undefined : sampleEntries(dims, 512, 3);
      const iterations = M * N * K >= 2 ** 30 ? 10 : 3;
      const { c, msPerDispatch } = await runSmokeMatmul(ledger, dims, a, b, iterations);
      const cmp = compareMatmul(dims, c, matmulReference(dims, a, b, entries));
      return {
        label: `${M}×${N}×${K}`,
        passed: cmp.maxErrorRatio <= 1,
        ...cmp,
        ms: msPerDispatch,
        rate: flopRate((2 * M * N * K) / (msPerDispatch / 1e3)),
      };
    },
  };
}

export const KERNEL_CHECKS: KernelCheck[] = [
  {
    name: 'smoke-matmul',
    protocol:
      `shaders/smoke_matmul.wgsl, C[M×N] = A[M×K]·B[K×N] in f32 with ${SMOKE_MATMUL_TILE}×${SMOKE_MATMUL_TILE} tiles; ` +
      'inputs uniform in [-1, 1) from a fixed seed; float64 CPU reference (every entry up to 2^27 M·N·K, else 512 sampled + corners); ' +
      'tolerance per entry (K+1)·2^-23·Σ|a·b|; time = wall clock per dispatch, mean of 3 (10 at ≥ 2^30 M·N·K) after one warm-up',
    cases: [
      smokeMatmulCase({ M: 37, N: 53, K: 29 }, false),
      smokeMatmulCase({ M: 256, N: 256, K: 256 }, false),
      smokeMatmulCase({ M: 1000, N: 1001, K: 333 }, true),
      smokeMatmulCase({ M: 2048, N: 2048, K: 2048 }, true),
      smokeMatmulCase({ M: 4096, N: 4096, K: 4096 }, true),
    ],
  },
  ...ACT_QUANT_CHECKS,
];
