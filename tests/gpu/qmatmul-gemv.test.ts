/**
 * Every GEMV variant the dispatcher can choose (qgemv.wgsl, gemv_f32.wgsl:
 * subgroup and workgroup-memory reductions, team widths, rows per team, x
 * staged in one or several chunks) against the CPU references, as in
 * qmatmul.test.ts: shaders/qmatmul.wgsl and shaders/matmul_f32.wgsl against their CPU
 * references: y = x · dequantize(packed)ᵀ (+ bias), and y = x · Wᵀ (+ bias),
 * both summed in float64.
 *
 * Tolerance: relative L2 error ‖y − ref‖ / ‖ref‖ < 1e-5 over the whole output,
 * and every element within 1e-5 · Σ_k |x·ŵ| of the reference (f32 sums of a
 * few hundred terms land near 1e-7).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { dequantize, type QuantBits, type QuantScheme } from '../../src/core/quant/format';
import { quantizeRtn } from '../../src/core/quant/rtn';
import { MemoryLedger } from '../../src/gpu/ledger';
import { F32Linear, type GemvConfig, type GpuLinear, type LinearKernel } from '../../src/gpu/linear';
import { QuantLinear } from '../../src/gpu/qlinear';
import { GPU_TUNING, type KernelTuning } from '../../src/gpu/tuning';
import { dawnDevice } from '../helpers/dawn';

let device: GPUDevice;
let ledger: MemoryLedger;

beforeAll(async () => {
  ({ device } = await dawnDevice());
  ledger = new MemoryLedger(device);
});

/** Deterministic floats in [-1, 1) with no zeros (xorshift32). */
function randomFloats(count: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = ((s + 0.5) / 2 ** 31 - 1) * scale;
  }
  return out;
}

/** Weights with a different magnitude per row, like real layers. */
function randomWeights(n: number, k: number, seed: number): Float32Array {
  const w = randomFloats(n * k, seed);
  for (let r = 0; r < n; r++) {
    const rowScale = 0.05 + (r % 7) * 0.1;
    for (let j = 0; j < k; j++) w[r * k + j] *= rowScale;
  }
  return w;
}

/** y = x · Wᵀ (+ bias) in float64. Also returns Σ|x·w| per output, the scale of rounding error. */
function reference(x: Float32Array, w: Float32Array, m: number, n: number, k: number, bias?: Float32Array) {
  const y = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let r = 0; r < n; r++) {
      let s = bias ? bias[r] : 0;
      let a = bias ? Math.abs(bias[r]) : 0;
      for (let j = 0; j < k; j++) {
        const p = x[i * k + j] * w[r * k + j];
        s += p;
        a += Math.abs(p);
      }
      y[i * n + r] = s;
      mag[i * n + r] = a;
    }
  }
  return { y, mag };
}

/** Runs each (kernel, M) through `linear` in one submit and reads the outputs back. */
async function runLinear(linear: GpuLinear, cases: { kernel: LinearKernel; x: Float32Array; m: number }[]) {
  device.pushErrorScope('validation');
  const encoder = device.createCommandEncoder();
  const outs: { x: GPUBuffer; y: GPUBuffer; read: GPUBuffer; size: number }[] = [];
  for (const c of cases) {
    const x = ledger.upload('activations', c.x, 'test x');
    const size = c.m * linear.n * 4;
    const y = ledger.createBuffer('activations', size, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, 'test y');
    const read = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    linear.encode(encoder, x, y, c.m, c.kernel);
    encoder.copyBufferToBuffer(y, 0, read, 0, size);
    outs.push({ x, y, read, size });
  }
  device.queue.submit([encoder.finish()]);
  const error = await device.popErrorScope();
  if (error) throw new Error(`${linear.label}: WebGPU rejected the dispatch: ${error.message}`);
  const results: Float32Array[] = [];
  for (const o of outs) {
    await o.read.mapAsync(GPUMapMode.READ);
    results.push(new Float32Array(o.read.getMappedRange().slice(0)));
    o.read.destroy();
    ledger.release(o.x);
    ledger.release(o.y);
  }
  return results;
}

function expectClose(label: string, got: Float32Array, ref: { y: Float64Array; mag: Float64Array }): void {
  let num = 0;
  let den = 0;
  let worst = 0;
  for (let i = 0; i < ref.y.length; i++) {
    const d = got[i] - ref.y[i];
    num += d * d;
    den += ref.y[i] * ref.y[i];
    worst = Math.max(worst, Math.abs(d) / (ref.mag[i] + 1e-30));
  }
  const rel = Math.sqrt(num / den);
  expect(rel, `${label}: relative L2 error`).toBeLessThan(1e-5);
  expect(worst, `${label}: worst |error| / Σ|x·ŵ|`).toBeLessThan(1e-5);
}

interface CheckOptions {
  gemv?: Partial<GemvConfig>;
  gemmTile?: 64 | 128;
  bias?: boolean;
  maxWorkgroupsPerDimension?: number;
  tuning?: KernelTuning;
}

