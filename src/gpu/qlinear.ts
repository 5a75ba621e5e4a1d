/**
 * A quantized linear layer on the GPU: y = x · Ŵᵀ (+ bias), with Ŵ read from
 * the packed format (src/core/quant/format.ts) — no dequantized copy is ever
 * kept. Kernels, by adapter and rows of x: CPU adapters run qmatmul.wgsl
 * `gemmCpu` for every M; GPUs run qgemv.wgsl for M ≤ GEMV_MAX_M (its shape from
 * `quantGemvPlan`: subgroup reductions where the adapter has subgroups of one
 * size, a workgroup-memory tree otherwise), qgemm.wgsl (128 × 128 tiles) from
 * GEMM_WIDE_MIN_M rows, and qmatmul.wgsl `gemm` (64 × 64) between. The GPU holds exactly the packed bytes (codes,
 * f32 scales, u8 zero points) plus an optional f32 bias.
 */
import qmatmulSource from '../../shaders/qmatmul.wgsl?raw';
import qgemvSource from '../../shaders/qgemv.wgsl?raw';
import qgemmSource from '../../shaders/qgemm.wgsl?raw';
import { validatePacked, type PackedLinear, type QuantBits } from '../core/quant/format';
import { releasePacked, uploadPacked, type PackedBuffers } from './packed-table';
import type { MemoryLedger } from './ledger';
import { tuningFor } from './tuning';
import {
  BindGroupCache,
  GEMV_MAX_M,
  cachedPipeline,
  cpuGemmWorkgroups,
  checkBinding,
  checkOperands,
  dispatchGrid,
  gemmWorkgroups,
  gemvTeamWidth,
  gemvSource,
  gemvWorkgroups,
  recordDispatch,
  fixedSubgroupSize,
  teamWidth,
  LINEAR_WORKGROUP,
  GEMM_WIDE_MIN_M,
  type GemvConfig,
  type CpuGemmBlock,
  type EncodeTarget,
  type GpuLinear,
  type LinearOptions,
  type LinearKernel,
} from './linear';

/** Codes one GEMV invocation handles per step (see qmatmul.wgsl `unitCodes`). */
export function gemvUnitCodes(bits: number): number {
  return bits === 3 ? 128 : 128 / bits;
}

/** The block of qmatmul.wgsl `gemmCpu` (CPU_BM × CPU_BN there). */
export const QUANT_CPU_BLOCK: CpuGemmBlock = { m: 16, n: 16 };

/**
 * The qgemv.wgsl shape for a packed layer on `device`: teams of up to 32
 * lanes (one NVIDIA warp; about two units per lane), 4 rows per team, x staged
 * in chunks as large as workgroup memory allows, subgroup reductions where the
 * adapter's subgroups hold a team. `override` fixes any part (bench, tests).
 */
export function quantGemvPlan(device: GPUDevice, k: number, bits: number, override: Partial<GemvConfig> = {}): GemvConfig {
  const uc = gemvUnitCodes(bits);
  const units = Math.ceil(k / uc);
  const tpr = override.tpr ?? teamWidth(units, 2, 4, 32);
  const rows = override.rows ?? 4;
  const sg = override.sg ?? fixedSubgroupSize(device);
  const subgroups = sg > 0 && (override.subgroups ?? true);
  // workgroup memory: x chunk (one vec4 in nine is padding) + the reduction slots
  const budget = device.limits.maxComputeWorkgroupStorageSize - LINEAR_WORKGROUP * rows * 4;
  const fit = Math.floor(budget / 4.5 / 128) * 128;
  const xc = override.xc ?? Math.max(128, Math.min(fit, Math.ceil(Math.ceil(k / uc) * uc / 128) * 128));
  return { tpr, rows, subgroups, xc, basic: override.basic ?? false, sg: subgroups ? sg : 0, prefetch: override.prefetch ?? false };
}

