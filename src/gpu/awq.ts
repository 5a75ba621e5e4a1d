/**
 * AWQ's searches on the GPU (shaders/awq.wgsl, and matmul_f32.wgsl for
 * X · ΔWᵀ): the output error of a group of linears for each α of the scale
 * grid, and the per-(row, group) error of each clipping ratio. The float64
 * references are in src/core/quant/awq.ts.
 *
 * Inputs stay on the GPU: X [tokens, K] (a subsample of the calibration
 * tokens, see src/lab/methods/calibration.ts) and the float weights of the
 * group. One submit per search; the partial sums come back once.
 */
import awqWgsl from '../../shaders/awq.wgsl?raw';
import matmulF32Source from '../../shaders/matmul_f32.wgsl?raw';
import { awqScales, pickRatios } from '../core/quant/awq';
import { resolveGroupSize, type QuantScheme } from '../core/quant/format';
import { uniformBuffer } from './calibration';
import type { MemoryLedger } from './ledger';
import { F32_CPU_BLOCK, cachedPipeline, cpuGemmWorkgroups, dispatchGrid, gemmWorkgroups } from './linear';
import { readF32 } from './readback';
import { tuningFor } from './tuning';

/** Rows of X · Δᵀ computed at once: what keeps the product within this many bytes. */
const PRODUCT_BYTES = 64 * 2 ** 20;

export interface GpuLinearWeights {
  /** W [n, k] f32 on the GPU */
  w: GPUBuffer;
  n: number;
}

export class AwqSearch {
  private readonly device: GPUDevice;
  private readonly cpu: boolean;
  private readonly maxDim: number;
  private uniforms: GPUBuffer[] = [];

  constructor(private readonly ledger: MemoryLedger) {
    this.device = ledger.device;
    this.cpu = tuningFor(this.device).cpu;
    this.maxDim = this.device.limits.maxComputeWorkgroupsPerDimension;
  }

