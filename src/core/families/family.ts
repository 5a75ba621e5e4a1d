/**
 * What an architecture family is: a `config.json` reader and a TABLE from
 * canonical tensor names (decoder.ts) to checkpoint tensor names, with the
 * transform each needs. The generic code here resolves a table against the
 * tensors a checkpoint actually holds and applies the transforms; a family
 * file holds no logic beyond its config reading.
 */
import type { JsonObject } from '../config';
import { canonicalTensors, type DecoderConfig } from '../decoder';

/** How one canonical tensor is read from the checkpoint. */
export interface TensorSource {
  /** checkpoint names to try in order; `{i}` stands for the layer index */
  from: string[];
  /** the checkpoint stores it [in, out] (GPT-2 Conv1D): transpose to [out, in] */
  transpose?: boolean;
  /**
   * the checkpoint fuses `parts` tensors along the output dimension (GPT-2's
   * c_attn holds q, k, v): after any transpose take row block `index`.
   * `rows` gives the parts' row counts when they differ (Phi-3's qkv_proj
   * under grouped-query attention); equal parts otherwise.
   */
  split?: { index: number; parts: number; rows?: (config: DecoderConfig) => number[] };
}

/** A fused tensor's part as resolved for one config: rows [start, start + canonical rows) of `total`. */
export interface SplitPlan {
  index: number;
  parts: number;
  /** first row of the part in the fused tensor (after any transpose); index · rows when absent */
  start?: number;
}

/** canonical name pattern (`layers.{i}.attn.q.weight`) → where it comes from */
export type TensorTable = Record<string, string | string[] | TensorSource>;

export interface Family {
  /** `model_type` in config.json */
  modelType: string;
  /** the transformers classes of this family, for messages */
  architectures: string[];
  /** reads config.json; errors name the file and the key */
  fromConfig(json: JsonObject, fileName: string): DecoderConfig;
  tensors: TensorTable;
  /**
   * checkpoint tensors that are not weights (causal-mask buffers, cached RoPE
   * frequencies) or are redundant (the head of a tied model): never reported
   * as unexpected when left unused
   */
  ignored: RegExp[];
}

/** One canonical tensor resolved against a checkpoint. */
export interface TensorPlan {
  canonical: string;
  /** canonical shape, as the executor wants it */
  shape: number[];
  /** the checkpoint tensor it is read from */
  source: string;
  /** the checkpoint tensor's shape (checked) */
  sourceShape: number[];
  transpose: boolean;
  split: SplitPlan | null;
}

export interface Resolution {
  plans: TensorPlan[];
  /** checkpoint tensors no plan reads and no `ignored` pattern covers */
  unexpected: string[];
}

function sourceFor(family: Family, canonical: string): { source: TensorSource; layer: string | null } {
  const layerMatch = /^layers\.(\d+)\./.exec(canonical);
  const pattern = layerMatch ? canonical.replace(/^layers\.\d+\./, 'layers.{i}.') : canonical;
  const entry = family.tensors[pattern];
  if (entry === undefined) {
    throw new Error(`the ${family.modelType} mapping table has no entry for "${pattern}" (internal error in src/core/families/${family.modelType}.ts).`);
  }
  const source = typeof entry === 'string' ? { from: [entry] } : Array.isArray(entry) ? { from: entry } : entry;
  return { source, layer: layerMatch ? layerMatch[1] : null };
}

/** The shape a checkpoint tensor must have to yield `shape` through `source`'s transforms. */
export function expectedSourceShape(shape: number[], source: TensorSource, config?: DecoderConfig): number[] {
  let s = [...shape];
  if (source.split?.rows) {
    if (!config) throw new Error('an uneven split needs the config (internal error in a mapping table).');
    s[0] = source.split.rows(config).reduce((a, b) => a + b, 0);
  } else if (source.split) s[0] *= source.split.parts;
  if (source.transpose) {
    if (s.length !== 2) throw new Error(`only 2-D tensors can be transposed, got shape ${JSON.stringify(s)} (internal error in a mapping table).`);
    s = [s[1], s[0]];
  }
  return s;
}

