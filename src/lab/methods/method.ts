/**
 * The one interface every quantization method implements (RTN, AWQ, GPTQ,
 * HQQ, mixed precision, ...): the model and the method's parameters in,
 * weights ready for the executor out — packed linears in the shared format
 * (src/core/quant/format.ts), plus any float tensors the method changed
 * (AWQ folds its scales into the preceding norm, for instance).
 */
import type { DecoderConfig } from '../../core/decoder';
import type { PackedLinear } from '../../core/quant/format';
import type { LinearLayer, TensorReader } from '../../gpu/model';
import type { MemoryLedger } from '../../gpu/ledger';

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
  /**
   * The calibration text (public/data/calibration.txt, never the evaluation
   * text) tokenized with the model's tokenizer, for calibrated methods (AWQ,
   * GPTQ); they cut their samples from it (src/lab/methods/calibration.ts).
   */
  calibrationTokens?: number[];
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
  /**
   * A GPU layer of the method's own kind for one linear (mixed-precision row
   * sets, W8A8, W4A4 with outliers), asked before `quantize`; null = use
   * `quantize`. `packedBytes` is what its weights take in their format
   * (scales, indices included), which bits per weight counts.
   */
  layer?(ledger: MemoryLedger, name: string, weight: Float32Array, n: number, k: number, bias: Float32Array | null): { layer: LinearLayer; packedBytes: number } | null;
  /** bits of the linear layers' activations where the method quantizes them (W8A8: 8); absent = f32 */
  activationBits?: number;
  /** what the method chose, to show with the result (e.g. AWQ's α per block) */
  report: Record<string, unknown>;
}

export interface QuantMethod<P> {
  id: string;
  /** short name for tables and plot legends */
  label: string;
  prepare(input: MethodInput<P>): Promise<PreparedWeights>;
}
