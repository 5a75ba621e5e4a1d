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
import { maxCode, packedBytes, wordsPerRow, dequantize, type PackedLinear, type QuantBits } from '../src/core/quant/format';
import type { AdapterReport } from '../src/gpu/device';
import { nodeDevice } from '../src/cli/dawn';
import { MemoryLedger } from '../src/gpu/ledger';
import { F32Linear, dispatchGrid, type GpuLinear, type LinearKernel } from '../src/gpu/linear';
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
const QUANT_BITS: QuantBits[] = [8, 4, 3, 2];
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
async function time(device: GPUDevice, record: (pass: GPUComputePassEncoder) => void): Promise<Timing> {
  const hasTimestamps = device.features.has('timestamp-query');
  // Warm-up (and first-use compilation).
  {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (let i = 0; i < WARMUP; i++) record(pass);
    pass.end();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
  }
  // Wall time of a batch.
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  for (let i = 0; i < RUNS; i++) record(pass);
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
    for (let i = 0; i < RUNS; i++) {
      const p = enc.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
      record(p);
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
}

/** Runs the layer at M rows; returns timing, and the relative error at sampled outputs. */
async function benchLayer(
  device: GPUDevice,
  ledger: MemoryLedger,
  linear: GpuLinear,
  m: number,
  kernel: LinearKernel,
  rowOf: (row: number) => Float32Array,
) {
  const { n, k } = linear;
  const xData = randomFloats(m * k);
  const x = ledger.upload('activations', xData, 'bench.x');
  const y = ledger.createBuffer('activations', m * n * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, 'bench.y');
  const timing = await time(device, (pass) => linear.encode(pass, x, y, m, kernel));

  // Check sampled outputs against float64.
  const read = device.createBuffer({ size: m * n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(y, 0, read, 0, m * n * 4);
  device.queue.submit([encoder.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(read.getMappedRange().slice(0));
  read.destroy();
  let checkError = 0;
  const samples = 24;
  for (let s = 0; s < samples; s++) {
    const row = s === samples - 1 ? n - 1 : Math.floor((s * n) / samples + (nextU32() % Math.max(1, Math.floor(n / samples))));
    const w = rowOf(Math.min(row, n - 1));
    for (const mi of m === 1 ? [0] : [s % m, m - 1]) {
      let ref = 0;
      let mag = 0;
      for (let j = 0; j < k; j++) {
        const p = xData[mi * k + j] * w[j];
        ref += p;
        mag += Math.abs(p);
      }
      checkError = Math.max(checkError, Math.abs(out[mi * n + Math.min(row, n - 1)] - ref) / (mag + 1e-30));
    }
  }
  ledger.release(x);
  ledger.release(y);
  return { timing, checkError };
}

function makeRow(
  linear: GpuLinear,
  m: number,
  kernel: LinearKernel,
  bits: number,
  groupSize: number | null,
  bytes: number,
  result: { timing: Timing; checkError: number },
  ceilingGbps: number,
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
  };
}

// ------------------------------------------------------------------ main ----

async function main(): Promise<void> {
  const started = Date.now();
  const { device, report } = await openDevice();
  const ledger = new MemoryLedger(device);
  console.log(`qlab kernel bench — ${report.vendor} / ${report.architecture} / ${report.device || report.description}`);
  console.log(
    `features: ${report.features.join(', ')}; ${RUNS} timed runs after ${WARMUP} warm-up, median; ` +
      `${device.features.has('timestamp-query') ? 'timestamp-query per pass' : 'wall time of a batch'}` +
      (small ? '; --small shapes' : ''),
  );

  const ceiling = await measureCeiling(device, ledger);
  console.log(
    `ceiling: read ${(ceiling.bytes / 2 ** 20).toFixed(0)} MiB: ${ceiling.results
      .map((r) => `${r.workgroups} wg ${r.gbps.toFixed(0)} GB/s`)
      .join(', ')} → ${ceiling.best.gbps.toFixed(1)} GB/s`,
  );
  const ceilingGbps = ceiling.best.gbps;

  const rows: Row[] = [];
  for (const [n, k] of SHAPES) {
    console.log(`shape ${n}×${k} …`);
    const w = randomFloats(n * k, 0.05);
    const f32 = new F32Linear(ledger, w, n, k, { label: `f32 ${n}x${k}` });
    const f32Row = (row: number) => w.subarray(row * k, (row + 1) * k);
    rows.push(makeRow(f32, 1, 'gemv', 32, null, n * k * 4, await benchLayer(device, ledger, f32, 1, 'gemv', f32Row), ceilingGbps));
    rows.push(makeRow(f32, GEMM_M, 'gemm', 32, null, n * k * 4, await benchLayer(device, ledger, f32, GEMM_M, 'gemm', f32Row), ceilingGbps));
    f32.destroy();

    for (const bits of QUANT_BITS) {
      const packed = randomPacked(n, k, bits, GROUP);
      const q = new QuantLinear(ledger, packed, { label: `q${bits} ${n}x${k}` });
      const qRow = (row: number) => packedRow(packed, row);
      const bytes = packedBytes(packed);
      rows.push(makeRow(q, 1, 'gemv', bits, GROUP, bytes, await benchLayer(device, ledger, q, 1, 'gemv', qRow), ceilingGbps));
      if (bits === 4) {
        rows.push(makeRow(q, GEMM_M, 'gemm', bits, GROUP, bytes, await benchLayer(device, ledger, q, GEMM_M, 'gemm', qRow), ceilingGbps));
      }
      q.destroy();
    }
  }

  // Table.
  const header = ['shape N×K', 'kernel', 'M', 'variant', 'bpw', 'µs', 'µs wall', 'GB/s', '% ceil', 'TFLOP/s', 'check'];
  const table = rows.map((r) => [
    r.shape,
    r.kernel,
    String(r.m),
    r.variant,
    r.bitsPerWeight.toFixed(3),
    r.us.toFixed(1),
    r.usWall.toFixed(1),
    r.gbps >= 100 ? r.gbps.toFixed(0) : r.gbps.toPrecision(3),
    (100 * r.ceilingFraction).toFixed(1),
    r.tflops.toFixed(2),
    r.checkError.toExponential(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 4 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log('');
  console.log(line(header));
  for (const t of table) console.log(line(t));
  console.log(
    `ceiling ${ceilingGbps.toFixed(1)} GB/s (${(ceiling.bytes / 2 ** 20).toFixed(0)} MiB streamed); ` +
      `GB/s counts the layer's stored bytes; check = max |gpu − ref| / Σ|x·w| at sampled outputs; ` +
      `${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  const worst = Math.max(...rows.map((r) => r.checkError));
  if (worst > 1e-4) {
    console.error(`CHECK FAILED: a kernel's output is off by ${worst.toExponential(2)} of Σ|x·w| (expected < 1e-4).`);
    process.exitCode = 1;
  }

  if (outPath) {
    const result = {
      bench: 'kernels',
      date: new Date().toISOString(),
      small,
      protocol: {
        runs: RUNS,
        warmup: WARMUP,
        timing: device.features.has('timestamp-query') ? 'timestamp-query per compute pass, median' : 'batch wall time / runs',
        gemmM: GEMM_M,
        quantGroup: GROUP,
        ceiling: 'read-only vec4<u32> sum kernel, best grid',
        gbps: 'stored bytes of the layer (f32 weights, or packed codes + f32 scales + u8 zero points) / time',
        tflops: '2·M·N·K / time',
      },
      device: report,
      ceiling,
      rows,
    };
    writeFileSync(outPath, JSON.stringify(result, null, 2));
    console.log(`wrote ${outPath}`);
  }
  device.destroy();
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.stack ?? err.message : err);
    process.exit(1);
  },
);