export class QuantLinear implements GpuLinear {
  readonly n: number;
  readonly k: number;
  readonly bits: QuantBits;
  readonly groupSize: number;
  readonly symmetric: boolean;
  /** GPU bytes held: packed codes, scales, zero points (each padded to 4 bytes) and bias */
  readonly bytes: number;
  /** bytes of the packed format itself (`packedBytes`), what bits-per-weight counts */
  readonly packedBytes: number;
  readonly label: string;
  /** e.g. "q4 g128 asym" ("g" + K for one group per row) */
  readonly variant: string;
  /** true: the CPU-shaped kernels (see LinearOptions.tuning) */
  readonly cpu: boolean;
  private readonly device: GPUDevice;
  /** the packed weights on the GPU (shared with a tied embedding when given one) */
  readonly table: PackedBuffers;
  private readonly ownsTable: boolean;
  private readonly codes: GPUBuffer;
  private readonly scales: GPUBuffer;
  private readonly zeros: GPUBuffer | null;
  private readonly bias: GPUBuffer | null;
  private readonly params: GPUBuffer;
  private readonly tpr: number;
  /** the GEMV kernel's shape (qgemv.wgsl) */
  readonly gemv: GemvConfig;
  private readonly maxPerDim: number;
  private readonly gemmTile: 64 | 128 | undefined;
  private readonly bindGroups = new BindGroupCache();

  /**
   * From a PackedLinear (uploaded here, freed by destroy) or from packed
   * buffers already on the GPU (shared, e.g. a tied head reading the packed
   * embedding table; their owner frees them).
   */
  constructor(private readonly ledger: MemoryLedger, packed: PackedLinear | PackedBuffers, options: LinearOptions = {}) {
    this.device = ledger.device;
    const { n, k } = packed;
    this.label = options.label ?? `qlinear[${n}x${k}]`;
    const shared = 'bytes' in packed; // PackedBuffers (on the GPU) rather than a PackedLinear
    if (!shared) validatePacked(packed as PackedLinear, this.label);
    if (options.bias && options.bias.length !== n) {
      throw new Error(`${this.label}: bias holds ${options.bias.length} values, expected N=${n}.`);
    }
    checkBinding(this.device, this.label, 'packed codes', shared ? (packed as PackedBuffers).codes.size : (packed as PackedLinear).codes.byteLength);
    this.n = n;
    this.k = k;
    this.bits = packed.bits;
    this.groupSize = packed.groupSize;
    this.symmetric = packed.symmetric;
    this.maxPerDim = options.maxWorkgroupsPerDimension ?? this.device.limits.maxComputeWorkgroupsPerDimension;
    this.cpu = (options.tuning ?? tuningFor(this.device)).cpu;
    this.tpr = gemvTeamWidth(Math.ceil(k / gemvUnitCodes(packed.bits)));
    this.gemv = quantGemvPlan(this.device, k, packed.bits, options.gemv);
    this.gemmTile = options.gemmTile;
    this.table = shared ? (packed as PackedBuffers) : uploadPacked(ledger, packed as PackedLinear, this.label);
    this.ownsTable = !shared;
    ({ codes: this.codes, scales: this.scales, zeros: this.zeros } = this.table);
    this.bias = options.bias ? ledger.upload('weights', options.bias, `${this.label}.bias`) : null;
    this.packedBytes = this.table.packedBytes;
    this.variant = `q${packed.bits} g${packed.groupSize} ${packed.symmetric ? 'sym' : 'asym'}`;
    this.bytes = this.codes.size + this.scales.size + (this.zeros?.size ?? 0) + (this.bias?.size ?? 0);
    this.params = ledger.createBuffer('scratch', 32, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, `${this.label}.params`);
    this.device.queue.writeBuffer(
      this.params,
      0,
      new Uint32Array([n, k, this.table.groups, packed.wordsPerRow / 4, packed.bits, packed.groupSize, packed.symmetric ? 1 : 0, this.bias ? 1 : 0]),
    );
  }

