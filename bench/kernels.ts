/**
 * Kernel benchmark (Node + Dawn): the linear kernels at LLM shapes against a
 * streaming ceiling and onnxruntime-web's MatMulNBits, measured in one run.
 *
 *   node dist-node/bench-kernels.mjs [--small] [--runs=N] [--only=ceiling,gemv,sweep,ort,gemm,e2e]
 *                                    [--bits=8,4,3,2] [--e2e-windows=N] [--ort=DIR] [out.json]
 *
 * Protocol (printed with the results; bench/NOTES.md discusses it):
 * - ceiling: a read-only kernel summing vec4<u32> words over 1 GiB (64 MiB
 *   with --small); bytes read / time, best of a few grid sizes.
 * - per shape N×K (4096×4096, 14336×4096, 4096×14336, 151936×896; tiny ones
 *   with --small): the f32 GEMV and the quantized GEMV at 8/4/3/2 bits g128
 *   asym (M = 1), the dispatcher's default plan plus, with `sweep`, other
 *   shapes of the kernel for 4-bit and f32: µs, GB/s of the layer's stored
 *   bytes (f32 weights, or packed codes + scales + zero points), fraction of
 *   the ceiling. GEMV runs rotate over copies of the weights (together
 *   > 256 MiB) so that the L2 cache does not hold them.
 * - `ort`: onnxruntime-web's WebGPU MatMulNBits, 4-bit block 128, on the same
 *   weights (bench/onnx-matmulnbits.ts), timed per compute pass too.
 * - `gemm`: M = 512 and 2048 (32/64 with --small), f32 and 4-bit, 64 and 128
 *   tiles: TFLOP/s (2·M·N·K / time).
 * - `e2e`: bench/e2e.ts, a random-weight Llama-3.2-1B-shaped W4 model:
 *   WikiText-2-sized perplexity time and tokens/s, decode tokens/s.
 * - time (bench/core.ts): each timed batch follows a heater (~16 ms of
 *   streaming reads, same submit: GPU clocks); median of `runs` (default 25)
 *   dispatches after warm-up, each in its own compute pass between timestamp
 *   queries when the adapter has 'timestamp-query'; also the wall time of a
 *   batch / batch size, which includes launch gaps.
 * - data: random (xorshift), never zeros; packed layers get random codes,
 *   scales and zero points (speed does not depend on values). Every kernel's
 *   output, onnxruntime-web's too, is checked against a float64 CPU
 *   reference at sampled outputs.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readModelConfig } from '../src/core/families';
import type { DecoderConfig } from '../src/core/decoder';
import { releasePacked, uploadPacked } from '../src/gpu/packed-table';
import { loadOrt, timeMatMulNBits } from './onnx-matmulnbits';
import { LLAMA_32_1B_CONFIG, runE2e, type E2eResult } from './e2e';
import { packedBytes, type QuantBits } from '../src/core/quant/format';
import type { AdapterReport } from '../src/gpu/device';
import { nodeDevice } from '../src/cli/dawn';
import { MemoryLedger } from '../src/gpu/ledger';
import { F32Linear, type GemvConfig, type GpuLinear } from '../src/gpu/linear';
import { benchLayer, heatNow, makeHeater, makeRow, measureCeiling, packedRow, randomFloats, randomPacked, sampledError, settings, type Row, type Timing } from './core';
import { QuantLinear } from '../src/gpu/qlinear';

const args = process.argv.slice(2);
const small = args.includes('--small');
const runsArg = args.find((a) => a.startsWith('--runs='));
const RUNS = runsArg ? Math.max(20, Number(runsArg.slice(7))) : small ? 20 : 25;
const WARMUP = small ? 2 : 5;
const outPath = args.find((a) => !a.startsWith('--'));

const SHAPES: [number, number][] = small
  ? [[256, 256], [384, 256], [256, 384], [999, 128]]
  : [[4096, 4096], [14336, 4096], [4096, 14336], [151936, 896]];
const GEMM_M = small ? 32 : 512;
const CEILING_BYTES = small ? 64 * 2 ** 20 : 2 ** 30;
Object.assign(settings, { runs: RUNS, warmup: WARMUP, small, ceilingBytes: CEILING_BYTES });
const bitsArg = args.find((a) => a.startsWith('--bits='));
const QUANT_BITS: QuantBits[] = bitsArg ? (bitsArg.slice(7).split(',').map(Number) as QuantBits[]) : [8, 4, 3, 2];
const GROUP = 128;

// ---------------------------------------------------------------- device ----

async function openDevice(): Promise<{ device: GPUDevice; report: AdapterReport }> {
  const { device, report } = await nodeDevice();
  return { device, report };
}

// ------------------------------------------------------------------ main ----

const only = new Set((args.find((a) => a.startsWith('--only='))?.slice(7) ?? 'ceiling,gemv,sweep,ort,gemm,e2e').split(','));
const ortDir = args.find((a) => a.startsWith('--ort='))?.slice(6) ?? join(dirname(fileURLToPath(import.meta.url)), 'ort');
const e2eWindowsArg = args.find((a) => a.startsWith('--e2e-windows='));
const E2E_WINDOWS = e2eWindowsArg ? Number(e2eWindowsArg.slice(14)) : undefined;
/** GEMM at M = 2048 runs on these shapes (the head's output would be 1.2 GB) */
const GEMM_M2 = small ? 64 : 2048;
const GEMM_M2_SHAPES = small ? ['256x256'] : ['4096x4096', '14336x4096', '4096x14336'];
/** GEMV variants swept for 4-bit and f32 layers (besides the default plan and the basic kernel) */
const Q_SWEEP: [string, Partial<GemvConfig>][] = [
  ['tpr16', { tpr: 16 }],
  ['tpr32 prefetch', { tpr: 32, prefetch: true }],
  ['tpr64', { tpr: 64 }],
  ['tpr128', { tpr: 128 }],
  ['rows2', { rows: 2 }],
  ['no subgroups', { subgroups: false }],
];
const F_SWEEP: [string, Partial<GemvConfig>][] = [
  ['tpr64', { tpr: 64 }],
  ['tpr256 rows1', { tpr: 256, rows: 1 }],
];

