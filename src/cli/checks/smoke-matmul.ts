/**
 * Host side of shaders/smoke_matmul.wgsl (C = A · B in f32) and its float64
 * CPU reference. Used by the gpu test layer and by the Node GPU entry, so the
 * same code is checked under SwiftShader and on the GPU machine.
 */
import { MemoryLedger } from '../../gpu/ledger';
import smokeMatmulWgsl from '../../../shaders/smoke_matmul.wgsl?raw';

export interface MatmulDims {
  /** Rows of A and C. */
  M: number;
  /** Columns of B and C. */
  N: number;
  /** Columns of A, rows of B: the summed dimension. */
  K: number;
}

/** Must match TILE in the shader: threads per workgroup side and C entries per workgroup side. */
export const SMOKE_MATMUL_TILE = 16;

const pipelines = new WeakMap<GPUDevice, GPUComputePipeline>();

function pipelineFor(device: GPUDevice): GPUComputePipeline {
  let pipeline = pipelines.get(device);
  if (!pipeline) {
    const module = device.createShaderModule({ label: 'smoke_matmul.wgsl', code: smokeMatmulWgsl });
    pipeline = device.createComputePipeline({ label: 'smoke_matmul', layout: 'auto', compute: { module, entryPoint: 'main' } });
    pipelines.set(device, pipeline);
  }
  return pipeline;
}

export interface SmokeMatmulRun {
  /** C, M×N row-major. */
  c: Float32Array;
  /** Mean wall-clock milliseconds per dispatch over `iterations` timed dispatches (after one warm-up). */
  msPerDispatch: number;
  iterations: number;
}

/**
 * Uploads A (M×K) and B (K×N) through `ledger`, runs the kernel once to warm
 * up and `iterations` more times timed, reads C back and releases every buffer
 * it made. Throws a readable error on any WebGPU validation error.
 */
