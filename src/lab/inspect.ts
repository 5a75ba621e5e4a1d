/**
 * The layer inspector's numbers, computed from the real model: for each block
 * linear (q, k, v, o, gate, up, down — gpt2's q, k, v, o, up, down) the
 * relative output error of its quantized weights on real inputs,
 *
 *   ‖X·Wᵀ − X·Ŵᵀ‖_F / ‖X·Wᵀ‖_F,
 *
 * X being that layer's input on the first tokens of the WikiText-2 test text
 * in the unquantized model, and each layer's weight histogram before and
 * after quantization with the quantization grid of one of its groups.
 *
 * The inputs X come from the CPU float64 reference forward pass
 * (src/core/reference.ts, through its capture hook): exact, needs no GPU
 * memory, and fast enough for a short window of a small model (the embedded
 * 6M models: about a second for 32 tokens). A method that changes the float
 * tensors it hands the executor (AWQ folds scales into norms) gets a second
 * forward pass on those, so both sides of each difference see the inputs
 * their own weights expect.
 */
import type { DecoderConfig } from '../core/decoder';
import { blockLinears, canonicalTensors, linearShape } from '../core/decoder';
import type { MethodSpec } from '../core/experiment';
import { dequantize, groupsPerRow, symmetricZero, type PackedLinear } from '../core/quant/format';
import { decoderForwardRef, linearRef } from '../core/reference';
import type { TensorReader } from '../gpu/model';
import type { LoadedModel } from './load';
import type { PreparedWeights } from './methods/method';
import { awq } from './methods/awq';
import { gptq } from './methods/gptq';
import { hqq } from './methods/hqq';
import { rtn } from './methods/rtn';

export const HISTOGRAM_BINS = 64;
/** Largest model the inspector takes: it holds the f32 weights (twice for methods that change them) and runs a float64 forward pass on the CPU. */
export const INSPECT_MAX_PARAMS = 200e6;

export interface LayerHistogram {
  /** canonical linear name, e.g. "layers.3.mlp.up" */
  name: string;
  n: number;
  k: number;
  /** value range of the bins (both histograms share it) */
  min: number;
  max: number;
  /** counts per bin, HISTOGRAM_BINS of them */
  before: number[];
  after: number[];
  /** the representable values of one group (the one with the median scale), ascending */
  grid: number[];
  /** which group `grid` belongs to */
  gridOf: { row: number; group: number; groupSize: number; scale: number };
  bits: number;
}

export interface LayerInspection {
  model: string;
  method: MethodSpec;
  /** evaluation tokens the inputs X were taken from */
  tokens: number;
  layers: number;
  /** projection short names, the heatmap's columns ("attn.q", …, "mlp.down") */
  projections: string[];
  /** error[layer][projection]; null where that linear stayed in f32 */
  error: (number | null)[][];
  histograms: LayerHistogram[];
  seconds: number;
}

export interface InspectInput {
  model: LoadedModel;
  method: MethodSpec;
  /** the model's own float tensors (what `prepared` was made from) */
  read: TensorReader;
  /** the method's prepared weights (PreparedWeights.quantize is called once per block linear) */
  prepared: PreparedWeights;
  /** token ids of the evaluation text; the first `rows` are used */
  ids: ArrayLike<number>;
  rows: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, detail: string) => void;
}

/** Relative Frobenius error ‖a − b‖ / ‖a‖. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += a[i] ** 2;
  }
  return den > 0 ? Math.sqrt(num / den) : 0;
}

/** Counts of `values` in `bins` equal bins over [min, max]. */
export function histogram(values: ArrayLike<number>, min: number, max: number, bins: number = HISTOGRAM_BINS): number[] {
  const counts = new Array<number>(bins).fill(0);
  const width = (max - min) / bins || 1;
  for (let i = 0; i < values.length; i++) counts[Math.min(bins - 1, Math.max(0, Math.floor((values[i] - min) / width)))]++;
  return counts;
}

/** The values a group of a packed layer can represent: (q − zero)·scale for every code q. */
export function groupGrid(packed: PackedLinear, row: number, group: number): number[] {
  const groups = groupsPerRow(packed);
  const scale = packed.scales[row * groups + group];
  const zero = packed.zeros ? packed.zeros[row * groups + group] : symmetricZero(packed.bits);
  return Array.from({ length: 2 ** packed.bits }, (_, q) => Math.fround((q - zero) * scale)).sort((a, b) => a - b);
}

/** The (row, group) whose scale is the median of the layer's: a typical group to draw the grid of. */
export function medianScaleGroup(packed: PackedLinear): { row: number; group: number } {
  const groups = groupsPerRow(packed);
  const order = Array.from(packed.scales.keys()).sort((a, b) => Math.abs(packed.scales[a]) - Math.abs(packed.scales[b]));
  const i = order[Math.floor(order.length / 2)];
  return { row: Math.floor(i / groups), group: i % groups };
}

async function readAll(model: LoadedModel, read: TensorReader): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const t of model.tensors) {
    const data = await read(t.canonical);
    if (data) out.set(t.canonical, data);
  }
  return out;
}

