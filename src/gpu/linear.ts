/**
 * Linear layers on the GPU: y[M, N] = x[M, K] · Wᵀ (+ bias).
 *
 * `GpuLinear` is what the executor sees — f32 (`F32Linear`, here) and
 * quantized (`QuantLinear`, src/gpu/qlinear.ts) layers alike. A layer owns
 * its weight buffers (allocated through the MemoryLedger as 'weights') and
 * records its dispatch into a command encoder or compute pass the caller
 * gives it, so a whole forward pass is batched into few submits. Pipelines
 * are compiled once per device and specialization, never per call.
 *
 * x and y are caller-owned storage buffers holding at least M·K and M·N
 * floats from offset 0; the kernels read M from the bound size of x, so each
 * dispatch binds exactly M·K floats of x and M·N floats of y.
 */
import matmulF32Source from '../../shaders/matmul_f32.wgsl?raw';
import reduceTeamSource from '../../shaders/reduce_team.wgsl?raw';
import gemvF32Source from '../../shaders/gemv_f32.wgsl?raw';
import gemmF32WideSource from '../../shaders/gemm_f32_wide.wgsl?raw';
import type { MemoryLedger } from './ledger';
import { tuningFor, type KernelTuning } from './tuning';

/**
 * Which kernel a dispatch uses: GEMV for a few rows (decode), tiled GEMM for
 * many. Layers with CPU-shaped tuning have one kernel, a barrier-free GEMM, for
 * both.
 */
export type LinearKernel = 'gemv' | 'gemm';

/** Up to this many rows of x the GEMV kernel is used (decode); above it, the tiled GEMM. */
export const GEMV_MAX_M = 4;

/** Invocations per workgroup of every linear kernel. */
export const LINEAR_WORKGROUP = 256;
/** Rows of W per invocation in the GEMV kernels. */
export const GEMV_ROWS = 4;
/** Output tile edge of the GEMM kernels. */
export const GEMM_TILE = 64;
/** Invocations per workgroup of the CPU-shaped (barrier-free) GEMM kernels. */
export const CPU_GEMM_WORKGROUP = 64;
/** Output block of one invocation of a CPU-shaped GEMM: rows of x × output features. */
export interface CpuGemmBlock {
  m: number;
  n: number;
}
/** The block of matmul_f32.wgsl `gemmCpu4` / `gemmCpu` (CPU_BM × CPU_BN there). */
export const F32_CPU_BLOCK: CpuGemmBlock = { m: 32, n: 16 };

export type EncodeTarget = GPUCommandEncoder | GPUComputePassEncoder;

export interface GpuLinear {
  /** output features */
  readonly n: number;
  /** input features */
  readonly k: number;
  /** GPU bytes this layer's weights hold (weights, scales, zero points, bias) */
  readonly bytes: number;
  readonly label: string;
  /** what the layer is, for results: "f32", "q4 g128 asym" */
  readonly variant: string;
  /** the kernel `encode` picks for M rows */
  kernelFor(m: number): LinearKernel;
  /**
   * Records y[M, N] = x[M, K] · Wᵀ (+ bias) into `target`: a command encoder
   * (a compute pass is begun and ended around the dispatch) or an open compute
   * pass (the dispatch is recorded into it). `kernel` overrides the choice; a
   * CPU-shaped layer runs its barrier-free GEMM for either (on CPU drivers it
   * beats the GEMV even at M = 1).
   */
  encode(target: EncodeTarget, x: GPUBuffer, y: GPUBuffer, m: number, kernel?: LinearKernel): void;
  /** Releases the layer's buffers through the ledger. */
  destroy(): void;
}

export interface LinearOptions {
  /** bias [N], kept in f32 */
  bias?: Float32Array;
  /** names the layer in buffer labels and errors, e.g. "layers.3.mlp.up" */
  label?: string;
  /** overrides the device's maxComputeWorkgroupsPerDimension (tests of the 2D dispatch) */
  maxWorkgroupsPerDimension?: number;
  /**
   * kernel shapes; default `tuningFor(device)`. With `cpu` the layer runs the
   * barrier-free CPU-shaped kernels (tests force either shape on any adapter).
   */
  tuning?: KernelTuning;
  /** GEMV kernel shape (benchmarks and tests); default `gemvPlan` from the device and the layer's shape */
  gemv?: Partial<GemvConfig>;
  /**
   * GEMM output tile edge: 128 (qgemm.wgsl, 8 × 8 outputs per invocation) or
   * 64 (qmatmul.wgsl gemm, 4 × 4). Default: 128 from GEMM_WIDE_MIN_M rows of x on.
   */
  gemmTile?: 64 | 128;
}

