/**
 * An Atom-style W4A4 linear layer: input channels in calibration order, the
 * first `outliers` of them int8 (weights and activations), the rest int4 in
 * groups, activations quantized per token on the fly; one kernel computes
 * both parts with int32 sums (shaders/w4a4.wgsl, reference src/core/quant/atom.ts).
 */
import w4a4Source from '../../shaders/w4a4.wgsl?raw';
import { atomGroups, atomWeightBytes, atomWordsPerRow, type AtomRows } from '../core/quant/atom';
import { GrowingScratch, packedDotAvailable, withPlainDot } from './act-linear';
import type { MemoryLedger } from './ledger';
import { BindGroupCache, cachedPipeline, checkOperands, dispatchGrid, recordDispatch, type EncodeTarget } from './linear';
import type { ActLinearOptions } from './w8a8-linear';

export class W4A4Linear {
  readonly n: number;
  readonly k: number;
  readonly outliers: number;
  readonly groupSize: number;
  readonly bytes: number;
  /** bytes of the format: int8 + int4 codes, f32 scales, the channel order */
  readonly packedBytes: number;
  readonly label: string;
  readonly variant: string;
  readonly packedDot: boolean;
  private readonly device: GPUDevice;
  private readonly buffers: GPUBuffer[];
  private readonly perm: GPUBuffer;
  private readonly codes: GPUBuffer;
  private readonly scales: GPUBuffer;
  private readonly bias: GPUBuffer | null;
  private readonly params: GPUBuffer;
  private readonly xCodes: GrowingScratch;
  private readonly xScales: GrowingScratch;
  private readonly rowWords: number;
  private readonly scalesPerRow: number;
  private bindGroups = new BindGroupCache();

  /** `weight` quantized in the channel order `perm` (quantizeAtomRows). */
  constructor(private readonly ledger: MemoryLedger, weight: AtomRows, perm: Uint32Array, options: ActLinearOptions = {}) {
    this.device = ledger.device;
    this.n = weight.rows;
    this.k = weight.k;
    this.outliers = weight.outliers;
    this.groupSize = weight.groupSize;
    this.label = options.label ?? `w4a4[${this.n}x${this.k}]`;
    if (perm.length !== this.k) throw new Error(`${this.label}: the channel order has ${perm.length} entries for K=${this.k}`);
    if (options.bias && options.bias.length !== this.n) throw new Error(`${this.label}: bias holds ${options.bias.length} values, expected N=${this.n}`);
    this.packedDot = options.packedDot ?? packedDotAvailable();
    this.rowWords = atomWordsPerRow(this.k, this.outliers);
    this.scalesPerRow = 1 + atomGroups(this.k, this.outliers, this.groupSize);
    this.perm = ledger.upload('weights', perm, `${this.label}.perm`);
    this.codes = ledger.upload('weights', weight.codes, `${this.label}.codes`);
    this.scales = ledger.upload('weights', weight.scales, `${this.label}.scales`);
    this.bias = options.bias ? ledger.upload('weights', options.bias, `${this.label}.bias`) : null;
    this.buffers = [this.perm, this.codes, this.scales];
    this.packedBytes = atomWeightBytes(this.n, this.k, this.outliers, this.groupSize);
    this.bytes = this.buffers.reduce((s, b) => s + b.size, 0) + (this.bias?.size ?? 0);
    this.variant = `w4a4 g${this.groupSize} +${this.outliers} int8${this.packedDot ? ' dot4I8Packed' : ' int'}`;
    this.params = ledger.createBuffer('scratch', 32, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, `${this.label}.params`);
    this.device.queue.writeBuffer(this.params, 0, new Uint32Array([this.n, this.k, this.outliers, this.groupSize, this.bias ? 1 : 0, 0, 0, 0]));
    this.xCodes = new GrowingScratch(ledger, `${this.label}.x codes`);
    this.xScales = new GrowingScratch(ledger, `${this.label}.x scales`);
  }

  private pipeline(entry: 'quantizeRows' | 'matmul'): GPUComputePipeline {
    return this.packedDot
      ? cachedPipeline(this.device, 'w4a4', w4a4Source, entry, {})
      : cachedPipeline(this.device, 'w4a4 (plain dot)', withPlainDot(w4a4Source), entry, {});
  }

  /** The scratch buffers holding the last quantized activations (tests read them back). */
  activationBuffers(m: number): { codes: GPUBuffer; scales: GPUBuffer } {
    return { codes: this.xCodes.get(m * this.rowWords * 4).buffer, scales: this.xScales.get(m * this.scalesPerRow * 4).buffer };
  }

  encode(target: EncodeTarget, x: GPUBuffer, y: GPUBuffer, m: number): void {
    checkOperands(this.label, this.n, this.k, x, y, m);
    const codeBytes = m * this.rowWords * 4;
    const scaleBytes = m * this.scalesPerRow * 4;
    const codes = this.xCodes.get(codeBytes);
    const scales = this.xScales.get(scaleBytes);
    if (codes.fresh || scales.fresh) this.bindGroups = new BindGroupCache();
    const quantize = this.pipeline('quantizeRows');
    const matmul = this.pipeline('matmul');
    const q = this.bindGroups.get(x, y, `q:${m}`, () => this.device.createBindGroup({
      label: `${this.label}.quantizeRows`,
      layout: quantize.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: this.params } },
        { binding: 1, resource: { buffer: x, offset: 0, size: m * this.k * 4 } },
        { binding: 2, resource: { buffer: this.perm } },
        { binding: 3, resource: { buffer: codes.buffer, offset: 0, size: codeBytes } },
        { binding: 4, resource: { buffer: scales.buffer, offset: 0, size: scaleBytes } },
      ],
    }));
    const mm = this.bindGroups.get(x, y, `mm:${m}`, () => this.device.createBindGroup({
      label: `${this.label}.matmul`,
      layout: matmul.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: this.params } },
        { binding: 5, resource: { buffer: codes.buffer, offset: 0, size: codeBytes } },
        { binding: 6, resource: { buffer: scales.buffer, offset: 0, size: scaleBytes } },
        { binding: 7, resource: { buffer: this.codes } },
        { binding: 8, resource: { buffer: this.scales } },
        { binding: 9, resource: { buffer: this.bias ?? this.scales } },
        { binding: 10, resource: { buffer: y, offset: 0, size: m * this.n * 4 } },
      ],
    }));
    const maxDim = this.device.limits.maxComputeWorkgroupsPerDimension;
    recordDispatch(target, quantize, q, dispatchGrid(Math.ceil(m / 64), maxDim), `${this.label}.quantizeRows`);
    recordDispatch(target, matmul, mm, dispatchGrid(Math.ceil((m * Math.ceil(this.n / 4)) / 64), maxDim), `${this.label}.matmul`);
  }

  destroy(): void {
    this.bindGroups = new BindGroupCache();
    for (const b of [...this.buffers, this.bias, this.params]) this.ledger.release(b);
    this.xCodes.destroy();
    this.xScales.destroy();
  }
}
