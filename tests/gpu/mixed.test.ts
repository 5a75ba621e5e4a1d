/**
 * The mixed-precision linear layer (two packed row blocks through the packed
 * kernels, scattered by the row index) against a float64 product with the
 * weights its CPU reference dequantizes to (src/core/quant/mixllm.ts), at odd
 * shapes, both kernel shapes, with and without bias, all rows high or low.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { dawnDevice } from '../helpers/dawn';
import { maxRelError, randomF32, rng } from '../helpers/random';
import { MemoryLedger } from '../../src/gpu/ledger';
import { readF32 } from '../../src/gpu/readback';
import { MixedLinear } from '../../src/gpu/mixed-linear';
import { CPU_TUNING, GPU_TUNING } from '../../src/gpu/tuning';
import { dequantizeMixed, mixedBytes, packMixed } from '../../src/core/quant/mixllm';
import { linearRef } from '../../src/core/reference';

// f32 kernels against float64 with the same dequantized weights, relative to the largest output
const TOL = 2e-5;

let device: GPUDevice;
let ledger: MemoryLedger;

function upload(data: Float32Array): GPUBuffer {
  const b = device.createBuffer({ size: Math.max(16, data.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(b, 0, data);
  return b;
}

beforeAll(async () => {
  ({ device } = await dawnDevice());
  ledger = new MemoryLedger(device);
});

const cases = [
  { m: 5, n: 37, k: 96, fraction: 0.2, low: 4, high: 8, groupSize: 32, bias: true },
  { m: 1, n: 19, k: 64, fraction: 0.5, low: 3, high: 8, groupSize: 64, bias: false },
  { m: 3, n: 11, k: 128, fraction: 0, low: 2, high: 4, groupSize: 128, bias: true },
  { m: 2, n: 9, k: 64, fraction: 1, low: 4, high: 8, groupSize: 32, bias: false },
] as const;

// the GPU-shaped kernels (barriers: slow on SwiftShader) on the first two cases only
for (const [name, tuning, count] of [['GPU-shaped', GPU_TUNING, 2], ['CPU-shaped', CPU_TUNING, cases.length]] as const) {
  describe(`mixed-precision rows (${name})`, () => {
    for (const c of cases.slice(0, count)) {
      it(`[${c.m}×${c.k}]·[${c.n}×${c.k}]ᵀ, ${c.fraction * 100}% of rows W${c.high}, the rest W${c.low}, g${c.groupSize}${c.bias ? ', bias' : ''}`, async () => {
        const w = randomF32(c.n * c.k, 41 + c.n);
        const x = randomF32(c.m * c.k, 42 + c.n);
        const bias = c.bias ? randomF32(c.n, 43) : null;
        const r = rng(44);
        const order = Array.from({ length: c.n }, (_, i) => i).sort(() => r() - 0.5);
        const high = new Uint8Array(c.n);
        for (const i of order.slice(0, Math.round(c.fraction * c.n))) high[i] = 1;
        const mixed = packMixed(w, c.n, c.k, high, { high: { bits: c.high, groupSize: c.groupSize, symmetric: false }, low: { bits: c.low, groupSize: c.groupSize, symmetric: false } });
        const layer = new MixedLinear(ledger, mixed, { bias: bias ?? undefined, tuning, label: 'mixed' });
        expect(layer.packedBytes).toBe(mixedBytes(mixed));
        const y = upload(new Float32Array(c.m * c.n).fill(Number.NaN));
        const enc = device.createCommandEncoder();
        layer.encode(enc, upload(x), y, c.m);
        device.queue.submit([enc.finish()]);
        const got = await readF32(device, y, c.m * c.n);
        const want = linearRef(x, c.m, dequantizeMixed(mixed), c.n, c.k, bias);
        expect(maxRelError(got, want)).toBeLessThan(TOL);
        layer.destroy();
      });
    }
  });
}
