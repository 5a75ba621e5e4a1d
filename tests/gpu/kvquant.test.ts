/**
 * The quantized KV cache on the GPU: the store kernel against the CPU
 * quantizer of src/core/quant/kv.ts, and attention over the quantized cache
 * against a float64 attention over the cache it dequantizes to — both kernel
 * shapes (GPU-tiled and CPU-serial), int8 and int4, odd head counts, rows
 * appended at an offset as decode steps do.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { dawnDevice } from '../helpers/dawn';
import { maxRelError, randomF32 } from '../helpers/random';
import { DecoderKernels, UniformArena } from '../../src/gpu/kernels';
import { CPU_TUNING, GPU_TUNING } from '../../src/gpu/tuning';
import { readBuffer, readF32 } from '../../src/gpu/readback';
import { attentionRef } from '../../src/core/reference';
import { dequantizeKvRows, f16Value, kvWordsPerRow, quantizeKvRows, type KvCacheSpec } from '../../src/core/quant/kv';

// attention over the same dequantized cache: f32 kernel vs float64, relative to the largest output
const TOL = 2e-6;

let device: GPUDevice;

function upload(data: Float32Array | Uint32Array, bytes = data.byteLength): GPUBuffer {
  const b = device.createBuffer({ size: Math.max(16, bytes), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(b, 0, data);
  return b;
}

beforeAll(async () => {
  ({ device } = await dawnDevice());
});

const cases: { heads: number; kvHeads: number; headDim: number; kv: KvCacheSpec; rows: number; pastLen: number }[] = [
  { heads: 6, kvHeads: 2, headDim: 24, kv: { bits: 8, groupSize: 8 }, rows: 5, pastLen: 3 },
  { heads: 3, kvHeads: 3, headDim: 32, kv: { bits: 4, groupSize: 16 }, rows: 4, pastLen: 5 },
  { heads: 4, kvHeads: 1, headDim: 16, kv: { bits: 4, groupSize: 16 }, rows: 1, pastLen: 70 },
];

for (const [tuningName, tuning] of [['GPU-shaped', GPU_TUNING], ['CPU-shaped', CPU_TUNING]] as const) {
  describe(`quantized KV attention (${tuningName})`, () => {
    for (const c of cases) {
      it(`int${c.kv.bits} g${c.kv.groupSize}: ${c.heads} heads over ${c.kvHeads} KV heads of ${c.headDim}, ${c.rows} rows after ${c.pastLen}`, async () => {
        const kernels = new DecoderKernels(device, tuning);
        const arena = new UniformArena(device, 16);
        const kvDim = c.kvHeads * c.headDim;
        const positions = c.pastLen + c.rows;
        const k = randomF32(positions * kvDim, 11 + c.headDim, 2);
        const v = randomF32(positions * kvDim, 12 + c.headDim, 1.5);
        for (let i = 0; i < v.length; i += 7) v[i] += 3; // groups with an offset
        const q = randomF32(c.rows * c.heads * c.headDim, 13);
        const wpr = kvWordsPerRow(kvDim, c.kv.bits);
        const groups = kvDim / c.kv.groupSize;
        const cache = () => [upload(new Uint32Array(positions * wpr).fill(0xdeadbeef)), upload(new Uint32Array(positions * groups))];
        const [kCodes, kScales] = cache();
        const [vCodes, vScales] = cache();
        const out = upload(new Float32Array(c.rows * c.heads * c.headDim).fill(Number.NaN));
        // the past rows first (a prefill), then the new rows at their offset (decode steps)
        const parts = [[0, c.pastLen], [c.pastLen, c.rows]].filter(([, n]) => n > 0);
        arena.reset();
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        for (const [offset, n] of parts) {
          kernels.kvStore(pass, arena, { rows: n, kvDim, kv: c.kv, rowOffset: offset, x: upload(k.slice(offset * kvDim, (offset + n) * kvDim)), codes: kCodes, scales: kScales });
          kernels.kvStore(pass, arena, { rows: n, kvDim, kv: c.kv, rowOffset: offset, x: upload(v.slice(offset * kvDim, (offset + n) * kvDim)), codes: vCodes, scales: vScales });
        }
        kernels.attentionKv(pass, arena, { rows: c.rows, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, pastLen: c.pastLen, kv: c.kv, q: upload(q), kCodes, kScales, vCodes, vScales, out });
        pass.end();
        arena.flush();
        device.queue.submit([enc.finish()]);

        const read = async (codes: GPUBuffer, scales: GPUBuffer) => ({
          rows: positions, kvDim, spec: c.kv,
          codes: new Uint32Array(await readBuffer(device, codes, positions * wpr * 4)),
          params: new Uint32Array(await readBuffer(device, scales, positions * groups * 4)),
        });
        const gotK = await read(kCodes, kScales);
        const gotV = await read(vCodes, vScales);
        // the store kernel writes what the CPU quantizer writes: scale/offset pairs equal,
        // codes off by at most one step where (x − lo)/scale lands on a rounding tie
        for (const [got, x] of [[gotK, k], [gotV, v]] as const) {
          const want = quantizeKvRows(x, positions, kvDim, c.kv);
          let paramsEqual = 0;
          for (let i = 0; i < want.params.length; i++) if (got.params[i] === want.params[i]) paramsEqual++;
          expect(paramsEqual / want.params.length).toBeGreaterThanOrEqual(0.98);
          const a = dequantizeKvRows(got);
          const b = dequantizeKvRows(want);
          let far = 0;
          for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) > 1e-6 + 1.01 * Math.abs(b[i] - x[i]) + 0.02 * (c.kv.bits === 4 ? 1 : 0.1)) far++;
          expect(far).toBe(0);
          // and the dequantized cache is within half a step of the input (plus the f16 rounding of scale and offset)
          const maxq = (1 << c.kv.bits) - 1;
          for (let i = 0; i < a.length; i++) {
            const p = got.params[Math.floor(i / c.kv.groupSize)];
            const scale = f16Value(p & 0xffff);
            const lo = f16Value(p >>> 16);
            const bound = 0.5 * scale + 2 ** -10 * (Math.abs(x[i]) + Math.abs(lo) + maxq * scale) + 1e-6;
            if (!(Math.abs(a[i] - x[i]) <= bound)) expect.fail(`element ${i}: ${a[i]} for ${x[i]}, more than ${bound} off`);
          }
        }
        const got = await readF32(device, out, c.rows * c.heads * c.headDim);
        const want = attentionRef(q, dequantizeKvRows(gotK), dequantizeKvRows(gotV), c.rows, c.heads, c.kvHeads, c.headDim, c.pastLen);
        expect(maxRelError(got, want)).toBeLessThan(TOL);
        // against unquantized keys and values the error is the quantization's: small at 8 bits
        const exact = attentionRef(q, k, v, c.rows, c.heads, c.kvHeads, c.headDim, c.pastLen);
        expect(maxRelError(got, exact)).toBeLessThan(c.kv.bits === 8 ? 0.02 : 0.3);
        kernels.destroy();
        arena.destroy();
      });
    }
  });
}