async function checkQuant(n: number, k: number, scheme: QuantScheme, ms: { kernel: LinearKernel; m: number }[], opts: CheckOptions = {}) {
  const seed = n * 7919 + k * 31 + scheme.bits * 3 + (scheme.symmetric ? 1 : 0);
  const packed = quantizeRtn(randomWeights(n, k, seed), n, k, scheme);
  const bias = opts.bias ? randomFloats(n, seed + 1) : undefined;
  const label = `q${scheme.bits} ${scheme.groupSize} ${scheme.symmetric ? 'sym' : 'asym'} [${n}x${k}]`;
  const linear = new QuantLinear(ledger, packed, { bias, label, maxWorkgroupsPerDimension: opts.maxWorkgroupsPerDimension, tuning: opts.tuning, gemv: opts.gemv, gemmTile: opts.gemmTile });
  const cases = ms.map(({ kernel, m }, i) => ({ kernel, m, x: randomFloats(m * k, seed + 17 * (i + 2)) }));
  const outs = await runLinear(linear, cases);
  const w = dequantize(packed);
  cases.forEach((c, i) => expectClose(`${label} ${c.kernel} M=${c.m}`, outs[i], reference(c.x, w, c.m, n, k, bias)));
  linear.destroy();
}

// Both kernel shapes run on any adapter: the GPU one (GEMV for a few rows,

// Variants: the default plan; subgroup shuffles with teams of 4 (SwiftShader's
// subgroups have 4 lanes); teams of 64 = shuffles, then 16 subgroup sums
// through workgroup memory, with the 4-bit prefetch; 8 rows per team
// with x staged in chunks of 128 inputs (several chunks per row); 2 rows with
// teams of 16; 1 row with teams of 32.
const VARIANTS: [string, Partial<GemvConfig>, QuantBits[], number[]][] = [
  ['default plan', {}, [2, 3, 4, 8], [1, 3]],
  ['subgroups, teams of 4', { tpr: 4, sg: 4, subgroups: true }, [2, 3, 4, 8], [1, 3]],
  ['subgroups of 4 in teams of 64, 4-bit prefetch', { tpr: 64, sg: 4, subgroups: true, prefetch: true }, [4, 2], [1, 3]],
  ['8 rows, chunks of 128', { rows: 8, xc: 128, subgroups: false }, [4, 3], [3]],
  ['2 rows, teams of 16', { rows: 2, tpr: 16, subgroups: false }, [4, 8], [1]],
  ['1 row, teams of 32', { rows: 1, tpr: 32, subgroups: false }, [4], [1]],
];

describe('GEMV variants against x · dequantize(W)ᵀ and x · Wᵀ', () => {
  for (const [name, gemv, bitsList, ms] of VARIANTS) {
    it(`${name}: ${bitsList.join('/')} bits at N=37, K=416 (not a multiple of the 3-bit unit), g32 asym + bias, M=${ms.join(', ')}; row sym; f32 N=67 K=52`, async () => {
      for (const bits of bitsList) {
        await checkQuant(37, 416, { bits, groupSize: 32, symmetric: false }, ms.map((m) => ({ kernel: 'gemv' as const, m })), { gemv, bias: true, tuning: GPU_TUNING });
      }
      await checkQuant(37, 416, { bits: bitsList[0], groupSize: 'row', symmetric: true }, [{ kernel: 'gemv', m: 1 }], { gemv, tuning: GPU_TUNING });
      const w = randomWeights(67, 52, 3);
      const bias = randomFloats(67, 4);
      const f32 = new F32Linear(ledger, w, 67, 52, { bias, gemv: { basic: false, ...gemv }, tuning: GPU_TUNING });
      const cases = ms.map((m, i) => ({ kernel: 'gemv' as const, m, x: randomFloats(m * 52, 11 + i) }));
      const outs = await runLinear(f32, cases);
      cases.forEach((c, i) => expectClose(`f32 gemv ${name} M=${c.m}`, outs[i], reference(c.x, w, c.m, 67, 52, bias)));
      f32.destroy();
    });
  }
});

describe('128 × 128 GEMMs (qgemm.wgsl, gemm_f32_wide.wgsl) against the references', () => {
  it('f32 (gemm_f32_wide.wgsl): N=133, K=48, M=37 and 130, with bias', async () => {
    const w = randomWeights(133, 48, 8);
    const bias = randomFloats(133, 9);
    const f32 = new F32Linear(ledger, w, 133, 48, { bias, gemmTile: 128, tuning: GPU_TUNING });
    const cases = [37, 130].map((m, i) => ({ kernel: 'gemm' as const, m, x: randomFloats(m * 48, 21 + i) }));
    const outs = await runLinear(f32, cases);
    cases.forEach((c, i) => expectClose(`f32 wide gemm M=${c.m}`, outs[i], reference(c.x, w, c.m, 133, 48, bias)));
    f32.destroy();
  });

  it('2/3/4/8 bits, g32 asym + bias, N=133 (two column tiles, the second partial), K=96, M=37 and M=130; 4-bit row sym', async () => {
    const ms = [{ kernel: 'gemm' as const, m: 37 }, { kernel: 'gemm' as const, m: 130 }];
    for (const bits of [2, 3, 4, 8] as QuantBits[]) {
      await checkQuant(133, 96, { bits, groupSize: 32, symmetric: false }, ms, { gemmTile: 128, bias: true, tuning: GPU_TUNING });
    }
    await checkQuant(133, 96, { bits: 4, groupSize: 'row', symmetric: true }, [ms[0]], { gemmTile: 128, tuning: GPU_TUNING });
  });
});