/** From this many rows of x a packed layer's GEMM uses 128 × 128 tiles. */
export const GEMM_WIDE_MIN_M = 64;

/**
 * The shape of a GEMV dispatch: a team of `tpr` lanes owns `rows` rows of W
 * (see qgemv.wgsl). `subgroups`: the team reduces with subgroup shuffles
 * (needs the `subgroups` feature and subgroups of at least `tpr` lanes), else
 * through workgroup memory. `xc`: inputs staged in workgroup memory per chunk
 * (qgemv only). `basic`: the older one-kernel-for-all GEMV (qmatmul.wgsl
 * `gemv`), kept as the portable baseline the bench compares with.
 */
export interface GemvConfig {
  tpr: number;
  rows: number;
  subgroups: boolean;
  xc: number;
  basic: boolean;
  /** subgroup size the reduction assumes (0 without subgroups) */
  sg: number;
  /** qgemv 4-bit: load the next unit's codes before decoding the current one */
  prefetch: boolean;
}

/** Subgroup sizes the adapter promises (0 where unknown or without the feature). */
export function subgroupMinSize(device: GPUDevice): number {
  if (!device.features.has('subgroups')) return 0;
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo & { subgroupMinSize?: number } }).adapterInfo;
  return info?.subgroupMinSize ?? 0;
}

/** The adapter's subgroup size when it has exactly one (the subgroup reductions need it), else 0. */
export function fixedSubgroupSize(device: GPUDevice): number {
  if (!device.features.has('subgroups')) return 0;
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  const min = info?.subgroupMinSize ?? 0;
  return min > 0 && min === info?.subgroupMaxSize && LINEAR_WORKGROUP % min === 0 ? min : 0;
}

/**
 * A GEMV kernel's WGSL: `base` with the team reduction of reduce_team.wgsl
 * (subgroup shuffles or a workgroup-memory tree) and the array-sizing
 * constants substituted.
 */
export function gemvSource(base: string, config: { rows: number; subgroups: boolean; xc?: number }): string {
  const [, sub, wg] = reduceTeamSource.split(/^\/\/--- (?:subgroup|workgroup)\n/m);
  let src = base.replace(/^REDUCE_IMPL$/m, config.subgroups ? sub : wg).replace(/^const ROWS: u32 = \d+u;/m, `const ROWS: u32 = ${config.rows}u;`);
  if (config.xc !== undefined) src = src.replace(/^const XC: u32 = \d+u;/m, `const XC: u32 = ${config.xc}u;`);
  return config.subgroups ? `enable subgroups;\n${src}` : src;
}

/**
 * The f32 GEMV's shape. Default: the basic kernel (matmul_f32.wgsl gemv4, one
 * team of up to 256 lanes per 4 rows), which measured faster on an H100 than
 * gemv_f32.wgsl's subgroup-sized teams at every benchmark shape (bench/NOTES.md);
 * `override` selects gemv_f32.wgsl (basic: false) and its shape.
 */
export function f32GemvPlan(device: GPUDevice, k: number, override: Partial<GemvConfig> = {}): GemvConfig {
  const tpr = override.tpr ?? teamWidth(Math.ceil(k / 4), 8, 4, 32);
  const rows = override.rows ?? 4;
  const sg = override.sg ?? fixedSubgroupSize(device);
  const subgroups = sg > 0 && (override.subgroups ?? true);
  const basic = override.basic ?? Object.keys(override).length === 0;
  return { tpr, rows, subgroups, xc: 0, basic, sg: subgroups ? sg : 0, prefetch: false };
}

/** Team width for `units` work items per row: about `perLane` per lane, a power of two in [lo, hi]. */
export function teamWidth(units: number, perLane: number, lo: number, hi: number): number {
  let tpr = lo;
  while (tpr < hi && tpr * perLane < units) tpr *= 2;
  return tpr;
}