  kernelFor(m: number): LinearKernel {
    return m <= GEMV_MAX_M && !this.cpu ? 'gemv' : 'gemm';
  }

  encode(target: EncodeTarget, x: GPUBuffer, y: GPUBuffer, m: number, kernel: LinearKernel = this.kernelFor(m)): void {
    checkOperands(this.label, this.n, this.k, x, y, m);
    checkBinding(this.device, this.label, `x [${m}, ${this.k}]`, m * this.k * 4);
    const hasBias = this.bias !== null;
    const entry = this.cpu ? 'gemmCpu' : kernel;
    const fast = entry === 'gemv' && !this.gemv.basic;
    const wide = entry === 'gemm' && (this.gemmTile ?? (m >= GEMM_WIDE_MIN_M ? 128 : 64)) === 128;
    const g = this.gemv;
    // gemv is specialized per scheme, gemmCpu per code width; gemm reads the scheme from params (see qmatmul.wgsl).
    const constants: Record<string, number> =
      entry === 'gemv'
        ? { BITS: this.bits, GROUP: this.groupSize, SYMMETRIC: this.symmetric ? 1 : 0, HAS_BIAS: hasBias ? 1 : 0, TPR: fast ? g.tpr : this.tpr }
        : entry === 'gemmCpu'
          ? { BITS: this.bits }
          : {};
    const pipeline = fast
      ? cachedPipeline(this.device, `qgemv:r${g.rows}:xc${g.xc}:${g.subgroups ? 'sg' : 'wg'}`, gemvSource(qgemvSource, g), 'gemv', {
          ...constants,
          ...(g.subgroups ? { SG: g.sg } : {}),
          ...(this.bits === 4 ? { PREFETCH: g.prefetch ? 1 : 0 } : {}),
        })
      : wide
        ? cachedPipeline(this.device, 'qgemm', qgemmSource, 'gemm', {})
        : cachedPipeline(this.device, 'qmatmul', qmatmulSource, entry, constants);
    const key = fast ? `qgemv:${m}` : wide ? `qgemm:${m}` : `${entry}:${m}`;
    const bindGroup = this.bindGroups.get(x, y, key, () =>
      this.device.createBindGroup({
        label: `${this.label}.${entry}`,
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: x, offset: 0, size: m * this.k * 4 } },
          // gemmCpu reads the codes as u32 words (binding 7), the others as vec4<u32>.
          { binding: entry === 'gemmCpu' ? 7 : 1, resource: { buffer: this.codes } },
          { binding: 2, resource: { buffer: this.scales } },
          // Symmetric layers store no zero points; the kernels never read this binding then.
          { binding: 3, resource: { buffer: this.zeros ?? this.scales } },
          { binding: 4, resource: { buffer: this.bias ?? this.scales } },
          { binding: 5, resource: { buffer: y, offset: 0, size: m * this.n * 4 } },
          { binding: 6, resource: { buffer: this.params } },
        ],
      }),
    );
    const count = fast
      ? Math.ceil(this.n / (g.rows * (LINEAR_WORKGROUP / g.tpr)))
      : wide
        ? Math.ceil(m / 128) * Math.ceil(this.n / 128)
        : entry === 'gemv'
        ? gemvWorkgroups(this.n, this.tpr)
        : entry === 'gemmCpu'
          ? cpuGemmWorkgroups(m, this.n, QUANT_CPU_BLOCK)
          : gemmWorkgroups(m, this.n);
    recordDispatch(target, pipeline, bindGroup, dispatchGrid(count, this.maxPerDim), `${this.label}.${entry}`);
  }

  destroy(): void {
    this.bindGroups.clear();
    if (this.ownsTable) releasePacked(this.ledger, this.table);
    this.ledger.release(this.bias);
    this.ledger.release(this.params);
  }
}
