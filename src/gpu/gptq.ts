/**
 * GPTQ on the GPU: Hessian accumulation, the inverse-Hessian Cholesky factor
 * and the column sweep with error feedback (shaders/gptq_*.wgsl), following
 * the float64 reference in src/core/quant/gptq.ts step for step.
 *
 * The CPU does O(K) work per layer (reading diag H back to pick λ, the
 * act-order permutation and the dead inputs) plus packing bookkeeping; every
 * O(K²) or larger step runs on the GPU:
 *   prepare   diag H → λ, order; A = J Pᵀ(H + λI)P J; W in GPTQ's order
 *   cholesky  A = L Lᵀ, blocked (NB = 32): diagonal block, panel, trailing update
 *   inverse   X = L⁻¹, blocked, one step per block diagonal; U = J X J
 *   sweep     blocks of B columns: quantize with error feedback inside the
 *             block, then W[:, i2:] −= E · U[i1:i2, i2:] as one matrix product
 *   pack      codes → the packed format, read back with scales and zero points
 * CPU adapters (`tuningFor`: SwiftShader and other fallbacks) get barrier-free
 * variants of the Hessian, trailing-update, inverse and sweep kernels, where
 * every workgroup barrier would cost a switch through all invocations.
 */
import hessianWgsl from '../../shaders/gptq_hessian.wgsl?raw';
import choleskyWgsl from '../../shaders/gptq_cholesky.wgsl?raw';
import sweepWgsl from '../../shaders/gptq_sweep.wgsl?raw';
import { resolveGroupSize, wordsPerRow, type PackedLinear, type QuantScheme } from '../core/quant/format';
import {
  DEFAULT_BLOCK_SIZE,
  DEFAULT_DAMPENING,
  actOrderPermutation,
  dampeningLambda,
  type GptqOptions,
} from '../core/quant/gptq';
import type { MemoryLedger } from './ledger';
import { cachedPipeline, dispatchGrid } from './linear';
import { readBuffer } from './readback';
import { tuningFor, type KernelTuning } from './tuning';

export type { GptqOptions } from '../core/quant/gptq';

/** What the GPU functions take beyond the algorithm's options. */
export interface GpuGptqOptions extends GptqOptions {
  signal?: AbortSignal;
  /** kernel shapes; default `tuningFor(device)` (tests force either shape on any adapter) */
  tuning?: KernelTuning;
  /**
   * U from `factorHessian` of this layer's Hessian with the same dampening and
   * act-order, to share one factorization between layers that read the same
   * input (q/k/v, gate/up); stays the caller's. Without it each call factors H.
   */
  factor?: HessianFactor;
}

/** Block of the Cholesky factorization and the triangular inverse (NB in gptq_cholesky.wgsl). */
const NB = 32;
/** Widest lazy batch (BMAX in gptq_sweep.wgsl). */
const BMAX = 128;
/** Output tile edge of the update kernels. */
const TILE = 64;
/** Output tile edge of the Hessian kernel (T in gptq_hessian.wgsl). */
const HESSIAN_TILE = 128;

/** Usage of the storage buffers here (a function: GPUBufferUsage exists only once WebGPU is set up). */
const storageUsage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Throws unless `bytes` fit one storage binding. */
function checkBinding(device: GPUDevice, what: string, bytes: number): void {
  const limit = device.limits.maxStorageBufferBindingSize;
  if (bytes > limit) {
    throw new Error(
      `GPTQ: ${what} needs ${bytes.toLocaleString('en-US')} bytes in one storage binding, more than this adapter's ` +
        `maxStorageBufferBindingSize of ${limit.toLocaleString('en-US')}: choose RTN or HQQ for this layer.`,
    );
  }
}

interface Dispatch {
  pipeline: GPUComputePipeline;
  bindings: Record<number, GPUBuffer>;
  paramsBinding: number;
  u32: number[];
  f32: Record<number, number>;
  workgroups: number;
}