  private pass(encoder: GPUCommandEncoder, pipeline: GPUComputePipeline, entries: GPUBindGroupEntry[], workgroups: number, label: string): void {
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label });
    const pass = encoder.beginComputePass({ label });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    const [x, y] = dispatchGrid(Math.max(1, workgroups), this.maxDim);
    pass.dispatchWorkgroups(x, y);
    pass.end();
  }

  private params(values: number[], floats: number[] = []): GPUBuffer {
    const b = uniformBuffer(this.device, values, floats, 'awq params');
    this.uniforms.push(b);
    return b;
  }

  /** delta = Q(w · diag(s); ratio) / s − w, for w [n, k]. */
  encodeDelta(encoder: GPUCommandEncoder, w: GPUBuffer, s: GPUBuffer, delta: GPUBuffer, n: number, k: number, scheme: QuantScheme, ratio: number, sOffset = 0): void {
    const g = resolveGroupSize(n, k, scheme);
    const params = this.params([n, k, g, scheme.bits, scheme.symmetric ? 1 : 0, ratio, 0, 0], [5]);
    const pipeline = cachedPipeline(this.device, 'awq', awqWgsl, 'fakeQuantDelta', {});
    this.pass(encoder, pipeline, [
      { binding: 0, resource: { buffer: params } },
      { binding: 1, resource: { buffer: w, offset: 0, size: n * k * 4 } },
      { binding: 2, resource: { buffer: s, offset: sOffset, size: k * 4 } },
      { binding: 3, resource: { buffer: delta, offset: 0, size: n * k * 4 } },
    ], Math.ceil((n * (k / g)) / 64), 'awq.fakeQuantDelta');
  }

  /**
   * Records ‖X · Δᵀ‖² as partial sums: 64 floats per chunk of rows, written to
   * `partial` from float `offset` on; returns the floats written.
   */
  encodeOutputError(encoder: GPUCommandEncoder, x: GPUBuffer, tokens: number, k: number, delta: GPUBuffer, n: number, y: GPUBuffer, partial: GPUBuffer, offset: number): number {
    const device = this.device;
    // chunks of rows: a multiple of 64 so every chunk's x offset is 256-byte aligned
    const chunkRows = Math.max(64, Math.floor(Math.min(PRODUCT_BYTES, y.size) / (n * 4) / 64) * 64);
    const entry = this.cpu ? (k % 4 === 0 ? 'gemmCpu4' : 'gemmCpu') : 'gemm';
    const vec4 = entry === 'gemmCpu4';
    const mm = cachedPipeline(device, 'matmul_f32', matmulF32Source, entry, {});
    const sq = cachedPipeline(device, 'awq', awqWgsl, 'sumSquares', {});
    const mmParams = this.params([n, k, 0, 0]);
    let written = 0;
    for (let r0 = 0; r0 < tokens; r0 += chunkRows) {
      const m = Math.min(chunkRows, tokens - r0);
      this.pass(encoder, mm, [
        { binding: vec4 ? 5 : 0, resource: { buffer: x, offset: r0 * k * 4, size: m * k * 4 } },
        { binding: vec4 ? 6 : 1, resource: { buffer: delta, offset: 0, size: n * k * 4 } },
        { binding: 2, resource: { buffer: delta, offset: 0, size: 16 } },
        { binding: 3, resource: { buffer: y, offset: 0, size: m * n * 4 } },
        { binding: 4, resource: { buffer: mmParams } },
      ], this.cpu ? cpuGemmWorkgroups(m, n, F32_CPU_BLOCK) : gemmWorkgroups(m, n), 'awq.outputError.matmul');
      const p = this.params([0, 0, 0, 0, 0, 0, m * n, offset + written]);
      this.pass(encoder, sq, [
        { binding: 0, resource: { buffer: p } },
        { binding: 1, resource: { buffer: y, offset: 0, size: m * n * 4 } },
        { binding: 3, resource: { buffer: partial } },
      ], 64, 'awq.sumSquares');
      written += 64;
    }
    return written;
  }

  /** err[n, g] = Σ_t (Σ_{j∈g} x[t, j] · delta[n, j])², for tokens rows of x. */
  encodeGroupError(encoder: GPUCommandEncoder, x: GPUBuffer, tokens: number, k: number, delta: GPUBuffer, n: number, groupSize: number, err: GPUBuffer): void {
    const params = this.params([n, k, groupSize, 0, 0, 0, tokens, 0]);
    const pipeline = cachedPipeline(this.device, 'awq', awqWgsl, 'groupError', {});
    this.pass(encoder, pipeline, [
      { binding: 0, resource: { buffer: params } },
      { binding: 3, resource: { buffer: err, offset: 0, size: n * (k / groupSize) * 4 } },
      { binding: 4, resource: { buffer: x, offset: 0, size: tokens * k * 4 } },
      { binding: 5, resource: { buffer: delta, offset: 0, size: n * k * 4 } },
    ], Math.ceil((Math.ceil(n / 4) * (k / groupSize)) / 64), 'awq.groupError');
  }

  private releaseUniforms(): void {
    for (const b of this.uniforms) b.destroy();
    this.uniforms = [];
  }

  /**
   * L(α) = Σ_linears ‖X · (Q(W · diag(s_α)) / s_α − W)ᵀ‖² for every α of `grid`,
   * with s_α = awqScales(actMean, α). Returns the losses (float64 sums of the
   * GPU's partial sums).
   */
  async scaleLosses(x: GPUBuffer, tokens: number, k: number, linears: GpuLinearWeights[], actMean: ArrayLike<number>, scheme: QuantScheme, grid: number[], signal?: AbortSignal): Promise<number[]> {
    const device = this.device;
    const ledger = this.ledger;
    const maxN = Math.max(...linears.map((l) => l.n));
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const delta = ledger.createBuffer('scratch', maxN * k * 4, usage, 'awq delta');
    const chunkRows = Math.max(64, Math.floor(PRODUCT_BYTES / (maxN * 4) / 64) * 64);
    const y = ledger.createBuffer('scratch', Math.min(tokens, chunkRows) * maxN * 4, usage, 'awq X·Δᵀ');
    // every α's scales in one buffer, each at a 256-byte aligned offset; one submit for the whole grid
    const stride = Math.ceil(k / 64) * 64;
    const allScales = new Float32Array(grid.length * stride);
    grid.forEach((alpha, a) => allScales.set(awqScales(actMean, alpha), a * stride));
    const s = ledger.upload('scratch', allScales, 'awq scales');
    const perEval = linears.reduce((sum, l) => sum + 64 * Math.ceil(tokens / Math.max(64, Math.floor(Math.min(PRODUCT_BYTES, y.size) / (l.n * 4) / 64) * 64)), 0);
    const partial = ledger.createBuffer('scratch', grid.length * perEval * 4, usage, 'awq partial sums');
    try {
      signal?.throwIfAborted();
      const encoder = device.createCommandEncoder({ label: 'awq scale search' });
      for (let a = 0; a < grid.length; a++) {
        let offset = a * perEval;
        for (const l of linears) {
          this.encodeDelta(encoder, l.w, s, delta, l.n, k, scheme, 1, a * stride * 4);
          offset += this.encodeOutputError(encoder, x, tokens, k, delta, l.n, y, partial, offset);
        }
      }
      device.queue.submit([encoder.finish()]);
      const sums = await readF32(device, partial, grid.length * perEval);
      this.releaseUniforms();
      return grid.map((_, a) => {
        let total = 0;
        for (let i = a * perEval; i < (a + 1) * perEval; i++) total += sums[i];
        return total;
      });
    } finally {
      this.releaseUniforms();
      for (const b of [delta, y, s, partial]) ledger.release(b);
    }
  }

  /**
   * The clipping ratio per (row, group) of W · diag(s): for each ratio of
   * `grid`, the (row, group) output errors on X; the smallest wins.
   * Returns the ratios [n × groups] and, per grid point, the summed error.
   */
  async clipRatios(x: GPUBuffer, tokens: number, k: number, w: GPUBuffer, n: number, s: Float32Array, scheme: QuantScheme, grid: number[], signal?: AbortSignal): Promise<{ ratios: Float32Array; errors: number[] }> {
    const device = this.device;
    const ledger = this.ledger;
    const g = resolveGroupSize(n, k, scheme);
    const groups = n * (k / g);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const delta = ledger.createBuffer('scratch', n * k * 4, usage, 'awq clip delta');
    const sBuffer = ledger.upload('scratch', s, 'awq clip scales');
    const err = ledger.createBuffer('scratch', grid.length * groups * 4, usage, 'awq clip errors');
    const out = ledger.createBuffer('scratch', groups * 4, usage, 'awq clip errors (one ratio)');
    try {
      signal?.throwIfAborted();
      const encoder = device.createCommandEncoder({ label: 'awq clipping search' });
      for (let i = 0; i < grid.length; i++) {
        this.encodeDelta(encoder, w, sBuffer, delta, n, k, scheme, grid[i]);
        this.encodeGroupError(encoder, x, tokens, k, delta, n, g, out);
        encoder.copyBufferToBuffer(out, 0, err, i * groups * 4, groups * 4);
      }
      device.queue.submit([encoder.finish()]);
      const all = await readF32(device, err, grid.length * groups);
      const perRatio = grid.map((_, i) => all.subarray(i * groups, (i + 1) * groups));
      const ratios = pickRatios(perRatio, grid);
      return { ratios, errors: perRatio.map((e) => e.reduce((a, b) => a + b, 0)) };
    } finally {
      this.releaseUniforms();
      for (const b of [delta, sBuffer, err, out]) ledger.release(b);
    }
  }
}
