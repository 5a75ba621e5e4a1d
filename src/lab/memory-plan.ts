/**
 * A memory plan before loading: the GPU bytes each chosen experiment will
 * allocate (weights f32 or packed, activations at the window length, KV cache,
 * the logits chunk, scratch, and the f32 reference copy a KL comparison loads
 * beside it), against the adapter's limits and an optional budget. It follows
 * what DecoderExecutor allocates buffer by buffer, so a run's ledger peak
 * lands on the estimate (tests/gpu/hub-plan.test.ts holds them together).
 *
 * The summary says what fits and what does not, e.g.
 * "RTN W4 g128 fits (312 MB); f32 does not: 2.1 GB is over the budget of 1.5 GB".
 */
import type { DecoderConfig } from '../core/decoder';
import { blockLinears, linearShape } from '../core/decoder';
import { methodName, type ExperimentSpec, type MethodSpec } from '../core/experiment';
import { kvBytesPerPosition } from '../core/quant/kv';
import { resolveGroupSize, wordsPerRow, type QuantBits } from '../core/quant/format';
import { klByDefault } from './run';

export interface PlanLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  /** GPU bytes the lab may use in all; null: no budget beyond the buffer limits (browsers do not say how much memory a GPU has) */
  budgetBytes?: number | null;
}

export interface ExperimentMemory {
  label: string;
  weights: number;
  activations: number;
  kv: number;
  scratch: number;
  /** what the run's own ledger peaks at (the result's peakBytes) */
  run: number;
  /** the f32 copy and kept log-probs of a KL comparison (its own ledger); 0 when the run does not compare */
  klReference: number;
  /** both together: the GPU memory the experiment needs at its peak */
  total: number;
  /** the largest single buffer, checked against maxBufferSize and the storage binding limit */
  largestBuffer: { label: string; bytes: number };
  /** why it would fail, in words; empty when it fits */
  problems: string[];
  fits: boolean;
}

export interface MemoryPlan {
  experiments: ExperimentMemory[];
  /** one sentence: what fits and what does not */
  summary: string;
  allFit: boolean;
}

const align4 = (n: number): number => Math.max(4, Math.ceil(n / 4) * 4);

/** The packed scheme a method stores its block linears in, or null for f32 (estimates for methods with their own formats). */
function linearScheme(method: MethodSpec): { bits: QuantBits; groupSize: number | 'row'; symmetric: boolean } | null {
  const m = method as unknown as Record<string, unknown>;
  if (method.id === 'none') return null;
  if (method.id === 'smoothquant') return { bits: 8, groupSize: 'row', symmetric: true };
  const bits = typeof m.bits === 'number' ? m.bits : typeof m.lowBits === 'number' ? m.lowBits : 4;
  const groupSize = typeof m.groupSize === 'number' || m.groupSize === 'row' ? (m.groupSize as number | 'row') : 128;
  return { bits: bits as QuantBits, groupSize, symmetric: m.symmetric === true };
}

/** Bytes of W[n, k] as stored: f32, or packed (codes with row padding, f32 scales, u8 zero points). */
function linearBytes(n: number, k: number, scheme: ReturnType<typeof linearScheme>): { bytes: number; largest: number } {
  if (!scheme) return { bytes: align4(n * k * 4), largest: n * k * 4 };
  let groupSize: number;
  try {
    groupSize = resolveGroupSize(n, k, scheme);
  } catch {
    return { bytes: align4(n * k * 4), largest: n * k * 4 }; // a shape the scheme cannot take stays f32
  }
  const codes = n * wordsPerRow(k, scheme.bits) * 4;
  const groups = n * (k / groupSize);
  return { bytes: align4(codes) + align4(groups * 4) + (scheme.symmetric ? 0 : align4(groups)), largest: codes };
}

interface Tally {
  weights: number;
  activations: number;
  kv: number;
  scratch: number;
  largest: { label: string; bytes: number };
}