/**
 * Dispatches recorded into one compute pass and submitted together; each gets
 * its own 256-byte slot of one uniform buffer for its parameters.
 */
class Batch {
  private readonly items: Dispatch[] = [];
  constructor(private readonly ledger: MemoryLedger, private readonly label: string) {}

  add(d: Omit<Dispatch, 'f32'> & { f32?: Record<number, number> }): void {
    if (d.workgroups > 0) this.items.push({ f32: {}, ...d });
  }

  get size(): number {
    return this.items.length;
  }

  /** Submits the batch and waits for the GPU to finish it. */
  async run(): Promise<void> {
    if (!this.items.length) return;
    const device = this.ledger.device;
    const slot = Math.max(256, device.limits.minUniformBufferOffsetAlignment);
    const data = new ArrayBuffer(slot * this.items.length);
    this.items.forEach((d, i) => {
      const u = new Uint32Array(data, i * slot, 16);
      const f = new Float32Array(data, i * slot, 16);
      d.u32.forEach((v, j) => (u[j] = v >>> 0));
      for (const [j, v] of Object.entries(d.f32)) f[Number(j)] = v;
    });
    const params = this.ledger.createBuffer('scratch', data.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, `${this.label}.params`);
    try {
      device.queue.writeBuffer(params, 0, data);
      const maxPerDim = device.limits.maxComputeWorkgroupsPerDimension;
      const encoder = device.createCommandEncoder({ label: this.label });
      const pass = encoder.beginComputePass({ label: this.label });
      this.items.forEach((d, i) => {
        const entries: GPUBindGroupEntry[] = Object.entries(d.bindings).map(([binding, buffer]) => ({
          binding: Number(binding),
          resource: { buffer },
        }));
        entries.push({ binding: d.paramsBinding, resource: { buffer: params, offset: i * slot, size: 64 } });
        pass.setPipeline(d.pipeline);
        pass.setBindGroup(0, device.createBindGroup({ layout: d.pipeline.getBindGroupLayout(0), entries }));
        const [x, y] = dispatchGrid(d.workgroups, maxPerDim);
        pass.dispatchWorkgroups(x, y);
      });
      pass.end();
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
    } finally {
      this.ledger.release(params);
    }
  }
}

/** Stage clock: `lap(name)` adds the seconds since the previous lap to seconds[name]. */
function stageClock(seconds: Record<string, number>): (name: string) => void {
  let t = performance.now();
  return (name) => {
    const now = performance.now();
    seconds[name] = (seconds[name] ?? 0) + (now - t) / 1000;
    t = now;
  };
}

function abortCheck(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new DOMException('GPTQ was cancelled.', 'AbortError');
}

// ------------------------------------------------------------- Hessian ----

/**
 * H = Σ xᵀx over every row of x recorded with `add`, on the GPU, K×K f32
 * (allocated through the ledger as 'scratch'). One accumulator serves every
 * layer that reads the same input (q/k/v, gate/up).
 */
export class HessianAccumulator {
  readonly buffer: GPUBuffer;
  private rowsSeen = 0;
  private readonly uniforms: GPUBuffer[] = [];

  private readonly cpu: boolean;

  constructor(
    private readonly ledger: MemoryLedger,
    readonly k: number,
    readonly label = `hessian[${k}]`,
    tuning: KernelTuning = tuningFor(ledger.device),
  ) {
    if (!Number.isInteger(k) || k < 1) throw new Error(`${label}: K=${k} is not a positive integer.`);
    // The CPU kernel reads 8 inputs at a time; GPTQ needs K % 32 = 0 anyway.
    this.cpu = tuning.cpu && k % 8 === 0;
    checkBinding(ledger.device, `the Hessian of K=${k}`, k * k * 4);
    this.buffer = ledger.createBuffer('scratch', k * k * 4, storageUsage(), label);
  }

