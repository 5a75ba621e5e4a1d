/**
 * GPU helpers of calibrated methods (shaders/calibration.wgsl): per-channel
 * mean |x| of a linear layer's input, accumulated over samples, and a strided
 * subsample of its rows kept for error measurements. Both record into the
 * caller's command encoder (a DecoderExecutor.runBlock hook's).
 *
 * Uniform parameters get a small buffer per dispatch; `releaseUniforms()`
 * frees those of the commands already submitted.
 */
import calibrationWgsl from '../../shaders/calibration.wgsl?raw';
import { cachedPipeline, dispatchGrid } from './linear';

/** A uniform buffer of u32 (and f32 where `floats` marks the index) values, written at creation. */
export function uniformBuffer(device: GPUDevice, values: number[], floats: number[] = [], label = 'params'): GPUBuffer {
  const size = Math.max(16, Math.ceil((values.length * 4) / 16) * 16);
  const buffer = device.createBuffer({ size, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true, label });
  const range = buffer.getMappedRange();
  const u = new Uint32Array(range);
  const f = new Float32Array(range);
  values.forEach((v, i) => {
    if (floats.includes(i)) f[i] = v;
    else u[i] = v >>> 0;
  });
  buffer.unmap();
  return buffer;
}

export class CalibrationKernels {
  private pending: GPUBuffer[] = [];
  private readonly maxDim: number;

  constructor(readonly device: GPUDevice) {
    this.maxDim = device.limits.maxComputeWorkgroupsPerDimension;
  }

  private dispatch(encoder: GPUCommandEncoder, entry: 'absSum' | 'gatherRows', params: number[], x: GPUBufferBinding, out: GPUBuffer, invocations: number): void {
    const pipeline = cachedPipeline(this.device, 'calibration', calibrationWgsl, entry, {});
    const uniform = uniformBuffer(this.device, params, [], `calibration.${entry}`);
    this.pending.push(uniform);
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: uniform } },
        { binding: 1, resource: x },
        { binding: 2, resource: { buffer: out } },
      ],
    });
    const pass = encoder.beginComputePass({ label: `calibration.${entry}` });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    const [gx, gy] = dispatchGrid(Math.max(1, Math.ceil(invocations / 64)), this.maxDim);
    pass.dispatchWorkgroups(gx, gy);
    pass.end();
  }

  /** stat[c] += Σ_r |x[r, c]| over x [rows, k]. */
  absSum(encoder: GPUCommandEncoder, x: GPUBuffer, rows: number, k: number, stat: GPUBuffer): void {
    this.dispatch(encoder, 'absSum', [rows, k, 0, 0, 0, 0], { buffer: x, offset: 0, size: rows * k * 4 }, stat, k);
  }

  /** dst[dstRow + j, :] = x[first + j·stride, :] for j < count (x [rows, k], dst [·, k]). */
  gatherRows(encoder: GPUCommandEncoder, x: GPUBuffer, rows: number, k: number, first: number, stride: number, count: number, dst: GPUBuffer, dstRow: number): void {
    if (count < 1) return;
    if (first + (count - 1) * stride >= rows) throw new Error(`gatherRows: row ${first + (count - 1) * stride} of a ${rows}-row input`);
    this.dispatch(encoder, 'gatherRows', [rows, k, first, stride, count, dstRow], { buffer: x, offset: 0, size: rows * k * 4 }, dst, count * k);
  }

  /** Frees the uniform buffers of dispatches already submitted. */
  releaseUniforms(): void {
    for (const b of this.pending) b.destroy();
    this.pending = [];
  }
}
