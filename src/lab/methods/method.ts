/**
 * The one interface every quantization method implements (RTN, AWQ, GPTQ,
 * HQQ, mixed precision, ...): the model and the method's parameters in,
 * weights ready for the executor out — packed linears in the shared format
 * (src/core/quant/format.ts), plus any float tensors the method changed
 * (AWQ folds its scales into the preceding norm, for instance).
 */
import type { DecoderConfig } from '../../core/decoder';
import type { PackedLinear } from '../../core/quant/format';
import type { TensorReader } from '../../gpu/model';

export interface MethodProgress {
  /** what the method is doing: "quantize", "calibrate", "search α", ... */
  stage: string;
  done: number;
  total: number;
  /** the layer or block it is on, when there is one */
  item?: string;
}

export interface MethodInput<P> {
  config: DecoderConfig;
  /** float tensors of the unquantized model, canonical names */
  read: TensorReader;
  params: P;
  /** the lab's GPU, for methods that compute there */
  device?: GPUDevice;
  signal?: AbortSignal;
  onProgress?: (p: MethodProgress) => void;
}

export interface PreparedWeights {
  /** float tensors as the executor must see them */
  read: TensorReader;
  /**
   * The packed form of one weight matrix (canonical name such as
   * "layers.3.mlp.up", "head" or "embed.tokens"), or null to keep it in f32.
   * Called once per matrix while the executor loads, so methods may quantize
   * on demand. A tied model's head is the packed embedding table when
   * "embed.tokens" is packed.
   */
  quantize(name: string, weight: Float32Array, n: number, k: number): PackedLinear | null;
  /** what the method chose, to show with the result (e.g. AWQ's α per block) */
  report: Record<string, unknown>;
}

export interface QuantMethod<P> {
  id: string;
  /** short name for tables and plot legends */
  label: string;
  prepare(input: MethodInput<P>): Promise<PreparedWeights>;
}