  /** Calibration rows (tokens) recorded so far. */
  get samples(): number {
    return this.rowsSeen;
  }

  /** Records H += xᵀx for rows rowOffset … rowOffset + rows − 1 of x [*, K] (f32) into `encoder`. */
  add(encoder: GPUCommandEncoder, x: GPUBuffer, rows: number, rowOffset = 0): void {
    const { k, label } = this;
    if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(rowOffset) || rowOffset < 0) {
      throw new Error(`${label}: ${rows} rows from row ${rowOffset}: rows must be a positive integer, the offset ≥ 0.`);
    }
    if (x.size < (rowOffset + rows) * k * 4) {
      throw new Error(`${label}: x holds ${x.size} bytes, less than (rowOffset + rows)·K·4 = ${(rowOffset + rows) * k * 4}.`);
    }
    checkBinding(this.ledger.device, `the calibration input ${x.label || ''}`, x.size);
    const device = this.ledger.device;
    const tiles = Math.ceil(k / HESSIAN_TILE);
    // A buffer per call: several calls may sit in one encoder before it is submitted.
    const params = this.ledger.createBuffer('scratch', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, `${label}.params`);
    this.uniforms.push(params);
    device.queue.writeBuffer(params, 0, new Uint32Array([k, rows, rowOffset, tiles]));
    const pipeline = cachedPipeline(device, 'gptq_hessian', hessianWgsl, this.cpu ? 'hessianCpu' : 'hessian', {});
    const bindGroup = device.createBindGroup({
      label,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: this.cpu ? 3 : 0, resource: { buffer: x } },
        { binding: 1, resource: { buffer: this.buffer } },
        { binding: 2, resource: { buffer: params } },
      ],
    });
    const pass = encoder.beginComputePass({ label });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    const blocks = k / 8;
    const workgroups = this.cpu ? Math.ceil((blocks * (blocks + 1)) / 2 / 64) : (tiles * (tiles + 1)) / 2;
    const [gx, gy] = dispatchGrid(workgroups, device.limits.maxComputeWorkgroupsPerDimension);
    pass.dispatchWorkgroups(gx, gy);
    pass.end();
    this.rowsSeen += rows;
  }

  destroy(): void {
    for (const b of this.uniforms.splice(0)) this.ledger.release(b);
    this.ledger.release(this.buffer);
  }
}

// ----------------------------------------------------- Cholesky factor ----

export interface HessianFactor {
  /** U [K, K] f32 upper triangular, H⁻¹ = UᵀU in GPTQ's column order (caller releases it through the ledger) */
  u: GPUBuffer;
  /** order[j] = the original column quantized j-th */
  order: Int32Array;
  /** the dampening added to the diagonal */
  lambda: number;
  /** λ as a fraction of mean(diag H): the requested one, or more where float32 could not factor H with it */
  dampening: number;
  /** inputs with H_jj = 0 */
  dead: number;
}

/**
 * U with Pᵀ(H' + λI)P = (UᵀU)⁻¹ on the GPU, H' = H with dead diagonals set
 * to 1, P the act-order permutation (identity without act-order). `hessian`
 * is only read.
 */
