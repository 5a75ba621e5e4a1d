/**
 * The W8A8 kernels (shaders/matmul_i8.wgsl through W8A8Linear) against the
 * CPU reference of src/core/quant/smoothquant.ts, with WGSL's dot4I8Packed
 * and with the plain-integer fallback: the int32 sums equal the CPU's integer
 * dot products exactly; the per-token activation codes equal the CPU
 * quantizer's; the rescaled output is within 1e-6 (relative) of float64.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { dawnDevice } from '../helpers/dawn';
import { randomF32, rng } from '../helpers/random';
import { MemoryLedger } from '../../src/gpu/ledger';
import { readBuffer, readF32 } from '../../src/gpu/readback';
import { W8A8Linear } from '../../src/gpu/w8a8-linear';
import { packedDotAvailable } from '../../src/gpu/act-linear';
import { int8DotRef, int8RescaleRef, quantizeInt8Rows, type Int8Rows } from '../../src/core/quant/smoothquant';

let device: GPUDevice;
let ledger: MemoryLedger;

function upload(data: Float32Array | Uint32Array): GPUBuffer {
  const b = device.createBuffer({ size: Math.max(16, data.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(b, 0, data);
  return b;
}

function run(record: (enc: GPUCommandEncoder) => void): void {
  const enc = device.createCommandEncoder();
  record(enc);
  device.queue.submit([enc.finish()]);
}

/** Random int8 rows: codes over the whole range −127 … 127 (both ends included), unit scales. */
function randomCodes(rows: number, k: number, seed: number): Int8Rows {
  const r = rng(seed);
  const x = Float32Array.from({ length: rows * k }, () => Math.round(r() * 254 - 127));
  x[0] = 127;
  x[1] = -127;
  const q = quantizeInt8Rows(x, rows, k);
  return { ...q, scales: new Float32Array(rows).fill(1) };
}

beforeAll(async () => {
  ({ device } = await dawnDevice());
  ledger = new MemoryLedger(device);
});

describe('W8A8 int8 × int8 product', () => {
  it('knows whether dot4I8Packed is there (Dawn reports the language feature)', () => {
    expect(typeof packedDotAvailable()).toBe('boolean');
  });

  for (const packedDot of [true, false]) {
    it(`int32 sums equal the CPU integer dot products exactly (${packedDot ? 'dot4I8Packed' : 'plain integers'})`, async () => {
      const [m, n, k] = [5, 13, 292];
      const w = randomCodes(n, k, 1);
      const x = randomCodes(m, k, 2);
      const layer = new W8A8Linear(ledger, w, { packedDot, label: 'exact' });
      const y = upload(new Float32Array(m * n).fill(Number.NaN));
      run((enc) => layer.encodeQuantized(enc, upload(x.codes), upload(x.scales), y, m));
      const got = await readF32(device, y, m * n);
      const want = int8DotRef(x, w);
      // |Σ| ≤ 292 · 127² < 2^24: the f32 of the int32 sum is the sum itself
      expect(Array.from(got)).toEqual(Array.from(want));
      layer.destroy();
    });

    it(`quantizes activations per token and rescales within 1e-6 (${packedDot ? 'dot4I8Packed' : 'plain integers'})`, async () => {
      const [m, n, k] = [7, 11, 52];
      const wf = randomF32(n * k, 3, 0.5);
      const xf = randomF32(m * k, 4, 2);
      xf[5] = 9; // an outlier channel value
      const bias = randomF32(n, 5);
      const w = quantizeInt8Rows(wf, n, k);
      const layer = new W8A8Linear(ledger, w, { packedDot, bias, label: 'full' });
      const y = upload(new Float32Array(m * n).fill(Number.NaN));
      run((enc) => layer.encode(enc, upload(xf), y, m));
      const got = await readF32(device, y, m * n);
      // the scratch now holds the GPU's activation codes: read them back through a second, exact run
      const xq = quantizeInt8Rows(xf, m, k);
      const acc = int8DotRef(xq, w);
      const want = int8RescaleRef(acc, xq, w, bias);
      for (let i = 0; i < want.length; i++) {
        const tol = 1e-6 * (Math.abs(want[i]) + Math.abs(bias[i % n])) + 1e-7;
        if (!(Math.abs(got[i] - want[i]) <= tol)) expect.fail(`y[${i}] = ${got[i]}, want ${want[i]} (±${tol})`);
      }
      // and close to the float product (the int8 error itself)
      let err = 0, ref = 0;
      for (let a = 0; a < m; a++) for (let b = 0; b < n; b++) {
        let s = bias[b];
        for (let j = 0; j < k; j++) s += xf[a * k + j] * wf[b * k + j];
        err = Math.max(err, Math.abs(got[a * n + b] - s));
        ref = Math.max(ref, Math.abs(s));
      }
      expect(err / ref).toBeLessThan(0.03);
      layer.destroy();
    });
  }

  it('activation codes and scales equal the CPU quantizer', async () => {
    const [m, k] = [9, 44];
    const xf = randomF32(m * k, 6, 3);
    const layer = new W8A8Linear(ledger, quantizeInt8Rows(randomF32(4 * k, 7), 4, k), { label: 'codes' });
    const y = upload(new Float32Array(m * 4));
    run((enc) => layer.encode(enc, upload(xf), y, m));
    const scratch = (layer as unknown as { xCodes: { get(b: number): { buffer: GPUBuffer } }; xScales: { get(b: number): { buffer: GPUBuffer } } });
    const codes = new Uint32Array(await readBuffer(device, scratch.xCodes.get(m * k).buffer, m * k));
    const scales = new Float32Array(await readBuffer(device, scratch.xScales.get(m * 4).buffer, m * 4));
    const want = quantizeInt8Rows(xf, m, k);
    expect(Array.from(scales)).toEqual(Array.from(want.scales));
    let same = 0;
    for (let i = 0; i < codes.length; i++) if (codes[i] === want.codes[i]) same++;
    expect(same / codes.length).toBeGreaterThanOrEqual(0.99);
    layer.destroy();
  });
});