/** Copies of a layer of `bytes` so that the copies together exceed 256 MiB (2 … 32). */
function copiesFor(bytes: number): number {
  if (small) return 2;
  return Math.max(2, Math.min(32, Math.ceil((256 * 2 ** 20) / bytes)));
}

function describeGemv(g: GemvConfig): string {
  return g.basic ? 'basic' : `tpr${g.tpr} r${g.rows}${g.xc ? ` xc${g.xc}` : ''} ${g.subgroups ? `sg${g.sg}` : 'wg'}${g.prefetch ? ' pf' : ''}`;
}

async function main(): Promise<void> {
  const started = Date.now();
  const { device, report } = await openDevice();
  const ledger = new MemoryLedger(device);
  const log = (line: string) => console.log(line);
  log(`qlab kernel bench — ${report.vendor} / ${report.architecture} / ${report.device || report.description}`);
  const sgInfo = (device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  log(
    `features: ${report.features.join(', ')}; subgroups ${sgInfo?.subgroupMinSize ?? '?'}…${sgInfo?.subgroupMaxSize ?? '?'}; ` +
      `${RUNS} timed runs after ${WARMUP} warm-up, median; ` +
      `${device.features.has('timestamp-query') ? 'timestamp-query per pass' : 'wall time of a batch'}; weights rotated over copies (> 256 MiB)` +
      (small ? '; --small shapes' : ''),
  );

  makeHeater(device, ledger);
  let ceilingGbps = 3125; // last measured H100 value, used when the ceiling is not measured in this run
  let ceiling: Awaited<ReturnType<typeof measureCeiling>> | null = null;
  if (only.has('ceiling')) {
    ceiling = await measureCeiling(device, ledger);
    log(
      `ceiling: read ${(ceiling.bytes / 2 ** 20).toFixed(0)} MiB: ${ceiling.results
        .map((r) => `${r.workgroups} wg ${r.gbps.toFixed(0)} GB/s`)
        .join(', ')} → ${ceiling.best.gbps.toFixed(1)} GB/s`,
    );
    ceilingGbps = ceiling.best.gbps;
  }

  let ort: unknown = null;
  if (only.has('ort')) {
    try {
      ort = await loadOrt(ortDir, device);
    } catch (e) {
      log(`onnxruntime-web not loaded from ${ortDir}: ${e instanceof Error ? e.message : e}`);
    }
  }

  const rows: Row[] = [];
  const push = (row: Row) => {
    rows.push(row);
    log(`  ${row.impl.padEnd(8)} ${row.kernel} M=${row.m} ${row.variant} [${row.config}] ${row.us.toFixed(1)} µs ${row.gbps.toFixed(0)} GB/s ${(100 * row.ceilingFraction).toFixed(1)} % ${row.tflops.toFixed(2)} TFLOP/s check ${row.checkError.toExponential(1)}`);
  };
  for (const [n, k] of SHAPES) {
    const shape = `${n}x${k}`;
    log(`shape ${n}×${k} …`);
    const w = randomFloats(n * k, 0.05);
    const f32Row = (row: number) => w.subarray(row * k, (row + 1) * k);
    const fBytes = n * k * 4;
    const fCopies = copiesFor(fBytes);
    if (only.has('gemv')) {
      const variants: [string, Partial<GemvConfig>][] = [['default', {}], ['gemv_f32', { basic: false }], ...(only.has('sweep') ? F_SWEEP : [])];
      for (const [, gemv] of variants) {
        const layers = Array.from({ length: fCopies }, (_, i) => new F32Linear(ledger, w, n, k, { label: `f32 ${shape} #${i}`, gemv }));
        const r = await benchLayer(device, ledger, layers[0], 1, 'gemv', f32Row, layers);
        push(makeRow(layers[0], 1, 'gemv', 32, null, fBytes, r, ceilingGbps, 'qlab', describeGemv(layers[0].gemv)));
        for (const l of layers) l.destroy();
      }
    }
    if (only.has('gemm')) {
      for (const tile of [64, 128] as const) {
        const f32 = new F32Linear(ledger, w, n, k, { label: `f32 ${shape}`, gemmTile: tile });
        for (const m of GEMM_M2_SHAPES.includes(shape) ? [GEMM_M, GEMM_M2] : [GEMM_M]) {
          push(makeRow(f32, m, 'gemm', 32, null, fBytes, await benchLayer(device, ledger, f32, m, 'gemm', f32Row), ceilingGbps, 'qlab', `tile ${tile}`));
        }
        f32.destroy();
      }
    }

    for (const bits of QUANT_BITS) {
      const packed = randomPacked(n, k, bits, GROUP);
      const qRow = (row: number) => packedRow(packed, row);
      const bytes = packedBytes(packed);
      const copies = copiesFor(bytes);
      const tables = Array.from({ length: copies }, (_, i) => uploadPacked(ledger, packed, `q${bits} ${shape} #${i}`));
      if (only.has('gemv')) {
        const variants: [string, Partial<GemvConfig>][] = [['default', {}], ...(bits === 4 ? [['basic', { basic: true }] as [string, Partial<GemvConfig>], ...(only.has('sweep') ? Q_SWEEP : [])] : [])];
        for (const [, gemv] of variants) {
          const layers = tables.map((t, i) => new QuantLinear(ledger, t, { label: `q${bits} ${shape} #${i}`, gemv }));
          const r = await benchLayer(device, ledger, layers[0], 1, 'gemv', qRow, layers);
          push(makeRow(layers[0], 1, 'gemv', bits, GROUP, bytes, r, ceilingGbps, 'qlab', describeGemv(layers[0].gemv)));
          for (const l of layers) l.destroy();
        }
      }
      if (bits === 4 && ort) {
        try {
          const xData = randomFloats(k);
          const t = await timeMatMulNBits(ort, device, packed, xData, 1, copies, RUNS, WARMUP, () => heatNow(device));
          const checkError = sampledError(t.y, xData, 1, n, k, qRow);
          const timing: Timing = { us: t.us ?? t.usWall, usTimestamp: t.us, usWall: t.usWall, method: t.us ? 'timestamp-query' : 'wall' };
          const view = { n, k, variant: 'q4 g128 asym' } as GpuLinear;
          push(makeRow(view, 1, 'gemv', 4, GROUP, bytes, { timing, checkError, copies }, ceilingGbps, 'ort-web', `MatMulNBits ×${copies}: ${t.passes} passes ${t.dispatches} dispatches${t.programs.length ? ` ${t.programs.join(' ')}` : ''}`));
        } catch (e) {
          log(`  onnxruntime-web MatMulNBits ${shape} failed: ${e instanceof Error ? e.message : e}`);
        }
      }
      if (bits === 4 && only.has('gemm')) {
        for (const tile of [64, 128] as const) {
          const q = new QuantLinear(ledger, tables[0], { label: `q4 ${shape}`, gemmTile: tile });
          for (const m of GEMM_M2_SHAPES.includes(shape) ? [GEMM_M, GEMM_M2] : [GEMM_M]) {
            push(makeRow(q, m, 'gemm', bits, GROUP, bytes, await benchLayer(device, ledger, q, m, 'gemm', qRow), ceilingGbps, 'qlab', `tile ${tile}`));
          }
          q.destroy();
        }
      }
      for (const t of tables) releasePacked(ledger, t);
    }
  }

  // Table.
  const header = ['shape N×K', 'impl', 'kernel', 'M', 'variant', 'config', 'bpw', 'µs', 'µs wall', 'GB/s', '% ceil', 'TFLOP/s', 'check'];
  const table = rows.map((r) => [
    r.shape,
    r.impl,
    r.kernel,
    String(r.m),
    r.variant,
    r.config.length > 28 ? `${r.config.slice(0, 27)}…` : r.config,
    r.bitsPerWeight.toFixed(3),
    r.us.toFixed(1),
    r.usWall.toFixed(1),
    r.gbps >= 100 ? r.gbps.toFixed(0) : r.gbps.toPrecision(3),
    (100 * r.ceilingFraction).toFixed(1),
    r.tflops.toFixed(2),
    r.checkError.toExponential(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 6 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const text: string[] = [line(header), ...table.map(line)];
  text.push(
    `ceiling ${ceilingGbps.toFixed(1)} GB/s${ceiling ? ` (${(ceiling.bytes / 2 ** 20).toFixed(0)} MiB streamed)` : ' (not measured in this run)'}; ` +
      `GB/s counts the layer's stored bytes; GEMV weights rotated over copies; check = max |gpu − ref| / Σ|x·w| at sampled outputs`,
  );

  text.push(`${((Date.now() - started) / 1000).toFixed(1)} s (kernels)`);
  const write = (e2e: E2eResult | null) => {
    if (!outPath) return;
    const result = {
      bench: 'kernels',
      date: new Date().toISOString(),
      small,
      sections: [...only],
      protocol: {
        runs: RUNS,
        warmup: WARMUP,
        timing: device.features.has('timestamp-query') ? 'timestamp-query per compute pass, median' : 'batch wall time / runs',
        rotation: 'GEMV runs rotate over copies of the weights (together > 256 MiB) so the L2 cache does not hold them; GEMM uses one copy',
        ort: 'onnxruntime-web/webgpu MatMulNBits (its WebGPU EP on its own GPUDevice of the same adapter), R nodes with their own weight copies on one input; timestamp writes added to each of its compute passes, per-run sum / R, median over runs; the heater runs before each run',
        heater: 'each timed batch follows ~16 ms of streaming reads in the same submit (GPU clocks)',
        gemmM: [GEMM_M, GEMM_M2],
        quantGroup: GROUP,
        ceiling: 'read-only vec4<u32> sum kernel, best grid',
        gbps: 'stored bytes of the layer (f32 weights, or packed codes + f32 scales + u8 zero points) / time',
        tflops: '2·M·N·K / time',
      },
      device: report,
      ceiling,
      rows,
      e2e,
    };
    writeFileSync(outPath, JSON.stringify(result, null, 2));
    writeFileSync(outPath.replace(/\.json$/, '') + '.txt', text.join('\n') + '\n');
    console.log(`wrote ${outPath}`);
  };
  // the kernel results are written before the end-to-end run, which takes minutes
  write(null);
  let e2e: E2eResult | null = null;
  if (only.has('e2e')) {
    try {
      e2e = await runE2e(device, small ? { config: smallE2eConfig(), tokens: 4096, windowLength: 256, windows: E2E_WINDOWS, decodeSteps: 8, log } : { windows: E2E_WINDOWS, log });
      text.push(
        `e2e ${e2e.config}, ${e2e.scheme}: load ${e2e.loadSeconds.toFixed(1)} s; WikiText-2-sized ppl (${e2e.tokens} tokens, ${e2e.windowsTotal} windows of ${e2e.windowLength}` +
          `${e2e.windowsRun < e2e.windowsTotal ? `, ${e2e.windowsRun} run, time scaled` : ''}): ${e2e.pplSecondsAll.toFixed(1)} s, ` +
          `${e2e.prefillTokensPerSecond.toFixed(0)} tok/s wall, ${e2e.prefillGpuTokensPerSecond?.toFixed(0) ?? '?'} tok/s GPU; ` +
          `decode ${e2e.decodeTokensPerSecond.toFixed(1)} tok/s wall, ${e2e.decodeGpuTokensPerSecond?.toFixed(1) ?? '?'} tok/s GPU; kernels ${e2e.kernels.join(', ')}`,
      );
    } catch (e) {
      text.push(`e2e failed: ${e instanceof Error ? e.stack ?? e.message : e}`);
    }
  }
  text.push(`${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log('');
  for (const t of text) console.log(t);
  if (e2e) write(e2e);
  const worst = Math.max(0, ...rows.filter((r) => r.impl === 'qlab').map((r) => r.checkError));
  if (worst > 1e-4) {
    console.error(`CHECK FAILED: a kernel's output is off by ${worst.toExponential(2)} of Σ|x·w| (expected < 1e-4).`);
    process.exitCode = 1;
  }
  device.destroy();
}

/** A small decoder for --small runs (SwiftShader). */
function smallE2eConfig(): DecoderConfig {
  return readModelConfig({ ...LLAMA_32_1B_CONFIG, vocab_size: 512, hidden_size: 128, intermediate_size: 256, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 32, bos_token_id: 1, eos_token_id: 2 }).config;
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.stack ?? err.message : err);
    process.exit(1);
  },
);