export async function factorHessian(
  ledger: MemoryLedger,
  hessian: GPUBuffer,
  k: number,
  options: Pick<GpuGptqOptions, 'dampening' | 'actOrder' | 'signal' | 'tuning'> & { seconds?: Record<string, number> } = {},
): Promise<HessianFactor> {
  const device = ledger.device;
  if (k % NB !== 0) throw new Error(`GPTQ: K=${k} is not a multiple of ${NB}.`);
  if (hessian.size < k * k * 4) {
    throw new Error(`GPTQ: the Hessian buffer holds ${hessian.size} bytes, less than K·K·4 = ${k * k * 4} for K = ${k}.`);
  }
  checkBinding(device, `a K×K matrix for K=${k}`, k * k * 4);
  const seconds = options.seconds ?? {};
  const lap = stageClock(seconds);
  const tuning = options.tuning ?? tuningFor(device);
  const pipe = (entry: string, constants: Record<string, number> = {}) =>
    cachedPipeline(device, 'gptq_cholesky', choleskyWgsl, entry, constants);
  const owned: GPUBuffer[] = [];
  const scratch = (bytes: number, label: string) => {
    const b = ledger.createBuffer('scratch', bytes, storageUsage(), label);
    owned.push(b);
    return b;
  };
  let u: GPUBuffer | null = null;
  try {
    // λ, the order and the dead inputs come from diag H: K floats read back.
    const diagBuffer = scratch(k * 4, 'gptq.diag');
    const first = new Batch(ledger, 'gptq diag');
    first.add({ pipeline: pipe('diagonal'), bindings: { 0: hessian, 1: diagBuffer }, paramsBinding: 4, u32: [k], workgroups: Math.ceil(k / 64) });
    await first.run();
    const diag = new Float32Array(await readBuffer(device, diagBuffer, k * 4));
    let dead = 0;
    for (const d of diag) if (d === 0) dead++;
    const requested = options.dampening ?? DEFAULT_DAMPENING;
    const mean = dampeningLambda(diag, 1);
    if (!(mean > 0) || !Number.isFinite(mean)) {
      throw new Error(`GPTQ: the Hessian's diagonal has mean ${mean}: it must be positive and finite (no calibration data recorded, or overflow).`);
    }
    const order = options.actOrder ? actOrderPermutation(diag) : Int32Array.from({ length: k }, (_, j) => j);
    const permBuffer = ledger.upload('scratch', Uint32Array.from(order), 'gptq.perm');
    owned.push(permBuffer);
    u = ledger.createBuffer('scratch', k * k * 4, storageUsage(), 'gptq.U');
    const status = scratch(4, 'gptq.status');
    abortCheck(options.signal);
    lap('prepare');

    // A Hessian that float32 cannot factor at the requested dampening is factored again
    // with more (at least 0.01, then 0.1 of mean diag H); the result reports what was used.
    const ladder = [requested, Math.max(10 * requested, 0.01), Math.max(100 * requested, 0.1)];
    let dampening = requested;
    let lambda = 0;
    for (let attempt = 0; ; attempt++) {
      dampening = ladder[attempt];
      lambda = dampeningLambda(diag, dampening);
      device.queue.writeBuffer(status, 0, new Uint32Array([0]));
      const chol = new Batch(ledger, 'gptq cholesky');
      chol.add({ pipeline: pipe('prepare'), bindings: { 0: hessian, 2: u, 3: permBuffer }, paramsBinding: 4, u32: [k], f32: { 4: lambda }, workgroups: Math.ceil((k * k) / 256) });
      for (let b = 0; b < k; b += NB) {
        chol.add({ pipeline: pipe('cholDiag', { DIAG_WG: tuning.cpu ? 32 : 256 }), bindings: { 2: u, 5: status }, paramsBinding: 4, u32: [k, b], workgroups: 1 });
        const rest = k - b - NB;
        if (rest <= 0) continue;
        chol.add({ pipeline: pipe('cholPanel'), bindings: { 2: u }, paramsBinding: 4, u32: [k, b], workgroups: Math.ceil(rest / 64) });
        if (tuning.cpu) {
          const blocks = rest / 8;
          chol.add({ pipeline: pipe('cholUpdateCpu'), bindings: { 7: u }, paramsBinding: 4, u32: [k, b], workgroups: Math.ceil((blocks * (blocks + 1)) / 2 / 64) });
        } else {
          const tiles = Math.ceil(rest / TILE);
          chol.add({ pipeline: pipe('cholUpdate'), bindings: { 2: u }, paramsBinding: 4, u32: [k, b, 0, tiles], workgroups: (tiles * (tiles + 1)) / 2 });
        }
      }
      await chol.run();
      abortCheck(options.signal);
      const failed = new Uint32Array(await readBuffer(device, status, 4))[0];
      if (!failed) break;
      if (attempt + 1 === ladder.length) {
        throw new Error(
          `GPTQ: the Hessian (K=${k}) is not positive definite in float32 even with dampening ${dampening} ` +
            `(λ=${lambda.toExponential(3)}; first failing column ${failed - 1}): the calibration inputs of this layer ` +
            `are degenerate (too few tokens, or overflow): use more calibration tokens or keep the layer RTN.`,
        );
      }
    }
    lap('cholesky');

    const xinv = scratch(k * k * 4, 'gptq.Linv');
    const inv = new Batch(ledger, 'gptq inverse');
    if (tuning.cpu) {
      inv.add({ pipeline: pipe('invColumnsCpu'), bindings: { 7: u, 8: xinv }, paramsBinding: 4, u32: [k], workgroups: Math.ceil(k / 4 / 64) });
    } else {
      inv.add({ pipeline: pipe('invDiag'), bindings: { 2: u, 6: xinv }, paramsBinding: 4, u32: [k], workgroups: Math.ceil(k / 64) });
      const blocks = k / NB;
      for (let s = 1; s < blocks; s++) {
        inv.add({ pipeline: pipe('invBlock'), bindings: { 2: u, 6: xinv }, paramsBinding: 4, u32: [k, 0, s], workgroups: blocks - s });
      }
    }
    inv.add({ pipeline: pipe('reverse'), bindings: { 2: u, 6: xinv }, paramsBinding: 4, u32: [k], workgroups: Math.ceil((k * k) / 256) });
    await inv.run();
    lap('inverse');
    const result = { u, order, lambda, dampening, dead };
    u = null;
    return result;
  } finally {
    for (const b of owned) ledger.release(b);
    ledger.release(u);
  }
}

