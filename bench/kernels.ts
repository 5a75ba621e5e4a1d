/**
 * Kernel benchmark (Node + Dawn): the linear kernels at LLM shapes against a
 * streaming ceiling measured in the same run.
 *
 *   node dist-node/bench-kernels.mjs [--small] [--runs=N] [out.json]
 *
 * Protocol (printed with the results):
 * - ceiling: a read-only kernel summing vec4<u32> words over ≥ 1 GiB (64 MiB
 *   with --small); bytes read / time, best of a few grid sizes.
 * - per shape N×K (4096×4096, 14336×4096, 4096×14336, 151936×896; tiny ones
 *   with --small): the f32 GEMV, the quantized GEMV at 8/4/3/2 bits g128 asym
 *   (M = 1): µs, GB/s of the layer's stored bytes (f32 weights, or packed
 *   codes + scales + zero points), fraction of the ceiling; GEMM at M = 512
 *   (32 with --small), f32 and 4-bit g128 asym: µs and TFLOP/s (2·M·N·K).
 * - time: median of `runs` (default 25, ≥ 20) dispatches after warm-up, each in its
 *   own compute pass between timestamp queries when the adapter has
 *   'timestamp-query'; also the wall time of a batch of the same dispatches
 *   (submit → onSubmittedWorkDone) / batch size, which includes launch gaps.
 * - data: random (xorshift), never zeros; packed layers get random codes,
 *   scales and zero points (speed does not depend on values). Every kernel's
 *   output is checked against a float64 CPU reference at sampled outputs.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readModelConfig } from '../src/core/families';
import type { DecoderConfig } from '../src/core/decoder';
import { releasePacked, uploadPacked } from '../src/gpu/packed-table';
import { loadOrt, timeMatMulNBits } from './onnx-matmulnbits';
import { LLAMA_32_1B_CONFIG, runE2e, type E2eResult } from './e2e';
import { maxCode, packedBytes, wordsPerRow, dequantize, type PackedLinear, type QuantBits } from '../src/core/quant/format';
import type { AdapterReport } from '../src/gpu/device';
import { nodeDevice } from '../src/cli/dawn';
import { MemoryLedger } from '../src/gpu/ledger';
import { F32Linear, dispatchGrid, type GemvConfig, type GpuLinear, type LinearKernel } from '../src/gpu/linear';
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
const bitsArg = args.find((a) => a.startsWith('--bits='));
const QUANT_BITS: QuantBits[] = bitsArg ? (bitsArg.slice(7).split(',').map(Number) as QuantBits[]) : [8, 4, 3, 2];
const GROUP = 128;

// ------------------------------------------------------------------ data ----

let seed = 0x9e3779b9;
function nextU32(): number {
  seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
  return seed;
}
/** Uniform in [-scale, scale), never zero. */
function randomFloats(count: number, scale = 1): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = ((nextU32() + 0.5) / 2 ** 31 - 1) * scale;
  return out;
}

/** A packed layer with random codes, scales and zero points. */
function randomPacked(n: number, k: number, bits: QuantBits, groupSize: number): PackedLinear {
  const stride = wordsPerRow(k, bits);
  const codes = new Uint32Array(n * stride);
  const used = (k * bits) / 32; // words with codes in them; the rest is row padding (zeros)
  for (let r = 0; r < n; r++) for (let j = 0; j < used; j++) codes[r * stride + j] = nextU32();
  const groups = n * (k / groupSize);
  const scales = randomFloats(groups, 0.01).map((s) => Math.abs(s) + 1e-4);
  const zeros = new Uint8Array(groups);
  for (let i = 0; i < groups; i++) zeros[i] = nextU32() % (maxCode(bits) + 1);
  return { n, k, bits, groupSize, symmetric: false, wordsPerRow: stride, codes, scales, zeros };
}

/** Row `row` of a packed layer, dequantized. */
function packedRow(p: PackedLinear, row: number): Float32Array {
  const groups = p.k / p.groupSize;
  return dequantize({
    ...p,
    n: 1,
    codes: p.codes.subarray(row * p.wordsPerRow, (row + 1) * p.wordsPerRow),
    scales: p.scales.subarray(row * groups, (row + 1) * groups),
    zeros: p.zeros ? p.zeros.subarray(row * groups, (row + 1) * groups) : null,
  });
}

// ---------------------------------------------------------------- device ----

async function openDevice(): Promise<{ device: GPUDevice; report: AdapterReport }> {
  const { device, report } = await nodeDevice();
  return { device, report };
}

// ---------------------------------------------------------------- timing ----

