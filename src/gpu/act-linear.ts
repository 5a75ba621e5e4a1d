/**
 * What the activation-quantized linear layers (W8A8, W4A4 with outliers)
 * share: whether WGSL's dot4I8Packed is available, the one template step that
 * swaps it for plain integer arithmetic when it is not, and per-layer scratch
 * buffers for the quantized activations that grow with the rows a dispatch
 * needs.
 */
import type { MemoryLedger } from './ledger';

const FEATURE = 'packed_4x8_integer_dot_product';

/**
 * Whether the WGSL of this page or process has the packed_4x8_integer_dot_product
 * language feature: navigator.gpu.wgslLanguageFeatures in a browser or worker,
 * the GPU object of Node's Dawn (src/cli/dawn.ts keeps it as globalThis.__qlabDawn).
 */
export function packedDotAvailable(): boolean {
  const g = globalThis as unknown as { navigator?: { gpu?: GPU }; __qlabDawn?: GPU };
  const features = g.navigator?.gpu?.wgslLanguageFeatures ?? g.__qlabDawn?.wgslLanguageFeatures;
  return features?.has(FEATURE) ?? false;
}

/** The shader with its `dot4` calling the plain-integer `dot4Plain` instead of dot4I8Packed. */
export function withPlainDot(source: string): string {
  const call = 'return dot4I8Packed(a, b);';
  if (!source.includes(call)) throw new Error('the shader has no dot4 body to swap: keep `return dot4I8Packed(a, b);` in its dot4');
  return source.replace(call, 'return dot4Plain(a, b);');
}

/**
 * A scratch buffer of at least `bytes`, grown on demand. Buffers it outgrows
 * stay alive until `destroy` (dispatches already recorded may still use them).
 */
export class GrowingScratch {
  private current: GPUBuffer | null = null;
  private readonly old: GPUBuffer[] = [];

  constructor(private readonly ledger: MemoryLedger, private readonly label: string, private readonly usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC) {}

  /** The buffer, and whether it was (re)allocated by this call. */
  get(bytes: number): { buffer: GPUBuffer; fresh: boolean } {
    if (this.current && this.current.size >= bytes) return { buffer: this.current, fresh: false };
    if (this.current) this.old.push(this.current);
    this.current = this.ledger.createBuffer('activations', Math.max(16, bytes), this.usage, this.label);
    return { buffer: this.current, fresh: true };
  }

  destroy(): void {
    for (const b of [...this.old, this.current]) this.ledger.release(b);
    this.old.length = 0;
    this.current = null;
  }
}
