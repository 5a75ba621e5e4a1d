/**
 * The kernel bench's core, shared by the Node bench (bench/kernels.ts) and the
 * page's Bench view (bench/page-bench.ts): random layers, the timing protocol
 * (heater, warm-up, timestamp queries per pass), the streaming ceiling, and one
 * layer's timed and checked run. No Node or DOM APIs here.
 */
import { dequantize, maxCode, wordsPerRow, type PackedLinear, type QuantBits } from '../src/core/quant/format';
import type { MemoryLedger } from '../src/gpu/ledger';
import { dispatchGrid, type GpuLinear, type LinearKernel } from '../src/gpu/linear';

/** Set by the caller before measuring. */
export const settings = { runs: 25, warmup: 5, small: false, ceilingBytes: 2 ** 30 };

// ------------------------------------------------------------------ data ----

let seed = 0x9e3779b9;
export function nextU32(): number {
  seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
  return seed;
}
/** Uniform in [-scale, scale), never zero. */
export function randomFloats(count: number, scale = 1): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = ((nextU32() + 0.5) / 2 ** 31 - 1) * scale;
  return out;
}

/** A packed layer with random codes, scales and zero points. */
export function randomPacked(n: number, k: number, bits: QuantBits, groupSize: number): PackedLinear {
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
export function packedRow(p: PackedLinear, row: number): Float32Array {
  const groups = p.k / p.groupSize;
  return dequantize({
    ...p,
    n: 1,
    codes: p.codes.subarray(row * p.wordsPerRow, (row + 1) * p.wordsPerRow),
    scales: p.scales.subarray(row * groups, (row + 1) * groups),
    zeros: p.zeros ? p.zeros.subarray(row * groups, (row + 1) * groups) : null,
  });
}

// ---------------------------------------------------------------- timing ----

export interface Timing {
  /** median µs per dispatch: timestamp queries when available, else batch wall time */
  us: number;
  /** median of timestamp-query durations, µs (null without timestamp-query) */
  usTimestamp: number | null;
  /** wall time of a batch of `runs` dispatches / runs, µs */
  usWall: number;
  method: 'timestamp-query' | 'wall';
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Times `record` (one dispatch into the given pass). */
export async function time(device: GPUDevice, record: (pass: GPUComputePassEncoder, run: number) => void): Promise<Timing> {
  const hasTimestamps = device.features.has('timestamp-query');
  // Warm-up (and first-use compilation), after the heater has brought the clocks up.
  {
    const encoder = device.createCommandEncoder();
    heat(encoder);
    const pass = encoder.beginComputePass();
    for (let i = 0; i < settings.warmup; i++) record(pass, i);
    pass.end();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
  }
  // Wall time of a batch.
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  for (let i = 0; i < settings.runs; i++) record(pass, i);
  pass.end();
  const commands = encoder.finish();
  const t0 = performance.now();
  device.queue.submit([commands]);
  await device.queue.onSubmittedWorkDone();
  const usWall = ((performance.now() - t0) * 1000) / settings.runs;

  let usTimestamp: number | null = null;
  if (hasTimestamps) {
    const querySet = device.createQuerySet({ type: 'timestamp', count: 2 * settings.runs });
    const resolve = device.createBuffer({ size: 16 * settings.runs, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const read = device.createBuffer({ size: 16 * settings.runs, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = device.createCommandEncoder();
    heat(enc); // the timed passes follow the heater with no idle gap
    for (let i = 0; i < settings.runs; i++) {
      const p = enc.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
      record(p, i);
      p.end();
    }
    enc.resolveQuerySet(querySet, 0, 2 * settings.runs, resolve, 0);
    enc.copyBufferToBuffer(resolve, 0, read, 0, 16 * settings.runs);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const ticks = new BigInt64Array(read.getMappedRange().slice(0));
    read.unmap();
    const us: number[] = [];
    for (let i = 0; i < settings.runs; i++) us.push(Number(ticks[2 * i + 1] - ticks[2 * i]) / 1000);
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

export function makeHeater(device: GPUDevice, ledger: MemoryLedger): void {
  const bytes = settings.small ? 2 ** 20 : 256 * 2 ** 20;
  const src = ledger.createBuffer('scratch', bytes, GPUBufferUsage.STORAGE, 'heat.src');
  const sink = ledger.createBuffer('scratch', 4096, GPUBufferUsage.STORAGE, 'heat.sink');
  const module = device.createShaderModule({ code: STREAM_WGSL, label: 'heat' });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: sink } }],
  });
  const dispatches = settings.small ? 1 : 180; // 180 × 256 MiB at ~3 TB/s ≈ 16 ms
  const workgroups = bytes / (256 * 64); // one loop trip of four vec4 per invocation
  heat = (encoder) => {
    const pass = encoder.beginComputePass({ label: 'heat' });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    for (let i = 0; i < dispatches; i++) pass.dispatchWorkgroups(workgroups);
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
export const STREAM_WGSL = /* wgsl */ `
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

export async function measureCeiling(device: GPUDevice, ledger: MemoryLedger) {
  const bytes = settings.ceilingBytes;
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
  const grids = settings.small ? [64, 256] : [1056, 4224, 16384, 65536];
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

export interface Row {
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
export async function benchLayer(
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
export function sampledError(out: Float32Array, xData: Float32Array, m: number, n: number, k: number, rowOf: (row: number) => Float32Array): number {
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

export function makeRow(
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