/** What one DecoderExecutor allocates for `config` at `rows`, with block linears in `scheme`. */
function executorBytes(
  config: DecoderConfig,
  rows: number,
  scheme: ReturnType<typeof linearScheme>,
  options: { quantizeHead: boolean; quantizeEmbeddings: boolean; kv: ExperimentSpec['kv']; maxStorageBufferBindingSize: number; timestamps: boolean },
): Tally {
  const c = config;
  const t: Tally = { weights: 0, activations: 0, kv: 0, scratch: 0, largest: { label: '', bytes: 0 } };
  const buffer = (tag: keyof Omit<Tally, 'largest'>, label: string, bytes: number) => {
    t[tag] += align4(bytes);
    if (bytes > t.largest.bytes) t.largest = { label, bytes };
  };
  const linear = (label: string, n: number, k: number, s: ReturnType<typeof linearScheme>, bias: boolean) => {
    const { bytes, largest } = linearBytes(n, k, s);
    t.weights += bytes;
    if (largest > t.largest.bytes) t.largest = { label, bytes: largest };
    if (bias) buffer('weights', `${label}.bias`, n * 4);
    buffer('scratch', `${label}.params`, s ? 32 : 16);
  };
  const D = c.hiddenSize;
  const embedScheme = options.quantizeEmbeddings ? scheme : null;
  linear('embed.tokens', c.vocabSize, D, embedScheme, false);
  t.scratch -= embedScheme ? 32 : 16; // the table has no params buffer of its own
  if (c.positions === 'learned') buffer('weights', 'embed.positions', c.maxPositions * D * 4);
  const norms = c.norm === 'layernorm' ? 2 : 1;
  for (let i = 0; i < c.numLayers; i++) {
    for (let j = 0; j < 2 * norms; j++) buffer('weights', 'norm', D * 4);
    for (const l of blockLinears(c)) {
      const [n, k] = linearShape(c, l);
      const bias = l === 'attn.o' ? c.attnOutBias : l.startsWith('attn.') ? c.attnBias : c.mlpBias;
      linear(`layers.${i}.${l}`, n, k, scheme, bias);
    }
    const perPosition = kvBytesPerPosition(c.numKvHeads * c.headDim, options.kv);
    t.kv += align4((rows * perPosition) / 2) * 2;
  }
  for (let j = 0; j < norms; j++) buffer('weights', 'final_norm', D * 4);
  if (c.tiedEmbeddings && (embedScheme || !options.quantizeHead)) {
    buffer('scratch', 'head.params', embedScheme ? 32 : 16); // shares the table, packed or f32
  } else {
    linear('head', c.vocabSize, D, options.quantizeHead ? scheme : null, false);
  }
  if (c.positions === 'rope') buffer('weights', 'rope table', rows * c.headDim * 4);
  // activations, as the executor's constructor allocates them
  const Q = c.numHeads * c.headDim;
  const KV = c.numKvHeads * c.headDim;
  for (const [label, n] of [['x', rows * D], ['xn', rows * D], ['tmp', rows * D], ['q', rows * Q], ['att', rows * Q], ['kNew', KV], ['vNew', KV], ['h1', rows * c.intermediateSize], ['h2', rows * c.intermediateSize]] as const) {
    buffer('activations', label, n * 4);
  }
  for (let j = 0; j < 6; j++) buffer('activations', 'per-row scores', rows * 4);
  const chunk = headChunkRows(c, rows, options.maxStorageBufferBindingSize);
  buffer('activations', 'logits chunk', chunk * c.vocabSize * 4);
  if (chunk < rows) buffer('activations', 'headIn', chunk * D * 4);
  buffer('scratch', 'nll readback', rows * 16 + 16);
  if (options.timestamps) buffer('scratch', 'timestamps', 16);
  return t;
}