const shapeText = (s: number[]): string => `[${s.join(', ')}]`;

/**
 * Resolves every canonical tensor of `config` against the checkpoint's
 * tensors (name → shape). Errors name the missing or misshapen tensor and,
 * through `fileOf`, the file it was looked for in.
 */
export function resolveTensors(
  family: Family,
  config: DecoderConfig,
  available: Map<string, { shape: number[] }>,
  fileOf: (checkpointName: string) => string,
): Resolution {
  const plans: TensorPlan[] = [];
  const used = new Set<string>();
  for (const { name: canonical, shape } of canonicalTensors(config)) {
    const { source, layer } = sourceFor(family, canonical);
    const candidates = source.from.map((n) => (layer === null ? n : n.replaceAll('{i}', layer)));
    const found = candidates.find((n) => available.has(n));
    if (found === undefined) {
      const tied = canonical === 'head.weight' ? ' (config.json says the head is not tied to the embeddings: tie_word_embeddings is false)' : '';
      throw new Error(
        `${fileOf(candidates[0])} has no tensor "${candidates[0]}"${candidates.length > 1 ? ` (nor ${candidates.slice(1).map((c) => `"${c}"`).join(', ')})` : ''}, ` +
          `which a ${family.modelType} model with this config.json needs as ${canonical}${tied}: ` +
          `the checkpoint is incomplete, or config.json belongs to another model.`,
      );
    }
    const sourceShape = available.get(found)!.shape;
    const expected = expectedSourceShape(shape, source, config);
    if (sourceShape.length !== expected.length || sourceShape.some((d, k) => d !== expected[k])) {
      throw new Error(
        `${fileOf(found)}: tensor "${found}" has shape ${shapeText(sourceShape)}, but config.json implies ${shapeText(expected)} ` +
          `(for ${canonical}): config.json and the weights disagree — they belong to different models.`,
      );
    }
    used.add(found);
    plans.push({ canonical, shape, source: found, sourceShape, transpose: source.transpose ?? false, split: splitPlan(source, config) });
  }
  const unexpected = [...available.keys()].filter((n) => !used.has(n) && !family.ignored.some((re) => re.test(n)));
  return { plans, unexpected };
}

function splitPlan(source: TensorSource, config: DecoderConfig): SplitPlan | null {
  if (!source.split) return null;
  const { index, parts, rows } = source.split;
  if (!rows) return { index, parts };
  const sizes = rows(config);
  return { index, parts, start: sizes.slice(0, index).reduce((a, b) => a + b, 0) };
}

/** Applies a plan's transforms to the checkpoint tensor's values (f32, row-major `sourceShape`). */
export function applyPlan(plan: TensorPlan, data: Float32Array): Float32Array {
  const elements = plan.sourceShape.reduce((a, b) => a * b, 1);
  if (data.length !== elements) {
    throw new Error(`tensor "${plan.source}": got ${data.length} values, shape ${shapeText(plan.sourceShape)} has ${elements}.`);
  }
  if (!plan.transpose && !plan.split) return data;
  if (!plan.transpose) {
    // rows of the fused tensor are contiguous: a subarray copy
    const rowElements = elements / plan.sourceShape[0];
    const rows = plan.shape[0];
    const start = (plan.split!.start ?? plan.split!.index * rows) * rowElements;
    return data.slice(start, start + rows * rowElements);
  }
  // source [in, outAll] → canonical [out, in], taking output columns [c0, c0 + out)
  const [inDim, outAll] = plan.sourceShape;
  const out = plan.shape[0];
  const c0 = plan.split ? (plan.split.start ?? plan.split.index * out) : 0;
  const result = new Float32Array(out * inDim);
  for (let r = 0; r < inDim; r++) {
    const rowBase = r * outAll + c0;
    for (let c = 0; c < out; c++) result[c * inDim + r] = data[rowBase + c];
  }
  return result;
}
