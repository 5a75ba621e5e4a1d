/**
 * Kernel checks of the activation-quantized linears (issue 8), for the GPU
 * entry: the W8A8 int8 × int8 product must equal the CPU's integer dot
 * products exactly (unit scales, so y is the int32 sum itself), with WGSL's
 * dot4I8Packed where the adapter has it and with the plain-integer fallback;
 * the Atom W4A4 kernel must match the float64 product of its codes.
 */
import { atomMatmulRef, outlierOrder, quantizeAtomRows } from '../../core/quant/atom';
import { int8At, quantizeInt8Rows, type Int8Rows } from '../../core/quant/smoothquant';
import { packedDotAvailable } from '../../gpu/act-linear';
import type { MemoryLedger } from '../../gpu/ledger';
import { readF32 } from '../../gpu/readback';
import { W4A4Linear } from '../../gpu/w4a4-linear';
import { W8A8Linear } from '../../gpu/w8a8-linear';
import type { CheckCase, KernelCheck } from './index';

/** A seeded generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomCodes(rows: number, k: number, seed: number): Int8Rows {
  const r = rng(seed);
  const q = quantizeInt8Rows(Float32Array.from({ length: rows * k }, () => Math.round(r() * 254 - 127)), rows, k);
  return { ...q, scales: new Float32Array(rows).fill(1) };
}

function opRate(perSecond: number): string {
  const [scale, unit] = perSecond >= 1e12 ? [1e12, 'TOP/s'] : perSecond >= 1e9 ? [1e9, 'GOP/s'] : [1e6, 'MOP/s'];
  return `${(perSecond / scale).toPrecision(3)} ${unit}`;
}

/** Wall-clock ms per run of `record` (after one warm-up). */
async function timeIt(device: GPUDevice, record: (enc: GPUCommandEncoder) => void, iterations: number): Promise<number> {
  const once = async (n: number) => {
    const enc = device.createCommandEncoder();
    for (let i = 0; i < n; i++) record(enc);
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  await once(1);
  const t = performance.now();
  await once(iterations);
  return (performance.now() - t) / iterations;
}

function upload(ledger: MemoryLedger, data: Float32Array | Uint32Array): GPUBuffer {
  return ledger.upload('scratch', data, 'check input');
}

function w8a8Case(m: number, n: number, k: number, packedDot: boolean, heavy: boolean): CheckCase {
  const label = `${m}×${n}×${k} ${packedDot ? 'dot4I8Packed' : 'plain int'}`;
  return {
    label,
    heavy,
    async run(ledger) {
      const device = ledger.device;
      const w = randomCodes(n, k, 1 + n);
      const x = randomCodes(m, k, 2 + m);
      const layer = new W8A8Linear(ledger, w, { packedDot, label: 'check w8a8' });
      const xc = upload(ledger, x.codes);
      const xs = upload(ledger, x.scales);
      const y = ledger.createBuffer('scratch', m * n * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, 'check y');
      const ms = await timeIt(device, (enc) => layer.encodeQuantized(enc, xc, xs, y, m), m * n * k >= 2 ** 30 ? 10 : 3);
      const got = await readF32(device, y, m * n);
      // every entry of small products, 512 sampled entries (and the corners) of big ones
      const r = rng(3);
      const entries = m * n * k <= 2 ** 26 ? Array.from({ length: m * n }, (_, i) => i) : [0, m * n - 1, ...Array.from({ length: 512 }, () => Math.floor(r() * m * n))];
      let maxAbsError = 0;
      for (const e of entries) {
        const a = Math.floor(e / n);
        const b = e % n;
        let s = 0;
        for (let j = 0; j < k; j++) s += int8At(x.codes, k, a, j) * int8At(w.codes, k, b, j);
        // |s| < 2^24 up to K = 1040, where f32 holds the int32 sum exactly; beyond, compare within f32 rounding
        maxAbsError = Math.max(maxAbsError, Math.abs(got[e] - s) - (Math.abs(s) >= 2 ** 24 ? Math.abs(s) * 2 ** -24 : 0));
      }
      layer.destroy();
      for (const b of [xc, xs, y]) ledger.release(b);
      return { label, passed: maxAbsError <= 0, maxAbsError, maxErrorRatio: maxAbsError, compared: entries.length, ms, rate: opRate((2 * m * n * k) / (ms / 1e3)) };
    },
  };
}

function w4a4Case(m: number, n: number, k: number, outliers: number, packedDot: boolean, heavy: boolean): CheckCase {
  const label = `${m}×${n}×${k} +${outliers} int8 ${packedDot ? 'dot4I8Packed' : 'plain int'}`;
  return {
    label,
    heavy,
    async run(ledger) {
      const device = ledger.device;
      const r = rng(5);
      const magnitude = Float32Array.from({ length: k }, (_, j) => (j % 37 === 5 ? 20 : 1));
      const xf = Float32Array.from({ length: m * k }, (_, i) => (r() * 2 - 1) * magnitude[i % k]);
      const wf = Float32Array.from({ length: n * k }, () => (r() * 2 - 1) * 0.1);
      const perm = outlierOrder(magnitude, outliers);
      const wq = quantizeAtomRows(wf, n, k, perm, outliers, 128);
      const layer = new W4A4Linear(ledger, wq, perm, { packedDot, label: 'check w4a4' });
      const x = upload(ledger, xf);
      const y = ledger.createBuffer('scratch', m * n * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, 'check y');
      const ms = await timeIt(device, (enc) => layer.encode(enc, x, y, m), m * n * k >= 2 ** 30 ? 10 : 3);
      const got = await readF32(device, y, m * n);
      // the reference from the CPU's activation codes: equal to the GPU's but for rounding ties, so a loose 1e-3
      const rows = Math.min(m, 4);
      const want = atomMatmulRef(quantizeAtomRows(xf.subarray(0, rows * k), rows, k, perm, outliers, 128), wq, null);
      let err = 0;
      let ref = 0;
      for (let i = 0; i < want.length; i++) {
        err = Math.max(err, Math.abs(got[i] - want[i]));
        ref = Math.max(ref, Math.abs(want[i]));
      }
      layer.destroy();
      for (const b of [x, y]) ledger.release(b);
      const tol = 1e-3 * ref;
      return { label, passed: err <= tol, maxAbsError: err, maxErrorRatio: err / tol, compared: want.length, ms, rate: opRate((2 * m * n * k) / (ms / 1e3)) };
    },
  };
}

const dots = (): boolean[] => (packedDotAvailable() ? [true, false] : [false]);

export const ACT_QUANT_CHECKS: KernelCheck[] = [
  {
    name: 'w8a8-int8',
    protocol:
      'shaders/matmul_i8.wgsl (W8A8Linear.encodeQuantized): int8 codes uniform in −127…127 from a fixed seed, unit scales, so y = the int32 sum; ' +
      'CPU integer dot products (every entry up to 2^26 M·N·K, else 512 sampled + corners); passes only when equal; ' +
      'dot4I8Packed where the WGSL language feature is there, and the plain-integer fallback; time = wall clock per dispatch after one warm-up',
    get cases() {
      return dots().flatMap((d) => [w8a8Case(7, 13, 92, d, false), w8a8Case(512, 4096, 4096, d, true), w8a8Case(1, 4096, 4096, d, true)]);
    },
  },
  {
    name: 'w4a4-outliers',
    protocol:
      'shaders/w4a4.wgsl (W4A4Linear: per-token activation quantization + one kernel for int8 outliers and int4 groups of 128): ' +
      'uniform inputs with large channels every 37th; float64 product of the CPU codes of the first 4 rows, tolerance 1e-3 of the largest output; ' +
      'time = wall clock per call (both dispatches)',
    get cases() {
      return dots().flatMap((d) => [w4a4Case(5, 9, 256, 128, d, false), w4a4Case(512, 4096, 4096, 128, d, true), w4a4Case(1, 4096, 4096, 128, d, true)]);
    },
  },
];