/** Rows of logits the executor computes at once (its head chunk). */
export function headChunkRows(c: DecoderConfig, rows: number, maxStorageBufferBindingSize: number): number {
  const byMemory = Math.max(1, Math.floor((64 * 2 ** 20) / (c.vocabSize * 4)));
  const byBinding = Math.max(1, Math.floor(maxStorageBufferBindingSize / (c.vocabSize * 4)));
  return Math.min(rows, byMemory, byBinding);
}

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e3).toFixed(1)} kB`;
}

/** The memory one experiment needs on the GPU, and whether it fits. */
export function planExperiment(
  config: DecoderConfig,
  spec: Pick<ExperimentSpec, 'method' | 'eval' | 'kv'>,
  limits: PlanLimits,
  options: { kl?: boolean; timestamps?: boolean } = {},
): ExperimentMemory {
  const rows = spec.eval.windowLength;
  const method = spec.method as MethodSpec & { quantizeHead?: boolean; quantizeEmbeddings?: boolean };
  const scheme = linearScheme(method);
  const common = { kv: spec.kv, maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize, timestamps: options.timestamps ?? false };
  const main = executorBytes(config, rows, scheme, { ...common, quantizeHead: !!method.quantizeHead, quantizeEmbeddings: !!method.quantizeEmbeddings });
  const compare = options.kl ?? (method.id !== 'none' && klByDefault(config, rows));
  let klReference = 0;
  let largest = main.largest;
  if (compare) {
    const ref = executorBytes(config, rows, null, { ...common, kv: undefined, quantizeHead: false, quantizeEmbeddings: false });
    const logProbs = align4(rows * config.vocabSize * 4) + align4(rows * 4);
    klReference = ref.weights + ref.activations + ref.kv + ref.scratch + logProbs;
    if (ref.largest.bytes > largest.bytes) largest = { label: `${ref.largest.label} (f32 reference)`, bytes: ref.largest.bytes };
  }
  const run = main.weights + main.activations + main.kv + main.scratch;
  const total = run + klReference;
  const problems: string[] = [];
  if (largest.bytes > limits.maxBufferSize) {
    problems.push(`its largest buffer (${largest.label}, ${formatBytes(largest.bytes)}) is over the adapter's maxBufferSize of ${formatBytes(limits.maxBufferSize)}`);
  } else if (largest.bytes > limits.maxStorageBufferBindingSize) {
    problems.push(`its largest buffer (${largest.label}, ${formatBytes(largest.bytes)}) is over the adapter's maxStorageBufferBindingSize of ${formatBytes(limits.maxStorageBufferBindingSize)}`);
  }
  if (limits.budgetBytes != null && total > limits.budgetBytes) {
    problems.push(`${formatBytes(total)}${klReference ? ` (${formatBytes(klReference)} of it the f32 reference for KL divergence)` : ''} is over the budget of ${formatBytes(limits.budgetBytes)}`);
  }
  return { label: methodName(spec.method), weights: main.weights, activations: main.activations, kv: main.kv, scratch: main.scratch, run, klReference, total, largestBuffer: largest, problems, fits: problems.length === 0 };
}

/** Plans every experiment and says in one sentence what fits and what does not. */
export function planMemory(
  config: DecoderConfig,
  specs: Pick<ExperimentSpec, 'method' | 'eval' | 'kv'>[],
  limits: PlanLimits,
  options: { kl?: boolean; timestamps?: boolean } = {},
): MemoryPlan {
  const experiments = specs.map((s) => planExperiment(config, s, limits, options));
  return { experiments, summary: summarizePlan(experiments), allFit: experiments.every((e) => e.fits) };
}

export function summarizePlan(experiments: ExperimentMemory[]): string {
  const unique = (list: ExperimentMemory[]) => [...new Map(list.map((e) => [e.label, e])).values()];
  const fit = unique(experiments.filter((e) => e.fits));
  const not = unique(experiments.filter((e) => !e.fits));
  const fitText = fit.length ? `${fit.map((e) => `${e.label} (${formatBytes(e.total)})`).join(', ')} ${fit.length === 1 ? 'fits' : 'fit'}` : '';
  const notText = not.map((e) => `${e.label} does not: ${e.problems.join('; ')}`).join('; ');
  if (!not.length) return `${fitText}.`;
  if (!fit.length) return `Nothing fits: ${notText}. Choose a lower bit width, a shorter window or a smaller model.`;
  return `${fitText}; ${notText}.`;
}
