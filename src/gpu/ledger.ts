/**
 * GPU memory ledger: every buffer the lab allocates goes through here, tagged
 * by what it holds, so current and peak bytes are known exactly per category.
 */
export type MemoryTag = 'weights' | 'activations' | 'kv' | 'scratch';

export interface LedgerSnapshot {
  current: Record<MemoryTag, number>;
  peak: Record<MemoryTag, number>;
  currentTotal: number;
  peakTotal: number;
  buffers: number;
}

const zero = (): Record<MemoryTag, number> => ({ weights: 0, activations: 0, kv: 0, scratch: 0 });

export class MemoryLedger {
  private live = new Map<GPUBuffer, { tag: MemoryTag; size: number }>();
  private current = zero();
  private peak = zero();
  private currentTotal = 0;
  private peakTotal = 0;

  constructor(readonly device: GPUDevice) {}

  /** Allocates a buffer and records it; `label` names it in errors and dumps. */
  createBuffer(tag: MemoryTag, size: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    const aligned = Math.max(4, Math.ceil(size / 4) * 4);
    const limit = this.device.limits.maxBufferSize;
    if (aligned > limit) {
      throw new Error(
        `GPU buffer "${label}" needs ${aligned.toLocaleString('en-US')} bytes, more than this adapter's ` +
          `maxBufferSize of ${limit.toLocaleString('en-US')}: choose a smaller model or a quantized format.`,
      );
    }
    const buffer = this.device.createBuffer({ size: aligned, usage, label });
    this.live.set(buffer, { tag, size: aligned });
    this.current[tag] += aligned;
    this.currentTotal += aligned;
    if (this.current[tag] > this.peak[tag]) this.peak[tag] = this.current[tag];
    if (this.currentTotal > this.peakTotal) this.peakTotal = this.currentTotal;
    return buffer;
  }

  /** Creates a storage buffer holding `data` (copied). */
  upload(tag: MemoryTag, data: ArrayBufferView, label: string, extraUsage: GPUBufferUsageFlags = 0): GPUBuffer {
    const buffer = this.createBuffer(
      tag,
      data.byteLength,
      GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC | extraUsage,
      label,
    );
    // writeBuffer wants a multiple of 4 bytes; pad small odd-sized views.
    if (data.byteLength % 4 === 0) {
      this.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    } else {
      const padded = new Uint8Array(Math.ceil(data.byteLength / 4) * 4);
      padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      this.device.queue.writeBuffer(buffer, 0, padded);
    }
    return buffer;
  }

  /** Destroys a buffer allocated through this ledger. */
  release(buffer: GPUBuffer | null | undefined): void {
    if (!buffer) return;
    const entry = this.live.get(buffer);
    if (!entry) return;
    this.live.delete(buffer);
    this.current[entry.tag] -= entry.size;
    this.currentTotal -= entry.size;
    buffer.destroy();
  }

  /** Destroys every live buffer (end of a run, cancellation, device loss). */
  releaseAll(): void {
    for (const buffer of [...this.live.keys()]) this.release(buffer);
  }

  /** Starts a new peak measurement from the current level. */
  resetPeak(): void {
    this.peak = { ...this.current };
    this.peakTotal = this.currentTotal;
  }

  snapshot(): LedgerSnapshot {
    return {
      current: { ...this.current },
      peak: { ...this.peak },
      currentTotal: this.currentTotal,
      peakTotal: this.peakTotal,
      buffers: this.live.size,
    };
  }
}
