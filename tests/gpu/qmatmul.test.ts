/**
 * shaders/qmatmul.wgsl and shaders/matmul_f32.wgsl against their CPU
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
import { F32Linear, type GpuLinear, type LinearKernel } from '../../src/gpu/linear';
import { QuantLinear } from '../../src/gpu/qlinear';
import { CPU_TUNING, GPU_TUNING, type KernelTuning } from '../../src/gpu/tuning';
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
  bias?: boolean;
  maxWorkgroupsPerDimension?: number;
  tuning?: KernelTuning;
}

async function checkQuant(n: number, k: number, scheme: QuantScheme, ms: { kernel: LinearKernel; m: number }[], opts: CheckOptions = {}) {
  const seed = n * 7919 + k * 31 + scheme.bits * 3 + (scheme.symmetric ? 1 : 0);
  const packed = quantizeRtn(randomWeights(n, k, seed), n, k, scheme);
  const bias = opts.bias ? randomFloats(n, seed + 1) : undefined;
  const label = `q${scheme.bits} ${scheme.groupSize} ${scheme.symmetric ? 'sym' : 'asym'} [${n}x${k}]`;
  const linear = new QuantLinear(ledger, packed, { bias, label, maxWorkgroupsPerDimension: opts.maxWorkgroupsPerDimension, tuning: opts.tuning });
  const cases = ms.map(({ kernel, m }, i) => ({ kernel, m, x: randomFloats(m * k, seed + 17 * (i + 2)) }));
  const outs = await runLinear(linear, cases);
  const w = dequantize(packed);
  cases.forEach((c, i) => expectClose(`${label} ${c.kernel} M=${c.m}`, outs[i], reference(c.x, w, c.m, n, k, bias)));
  linear.destroy();
}

// Both kernel shapes run on any adapter: the GPU one (GEMV for a few rows,
// tiled GEMM with workgroup memory) and the CPU one (the barrier-free GEMM for
// every M). A CPU-shaped layer runs its GEMM whichever kernel a case names.
const SHAPES = [['GPU-shaped', GPU_TUNING], ['CPU-shaped', CPU_TUNING]] as const;

for (const [shape, tuning] of SHAPES) {
  describe(`qmatmul (${shape}): packed GEMV and GEMM against x · dequantize(W)ᵀ`, () => {
    const groups: (number | 'row')[] = [32, 64, 128, 'row'];
    for (const bits of [2, 3, 4, 8] as QuantBits[]) {
      it(`${bits}-bit, groups 32/64/128/row, sym and asym, N=67 K=384`, async () => {
        for (const groupSize of groups) {
          for (const symmetric of [false, true]) {
            await checkQuant(67, 384, { bits, groupSize, symmetric }, [
              { kernel: 'gemv', m: 1 },
              { kernel: 'gemm', m: 37 },
            ], { tuning });
          }
        }
      });
    }

    it('rows padded to 16 bytes (2 bits at K=96, 3 bits at K=96 and K=160), with bias, M=3 GEMV and M=70 GEMM (two row tiles)', async () => {
      const ms = [{ kernel: 'gemv' as const, m: 3 }, { kernel: 'gemm' as const, m: 70 }];
      await checkQuant(133, 96, { bits: 2, groupSize: 32, symmetric: false }, ms, { bias: true, tuning });
      await checkQuant(133, 96, { bits: 3, groupSize: 32, symmetric: true }, ms, { bias: true, tuning });
      await checkQuant(133, 160, { bits: 3, groupSize: 32, symmetric: false }, ms, { bias: true, tuning });
    });

    it('splits large dispatches into a 2D grid', async () => {
      // 4 bits at K=384: GEMV 8 workgroups (teams of 8, 128 rows each); GEMM 2 · 16 tiles;
      // CPU GEMM ⌈100/8⌉ · ⌈1000/16⌉ = 819 blocks → 13 workgroups. All exceed 6.
      await checkQuant(1000, 384, { bits: 4, groupSize: 128, symmetric: false }, [
        { kernel: 'gemv', m: 1 },
        { kernel: 'gemm', m: 100 },
      ], { maxWorkgroupsPerDimension: 6, bias: true, tuning });
    });
  });
}

describe('QuantLinear', () => {
  it('refuses shapes and operands that do not fit, saying why', () => {
    expect(() => quantizeRtn(new Float32Array(67 * 100), 67, 100, { bits: 4, groupSize: 128, symmetric: false })).toThrow(
      /K=100 is not a multiple of group size 128/,
    );
    const packed = quantizeRtn(randomWeights(8, 64, 5), 8, 64, { bits: 4, groupSize: 32, symmetric: false });
    expect(() => new QuantLinear(ledger, { ...packed, scales: packed.scales.subarray(1) }, { label: 'bad' })).toThrow(
      /bad \[8, 64\] W4 g32: scales hold 15, expected 16/,
    );
    const linear = new QuantLinear(ledger, packed, { label: 'mlp.up' });
    const x = ledger.createBuffer('activations', 64 * 4, GPUBufferUsage.STORAGE, 'x');
    const y = ledger.createBuffer('activations', 8 * 4, GPUBufferUsage.STORAGE, 'y');
    expect(() => linear.encode(device.createCommandEncoder(), x, y, 2)).toThrow(/mlp.up: x holds 256 bytes, less than M·K·4 = 2·64·4 = 512/);
    linear.destroy();
    ledger.release(x);
    ledger.release(y);
  });

  it('picks its kernels from the tuning: GEMV for a few rows on GPUs, the CPU GEMM for every M on CPU adapters', () => {
    const packed = quantizeRtn(randomWeights(8, 64, 5), 8, 64, { bits: 4, groupSize: 32, symmetric: false });
    const gpu = new QuantLinear(ledger, packed, { tuning: GPU_TUNING });
    const cpu = new QuantLinear(ledger, packed, { tuning: CPU_TUNING });
    const f32 = new F32Linear(ledger, randomWeights(8, 64, 6), 8, 64, { tuning: CPU_TUNING });
    expect([gpu.kernelFor(1), gpu.kernelFor(4), gpu.kernelFor(5)]).toEqual(['gemv', 'gemv', 'gemm']);
    expect([cpu.cpu, cpu.kernelFor(1), f32.kernelFor(1)]).toEqual([true, 'gemm', 'gemm']);
    gpu.destroy();
    cpu.destroy();
    f32.destroy();
  });

  it('holds exactly the packed bytes as weights', () => {
    const before = ledger.snapshot().current.weights;
    const packed = quantizeRtn(randomWeights(64, 256, 9), 64, 256, { bits: 4, groupSize: 128, symmetric: false });
    const linear = new QuantLinear(ledger, packed);
    // codes 64·128 B + scales 64·2·4 B + zero points 64·2 B (already a multiple of 4)
    expect(linear.packedBytes).toBe(64 * 128 + 64 * 8 + 128);
    expect(ledger.snapshot().current.weights - before).toBe(linear.bytes);
    expect(linear.bytes).toBe(linear.packedBytes);
    expect(linear.variant).toBe('q4 g128 asym');
    linear.destroy();
    expect(ledger.snapshot().current.weights).toBe(before);
  });
});

for (const [shape, tuning] of SHAPES) {
  describe(`matmul_f32 (${shape}): GEMV and GEMM against x · Wᵀ`, () => {
    async function checkF32(m: number, n: number, k: number, kernels: LinearKernel[], opts: CheckOptions = {}) {
      const seed = m * 13 + n * 7 + k;
      const w = randomWeights(n, k, seed);
      const bias = opts.bias ? randomFloats(n, seed + 1) : undefined;
      const linear = new F32Linear(ledger, w, n, k, { bias, label: `f32 [${n}x${k}]`, maxWorkgroupsPerDimension: opts.maxWorkgroupsPerDimension, tuning });
      const cases = kernels.map((kernel, i) => ({ kernel, m, x: randomFloats(m * k, seed + 5 * (i + 2)) }));
      const outs = await runLinear(linear, cases);
      cases.forEach((c, i) => expectClose(`f32 ${m}x${n}x${k} ${c.kernel}`, outs[i], reference(c.x, w, m, n, k, bias)));
      linear.destroy();
    }

    it('odd shapes: M·N·K = 37·67·45 (GEMM and GEMV), M=1, K a multiple of 4 (vec4 GEMV)', async () => {
      await checkF32(37, 67, 45, ['gemm', 'gemv'], { bias: true });
      await checkF32(1, 67, 45, ['gemv', 'gemm']);
      await checkF32(2, 133, 48, ['gemv', 'gemm'], { bias: true });
      await checkF32(65, 1, 1, ['gemm', 'gemv']);
    });

    it('splits large dispatches into a 2D grid', async () => {
      // GEMV 8 workgroups; GEMM 2 · 16 tiles; CPU GEMM ⌈100/16⌉ · ⌈1000/16⌉ = 441 blocks → 7 workgroups.
      await checkF32(100, 1000, 64, ['gemv', 'gemm'], { maxWorkgroupsPerDimension: 6 });
    });
  });
}
