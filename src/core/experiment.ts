/**
 * ExperimentSpec and Result: the lab's data. Both are plain JSON — what the
 * URL, the queue, the CLI and IndexedDB carry.
 */
import type { ProtocolName, ProtocolSummary } from './protocols';
import { kvName, type KvCacheSpec } from './quant/kv';

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
/** Calibration text used by activation-aware methods: samples × tokens from public/data/calibration.txt. */
export interface ActCalibrationSpec {
  samples: number;
  length: number;
}
/**
 * Mixed precision between output features (MixLLM, Zheng et al. 2024): every
 * output feature of every linear is scored with one global salience measure,
 * the top `highFraction` of all of them (ranked across the whole model) get
 * `highBits`, the rest `lowBits`; each part quantized with `base`.
 */
export interface MixllmMethodSpec {
  id: 'mixllm';
  highBits: 8 | 4;
  lowBits: 2 | 3 | 4;
  /** fraction of all output features kept at highBits, e.g. 0.1 */
  highFraction: number;
  /** the quantizer each row set goes through */
  base: 'rtn' | 'gptq';
  groupSize: number | 'row';
  symmetric?: boolean;
  calibration?: ActCalibrationSpec;
}
/** SmoothQuant W8A8 (Xiao et al. 2023): smoothing with migration strength alpha, int8 weights and dynamic per-token int8 activations. */
export interface SmoothQuantMethodSpec {
  id: 'smoothquant';
  /** migration strength α in [0, 1] (0.5 in the paper) */
  alpha: number;
  calibration?: ActCalibrationSpec;
}
/** Atom-style W4A4 (Zhao et al. 2024): input channels reordered by activation magnitude, the top `outliers` in 8 bits, the rest 4-bit in groups. */
export interface AtomMethodSpec {
  id: 'atom';
  /** outlier input channels kept in int8, weights and activations (128 in the paper) */
  outliers: number;
  /** group size of the 4-bit part, weights and activations */
  groupSize: number;
  calibration?: ActCalibrationSpec;
}
/** The weight-only schemes of AWQ, GPTQ and HQQ: the packed format's bits, groups, symmetry; head and embeddings as RTN. */
interface WeightOnlySpec {
  bits: 2 | 3 | 4 | 8;
  groupSize: number | 'row';
  symmetric: boolean;
  /** quantize the output head too (with RTN; default f32) */
  quantizeHead?: boolean;
  /** quantize the token embedding table too (with RTN; default f32) */
  quantizeEmbeddings?: boolean;
}
/** AWQ (Lin et al. 2024): activation-aware per-channel scales searched on calibration text, clipping search, then the packed format. */
export interface AwqMethodSpec extends WeightOnlySpec {
  id: 'awq';
  /** calibration samples × tokens (default sized for the model: src/lab/methods/calibration.ts) */
  calibration?: ActCalibrationSpec;
  /** points of the α grid (default 20) */
  alphaPoints?: number;
  /** search clipping ratios (default true) */
  clip?: boolean;
  /** calibration rows the output errors are measured on (default 2048) */
  errorTokens?: number;
}
/** GPTQ (Frantar et al. 2023): column-by-column quantization with error feedback through the inverse Hessian of calibration inputs. */
export interface GptqMethodSpec extends WeightOnlySpec {
  id: 'gptq';
  calibration?: ActCalibrationSpec;
  /** quantize columns in order of decreasing Hessian diagonal (static groups) */
  actOrder?: boolean;
  /** dampening λ as a fraction of the mean Hessian diagonal (default 0.01) */
  dampening?: number;
  /** columns per lazy-update block (default 128) */
  blockSize?: number;
}
/** HQQ (Badri & Shaji 2023): calibration-free half-quadratic refinement of each group's zero point (and scale). */
export interface HqqMethodSpec extends WeightOnlySpec {
  id: 'hqq';
  /** most half-quadratic iterations per group (default 20; stops early when the error rises) */
  iterations?: number;
}
export type MethodSpec = BaselineMethod | RtnMethodSpec | MixllmMethodSpec | SmoothQuantMethodSpec | AtomMethodSpec | AwqMethodSpec | GptqMethodSpec | HqqMethodSpec;

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
  /** quantize the KV cache (int8 / int4 group-wise, src/core/quant/kv.ts); absent = f32. Goes with any method. */
  kv?: KvCacheSpec;
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
  /**
   * The KV cache: bytes one position of context takes (all layers, K and V, in
   * the cache's format), and the context length the totals are stated at (the
   * evaluation window). Total memory at that context = weightBytes +
   * kvBytesPerToken · kvContext (`totalMemoryBytes`).
   */
  kvBytesPerToken?: number;
  kvContext?: number;
  /** bits of the KV cache values (32 = f32) and of the linear layers' activations (32 = not quantized; Atom: 4, with 8-bit outlier channels) */
  kvBits?: number;
  activationBits?: number;
}

/** Weights plus the KV cache at the run's stated context (kvContext), in bytes; weights alone where the run did not record its KV cache. */
export function totalMemoryBytes(m: RunMetrics, context = m.kvContext ?? 0): number {
  return m.weightBytes + (m.kvBytesPerToken ?? 0) * context;
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

/** The method's name with the KV cache's where it is quantized: "RTN W4 g128 · KV int8 g32". */
export function experimentName(spec: Pick<ExperimentSpec, 'method' | 'kv'>): string {
  return spec.kv ? `${methodName(spec.method)} · ${kvName(spec.kv)}` : methodName(spec.method);
}

/** A short name for a method and its parameters: "RTN W4 g128", "f32". */
export function methodName(m: MethodSpec): string {
  if (m.id === 'none') return 'f32';
  if (m.id === 'mixllm') {
    const g = m.groupSize === 'row' ? 'row' : `g${m.groupSize}`;
    return `MixLLM W${m.lowBits}+${Math.round(m.highFraction * 1000) / 10}% W${m.highBits} ${g}${m.base === 'gptq' ? ' GPTQ' : ''}${m.symmetric ? ' sym' : ''}`;
  }
  if (m.id === 'smoothquant') return `SmoothQuant W8A8 α${m.alpha}`;
  if (m.id === 'atom') return `Atom W4A4 g${m.groupSize} +${m.outliers} int8`;
  if (m.id === 'awq' || m.id === 'gptq' || m.id === 'hqq') {
    const g = m.groupSize === 'row' ? 'row' : `g${m.groupSize}`;
    const extra = m.id === 'gptq' && m.actOrder ? ' act-order' : '';
    return `${m.id.toUpperCase()} W${m.bits} ${g}${extra}${m.symmetric ? ' sym' : ''}${m.quantizeHead ? ' +head' : ''}${m.quantizeEmbeddings ? ' +embed' : ''}`;
  }
  const g = m.groupSize === 'row' ? 'row' : `g${m.groupSize}`;
  return `RTN W${m.bits} ${g}${m.symmetric ? ' sym' : ''}${m.quantizeHead ? ' +head' : ''}${m.quantizeEmbeddings ? ' +embed' : ''}`;
}
