/**
 * A quantized linear layer on the GPU: y = x · Ŵᵀ (+ bias), with Ŵ read from
 * the packed format (src/core/quant/format.ts) by shaders/qmatmul.wgsl — no
 * dequantized copy is ever kept. The GPU holds exactly the packed bytes (codes,
 * f32 scales, u8 zero points) plus an optional f32 bias.
 */
import qmatmulSource from '../../shaders/qmatmul.wgsl?raw';
import { groupsPerRow, packedBytes, validatePacked, type PackedLinear, type QuantBits } from '../core/quant/format';
import type { MemoryLedger } from './ledger';
import {
  BindGroupCache,
  GEMV_MAX_M,
  cachedPipeline,
  checkBinding,
  checkOperands,
  dispatchGrid,
  gemmWorkgroups,
  gemvTeamWidth,
  gemvWorkgroups,
  recordDispatch,
  type EncodeTarget,
  type GpuLinear,
  type LinearOptions,
  type LinearKernel,
} from './linear';

/** Codes one GEMV invocation handles per step (see qmatmul.wgsl `unitCodes`). */
export function gemvUnitCodes(bits: number): number {
  return bits === 3 ? 128 : 128 / bits;
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
  private readonly device: GPUDevice;
  private readonly codes: GPUBuffer;
  private readonly scales: GPUBuffer;
  private readonly zeros: GPUBuffer | null;
  private readonly bias: GPUBuffer | null;
  private readonly params: GPUBuffer;
  private readonly tpr: number;
  private readonly maxPerDim: number;
  private readonly bindGroups = new BindGroupCache();

  constructor(private readonly ledger: MemoryLedger, packed: PackedLinear, options: LinearOptions = {}) {
    this.device = ledger.device;
    const { n, k } = packed;
    this.label = options.label ?? `qlinear[${n}x${k}]`;
    validatePacked(packed, this.label);
    if (options.bias && options.bias.length !== n) {
      throw new Error(`${this.label}: bias holds ${options.bias.length} values, expected N=${n}.`);
    }
    checkBinding(this.device, this.label, 'packed codes', packed.codes.byteLength);
    this.n = n;
    this.k = k;
    this.bits = packed.bits;
    this.groupSize = packed.groupSize;
    this.symmetric = packed.symmetric;
    this.maxPerDim = options.maxWorkgroupsPerDimension ?? this.device.limits.maxComputeWorkgroupsPerDimension;
    this.tpr = gemvTeamWidth(Math.ceil(k / gemvUnitCodes(packed.bits)));
    this.codes = ledger.upload('weights', packed.codes, `${this.label}.codes`);
    this.scales = ledger.upload('weights', packed.scales, `${this.label}.scales`);
    this.zeros = packed.zeros ? ledger.upload('weights', packed.zeros, `${this.label}.zeros`) : null;
    this.bias = options.bias ? ledger.upload('weights', options.bias, `${this.label}.bias`) : null;
    this.packedBytes = packedBytes(packed);
    this.variant = `q${packed.bits} g${packed.groupSize} ${packed.symmetric ? 'sym' : 'asym'}`;
    this.bytes = this.codes.size + this.scales.size + (this.zeros?.size ?? 0) + (this.bias?.size ?? 0);
    this.params = ledger.createBuffer('scratch', 32, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, `${this.label}.params`);
    this.device.queue.writeBuffer(
      this.params,
      0,
      new Uint32Array([n, k, groupsPerRow(packed), packed.wordsPerRow / 4, packed.bits, packed.groupSize, packed.symmetric ? 1 : 0, this.bias ? 1 : 0]),
    );
  }

  kernelFor(m: number): LinearKernel {
    return m <= GEMV_MAX_M ? 'gemv' : 'gemm';
  }

  encode(target: EncodeTarget, x: GPUBuffer, y: GPUBuffer, m: number, kernel: LinearKernel = this.kernelFor(m)): void {
    checkOperands(this.label, this.n, this.k, x, y, m);
    checkBinding(this.device, this.label, `x [${m}, ${this.k}]`, m * this.k * 4);
    const hasBias = this.bias !== null;
    // gemv is specialized per scheme; gemm reads the scheme from params (see qmatmul.wgsl).
    const pipeline = cachedPipeline(
      this.device,
      'qmatmul',
      qmatmulSource,
      kernel,
      kernel === 'gemv'
        ? { BITS: this.bits, GROUP: this.groupSize, SYMMETRIC: this.symmetric ? 1 : 0, HAS_BIAS: hasBias ? 1 : 0, TPR: this.tpr }
        : {},
    );
    const bindGroup = this.bindGroups.get(x, y, `${kernel}:${m}`, () =>
      this.device.createBindGroup({
        label: `${this.label}.${kernel}`,
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: x, offset: 0, size: m * this.k * 4 } },
          { binding: 1, resource: { buffer: this.codes } },
          { binding: 2, resource: { buffer: this.scales } },
          // Symmetric layers store no zero points; the kernel never reads this binding then.
          { binding: 3, resource: { buffer: this.zeros ?? this.scales } },
          { binding: 4, resource: { buffer: this.bias ?? this.scales } },
          { binding: 5, resource: { buffer: y, offset: 0, size: m * this.n * 4 } },
          { binding: 6, resource: { buffer: this.params } },
        ],
      }),
    );
    const count = kernel === 'gemm' ? gemmWorkgroups(m, this.n) : gemvWorkgroups(this.n, this.tpr);
    recordDispatch(target, pipeline, bindGroup, dispatchGrid(count, this.maxPerDim), `${this.label}.${kernel}`);
  }

  destroy(): void {
    this.bindGroups.clear();
    this.ledger.release(this.codes);
    this.ledger.release(this.scales);
    this.ledger.release(this.zeros);
    this.ledger.release(this.bias);
    this.ledger.release(this.params);
  }
}
