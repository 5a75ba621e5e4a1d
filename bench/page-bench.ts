/**
 * The kernel bench as the page runs it (the Bench view, through the worker):
 * the same protocol as bench/kernels.ts (bench/core.ts: heater, timestamp
 * queries per pass, weights rotated over copies, float64 checks at sampled
 * outputs) at fewer shapes, sized for a browser tab: the streaming ceiling over
 * up to 256 MiB, the 4-bit and 8-bit g128 GEMV and the f32 GEMV at 4096×4096
 * and 14336×4096, and the GEMM at M = 512 (f32 and 4-bit).
 */
import { packedBytes, type QuantBits } from '../src/core/quant/format';
import { MemoryLedger } from '../src/gpu/ledger';
import { F32Linear, type GpuLinear } from '../src/gpu/linear';
import { uploadPacked, releasePacked } from '../src/gpu/packed-table';
import { QuantLinear } from '../src/gpu/qlinear';
import { benchLayer, makeHeater, makeRow, measureCeiling, packedRow, randomFloats, randomPacked, settings, type Row } from './core';

export interface PageBenchResult {
  ceilingGbps: number;
  ceilingBytes: number;
  rows: Row[];
  seconds: number;
}

export interface PageBenchProgress {
  done: number;
  total: number;
  what: string;
}

/** Small shapes for CPU adapters (SwiftShader), where the full sizes take minutes. */
export async function runPageBench(device: GPUDevice, onProgress?: (p: PageBenchProgress) => void, options: { small?: boolean } = {}): Promise<PageBenchResult> {
  const started = performance.now();
  const small = options.small ?? false;
  const limit = device.limits.maxStorageBufferBindingSize;
  Object.assign(settings, { runs: small ? 4 : 20, warmup: small ? 1 : 3, small, ceilingBytes: Math.min(small ? 4 * 2 ** 20 : 256 * 2 ** 20, Math.floor(limit / 16) * 16) });
  const ledger = new MemoryLedger(device);
  const shapes: [number, number][] = small ? [[256, 256], [384, 256]] : [[4096, 4096], [14336, 4096]];
  const gemmM = small ? 32 : 512;
  const bitsList: QuantBits[] = [4, 8];
  const total = 1 + shapes.length * (2 + bitsList.length + 1);
  let done = 0;
  const step = (what: string) => onProgress?.({ done: ++done, total, what });
  const rows: Row[] = [];
  try {
    makeHeater(device, ledger);
    const ceiling = await measureCeiling(device, ledger);
    const ceilingGbps = ceiling.best.gbps;
    step('streaming ceiling');
    const copiesFor = (bytes: number) => (small ? 2 : Math.max(2, Math.min(16, Math.ceil((256 * 2 ** 20) / bytes))));
    for (const [n, k] of shapes) {
      const shape = `${n}×${k}`;
      const w = randomFloats(n * k, 0.05);
      const f32Row = (row: number) => w.subarray(row * k, (row + 1) * k);
      const fBytes = n * k * 4;
      {
        const layers = Array.from({ length: copiesFor(fBytes) }, (_, i) => new F32Linear(ledger, w, n, k, { label: `f32 ${shape} #${i}` }));
        rows.push(makeRow(layers[0], 1, 'gemv', 32, null, fBytes, await benchLayer(device, ledger, layers[0], 1, 'gemv', f32Row, layers), ceilingGbps, 'qlab', 'default'));
        for (const l of layers) l.destroy();
        step(`f32 GEMV ${shape}`);
      }
      {
        const f32 = new F32Linear(ledger, w, n, k, { label: `f32 ${shape}` });
        rows.push(makeRow(f32, gemmM, 'gemm', 32, null, fBytes, await benchLayer(device, ledger, f32, gemmM, 'gemm', f32Row), ceilingGbps, 'qlab', 'default'));
        f32.destroy();
        step(`f32 GEMM ${shape}`);
      }
      for (const bits of bitsList) {
        const packed = randomPacked(n, k, bits, 128);
        const qRow = (row: number) => packedRow(packed, row);
        const bytes = packedBytes(packed);
        const tables = Array.from({ length: copiesFor(bytes) }, (_, i) => uploadPacked(ledger, packed, `q${bits} ${shape} #${i}`));
        const layers = tables.map((t, i) => new QuantLinear(ledger, t, { label: `q${bits} ${shape} #${i}` }));
        rows.push(makeRow(layers[0], 1, 'gemv', bits, 128, bytes, await benchLayer(device, ledger, layers[0], 1, 'gemv', qRow, layers as GpuLinear[]), ceilingGbps, 'qlab', 'default'));
        step(`${bits}-bit GEMV ${shape}`);
        if (bits === 4) {
          rows.push(makeRow(layers[0], gemmM, 'gemm', bits, 128, bytes, await benchLayer(device, ledger, layers[0], gemmM, 'gemm', qRow), ceilingGbps, 'qlab', 'default'));
          step(`4-bit GEMM ${shape}`);
        }
        for (const l of layers) l.destroy();
        for (const t of tables) releasePacked(ledger, t);
      }
    }
    return { ceilingGbps, ceilingBytes: ceiling.bytes, rows, seconds: (performance.now() - started) / 1000 };
  } finally {
    ledger.releaseAll();
  }
}