interface Timing {
  /** median µs per dispatch: timestamp queries when available, else batch wall time */
  us: number;
  /** median of timestamp-query durations, µs (null without timestamp-query) */
  usTimestamp: number | null;
  /** wall time of a batch of `runs` dispatches / runs, µs */
  usWall: number;
  method: 'timestamp-query' | 'wall';
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Times `record` (one dispatch into the given pass). */
async function time(device: GPUDevice, record: (pass: GPUComputePassEncoder, run: number) => void): Promise<Timing> {
  const hasTimestamps = device.features.has('timestamp-query');
  // Warm-up (and first-use compilation), after the heater has brought the clocks up.
  {
    const encoder = device.createCommandEncoder();
    heat(encoder);
    const pass = encoder.beginComputePass();
    for (let i = 0; i < WARMUP; i++) record(pass, i);
    pass.end();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
  }
  // Wall time of a batch.
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  for (let i = 0; i < RUNS; i++) record(pass, i);
  pass.end();
  const commands = encoder.finish();
  const t0 = performance.now();
  device.queue.submit([commands]);
  await device.queue.onSubmittedWorkDone();
  const usWall = ((performance.now() - t0) * 1000) / RUNS;

  let usTimestamp: number | null = null;
  if (hasTimestamps) {
    const querySet = device.createQuerySet({ type: 'timestamp', count: 2 * RUNS });
    const resolve = device.createBuffer({ size: 16 * RUNS, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const read = device.createBuffer({ size: 16 * RUNS, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = device.createCommandEncoder();
    heat(enc); // the timed passes follow the heater with no idle gap
    for (let i = 0; i < RUNS; i++) {
      const p = enc.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
      record(p, i);
      p.end();
    }
    enc.resolveQuerySet(querySet, 0, 2 * RUNS, resolve, 0);
    enc.copyBufferToBuffer(resolve, 0, read, 0, 16 * RUNS);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const ticks = new BigInt64Array(read.getMappedRange().slice(0));
    read.unmap();
    const us: number[] = [];
    for (let i = 0; i < RUNS; i++) us.push(Number(ticks[2 * i + 1] - ticks[2 * i]) / 1000);
    usTimestamp = median(us);
    querySet.destroy();
    resolve.destroy();
    read.destroy();
  }
  const useTs = usTimestamp !== null && usTimestamp > 0;
  return { us: useTs ? usTimestamp! : usWall, usTimestamp, usWall, method: useTs ? 'timestamp-query' : 'wall' };
}

// --------------------------------------------------------------- heater ----

// GPU clocks drop while the GPU idles (here: while the CPU draws and uploads the
// next layer) and take milliseconds of load to come back; a first H100 run
// timed the same kernel 2-4x slower without load before it. So every timed
// batch is recorded right behind ~15 ms of streaming reads (HEAT_BYTES per
// dispatch), in the same submit.
let heat: (encoder: GPUCommandEncoder) => void = () => {};

function makeHeater(device: GPUDevice, ledger: MemoryLedger): void {
  const bytes = small ? 16 * 2 ** 20 : 256 * 2 ** 20;
  const src = ledger.createBuffer('scratch', bytes, GPUBufferUsage.STORAGE, 'heat.src');
  const sink = ledger.createBuffer('scratch', 4096, GPUBufferUsage.STORAGE, 'heat.sink');
  const module = device.createShaderModule({ code: STREAM_WGSL, label: 'heat' });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: sink } }],
  });
  const dispatches = small ? 2 : 180; // 180 × 256 MiB at ~3 TB/s ≈ 16 ms
  heat = (encoder) => {
    const pass = encoder.beginComputePass({ label: 'heat' });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    for (let i = 0; i < dispatches; i++) pass.dispatchWorkgroups(16384);
    pass.end();
  };
}

/** Runs the heater on its own (before work we do not encode ourselves: onnxruntime-web's runs). */
export async function heatNow(device: GPUDevice): Promise<void> {
  const encoder = device.createCommandEncoder();
  heat(encoder);
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
}

// -------------------------------------------------------------- ceiling ----

