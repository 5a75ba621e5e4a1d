/**
 * GPTQ on the GPU (src/gpu/gptq.ts, shaders/gptq_*.wgsl) against the float64
 * reference (src/core/quant/gptq.ts):
 * - Hessian accumulation H += xᵀx over two batches of odd row counts (one at
 *   a row offset) vs XᵀX in float64, GPU- and CPU-shaped kernels: every
 *   element within 1e-5 · Σ|x_i x_j|;
 * - U (H'⁻¹ = UᵀU) from the blocked Cholesky + triangular inverse vs float64,
 *   with and without act-order, K = 96, 128 and 160 (3 to 5 blocks, partial
 *   64-wide tiles), GPU- and CPU-shaped kernels: max |ΔU| < 2e-4 · max |U|;
 * - gptqQuantize vs gptqReference on a 64×256 layer (32×256 for the
 *   GPU-shaped kernels) with a known correlated Hessian, 4 and 3 bits,
 *   g32 / g64 / g128 / row, sym / asym, act-order, lazy batches of 128, 96
 *   and 64: codes equal on ≥ 99 % of weights, GPTQ's loss
 *   and the proxy loss tr((W − Ŵ) H (W − Ŵ)ᵀ) within 1 %, scales within 1e-5
 *   relative (and zero points equal) on every group of a row up to the row's
 *   first differing code;
 * - dead inputs come out as zero weights (act-order, static groups);
 * - a Hessian float32 cannot factor at the requested dampening is factored
 *   with more, reported, and matches the reference at that dampening;
 * - a factorization shared by two layers gives what each layer's own gives;
 * - a cancelled run frees every buffer it made.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { dequantize, schemeName, unpackCodes, type QuantScheme } from '../../src/core/quant/format';
import {
  actOrderPermutation,
  dampeningLambda,
  gptqReference,
  inverseCholeskyUpper,
  proxyLoss,
} from '../../src/core/quant/gptq';
import { HessianAccumulator, factorHessian, gptqQuantize } from '../../src/gpu/gptq';
import { MemoryLedger } from '../../src/gpu/ledger';
import { readF32 } from '../../src/gpu/readback';
import { CPU_TUNING, GPU_TUNING, type KernelTuning } from '../../src/gpu/tuning';
import { dawnDevice } from '../helpers/dawn';
import { randomF32, rng } from '../helpers/random';

let device: GPUDevice;
let ledger: MemoryLedger;

beforeAll(async () => {
  ({ device } = await dawnDevice());
  ledger = new MemoryLedger(device);
});

/** Correlated inputs X [tokens, k] with channel scales from 0.2 to 3. */
function inputs(tokens: number, k: number, seed: number): Float32Array {
  const z = randomF32(tokens * k, seed);
  const x = new Float32Array(tokens * k);
  for (let t = 0; t < tokens; t++) {
    for (let j = 0; j < k; j++) {
      const v = z[t * k + j] + 0.7 * (j > 0 ? z[t * k + j - 1] : 0) + 0.4 * z[t * k + ((j * 7) % k)];
      x[t * k + j] = v * (0.2 + ((j * 13) % 29) / 10);
    }
  }
  return x;
}

/** XᵀX in float64 (rows from..to of x), and Σ|x_i x_j| for the tolerance. */
function gram(x: Float32Array, k: number, from: number, to: number, h = new Float64Array(k * k), mag = new Float64Array(k * k)) {
  for (let t = from; t < to; t++) {
    for (let i = 0; i < k; i++) {
      const xi = x[t * k + i];
      for (let j = 0; j < k; j++) {
        const p = xi * x[t * k + j];
        h[i * k + j] += p;
        mag[i * k + j] += Math.abs(p);
      }
    }
  }
  return { h, mag };
}

/** Upload a float64 Hessian rounded to f32; returns the buffer and the rounded float64 copy. */
function uploadHessian(h: Float64Array): { buffer: GPUBuffer; h32: Float64Array } {
  const f = Float32Array.from(h);
  return { buffer: ledger.upload('scratch', f, 'test hessian'), h32: Float64Array.from(f) };
}