export async function runSmokeMatmul(
  ledger: MemoryLedger,
  dims: MatmulDims,
  a: Float32Array,
  b: Float32Array,
  iterations = 1,
): Promise<SmokeMatmulRun> {
  const { M, N, K } = dims;
  if (a.length !== M * K || b.length !== K * N) {
    throw new Error(
      `smoke matmul ${M}×${N}×${K}: A must hold M·K = ${M * K} floats and B K·N = ${K * N}; got ${a.length} and ${b.length}.`,
    );
  }
  const device = ledger.device;
  const made: GPUBuffer[] = [];
  const track = (buffer: GPUBuffer) => (made.push(buffer), buffer);
  device.pushErrorScope('validation');
  let scopeOpen = true;
  try {
    const pipeline = pipelineFor(device);
    const bufA = track(ledger.upload('scratch', a, `smoke A ${M}×${K}`));
    const bufB = track(ledger.upload('scratch', b, `smoke B ${K}×${N}`));
    const bytesC = M * N * 4;
    const bufC = track(ledger.createBuffer('scratch', bytesC, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, `smoke C ${M}×${N}`));
    const bufDims = track(ledger.createBuffer('scratch', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'smoke dims'));
    const readback = track(ledger.createBuffer('scratch', bytesC, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'smoke C readback'));
    device.queue.writeBuffer(bufDims, 0, new Uint32Array([M, N, K, 0]));
    const bindGroup = device.createBindGroup({
      label: 'smoke_matmul bindings',
      layout: pipeline.getBindGroupLayout(0),
      entries: [bufA, bufB, bufC, bufDims].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const groupsX = Math.ceil(N / SMOKE_MATMUL_TILE);
    const groupsY = Math.ceil(M / SMOKE_MATMUL_TILE);
    const dispatch = (count: number) => {
      const encoder = device.createCommandEncoder({ label: 'smoke_matmul' });
      for (let i = 0; i < count; i++) {
        const pass = encoder.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(groupsX, groupsY, 1);
        pass.end();
      }
      device.queue.submit([encoder.finish()]);
      return device.queue.onSubmittedWorkDone();
    };

    await dispatch(1); // warm-up: pipeline compilation and first-touch costs stay out of the timing
    const t0 = performance.now();
    await dispatch(iterations);
    const msPerDispatch = (performance.now() - t0) / iterations;

    const encoder = device.createCommandEncoder({ label: 'smoke_matmul readback' });
    encoder.copyBufferToBuffer(bufC, 0, readback, 0, bytesC);
    device.queue.submit([encoder.finish()]);
    scopeOpen = false;
    const error = await device.popErrorScope();
    if (error) throw new Error(`smoke matmul ${M}×${N}×${K}: WebGPU rejected the kernel or its buffers: ${error.message}`);
    await readback.mapAsync(GPUMapMode.READ);
    const c = new Float32Array(readback.getMappedRange().slice(0));
    readback.unmap();
    return { c, msPerDispatch, iterations };
  } finally {
    if (scopeOpen) await device.popErrorScope().catch(() => null);
    for (const buffer of made) ledger.release(buffer);
  }
}

/**
 * C[m, n] = Σ_k A[m, k]·B[k, n] in float64, and Σ_k |A[m, k]·B[k, n]| (the
 * scale of the rounding error), for the listed entries (all when `entries` is omitted).
 */
export function matmulReference(
  dims: MatmulDims,
  a: Float32Array,
  b: Float32Array,
  entries?: ReadonlyArray<readonly [m: number, n: number]>,
): { value: Float64Array; absSum: Float64Array; entries: ReadonlyArray<readonly [number, number]> } {
  const { M, N, K } = dims;
  const list = entries ?? Array.from({ length: M * N }, (_, i) => [Math.floor(i / N), i % N] as const);
  const value = new Float64Array(list.length);
  const absSum = new Float64Array(list.length);
  list.forEach(([m, n], i) => {
    let sum = 0;
    let abs = 0;
    for (let k = 0; k < K; k++) {
      const p = a[m * K + k] * b[k * N + n];
      sum += p;
      abs += Math.abs(p);
    }
    value[i] = sum;
    absSum[i] = abs;
  });
  return { value, absSum, entries: list };
}

/**
 * Tolerance for one entry of an f32 dot product of length K summed in order:
 * |ĉ − c| ≤ γ·Σ|a·b| with γ = (K + 1)·2⁻²³, twice the classical bound (K + 1)·u,
 * u = 2⁻²⁴ (one rounding per product and per addition).
 */
export function dotProductTolerance(K: number, absSum: number): number {
  return (K + 1) * 2 ** -23 * absSum + Number.MIN_VALUE;
}

export interface MatmulComparison {
  maxAbsError: number;
  /** Largest |error| / tolerance over the compared entries; ≤ 1 passes. */
  maxErrorRatio: number;
  compared: number;
}

/** Compares GPU output C against the reference on its entries. */
export function compareMatmul(dims: MatmulDims, c: Float32Array, ref: ReturnType<typeof matmulReference>): MatmulComparison {
  let maxAbsError = 0;
  let maxErrorRatio = 0;
  ref.entries.forEach(([m, n], i) => {
    const err = Math.abs(c[m * dims.N + n] - ref.value[i]);
    if (!(err <= maxAbsError)) maxAbsError = err; // NaN propagates as a failure
    const ratio = err / dotProductTolerance(dims.K, ref.absSum[i]);
    if (!(ratio <= maxErrorRatio)) maxErrorRatio = ratio;
  });
  return { maxAbsError, maxErrorRatio, compared: ref.entries.length };
}

/** Deterministic uniform floats in [-1, 1) (mulberry32), so failures reproduce. */
export function randomUniform(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/** `count` distinct-ish (row, column) pairs spread over C, always including the four corners. */
export function sampleEntries(dims: MatmulDims, count: number, seed: number): Array<readonly [number, number]> {
  const { M, N } = dims;
  const picks: Array<readonly [number, number]> = [
    [0, 0],
    [0, N - 1],
    [M - 1, 0],
    [M - 1, N - 1],
  ];
  const r = randomUniform(2 * count, seed);
  for (let i = 0; i < count; i++) {
    picks.push([Math.min(M - 1, Math.floor(((r[2 * i] + 1) / 2) * M)), Math.min(N - 1, Math.floor(((r[2 * i + 1] + 1) / 2) * N))]);
  }
  return picks;
}