// Streaming ceiling: every invocation sums UNROLL independent vec4<u32> loads
// per step over a grid-stride loop; the sum is written only when it equals a
// value it practically never takes, so the loads cannot be optimized away.
const STREAM_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> sink: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let threads = nwg.x * nwg.y * 256u;
  let t = (wid.x + wid.y * nwg.x) * 256u + lid;
  let count = arrayLength(&src);
  var a0 = vec4<u32>(0u); var a1 = vec4<u32>(0u); var a2 = vec4<u32>(0u); var a3 = vec4<u32>(0u);
  var i = t;
  for (; i + 3u * threads < count; i += 4u * threads) {
    a0 += src[i]; a1 += src[i + threads]; a2 += src[i + 2u * threads]; a3 += src[i + 3u * threads];
  }
  for (; i < count; i += threads) { a0 += src[i]; }
  let s = a0 ^ a1 ^ a2 ^ a3;
  if ((s.x ^ s.y ^ s.z ^ s.w) == 0x9e3779b9u) { sink[t & 1023u] = s.x; }
}`;

async function measureCeiling(device: GPUDevice, ledger: MemoryLedger) {
  const bytes = CEILING_BYTES;
  const src = ledger.createBuffer('scratch', bytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, 'stream.src');
  const chunk = new Uint32Array(Math.min(bytes, 64 * 2 ** 20) / 4);
  for (let i = 0; i < chunk.length; i++) chunk[i] = nextU32();
  for (let off = 0; off < bytes; off += chunk.byteLength) device.queue.writeBuffer(src, off, chunk);
  const sink = ledger.createBuffer('scratch', 4096, GPUBufferUsage.STORAGE, 'stream.sink');
  const module = device.createShaderModule({ code: STREAM_WGSL, label: 'stream' });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: sink } }],
  });
  const maxDim = device.limits.maxComputeWorkgroupsPerDimension;
  const grids = small ? [64, 256] : [1056, 4224, 16384, 65536];
  const results: { workgroups: number; us: number; gbps: number }[] = [];
  for (const workgroups of grids) {
    const grid = dispatchGrid(workgroups, maxDim);
    const t = await time(device, (pass) => {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(grid[0], grid[1]);
    });
    results.push({ workgroups: grid[0] * grid[1], us: t.us, gbps: bytes / (t.us * 1e3) });
  }
  ledger.release(src);
  ledger.release(sink);
  const best = results.reduce((a, b) => (b.gbps > a.gbps ? b : a));
  return { bytes, best, results };
}

// ---------------------------------------------------------------- layers ----

interface Row {
  shape: string;
  n: number;
  k: number;
  m: number;
  kernel: LinearKernel;
  variant: string;
  bits: number;
  groupSize: number | null;
  bytes: number;
  bitsPerWeight: number;
  us: number;
  usTimestamp: number | null;
  usWall: number;
  method: string;
  gbps: number;
  ceilingFraction: number;
  tflops: number;
  /** max |gpu − ref| / Σ|x·w| over sampled outputs */
  checkError: number;
  /** 'qlab' or 'ort-web' (onnxruntime-web) */
  impl: string;
  /** the kernel's shape: GEMV plan, GEMM tile, or onnxruntime-web's program names */
  config: string;
  /** weight copies the timed runs rotated over */
  copies: number;
}

/**
 * Runs the layer at M rows; returns timing, and the relative error at sampled
 * outputs. `copies` are more layers with the same weights at other addresses:
 * run i uses copies[i mod R], so that the weights a run streams are not left
 * in the L2 cache by the run before (50 MiB on an H100).
 */
async function benchLayer(
  device: GPUDevice,
  ledger: MemoryLedger,
  linear: GpuLinear,
  m: number,
  kernel: LinearKernel,
  rowOf: (row: number) => Float32Array,
  copies: GpuLinear[] = [linear],
) {
  const { n, k } = linear;
  const xData = randomFloats(m * k);
  const x = ledger.upload('activations', xData, 'bench.x');
  const y = ledger.createBuffer('activations', m * n * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, 'bench.y');
  const timing = await time(device, (pass, run) => copies[run % copies.length].encode(pass, x, y, m, kernel));
  // the checked output is the layer's own
  {
    const encoder = device.createCommandEncoder();
    linear.encode(encoder, x, y, m, kernel);
    device.queue.submit([encoder.finish()]);
  }

  // Check sampled outputs against float64.
  const read = device.createBuffer({ size: m * n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(y, 0, read, 0, m * n * 4);
  device.queue.submit([encoder.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(read.getMappedRange().slice(0));
  read.destroy();
  const checkError = sampledError(out, xData, m, n, k, rowOf);
  ledger.release(x);
  ledger.release(y);
  return { timing, checkError, copies: copies.length };
}

/** max |out − ref| / Σ|x·w| over 24 sampled outputs (the last row always among them). */
function sampledError(out: Float32Array, xData: Float32Array, m: number, n: number, k: number, rowOf: (row: number) => Float32Array): number {
  let checkError = 0;
  const samples = 24;
  for (let s = 0; s < samples; s++) {
    const row = Math.min(n - 1, s === samples - 1 ? n - 1 : Math.floor((s * n) / samples + (nextU32() % Math.max(1, Math.floor(n / samples)))));
    const w = rowOf(row);
    for (const mi of m === 1 ? [0] : [s % m, m - 1]) {
      let ref = 0;
      let mag = 0;
      for (let j = 0; j < k; j++) {
        const p = xData[mi * k + j] * w[j];
        ref += p;
        mag += Math.abs(p);
      }
      checkError = Math.max(checkError, Math.abs(out[mi * n + row] - ref) / (mag + 1e-30));
    }
  }
  return checkError;
}

function makeRow(
  linear: Pick<GpuLinear, 'n' | 'k' | 'variant'>,
  m: number,
  kernel: LinearKernel,
  bits: number,
  groupSize: number | null,
  bytes: number,
  result: { timing: Timing; checkError: number; copies?: number },
  ceilingGbps: number,
  impl: string,
  config: string,
): Row {
  const { n, k } = linear;
  const t = result.timing;
  const gbps = bytes / (t.us * 1e3);
  return {
    shape: `${n}x${k}`,
    n,
    k,
    m,
    kernel,
    variant: linear.variant,
    bits,
    groupSize,
    bytes,
    bitsPerWeight: (bytes * 8) / (n * k),
    us: t.us,
    usTimestamp: t.usTimestamp,
    usWall: t.usWall,
    method: t.method,
    gbps,
    ceilingFraction: gbps / ceilingGbps,
    tflops: (2 * m * n * k) / (t.us * 1e6),
    checkError: result.checkError,
    impl,
    config,
    copies: result.copies ?? 1,
  };
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