describe('GPTQ on the GPU', () => {
  it.each([
    ['GPU', GPU_TUNING],
    ['CPU', CPU_TUNING],
  ] as const)('accumulates H = XᵀX over batches with odd row counts and an offset (%s kernel)', async (_, tuning) => {
    // Three 128-wide tiles of the GPU kernel, the last one partial.
    const k = 288;
    const x = inputs(64, k, 5);
    const xBuffer = ledger.upload('activations', x, 'test x');
    const acc = new HessianAccumulator(ledger, k, 'test hessian', tuning);
    const encoder = device.createCommandEncoder();
    acc.add(encoder, xBuffer, 37);
    acc.add(encoder, xBuffer, 21, 40);
    device.queue.submit([encoder.finish()]);
    expect(acc.samples).toBe(58);
    const got = await readF32(device, acc.buffer, k * k);
    const { h, mag } = gram(x, k, 0, 37);
    gram(x, k, 40, 61, h, mag);
    for (let i = 0; i < k * k; i++) expect(Math.abs(got[i] - h[i])).toBeLessThanOrEqual(1e-5 * mag[i] + 1e-30);
    acc.destroy();
    ledger.release(xBuffer);
  });

  for (const [k, tuning, actOrder] of [[96, CPU_TUNING, false], [160, CPU_TUNING, true], [128, GPU_TUNING, false], [96, GPU_TUNING, true]] as const) {
    {
      it(`U of H'⁻¹ matches float64 at K=${k}${actOrder ? ' with act-order' : ''} (${tuning.cpu ? 'CPU' : 'GPU'} kernels)`, async () => {
        const x = inputs(3 * k, k, 100 + k);
        const { h } = gram(x, k, 0, 3 * k);
        const { buffer, h32 } = uploadHessian(h);
        const factor = await factorHessian(ledger, buffer, k, { actOrder, dampening: 0.01, tuning });
        const diag = Array.from({ length: k }, (_, j) => h32[j * k + j]);
        const order = actOrder ? actOrderPermutation(diag) : Int32Array.from({ length: k }, (_, j) => j);
        expect(Array.from(factor.order)).toEqual(Array.from(order));
        const lambda = dampeningLambda(diag, 0.01);
        const hp = new Float64Array(k * k);
        for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) hp[i * k + j] = h32[order[i] * k + order[j]] + (i === j ? lambda : 0);
        const want = inverseCholeskyUpper(hp, k);
        const got = await readF32(device, factor.u, k * k);
        let scale = 0;
        let err = 0;
        for (let i = 0; i < k * k; i++) {
          scale = Math.max(scale, Math.abs(want[i]));
          err = Math.max(err, Math.abs(got[i] - want[i]));
        }
        expect(err).toBeLessThan(2e-4 * scale);
        ledger.release(factor.u);
        ledger.release(buffer);
      });
    }
  }

  it('factors again with more dampening when float32 cannot factor H with the requested one', async () => {
    const k = 96;
    const n = 32;
    const { h } = gram(inputs(3 * k, k, 300), k, 0, 3 * k);
    // Couple the two weakest inputs a little more than H + 0.01·mean(diag H)·I allows.
    const diag = Array.from({ length: k }, (_, j) => h[j * k + j]);
    const [a, b] = diag.map((d, j) => [d, j]).sort((x, y) => x[0] - y[0]).slice(0, 2).map(([, j]) => j);
    const lambda = dampeningLambda(diag, 0.01);
    h[a * k + b] = h[b * k + a] = 1.02 * Math.sqrt((h[a * k + a] + lambda) * (h[b * k + b] + lambda));
    const { buffer, h32 } = uploadHessian(h);
    const scheme: QuantScheme = { bits: 4, groupSize: 32, symmetric: false };
    const wk = randomF32(n * k, 301, 0.1);
    const gpu = await gptqQuantize(ledger, wk, n, k, buffer, scheme, { dampening: 0.01 });
    expect(gpu.dampening).toBe(0.1);
    expect(() => gptqReference(wk, n, k, h32, scheme, { dampening: 0.01 })).toThrow(/not positive definite/);
    const ref = gptqReference(wk, n, k, h32, scheme, { dampening: 0.1 });
    const x = unpackCodes(gpu.packed);
    const y = unpackCodes(ref.packed);
    let same = 0;
    for (let i = 0; i < x.length; i++) if (x[i] === y[i]) same++;
    expect(same / x.length).toBeGreaterThanOrEqual(0.99);
    ledger.release(buffer);
  });

  const n = 64;
  const k = 256;
  const r = rng(77);
  const weights = randomF32(n * k, 78, 0.1).map((v, i) => v * (0.5 + (Math.floor(i / k) % 5) * 0.3) * (r() < 0.01 ? 5 : 1));
  const hessian = gram(inputs(512, k, 79), k, 0, 512).h;

  const cases: [QuantScheme, { actOrder?: boolean; blockSize?: number; tuning?: KernelTuning }][] = [
    [{ bits: 4, groupSize: 128, symmetric: false }, {}],
    [{ bits: 4, groupSize: 32, symmetric: true }, { blockSize: 64 }],
    [{ bits: 3, groupSize: 'row', symmetric: false }, {}],
    [{ bits: 3, groupSize: 128, symmetric: true }, { actOrder: true }],
    [{ bits: 4, groupSize: 32, symmetric: false }, { actOrder: true, blockSize: 96 }],
    // The GPU-shaped kernels (workgroup tiles, barriers) on whatever adapter runs the tests,
    // on the first 32 rows (SwiftShader pays for every barrier).
    [{ bits: 4, groupSize: 32, symmetric: true }, { blockSize: 64, tuning: GPU_TUNING }],
    [{ bits: 3, groupSize: 64, symmetric: false }, { actOrder: true, tuning: GPU_TUNING }],
  ];
  for (const [scheme, options] of cases) {
    const n = options.tuning ? 32 : 64;
    const w = weights.subarray(0, n * k);
    const name = `${schemeName(scheme)}${options.actOrder ? ' act-order' : ''}${options.blockSize ? ` blocks of ${options.blockSize}` : ''}${options.tuning ? ' (GPU kernels)' : ''}`;
    it(`gptqQuantize matches the reference: ${name}`, async () => {
      const { buffer, h32 } = uploadHessian(hessian);
      const before = ledger.snapshot().currentTotal;
      const gpu = await gptqQuantize(ledger, w, n, k, buffer, scheme, options);
      expect(ledger.snapshot().currentTotal).toBe(before);
      const ref = gptqReference(w, n, k, h32, scheme, options);
      const a = unpackCodes(gpu.packed);
      const b = unpackCodes(ref.packed);
      let same = 0;
      for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
      expect(same / a.length).toBeGreaterThanOrEqual(0.99);
      expect(Math.abs(gpu.loss - ref.loss) / ref.loss).toBeLessThan(0.01);
      const proxy = proxyLoss(w, dequantize(gpu.packed), n, k, h32);
      const proxyRef = proxyLoss(w, ref.dequantized, n, k, h32);
      expect(Math.abs(proxy - proxyRef) / proxyRef).toBeLessThan(0.01);
      expect(gpu.packed.wordsPerRow).toBe(ref.packed.wordsPerRow);
      // A code decided differently changes the error fed to the rest of its row, so grids are
      // compared on the groups before a row's first difference (static groups: all of them).
      const groupSize = gpu.packed.groupSize;
      const groups = k / groupSize;
      const fixed = options.actOrder || groupSize === k;
      let compared = 0;
      for (let row = 0; row < n; row++) {
        let agree = true;
        for (let g = 0; g < groups; g++) {
          const from = row * k + g * groupSize;
          if (!fixed && !agree) break;
          const s = row * groups + g;
          expect(Math.abs(gpu.packed.scales[s] - ref.packed.scales[s])).toBeLessThanOrEqual(1e-5 * ref.packed.scales[s]);
          if (ref.packed.zeros) expect(gpu.packed.zeros![s]).toBe(ref.packed.zeros[s]);
          compared++;
          for (let j = from; j < from + groupSize; j++) agree &&= a[j] === b[j];
        }
      }
      expect(compared).toBeGreaterThan((n * groups) / 2);
      expect(Object.keys(gpu.seconds)).toEqual(expect.arrayContaining(['prepare', 'cholesky', 'inverse', 'sweep', 'pack']));
      ledger.release(buffer);
    });
  }

  const w = weights;

  it('dead inputs (H_jj = 0) become zero weights, as in the reference', async () => {
    const dead = Float64Array.from(hessian);
    for (const j of [5, 100]) for (let i = 0; i < k; i++) dead[j * k + i] = dead[i * k + j] = 0;
    const { buffer, h32 } = uploadHessian(dead);
    const scheme: QuantScheme = { bits: 4, groupSize: 64, symmetric: false };
    const gpu = await gptqQuantize(ledger, w, n, k, buffer, scheme, { actOrder: true });
    const ref = gptqReference(w, n, k, h32, scheme, { actOrder: true });
    const a = unpackCodes(gpu.packed);
    const b = unpackCodes(ref.packed);
    const deq = dequantize(gpu.packed);
    let same = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
    expect(same / a.length).toBeGreaterThanOrEqual(0.99);
    for (let row = 0; row < n; row++) for (const j of [5, 100]) expect(deq[row * k + j]).toBe(0);
    ledger.release(buffer);
  });

  it('layers sharing an input share one factorization, with the same result', async () => {
    const { buffer } = uploadHessian(hessian);
    const scheme: QuantScheme = { bits: 4, groupSize: 64, symmetric: false };
    const factor = await factorHessian(ledger, buffer, k, { actOrder: true });
    const shared = await gptqQuantize(ledger, w, n, k, buffer, scheme, { actOrder: true, factor });
    const own = await gptqQuantize(ledger, w, n, k, buffer, scheme, { actOrder: true });
    expect(shared.packed.codes).toEqual(own.packed.codes);
    expect(shared.packed.scales).toEqual(own.packed.scales);
    expect(shared.loss).toBe(own.loss);
    expect(shared.seconds.cholesky).toBeUndefined();
    ledger.release(factor.u);
    ledger.release(buffer);
  });

  it('cancels between blocks and frees its buffers', async () => {
    const { buffer } = uploadHessian(hessian);
    const before = ledger.snapshot().currentTotal;
    const controller = new AbortController();
    controller.abort(new Error('cancelled by the test'));
    await expect(
      gptqQuantize(ledger, w, n, k, buffer, { bits: 4, groupSize: 128, symmetric: false }, { signal: controller.signal }),
    ).rejects.toThrow('cancelled by the test');
    expect(ledger.snapshot().currentTotal).toBe(before);
    ledger.release(buffer);
  });
});
