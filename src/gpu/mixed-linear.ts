/**
 * A mixed-precision linear layer (MixLLM-style, src/core/quant/mixllm.ts):
 * its output rows in two packed blocks of the shared format — high-bit and
 * low-bit rows — each multiplied by the ordinary packed kernels (QuantLinear)
 * into a scratch output, then scattered into y by the row index
 * (shaders/qmatmul_mixed.wgsl). No dequantized copy of the weights exists.
 */
import mixedSource from '../../shaders/qmatmul_mixed.wgsl?raw';
import { mixedBytes, type MixedPacked } from '../core/quant/mixllm';
import { GrowingScratch } from './act-linear';
import type { MemoryLedger } from './ledger';
import { BindGroupCache, cachedPipeline, checkOperands, dispatchGrid, recordDispatch, type EncodeTarget, type LinearOptions } from './linear';
import { QuantLinear } from './qlinear';

export class MixedLinear {
  readonly n: number;
  readonly k: number;
  readonly bytes: number;
  /** bytes of the format: both packed blocks and the u32 row index */
  readonly packedBytes: number;
  readonly label: string;
  readonly variant: string;
  readonly highCount: number;
  private readonly device: GPUDevice;
  private readonly high: QuantLinear | null;
  private readonly low: QuantLinear | null;
  private readonly rows: GPUBuffer;
  private readonly params: GPUBuffer;
  private readonly yHigh: GrowingScratch;
  private readonly yLow: GrowingScratch;
  private bindGroups = new BindGroupCache();

  constructor(private readonly ledger: MemoryLedger, mixed: MixedPacked, options: LinearOptions = {}) {
    this.device = ledger.device;
    this.n = mixed.n;
    this.k = mixed.k;
    this.highCount = mixed.highCount;
    this.label = options.label ?? `mixed[${this.n}x${this.k}]`;
    if (options.bias && options.bias.length !== this.n) throw new Error(`${this.label}: bias holds ${options.bias.length} values, expected N=${this.n}`);
    const biasOf = (from: number, count: number) => (options.bias ? Float32Array.from({ length: count }, (_, r) => options.bias![mixed.rows[from + r]]) : undefined);
    const part = (p: MixedPacked['high'], from: number, name: string) =>
      p ? new QuantLinear(ledger, p, { ...options, bias: biasOf(from, p.n), label: `${this.label} (${name} rows)` }) : null;
    this.high = part(mixed.high, 0, 'high');
    this.low = part(mixed.low, mixed.highCount, 'low');
    this.rows = ledger.upload('weights', mixed.rows, `${this.label}.rows`);
    this.params = ledger.createBuffer('scratch', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, `${this.label}.params`);
    this.device.queue.writeBuffer(this.params, 0, new Uint32Array([this.n, this.highCount, 0, 0]));
    this.packedBytes = mixedBytes(mixed);
    this.bytes = (this.high?.bytes ?? 0) + (this.low?.bytes ?? 0) + this.rows.size;
    this.variant = `mixed ${[mixed.high, mixed.low].filter(Boolean).map((p) => `q${p!.bits}`).join('+')} g${(mixed.high ?? mixed.low)!.groupSize}`;
    this.yHigh = new GrowingScratch(ledger, `${this.label}.y high`);
    this.yLow = new GrowingScratch(ledger, `${this.label}.y low`);
  }

  encode(target: EncodeTarget, x: GPUBuffer, y: GPUBuffer, m: number): void {
    checkOperands(this.label, this.n, this.k, x, y, m);
    const hi = this.yHigh.get(m * Math.max(1, this.highCount) * 4);
    const lo = this.yLow.get(m * Math.max(1, this.n - this.highCount) * 4);
    if (hi.fresh || lo.fresh) this.bindGroups = new BindGroupCache();
    this.high?.encode(target, x, hi.buffer, m);
    this.low?.encode(target, x, lo.buffer, m);
    const pipeline = cachedPipeline(this.device, 'qmatmul_mixed', mixedSource, 'main', {});
    const bindGroup = this.bindGroups.get(x, y, `${m}`, () => this.device.createBindGroup({
      label: `${this.label}.scatter`,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: this.params } },
        { binding: 1, resource: { buffer: hi.buffer } },
        { binding: 2, resource: { buffer: lo.buffer } },
        { binding: 3, resource: { buffer: this.rows } },
        { binding: 4, resource: { buffer: y, offset: 0, size: m * this.n * 4 } },
      ],
    }));
    recordDispatch(target, pipeline, bindGroup, dispatchGrid(Math.ceil((m * this.n) / 64), this.device.limits.maxComputeWorkgroupsPerDimension), `${this.label}.scatter`);
  }

  destroy(): void {
    this.bindGroups = new BindGroupCache();
    this.high?.destroy();
    this.low?.destroy();
    this.ledger.release(this.rows);
    this.ledger.release(this.params);
    this.yHigh.destroy();
    this.yLow.destroy();
  }
}