// --------------------------------------------------------------- sweep ----

/**
 * Lazy-batch width for a scheme: at most 128 and a multiple of 32, and so
 * that a group starting inside a block ends inside it, or starts with the
 * block (then every column of the group is up to date when the sweep reaches
 * it). Static groups (act-order, whole rows) need neither.
 */
export function sweepBlockSize(requested: number, groupSize: number, staticGroups: boolean): number {
  let b = Math.max(32, Math.min(BMAX, Math.floor(requested / 32) * 32));
  if (staticGroups) return b;
  if (groupSize <= b) return Math.floor(b / groupSize) * groupSize;
  while (groupSize % b !== 0) b -= 32;
  return b;
}

/**
 * GPTQ of W[n, k] with the Hessian of its inputs (an accumulator, or a K×K f32
 * buffer), into the shared packed format. `loss` is GPTQ's ½ Σ err², computed
 * for H as given, and for an accumulator's for H = 2 XᵀX / samples (GPTQ's
 * own scaling, so it reads as a mean squared output error per token).
 * `dampening` is the fraction of mean(diag H) used: the requested one, or
 * 0.01 / 0.1 where float32 could not factor H with less. `seconds` per stage:
 * prepare, cholesky, inverse (absent with a shared `factor`), sweep, pack.
 */