/** Splits `count` workgroups into a 2D grid within `maxPerDimension` per dimension. */
export function dispatchGrid(count: number, maxPerDimension: number): [number, number] {
  if (count <= maxPerDimension) return [count, 1];
  const gy = Math.ceil(count / maxPerDimension);
  if (gy > maxPerDimension) {
    throw new Error(
      `${count.toLocaleString('en-US')} workgroups do not fit a ${maxPerDimension}×${maxPerDimension} dispatch: ` +
        `the layer is too large for this adapter.`,
    );
  }
  return [Math.ceil(count / gy), gy];
}

/** GEMV team width for a row of `units` work items: about 4 items per invocation, 8 … 256. */
export function gemvTeamWidth(units: number): number {
  const want = Math.ceil(units / 4);
  let tpr = 8;
  while (tpr < want && tpr < LINEAR_WORKGROUP) tpr *= 2;
  return tpr;
}

/** Workgroups of a GEMV over N rows with team width `tpr`. */
export function gemvWorkgroups(n: number, tpr: number): number {
  return Math.ceil(n / ((GEMV_ROWS * LINEAR_WORKGROUP) / tpr));
}

/** Workgroups of a GEMM of M × N outputs. */
export function gemmWorkgroups(m: number, n: number): number {
  return Math.ceil(m / GEMM_TILE) * Math.ceil(n / GEMM_TILE);
}

/** Workgroups of a CPU-shaped GEMM of M × N outputs (one output block per invocation). */
export function cpuGemmWorkgroups(m: number, n: number, block: CpuGemmBlock): number {
  const blocks = Math.ceil(m / block.m) * Math.ceil(n / block.n);
  return Math.ceil(blocks / CPU_GEMM_WORKGROUP);
}

// Compiled once per device and specialization.
const modules = new WeakMap<GPUDevice, Map<string, GPUShaderModule>>();
const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/** The pipeline of `entryPoint` in `source` with `constants`, compiled once per device. */
export function cachedPipeline(
  device: GPUDevice,
  family: string,
  source: string,
  entryPoint: string,
  constants: Record<string, number>,
): GPUComputePipeline {
  const key = `${family}:${entryPoint}:${Object.entries(constants).map(([k, v]) => `${k}=${v}`).join(',')}`;
  let byKey = pipelines.get(device);
  if (!byKey) pipelines.set(device, (byKey = new Map()));
  let pipeline = byKey.get(key);
  if (!pipeline) {
    let byFamily = modules.get(device);
    if (!byFamily) modules.set(device, (byFamily = new Map()));
    let module = byFamily.get(family);
    if (!module) byFamily.set(family, (module = device.createShaderModule({ code: source, label: family })));
    pipeline = device.createComputePipeline({ label: key, layout: 'auto', compute: { module, entryPoint, constants } });
    byKey.set(key, pipeline);
  }
  return pipeline;
}

/** Records one dispatch into an encoder (in its own pass) or into an open pass. */
export function recordDispatch(
  target: EncodeTarget,
  pipeline: GPUComputePipeline,
  bindGroup: GPUBindGroup,
  grid: [number, number],
  label: string,
): void {
  const isEncoder = typeof (target as GPUCommandEncoder).beginComputePass === 'function';
  const pass = isEncoder ? (target as GPUCommandEncoder).beginComputePass({ label }) : (target as GPUComputePassEncoder);
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(grid[0], grid[1]);
  if (isEncoder) pass.end();
}

/** Throws a readable error unless x and y can hold M rows. */
export function checkOperands(label: string, n: number, k: number, x: GPUBuffer, y: GPUBuffer, m: number): void {
  if (!Number.isInteger(m) || m < 1) throw new Error(`${label}: M=${m} rows of x: M must be a positive integer.`);
  if (x.size < m * k * 4) {
    throw new Error(`${label}: x holds ${x.size} bytes, less than M·K·4 = ${m}·${k}·4 = ${m * k * 4}.`);
  }
  if (y.size < m * n * 4) {
    throw new Error(`${label}: y holds ${y.size} bytes, less than M·N·4 = ${m}·${n}·4 = ${m * n * 4}.`);
  }
}

