/**
 * The Atom-style W4A4 kernel (shaders/w4a4.wgsl through W4A4Linear) against
 * the CPU reference of src/core/quant/atom.ts, with dot4I8Packed and with the
 * plain-integer fallback: the per-token activation scales (int8 outliers in
 * calibration order, int4 groups) equal the CPU quantizer's, and its codes
 * but for rounding ties; the output of both parts together is within 2e-6 of
 * the float64 product of the GPU's codes (relative to the largest output).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { dawnDevice } from '../helpers/dawn';
import { maxRelError, randomF32 } from '../helpers/random';
import { MemoryLedger } from '../../src/gpu/ledger';
import { readBuffer, readF32 } from '../../src/gpu/readback';
import { W4A4Linear } from '../../src/gpu/w4a4-linear';
import { atomMatmulRef, atomWordsPerRow, outlierOrder, quantizeAtomRows } from '../../src/core/quant/atom';

let device: GPUDevice;
let ledger: MemoryLedger;

function upload(data: Float32Array | Uint32Array): GPUBuffer {
  const b = device.createBuffer({ size: Math.max(16, data.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(b, 0, data);
  return b;
}

beforeAll(async () => {
  ({ device } = await dawnDevice());
  ledger = new MemoryLedger(device);
});

const shapes = [
  { m: 5, n: 13, k: 88, outliers: 8, groupSize: 16 },
  { m: 3, n: 7, k: 96, outliers: 0, groupSize: 32 },
  { m: 1, n: 9, k: 72, outliers: 40, groupSize: 32 },
];

describe('W4A4 with int8 outlier channels', () => {
  for (const packedDot of [true, false]) {
    for (const s of shapes) {
      it(`[${s.m}×${s.k}]·[${s.n}×${s.k}]ᵀ, ${s.outliers} outliers, groups of ${s.groupSize} (${packedDot ? 'dot4I8Packed' : 'plain integers'})`, async () => {
        const x = randomF32(s.m * s.k, 31 + s.k, 1);
        // a few channels with large activations: the outliers the calibration order finds
        const magnitude = new Float32Array(s.k).map((_, j) => (j % 11 === 3 ? 20 : 1));
        for (let r = 0; r < s.m; r++) for (let j = 0; j < s.k; j++) x[r * s.k + j] *= magnitude[j];
        const w = randomF32(s.n * s.k, 32 + s.k, 0.3);
        const bias = randomF32(s.n, 33);
        const perm = outlierOrder(magnitude, s.outliers);
        const wq = quantizeAtomRows(w, s.n, s.k, perm, s.outliers, s.groupSize);
        const layer = new W4A4Linear(ledger, wq, perm, { bias, packedDot, label: 'atom' });
        const y = upload(new Float32Array(s.m * s.n).fill(Number.NaN));
        const enc = device.createCommandEncoder();
        layer.encode(enc, upload(x), y, s.m);
        device.queue.submit([enc.finish()]);
        const got = await readF32(device, y, s.m * s.n);
        const xq = quantizeAtomRows(x, s.m, s.k, perm, s.outliers, s.groupSize);
        const buffers = layer.activationBuffers(s.m);
        const codes = new Uint32Array(await readBuffer(device, buffers.codes, s.m * atomWordsPerRow(s.k, s.outliers) * 4));
        const scales = new Float32Array(await readBuffer(device, buffers.scales, xq.scales.byteLength));
        expect(Array.from(scales)).toEqual(Array.from(xq.scales));
        // codes equal but where x / scale lands on a rounding tie within the GPU's division error
        let same = 0;
        for (let i = 0; i < codes.length; i++) if (codes[i] === xq.codes[i]) same++;
        expect(same / codes.length).toBeGreaterThanOrEqual(0.97);
        const gpuX = { ...xq, codes, scales };
        expect(maxRelError(got, atomMatmulRef(gpuX, wq, bias))).toBeLessThan(2e-6);
        // the quantization error itself: outliers in int8 keep it moderate
        const exact = new Float64Array(s.m * s.n);
        for (let a = 0; a < s.m; a++) for (let b = 0; b < s.n; b++) {
          let v = bias[b];
          for (let j = 0; j < s.k; j++) v += x[a * s.k + j] * w[b * s.k + j];
          exact[a * s.n + b] = v;
        }
        expect(maxRelError(got, exact)).toBeLessThan(s.outliers ? 0.2 : 0.6);
        layer.destroy();
      });
    }
  }
});