export async function gptqQuantize(
  ledger: MemoryLedger,
  weight: Float32Array,
  n: number,
  k: number,
  hessian: HessianAccumulator | GPUBuffer,
  scheme: QuantScheme,
  options: GpuGptqOptions = {},
): Promise<{ packed: PackedLinear; loss: number; seconds: Record<string, number>; dampening: number }> {
  const device = ledger.device;
  const groupSize = resolveGroupSize(n, k, scheme, 'GPTQ');
  if (weight.length !== n * k) {
    throw new Error(`GPTQ: ${weight.length} weights given for a [${n}, ${k}] matrix (${n * k} expected).`);
  }
  let lossScale = 1;
  let hBuffer: GPUBuffer;
  if (hessian instanceof HessianAccumulator) {
    if (hessian.k !== k) throw new Error(`GPTQ: the Hessian is for K=${hessian.k} inputs, the layer has K=${k}.`);
    if (hessian.samples === 0) throw new Error(`GPTQ: ${hessian.label} has seen no calibration rows: record inputs with add() first.`);
    lossScale = 2 / hessian.samples;
    hBuffer = hessian.buffer;
  } else {
    hBuffer = hessian;
  }
  checkBinding(device, `W [${n}, ${k}]`, n * k * 4);
  const { bits, symmetric } = scheme;
  const groups = k / groupSize;
  const staticGroups = (options.actOrder ?? false) || groupSize === k;
  const block = sweepBlockSize(options.blockSize ?? DEFAULT_BLOCK_SIZE, groupSize, staticGroups);
  const tuning = options.tuning ?? tuningFor(device);
  const seconds: Record<string, number> = {};
  const owned: GPUBuffer[] = [];
  const track = (b: GPUBuffer) => (owned.push(b), b);
  try {
    const factor = options.factor ?? (await factorHessian(ledger, hBuffer, k, { ...options, seconds }));
    if (!options.factor) track(factor.u);
    const u = factor.u;
    if (factor.order.length !== k) throw new Error(`GPTQ: the shared factor is for K=${factor.order.length}, the layer has K=${k}.`);
    if (!options.actOrder && factor.order.some((c, j) => c !== j)) {
      throw new Error('GPTQ: the shared factor was made with act-order: pass actOrder: true with it, or factor without act-order.');
    }
    const lap = stageClock(seconds);
    const inv = new Int32Array(k);
    factor.order.forEach((c, j) => (inv[c] = j));
    const wpr = wordsPerRow(k, bits);
    const w0 = track(ledger.upload('scratch', weight, 'gptq.W0'));
    const w = track(ledger.createBuffer('scratch', n * k * 4, storageUsage(), 'gptq.W'));
    const e = track(ledger.createBuffer('scratch', n * BMAX * 4, storageUsage(), 'gptq.E'));
    const scales = track(ledger.createBuffer('scratch', n * groups * 4, storageUsage(), 'gptq.scales'));
    const zeros = track(ledger.createBuffer('scratch', n * groups * 4, storageUsage(), 'gptq.zeros'));
    const perm = track(ledger.upload('scratch', Uint32Array.from(factor.order), 'gptq.perm'));
    const invBuffer = track(ledger.upload('scratch', Uint32Array.from(inv), 'gptq.inv'));
    const codes = track(ledger.createBuffer('scratch', n * wpr * 4, storageUsage(), 'gptq.codes'));
    const loss = track(ledger.createBuffer('scratch', n * 4, storageUsage(), 'gptq.loss'));
    const pipe = (entry: string, constants: Record<string, number> = {}) =>
      cachedPipeline(device, 'gptq_sweep', sweepWgsl, entry, constants);
    const rows = n >= 4224 ? 16 : 8;
    // Params: n, k, i1, bw, c0, c1, groupSize, groups, bits, symmetric, g0, groupCount, wordsPerRow.
    const params = (i1: number, bw: number, c0: number, c1: number, g0: number, groupCount: number) =>
      [n, k, i1, bw, c0, c1, groupSize, groups, bits, symmetric ? 1 : 0, g0, groupCount, wpr];
    const groupParams = (batch: Batch, g0: number, groupCount: number) =>
      batch.add({
        pipeline: pipe('groupParams'),
        bindings: { 2: w, 5: scales, 6: zeros, 8: invBuffer },
        paramsBinding: 11,
        u32: params(0, 0, 0, 0, g0, groupCount),
        workgroups: Math.ceil((n * groupCount) / 64),
      });

    const setup = new Batch(ledger, 'gptq weights');
    setup.add({ pipeline: pipe('prepareWeights'), bindings: { 0: w0, 1: hBuffer, 2: w, 7: perm }, paramsBinding: 11, u32: params(0, 0, 0, 0, 0, 0), workgroups: Math.ceil((n * k) / 256) });
    if (staticGroups) groupParams(setup, 0, groups);
    await setup.run();
    ledger.release(w0);
    lap('prepare');

    // Blocks are submitted a few at a time so that a cancel lands between them.
    const blocksPerSubmit = Math.max(1, Math.floor(2048 / block));
    let batch = new Batch(ledger, 'gptq sweep');
    for (let i1 = 0, count = 0; i1 < k; i1 += block, count++) {
      const bw = Math.min(block, k - i1);
      const segments = staticGroups || groupSize > bw ? [i1] : Array.from({ length: bw / groupSize }, (_, s) => i1 + s * groupSize);
      segments.forEach((c0, s) => {
        const c1 = s + 1 < segments.length ? segments[s + 1] : i1 + bw;
        if (!staticGroups && c0 % groupSize === 0) groupParams(batch, c0 / groupSize, 1);
        const quant = tuning.cpu
          ? { pipeline: pipe('quantRows'), workgroups: Math.ceil(n / 64) }
          : { pipeline: pipe('quantBlock', { ROWS: rows }), workgroups: Math.ceil(n / rows) };
        batch.add({
          ...quant,
          bindings: { 2: w, 3: u, 4: e, 5: scales, 6: zeros, 7: perm, 10: loss },
          paramsBinding: 11,
          u32: params(i1, bw, c0, c1, 0, 0),
        });
      });
      const rest = k - i1 - bw;
      if (rest > 0) {
        batch.add(
          tuning.cpu
            ? { pipeline: pipe('updateCpu'), bindings: { 12: w, 13: e, 14: u }, paramsBinding: 11, u32: params(i1, bw, 0, 0, 0, 0), workgroups: Math.ceil(((rest / 8) * Math.ceil(n / 8)) / 64) }
            : { pipeline: pipe('update'), bindings: { 2: w, 3: u, 4: e }, paramsBinding: 11, u32: params(i1, bw, 0, 0, 0, 0), workgroups: Math.ceil(rest / TILE) * Math.ceil(n / TILE) },
        );
      }
      if ((count + 1) % blocksPerSubmit === 0 || rest <= 0) {
        await batch.run();
        abortCheck(options.signal);
        batch = new Batch(ledger, 'gptq sweep');
      }
    }
    lap('sweep');

    const packBatch = new Batch(ledger, 'gptq pack');
    packBatch.add({ pipeline: pipe('pack'), bindings: { 2: w, 8: invBuffer, 9: codes }, paramsBinding: 11, u32: params(0, 0, 0, 0, 0, 0), workgroups: Math.ceil((n * (k / 32)) / 64) });
    await packBatch.run();
    const [codesData, scalesData, zerosData, lossData] = await Promise.all([
      readBuffer(device, codes, n * wpr * 4),
      readBuffer(device, scales, n * groups * 4),
      symmetric ? Promise.resolve(null) : readBuffer(device, zeros, n * groups * 4),
      readBuffer(device, loss, n * 4),
    ]);
    let total = 0;
    for (const v of new Float32Array(lossData)) total += v;
    const packed: PackedLinear = {
      n,
      k,
      bits,
      groupSize,
      symmetric,
      wordsPerRow: wpr,
      codes: new Uint32Array(codesData),
      scales: new Float32Array(scalesData),
      zeros: zerosData ? Uint8Array.from(new Uint32Array(zerosData)) : null,
    };
    lap('pack');
    return { packed, loss: (total / 2) * lossScale, seconds, dampening: factor.dampening };
  } finally {
    for (const b of owned) ledger.release(b);
  }
}