/** Throws unless `bytes` fit one storage binding on `device`. */
export function checkBinding(device: GPUDevice, label: string, what: string, bytes: number): void {
  const limit = device.limits.maxStorageBufferBindingSize;
  if (bytes > limit) {
    throw new Error(
      `${label}: ${what} needs ${bytes.toLocaleString('en-US')} bytes in one storage binding, more than this ` +
        `adapter's maxStorageBufferBindingSize of ${limit.toLocaleString('en-US')}: quantize this layer.`,
    );
  }
}

/**
 * Bind groups of one layer, cached per (kernel, x, y, M) so a forward pass
 * that reuses its activation buffers builds each bind group once.
 */
export class BindGroupCache {
  private byX = new WeakMap<GPUBuffer, WeakMap<GPUBuffer, Map<string, GPUBindGroup>>>();

  get(x: GPUBuffer, y: GPUBuffer, key: string, make: () => GPUBindGroup): GPUBindGroup {
    let byY = this.byX.get(x);
    if (!byY) this.byX.set(x, (byY = new WeakMap()));
    let byKey = byY.get(y);
    if (!byKey) byY.set(y, (byKey = new Map()));
    let group = byKey.get(key);
    if (!group) byKey.set(key, (group = make()));
    return group;
  }

  clear(): void {
    this.byX = new WeakMap();
  }
}

/** An unquantized f32 linear layer, W[N, K] row-major (nn.Linear layout). */
export class F32Linear implements GpuLinear {
  readonly n: number;
  readonly k: number;
  readonly bytes: number;
  readonly label: string;
  readonly variant = 'f32';
  /** true: the CPU-shaped kernels (see LinearOptions.tuning) */
  readonly cpu: boolean;
  private readonly device: GPUDevice;
  private readonly weight: GPUBuffer;
  private readonly bias: GPUBuffer | null;
  private readonly params: GPUBuffer;
  private readonly tpr: number;
  /** the fast GEMV's shape (gemv_f32.wgsl, K % 4 = 0); `basic` selects matmul_f32.wgsl gemv4 */
  readonly gemv: GemvConfig;
  private readonly gemmTile: 64 | 128 | undefined;
  private readonly maxPerDim: number;
  private readonly bindGroups = new BindGroupCache();

  /** false when W is another layer's buffer (a tied head multiplying with the embedding table): destroy() leaves it */
  private readonly ownsWeight: boolean;

  /**
   * `w` is W [N, K] as f32 values to upload, or an f32 GPU buffer of W that
   * another part of the model already holds (a tied head's embedding table),
   * shared rather than copied.
   */
  constructor(private readonly ledger: MemoryLedger, w: Float32Array | GPUBuffer, n: number, k: number, options: LinearOptions = {}) {
    this.device = ledger.device;
    this.n = n;
    this.k = k;
    this.label = options.label ?? `linear[${n}x${k}]`;
    if (!Number.isInteger(n) || !Number.isInteger(k) || n < 1 || k < 1) {
      throw new Error(`${this.label}: shape [${n}, ${k}] is not a matrix shape: N and K must be positive integers.`);
    }
    const given = w instanceof Float32Array ? w.length : Math.floor(w.size / 4);
    if (w instanceof Float32Array ? given !== n * k : given < n * k) {
      throw new Error(`${this.label}: ${given} weights given for W[${n}, ${k}] (${n * k} expected).`);
    }
    if (options.bias && options.bias.length !== n) {
      throw new Error(`${this.label}: bias holds ${options.bias.length} values, expected N=${n}.`);
    }
    checkBinding(this.device, this.label, 'W', n * k * 4);
    this.maxPerDim = options.maxWorkgroupsPerDimension ?? this.device.limits.maxComputeWorkgroupsPerDimension;
    this.cpu = (options.tuning ?? tuningFor(this.device)).cpu;
    this.tpr = gemvTeamWidth(k % 4 === 0 ? k / 4 : k);
    this.gemv = f32GemvPlan(this.device, k, options.gemv);
    this.gemmTile = options.gemmTile;
    this.ownsWeight = w instanceof Float32Array;
    this.weight = w instanceof Float32Array ? ledger.upload('weights', w, `${this.label}.weight`) : w;
    this.bias = options.bias ? ledger.upload('weights', options.bias, `${this.label}.bias`) : null;
    this.bytes = (this.ownsWeight ? this.weight.size : 0) + (this.bias?.size ?? 0);
    this.params = ledger.createBuffer('scratch', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, `${this.label}.params`);
    this.device.queue.writeBuffer(this.params, 0, new Uint32Array([n, k, this.bias ? 1 : 0, 0]));
  }

