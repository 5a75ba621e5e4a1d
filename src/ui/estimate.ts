/**
 * What an experiment will cost before it runs: GPU memory (weights in f32 and
 * as packed, activations, KV cache, the f32 reference copy a KL comparison
 * loads) and time. Memory follows what the executor allocates (src/gpu/model.ts)
 * for the model's shape; time comes from earlier runs of the same model on this
 * device when there are any (their measured prefill speed and load time), else
 * from a stated rough default. Pure functions of their inputs.
 *
 * (The Hub helper's src/lab/memory-plan.ts did not exist when this was
 * written, so the lab's own accounting is here; for embedded models the shapes
 * are known exactly.)
 */
import { canonicalTensors, type DecoderConfig } from '../core/decoder';
import type { ExperimentSpec, MethodSpec, Result } from '../core/experiment';
import type { ModelShape } from '../worker/api';
import { kvBytesPerPosition } from '../core/quant/kv';
import { schemeBitsPerWeight, type QuantBits, type QuantScheme } from '../core/quant/format';

/** Prefill tokens per second assumed when this device has measured nothing yet for a model of this size (scaled by parameters). */
export const DEFAULT_TOKENS_PER_SECOND_6M = 2000;
/** Seconds assumed to load and quantize a 6M-parameter model without earlier runs. */
export const DEFAULT_LOAD_SECONDS_6M = 3;
/** f32 weights up to this size get a reference copy for KL divergence (src/lab/run.ts, KL_DEFAULT_MAX_BYTES). */
const KL_MAX_BYTES = 512 * 2 ** 20;

export interface MemoryEstimate {
  /** all weights in f32 */
  weightsF32: number;
  /** all weights as the run holds them (packed where the method quantizes) */
  weights: number;
  activations: number;
  kv: number;
  /** the f32 copy and its kept log-probabilities for KL divergence; 0 when not compared */
  klReference: number;
  /** peak: everything above at once */
  total: number;
}

export interface TimeEstimate {
  seconds: number;
  /** where the number comes from, for a person */
  basis: string;
  /** true when measured on this device, false for the rough default */
  measured: boolean;
}

export interface SpecEstimate {
  spec: ExperimentSpec;
  memory: MemoryEstimate;
  time: TimeEstimate;
}

/** A DecoderConfig for shape arithmetic from a model's shape (fields that do not change sizes get neutral values). */
export function configOfShape(shape: ModelShape): DecoderConfig {
  return {
    family: 'estimate', normEps: 1e-5, ropeTheta: 10000, activation: shape.mlp === 'swiglu' ? 'silu' : 'gelu_tanh', ropeScaling: null, bosTokenId: null, eosTokenId: null,
    ...shape,
  } as DecoderConfig;
}

/** The weight scheme a method stores its linears in; null for the baseline or a method this does not know. */
export function schemeOf(method: MethodSpec): (QuantScheme & { head: boolean; embed: boolean }) | null {
  const m = method as unknown as Record<string, unknown>;
  if (method.id === 'none') return null;
  // weights as stored: mixed precision mostly at its low bits (the high rows are counted below), W8A8 and W4A4 at 8 and 4
  const bits = typeof m.bits === 'number' ? m.bits : typeof m.lowBits === 'number' ? m.lowBits : method.id === 'smoothquant' ? 8 : method.id === 'atom' ? 4 : null;
  if (bits === null || ![2, 3, 4, 8].includes(bits)) return null;
  const groupSize = m.groupSize === 'row' || typeof m.groupSize === 'number' ? (m.groupSize as number | 'row') : 'row';
  return { bits: bits as QuantBits, groupSize, symmetric: m.symmetric === true, head: m.quantizeHead === true, embed: m.quantizeEmbeddings === true };
}

/** Bytes of one [n, k] weight under a scheme (f32 when the scheme does not fit the shape). */
function packedBytesOf(n: number, k: number, scheme: QuantScheme): number {
  try {
    return Math.ceil((schemeBitsPerWeight(n, k, scheme) * n * k) / 8);
  } catch {
    return n * k * 4;
  }
}

/** MixLLM's rows kept at highBits cost their extra bits on top of the low-bit estimate (approximately: the fraction of rows of each layer). */
function highRowsExtra(method: MethodSpec, n: number, k: number, scheme: QuantScheme): number {
  if (method.id !== 'mixllm') return 0;
  const rows = Math.round(n * method.highFraction);
  return rows > 0 ? packedBytesOf(rows, k, { ...scheme, bits: method.highBits }) - packedBytesOf(rows, k, scheme) : 0;
}