/**
 * The method's prepared weights for the inspector: the same `prepare` a run
 * uses. Methods are added here as they gain a PreparedWeights.quantize.
 */
export async function prepareForInspector(
  method: MethodSpec,
  model: LoadedModel,
  read: TensorReader,
  device: GPUDevice,
  signal?: AbortSignal,
  calibrationTokens?: number[],
): Promise<PreparedWeights> {
  const input = <P>(params: P) => ({ config: model.config, read, params, device, signal, calibrationTokens });
  switch (method.id) {
    case 'rtn':
      return rtn.prepare(input(method));
    case 'hqq':
      return hqq.prepare(input(method));
    case 'awq':
      return awq.prepare(input(method));
    case 'gptq':
      return gptq.prepare(input(method));
    case 'none':
      throw new Error('The f32 baseline quantizes nothing: choose a quantization method to inspect.');
    default:
      // W8A8 / W4A4 and mixed precision: their error is in the activations or across rows, not one weight grid per layer
      throw new Error(`The layer inspector shows weight-only methods with one grid per group (RTN, HQQ, AWQ, GPTQ); ${method.id} is not one of them.`);
  }
}

/** One forward pass on the CPU in float64, keeping each block linear's input. */
function captureInputs(config: DecoderConfig, tensors: Map<string, Float32Array>, ids: ArrayLike<number>): Map<string, Float64Array> {
  const inputs = new Map<string, Float64Array>();
  decoderForwardRef(config, (name) => tensors.get(name) ?? null, ids, (linear, input) => inputs.set(linear, input));
  return inputs;
}

export async function inspectLayers(input: InspectInput): Promise<LayerInspection> {
  const start = performance.now();
  const { model, prepared, signal } = input;
  const c = model.config;
  const rows = Math.min(input.rows, input.ids.length, c.maxPositions);
  if (rows < 1) throw new Error('The layer inspector needs at least one evaluation token.');
  const ids = Array.from({ length: rows }, (_, i) => input.ids[i]);
  const projections = blockLinears(c);
  const total = c.numLayers * projections.length;
  const params = canonicalTensors(c).reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
  if (params > INSPECT_MAX_PARAMS) {
    throw new Error(
      `The layer inspector computes on the CPU in float64 and keeps the whole model in f32 in memory; ${model.name} has ` +
        `${(params / 1e6).toFixed(0)}M parameters, more than its limit of ${INSPECT_MAX_PARAMS / 1e6}M. Inspect a smaller model.`,
    );
  }

  const original = await readAll(model, input.read);
  signal?.throwIfAborted();
  input.onProgress?.(0, total, 'forward pass on the CPU (float64)');
  const inputs = captureInputs(c, original, ids);
  let methodInputs = inputs;
  let methodTensors = original;
  if (prepared.read !== input.read) {
    methodTensors = await readAll(model, prepared.read);
    const changed = [...methodTensors].some(([name, t]) => {
      const o = original.get(name);
      return !o || o.length !== t.length || t.some((v, i) => v !== o[i]);
    });
    if (changed) methodInputs = captureInputs(c, methodTensors, ids);
    else methodTensors = original;
  }

  const error: (number | null)[][] = [];
  const histograms: LayerHistogram[] = [];
  for (let layer = 0; layer < c.numLayers; layer++) {
    const row: (number | null)[] = [];
    for (const p of projections) {
      signal?.throwIfAborted();
      const name = `layers.${layer}.${p}`;
      const [n, k] = linearShape(c, p);
      const w = original.get(`${name}.weight`);
      const wMethod = methodTensors.get(`${name}.weight`);
      const x = inputs.get(name);
      const xMethod = methodInputs.get(name);
      if (!w || !wMethod || !x || !xMethod) throw new Error(`The layer inspector found no weight or input for ${name}.`);
      const packed = prepared.quantize(name, wMethod, n, k);
      if (!packed) {
        row.push(null);
      } else {
        const wHat = dequantize(packed);
        row.push(relativeError(linearRef(x, rows, w, n, k, null), linearRef(xMethod, rows, wHat, n, k, null)));
        let min = Infinity;
        let max = -Infinity;
        for (const arr of [w, wHat]) for (let i = 0; i < arr.length; i++) {
          if (arr[i] < min) min = arr[i];
          if (arr[i] > max) max = arr[i];
        }
        const at = medianScaleGroup(packed);
        histograms.push({
          name,
          n,
          k,
          min,
          max,
          before: histogram(w, min, max),
          after: histogram(wHat, min, max),
          grid: groupGrid(packed, at.row, at.group),
          gridOf: { ...at, groupSize: packed.groupSize, scale: packed.scales[at.row * groupsPerRow(packed) + at.group] },
          bits: packed.bits,
        });
      }
      input.onProgress?.(layer * projections.length + row.length, total, name);
      // let a cancel arrive between layers
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    error.push(row);
  }
  return { model: model.name, method: input.method, tokens: rows, layers: c.numLayers, projections, error, histograms, seconds: (performance.now() - start) / 1000 };
}