  kernelFor(m: number): LinearKernel {
    return m <= GEMV_MAX_M && !this.cpu ? 'gemv' : 'gemm';
  }

  encode(target: EncodeTarget, x: GPUBuffer, y: GPUBuffer, m: number, kernel: LinearKernel = this.kernelFor(m)): void {
    checkOperands(this.label, this.n, this.k, x, y, m);
    checkBinding(this.device, this.label, `x [${m}, ${this.k}]`, m * this.k * 4);
    // The vec4 kernels (gemv4, gemmCpu4) need K % 4 = 0 and read x and W through bindings 5 and 6.
    const vec4 = this.k % 4 === 0;
    const entry = this.cpu ? (vec4 ? 'gemmCpu4' : 'gemmCpu') : kernel === 'gemm' ? 'gemm' : vec4 ? 'gemv4' : 'gemv';
    const gemv = entry === 'gemv4' || entry === 'gemv';
    const fast = entry === 'gemv4' && !this.gemv.basic;
    // 128 × 128 tiles (gemm_f32_wide.wgsl) need K % 16 = 0
    const wide = entry === 'gemm' && this.k % 16 === 0 && (this.gemmTile ?? (m >= GEMM_WIDE_MIN_M ? 128 : 64)) === 128;
    const g = this.gemv;
    const hasBias = this.bias !== null;
    // Only the GEMV kernels are specialized; the GEMMs read params.hasBias.
    const constants: Record<string, number> = gemv ? { HAS_BIAS: hasBias ? 1 : 0, TPR: fast ? g.tpr : this.tpr } : {};
    const pipeline = fast
      ? cachedPipeline(this.device, `gemv_f32:r${g.rows}:${g.subgroups ? 'sg' : 'wg'}`, gemvSource(gemvF32Source, g), 'gemv', g.subgroups ? { ...constants, SG: g.sg } : constants)
      : wide
        ? cachedPipeline(this.device, 'gemm_f32_wide', gemmF32WideSource, 'gemm', {})
        : cachedPipeline(this.device, 'matmul_f32', matmulF32Source, entry, constants);
    const bindGroup = this.bindGroups.get(x, y, `${fast ? 'fast' : wide ? 'wide' : entry}:${m}`, () => {
      const asVec4 = vec4 && (entry !== 'gemm' || wide);
      return this.device.createBindGroup({
        label: `${this.label}.${entry}`,
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: asVec4 ? 5 : 0, resource: { buffer: x, offset: 0, size: m * this.k * 4 } },
          { binding: asVec4 ? 6 : 1, resource: { buffer: this.weight } },
          { binding: 2, resource: { buffer: this.bias ?? this.weight } },
          { binding: 3, resource: { buffer: y, offset: 0, size: m * this.n * 4 } },
          { binding: 4, resource: { buffer: this.params } },
        ],
      });
    });
    const count = fast
      ? Math.ceil(this.n / (g.rows * (LINEAR_WORKGROUP / g.tpr)))
      : wide
      ? Math.ceil(m / 128) * Math.ceil(this.n / 128)
      : gemv
      ? gemvWorkgroups(this.n, this.tpr)
      : this.cpu
        ? cpuGemmWorkgroups(m, this.n, F32_CPU_BLOCK)
        : gemmWorkgroups(m, this.n);
    recordDispatch(target, pipeline, bindGroup, dispatchGrid(count, this.maxPerDim), `${this.label}.${entry}`);
  }

  destroy(): void {
    this.bindGroups.clear();
    if (this.ownsWeight) this.ledger.release(this.weight);
    this.ledger.release(this.bias);
    this.ledger.release(this.params);
  }
}
