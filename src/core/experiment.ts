/**
 * ExperimentSpec and Result: the lab's data. Both are plain JSON — what the
 * URL, the queue, the CLI and IndexedDB carry.
 */
import type { ProtocolName, ProtocolSummary } from './protocols';

export type ModelRef =
  | { kind: 'embedded'; id: string }
  | { kind: 'hub'; repo: string; revision: string }
  | { kind: 'local'; name: string };

export interface BaselineMethod {
  id: 'none';
}
export interface RtnMethodSpec {
  id: 'rtn';
  bits: 2 | 3 | 4 | 8;
  groupSize: number | 'row';
  symmetric: boolean;
  quantizeHead?: boolean;
  quantizeEmbeddings?: boolean;
}
export type MethodSpec = BaselineMethod | RtnMethodSpec;

export interface EvalSpec {
  protocol: ProtocolName;
  /** seqlen (gptq) or n_ctx (llamacpp) */
  windowLength: number;
  /** a slice of the first n windows; null = the whole test set */
  windows: number | null;
}

export interface ExperimentSpec {
  model: ModelRef;
  method: MethodSpec;
  eval: EvalSpec;
}

export interface RunMetrics {
  perplexity: number;
  perplexitySe: number;
  meanNll: number;
  meanNllSe: number;
  meanNllSeByWindow: number;
  nllSum: number;
  /** bits per weight of the quantized linear layers, scales and zero points included */
  bitsPerWeight: number;
  /** GPU bytes of all weights as evaluated (embeddings, norms, head included) */
  weightBytes: number;
  /** peak GPU bytes during evaluation, all categories */
  peakBytes: number;
  peakByCategory: Record<string, number>;
  /** parameters in quantized layers / in all layers */
  quantizedParams: number;
  totalParams: number;
  /** tokens per second through full windows during the perplexity run (wall clock, readback included) */
  prefillTokensPerSecond: number;
  /** single-token steps per second against the KV cache (wall clock, readback included) */
  decodeTokensPerSecond: number;
  /** the same two over GPU time from timestamp queries; null where the adapter has none */
  prefillGpuTokensPerSecond: number | null;
  decodeGpuTokensPerSecond: number | null;
  /**
   * Against the unquantized (f32) model on the same windows and scored
   * positions as the perplexity (the result's protocol): mean KL(P_f32 ‖ P_quantized)
   * per position in nats, its standard error over positions, and the fraction of
   * positions where both models' most likely next token is the same. Absent for
   * the baseline itself and for runs that did not compare (RunOptions.kl).
   */
  klDivergence?: number;
  klStdError?: number;
  top1Agreement?: number;
}

export interface Result {
  id: string;
  spec: ExperimentSpec;
  status: 'done' | 'failed' | 'cancelled' | 'interrupted';
  createdAt: string;
  /** adapter vendor / architecture / description */
  device: { vendor: string; architecture: string; description: string; features: string[] };
  protocol: ProtocolSummary;
  metrics: RunMetrics | null;
  /** seconds per stage */
  timing: Record<string, number>;
  /** kernel variants the run used */
  kernels: string[];
  /** per-window NLL sums, so any slice of a result can be compared */
  windowNll: number[];
  /** the method's own report (chosen parameters) */
  methodReport: Record<string, unknown>;
  error?: string;
  /** how far an interrupted run got (page reloaded mid-run, GPU device lost); absent for runs that ended on their own */
  partial?: PartialProgress;
  /** the loss (or KL divergence) became NaN or infinite: where it did; such a run is failed and kept off the frontier */
  numericalFault?: NumericalFault;
}

/** Where a run's numbers first stopped being finite. */
export interface NumericalFault {
  metric: 'nll' | 'kl';
  /** window index (0-based) and position in it of the first non-finite value */
  window: number;
  position: number;
  /** "NaN", "Infinity" or "-Infinity" (JSON has no such numbers) */
  value: string;
  /** the first layer whose output held a non-finite value, e.g. "layers.2 (block 3 of 6)" */
  layer: string;
}

/** Where a run was when it stopped: its last progress event, in plain JSON. */
export interface PartialProgress {
  /** the stage it was in: prepare, load, quantize, evaluate, speed */
  stage: string;
  /** units done / total of that stage (tensors, windows) */
  done: number;
  total: number;
  /** windows scored and windows the run was to score (0 / null before evaluation began) */
  windowsDone: number;
  windowsTotal: number | null;
  /** the running perplexity over the windows scored; null before the first */
  perplexity: number | null;
  /** ISO time of that progress event */
  at: string;
}

/** A short name for a method and its parameters: "RTN W4 g128", "f32". */
export function methodName(m: MethodSpec): string {
  if (m.id === 'none') return 'f32';
  const g = m.groupSize === 'row' ? 'row' : `g${m.groupSize}`;
  return `RTN W${m.bits} ${g}${m.symmetric ? ' sym' : ''}${m.quantizeHead ? ' +head' : ''}${m.quantizeEmbeddings ? ' +embed' : ''}`;
}