export function estimateMemory(config: DecoderConfig, spec: ExperimentSpec): MemoryEstimate {
  const c = config;
  const rows = spec.eval.windowLength;
  const scheme = schemeOf(spec.method);
  let weightsF32 = 0;
  let weights = 0;
  for (const t of canonicalTensors(c)) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    weightsF32 += count * 4;
    const linear = /^layers\.\d+\.(attn|mlp)\.\w+\.weight$/.test(t.name);
    const quantized = scheme !== null && t.shape.length === 2 && (linear || (t.name === 'head.weight' && scheme.head) || (t.name === 'embed.tokens' && scheme.embed));
    weights += quantized ? packedBytesOf(t.shape[0], t.shape[1], scheme) + highRowsExtra(spec.method, t.shape[0], t.shape[1], scheme) : count * 4;
  }
  const f = (n: number) => n * 4;
  const headChunk = Math.min(rows, Math.max(1, Math.floor((64 * 2 ** 20) / f(c.vocabSize))));
  const activations =
    f(rows * c.hiddenSize) * 3 +
    f(rows * c.numHeads * c.headDim) * 2 +
    f(c.numKvHeads * c.headDim) * 2 +
    f(rows * c.intermediateSize) * 2 +
    f(rows) * 6 +
    f(headChunk * c.vocabSize) +
    (headChunk < rows ? f(headChunk * c.hiddenSize) : 0);
  const kv = c.numLayers * rows * kvBytesPerPosition(c.numKvHeads * c.headDim, spec.kv);
  const logProbs = rows * c.vocabSize * 4;
  const compare = spec.method.id !== 'none' && weightsF32 + logProbs <= KL_MAX_BYTES;
  // the reference executor has its own activations and KV cache too
  const klReference = compare ? weightsF32 + logProbs + activations + c.numLayers * 2 * rows * c.numKvHeads * c.headDim * 4 : 0;
  return { weightsF32, weights, activations, kv, klReference, total: weights + activations + kv + klReference };
}

/** Tokens the run pushes through the model: every window in full (the protocol scores part of some). */
export function tokensEvaluated(spec: ExperimentSpec, textTokens: number): number {
  const total = Math.floor(textTokens / spec.eval.windowLength);
  const windows = spec.eval.windows === null ? total : Math.min(spec.eval.windows, total);
  return windows * spec.eval.windowLength;
}

const sameModel = (a: ExperimentSpec, b: ExperimentSpec): boolean => JSON.stringify(a.model) === JSON.stringify(b.model);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Time of one run: load (+ quantize) and evaluation. Measured where this
 * device has finished runs of the same model (median prefill tokens/s and
 * load seconds; a KL comparison runs the f32 copy too, about twice the
 * evaluation time), else the rough default scaled by parameter count.
 */
export function estimateTime(config: DecoderConfig, spec: ExperimentSpec, textTokens: number, earlier: readonly Result[], deviceDescription: string | null): TimeEstimate {
  const tokens = tokensEvaluated(spec, textTokens);
  const mem = estimateMemory(config, spec);
  const compareFactor = mem.klReference > 0 ? 2 : 1;
  const runs = earlier.filter(
    (r) => r.status === 'done' && r.metrics && r.metrics.prefillTokensPerSecond > 0 && sameModel(r.spec, spec) && (deviceDescription === null || r.device.description === deviceDescription),
  );
  if (runs.length > 0) {
    const tps = median(runs.map((r) => r.metrics!.prefillTokensPerSecond));
    // everything before evaluation: tokenizing, the method's own work (calibration, GPTQ's solves), loading; from runs of the same method where there are any
    const sameMethod = runs.filter((r) => r.spec.method.id === spec.method.id);
    const before = (r: Result) => Object.entries(r.timing).reduce((sum, [stage, t]) => (stage === 'evaluate' || stage === 'decode' ? sum : sum + t), 0);
    const load = median((sameMethod.length > 0 ? sameMethod : runs).map(before));
    return {
      seconds: load + (tokens / tps) * compareFactor,
      basis:
        `from ${runs.length} earlier run${runs.length === 1 ? '' : 's'} of this model on this device (${Math.round(tps).toLocaleString('en-US')} tokens/s` +
        `${sameMethod.length === 0 && spec.method.id !== 'none' ? `; none of ${spec.method.id}, whose own preparation may take longer` : ''})`,
      measured: true,
    };
  }
  const params = mem.weightsF32 / 4;
  const scale = Math.max(1, params / 6.6e6);
  const tps = DEFAULT_TOKENS_PER_SECOND_6M / scale;
  return {
    seconds: DEFAULT_LOAD_SECONDS_6M * scale + (tokens / tps) * compareFactor,
    basis: `a rough guess (${DEFAULT_TOKENS_PER_SECOND_6M.toLocaleString('en-US')} tokens/s for a 6M model; no earlier run of this model on this device)`,
    measured: false,
  };
}

export interface PlanEstimate {
  specs: SpecEstimate[];
  /** runs happen one after another: the peak is the largest run's, the time the sum */
  peakBytes: number;
  seconds: number;
  measured: boolean;
}

export function estimatePlan(
  config: DecoderConfig,
  specs: readonly ExperimentSpec[],
  textTokens: number,
  earlier: readonly Result[],
  deviceDescription: string | null,
): PlanEstimate {
  const each = specs.map((spec) => ({ spec, memory: estimateMemory(config, spec), time: estimateTime(config, spec, textTokens, earlier, deviceDescription) }));
  return {
    specs: each,
    peakBytes: Math.max(0, ...each.map((e) => e.memory.total)),
    seconds: each.reduce((s, e) => s + e.time.seconds, 0),
    measured: each.length > 0 && each.every((e) => e.time.measured),
  };
}

/** "12.3 MB", "1.20 GB". */
export function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e3).toFixed(0)} kB`;
}

/** Windows a spec evaluates (for labels). */
export function windowsOf(spec: ExperimentSpec, textTokens: number): number {
  const total = Math.floor(textTokens / spec.eval.windowLength);
  return spec.eval.windows === null ? total : Math.min(spec.eval.windows, total);
}
