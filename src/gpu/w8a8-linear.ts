/**
 * A W8A8 linear layer (SmoothQuant): int8 per-output-channel weights on the
 * GPU, activations quantized per token to int8 on the fly, the product
 * accumulated in int32 (shaders/matmul_i8.wgsl). Two dispatches per call:
 * quantize x's rows into a scratch buffer, then the integer GEMM with the
 * rescale (and bias) in its epilogue.
 */
import matmulI8Source from '../../shaders/matmul_i8.wgsl?raw';
import { int8WeightBytes, type Int8Rows } from '../core/quant/smoothquant';
import { GrowingScratch, packedDotAvailable, withPlainDot } from './act-linear';
import type { MemoryLedger } from './ledger';
import { BindGroupCache, cachedPipeline, checkOperands, dispatchGrid, recordDispatch, type EncodeTarget } from './linear';

export interface ActLinearOptions {
  bias?: Float32Array | null;
  label?: string;
  /** use WGSL dot4I8Packed; default: where the language feature is available */
  packedDot?: boolean;
}

export class W8A8Linear {
  readonly n: number;
  readonly k: number;
  readonly bytes: number;
  /** bytes of the format: int8 codes + f32 scale per output channel */
  readonly packedBytes: number;
  readonly label: string;
  readonly variant: string;
  readonly packedDot: boolean;
  private readonly device: GPUDevice;
  private readonly codes: GPUBuffer;
  private readonly scales: GPUBuffer;
  private readonly bias: GPUBuffer | null;
  private readonly params: GPUBuffer;
  private readonly xCodes: GrowingScratch;
  private readonly xScales: GrowingScratch;
  private bindGroups = new BindGroupCache();

  constructor(private readonly ledger: MemoryLedger, weight: Int8Rows, options: ActLinearOptions = {}) {
    this.device = ledger.device;
    this.n = weight.rows;
    this.k = weight.k;
    this.label = options.label ?? `w8a8[${this.n}x${this.k}]`;
    if (this.k % 4 !== 0) throw new Error(`${this.label}: K=${this.k} is not a multiple of 4, which int8 codes packed four to a word need: keep this layer in f32`);
    if (options.bias && options.bias.length !== this.n) throw new Error(`${this.label}: bias holds ${options.bias.length} values, expected N=${this.n}`);
    this.packedDot = options.packedDot ?? packedDotAvailable();
    this.codes = ledger.upload('weights', weight.codes, `${this.label}.codes`);
    this.scales = ledger.upload('weights', weight.scales, `${this.label}.scales`);
    this.bias = options.bias ? ledger.upload('weights', options.bias, `${this.label}.bias`) : null;
    this.packedBytes = int8WeightBytes(this.n, this.k);
    this.bytes = this.codes.size + this.scales.size + (this.bias?.size ?? 0);
    this.variant = `w8a8 per-token${this.packedDot ? ' dot4I8Packed' : ' int'}`;
    this.params = ledger.createBuffer('scratch', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, `${this.label}.params`);
    this.device.queue.writeBuffer(this.params, 0, new Uint32Array([0, this.n, this.k, this.bias ? 1 : 0]));
    this.xCodes = new GrowingScratch(ledger, `${this.label}.x codes`);
    this.xScales = new GrowingScratch(ledger, `${this.label}.x scales`);
  }

  private pipeline(entry: 'quantizeRows' | 'matmul'): GPUComputePipeline {
    return this.packedDot
      ? cachedPipeline(this.device, 'matmul_i8', matmulI8Source, entry, {})
      : cachedPipeline(this.device, 'matmul_i8 (plain dot)', withPlainDot(matmulI8Source), entry, {});
  }

  encode(target: EncodeTarget, x: GPUBuffer, y: GPUBuffer, m: number): void {
    checkOperands(this.label, this.n, this.k, x, y, m);
    const codes = this.xCodes.get(m * this.k);
    const scales = this.xScales.get(m * 4);
    if (codes.fresh || scales.fresh) this.bindGroups = new BindGroupCache();
    const quantize = this.pipeline('quantizeRows');
    const matmul = this.pipeline('matmul');
    const groups = this.bindGroups;
    const q = groups.get(x, y, `q:${m}`, () => this.device.createBindGroup({
      label: `${this.label}.quantizeRows`,
      layout: quantize.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: this.params } },
        { binding: 1, resource: { buffer: x, offset: 0, size: m * this.k * 4 } },
        { binding: 2, resource: { buffer: codes.buffer, offset: 0, size: m * this.k } },
        { binding: 3, resource: { buffer: scales.buffer, offset: 0, size: m * 4 } },
      ],
    }));
    const mm = groups.get(x, y, `mm:${m}`, () => this.device.createBindGroup({
      label: `${this.label}.matmul`,
      layout: matmul.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: this.params } },
        { binding: 4, resource: { buffer: codes.buffer, offset: 0, size: m * this.k } },
        { binding: 5, resource: { buffer: scales.buffer, offset: 0, size: m * 4 } },
        { binding: 6, resource: { buffer: this.codes } },
        { binding: 7, resource: { buffer: this.scales } },
        { binding: 8, resource: { buffer: this.bias ?? this.scales } },
        { binding: 9, resource: { buffer: y, offset: 0, size: m * this.n * 4 } },
      ],
    }));
    const maxDim = this.device.limits.maxComputeWorkgroupsPerDimension;
    recordDispatch(target, quantize, q, dispatchGrid(Math.ceil(m / 64), maxDim), `${this.label}.quantizeRows`);
    recordDispatch(target, matmul, mm, dispatchGrid(Math.ceil((m * Math.ceil(this.n / 4)) / 64), maxDim), `${this.label}.matmul`);
  }

  /** Records only the integer product with given quantized activations (tests: exact int32 sums). */
  encodeQuantized(target: EncodeTarget, xCodes: GPUBuffer, xScales: GPUBuffer, y: GPUBuffer, m: number): void {
    const matmul = this.pipeline('matmul');
    const bindGroup = this.device.createBindGroup({
      layout: matmul.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: this.params } },
        { binding: 4, resource: { buffer: xCodes, offset: 0, size: m * this.k } },
        { binding: 5, resource: { buffer: xScales, offset: 0, size: m * 4 } },
        { binding: 6, resource: { buffer: this.codes } },
        { binding: 7, resource: { buffer: this.scales } },
        { binding: 8, resource: { buffer: this.bias ?? this.scales } },
        { binding: 9, resource: { buffer: y, offset: 0, size: m * this.n * 4 } },
      ],
    });
    recordDispatch(target, matmul, bindGroup, dispatchGrid(Math.ceil((m * Math.ceil(this.n / 4)) / 64), this.device.limits.maxComputeWorkgroupsPerDimension), `${this.label}.matmul`);
  }

  destroy(): void {
    this.bindGroups = new BindGroupCache();
    for (const b of [this.codes, this.scales, this.bias, this.params]) this.ledger.release(b);
    this.xCodes.destroy();
    this.xScales.destroy();
  }
}
