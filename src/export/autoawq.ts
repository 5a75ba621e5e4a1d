/**
 * AutoAWQ-format export ("GEMM" version) of a W4 model, the layout vLLM and
 * transformers load for `quant_method: "awq"`:
 *
 * For each quantized nn.Linear W[N out, K in], group size g, beside the
 * checkpoint name's prefix (e.g. `model.layers.0.self_attn.q_proj`):
 *
 *   qweight  int32 [K, N/8]     word (k, c) holds the codes of outputs
 *                               n = 8c + ORDER[i] at bits [4i, 4i + 4),
 *                               ORDER = [0, 2, 4, 6, 1, 3, 5, 7]
 *   qzeros   int32 [K/g, N/8]   zero points packed the same way
 *   scales   f16   [K/g, N]
 *   (bias    f16   [N])
 *
 *   W[n, k] = (q − zero) · scale  for the group ⌊k/g⌋ of row n
 *
 * (AutoAWQ's WQLinear_GEMM.from_linear and its dequantize_gemm; the interleaved
 * order is what its CUDA kernel unpacks.) Every other tensor is written in f16
 * under the family's checkpoint name, and config.json gets
 *
 *   "quantization_config": { "quant_method": "awq", "version": "gemm",
 *     "bits": 4, "group_size": g, "zero_point": true, "modules_to_not_convert": null }
 *
 * Codes and zero points are ours unchanged; scales are rounded to f16 (the
 * format's type). Symmetric schemes are written with their implicit zero
 * point 8 stored, since the GEMM kernels always read qzeros.
 */
import type { JsonObject } from '../core/config';
import { blockLinears } from '../core/decoder';
import type { Family, TensorSource } from '../core/families/family';
import { f32ToF16Bits, writeSafetensors, type TensorToWrite } from '../core/safetensors';
import { groupsPerRow, unpackCodes, zeroPoint, type PackedLinear } from '../core/quant/format';
import type { ExportLinear, ExportWeights } from './weights';

/** AutoAWQ's interleaving: slot i of a word holds output column ORDER[i] of its 8. */
export const AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7] as const;

/** The one checkpoint name a canonical tensor has in a family whose linears are plain nn.Linear weights. */
export function checkpointName(family: Family, canonical: string): string {
  const layer = /^layers\.(\d+)\./.exec(canonical);
  const pattern = layer ? canonical.replace(/^layers\.\d+\./, 'layers.{i}.') : canonical;
  const entry = family.tensors[pattern];
  if (entry === undefined) throw new Error(`the ${family.modelType} mapping table has no entry for "${pattern}".`);
  const source: TensorSource = typeof entry === 'string' ? { from: [entry] } : Array.isArray(entry) ? { from: entry } : entry;
  if (source.transpose || source.split) {
    throw new Error(
      `AutoAWQ export: ${family.modelType} stores ${canonical} ${source.split ? 'fused with other projections' : 'transposed (Conv1D)'}, ` +
        `not as an nn.Linear weight, and AutoAWQ's GEMM layout replaces nn.Linear layers only: export this model to ONNX instead.`,
    );
  }
  const name = source.from[0];
  return layer ? name.replaceAll('{i}', layer[1]) : name;
}

/** Packs a [rows, N] matrix of 4-bit values (row-major) into int32 [rows, N/8] words in AutoAWQ's order. */
export function packAwqRows(values: Uint8Array, rows: number, n: number): Int32Array {
  const words = new Int32Array((rows * n) / 8);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < n / 8; c++) {
      let word = 0;
      for (let i = 0; i < 8; i++) word |= (values[r * n + c * 8 + AWQ_ORDER[i]] & 0xf) << (4 * i);
      words[r * (n / 8) + c] = word;
    }
  }
  return words;
}

/** The three tensors of one quantized linear in AutoAWQ's GEMM layout. */
export function toAwqGemm(packed: PackedLinear, what = 'layer'): { qweight: Int32Array; qzeros: Int32Array; scales: Uint16Array; groups: number } {
  const { n, k, bits } = packed;
  if (bits !== 4) throw new Error(`${what}: AutoAWQ's GEMM format holds 4-bit weights only; this layer has ${bits}-bit codes — export W4 models, or use ONNX.`);
  if (n % 8 !== 0) throw new Error(`${what}: ${n} output features is not a multiple of 8, which AutoAWQ's packing of 8 codes per int32 needs.`);
  const groups = groupsPerRow(packed);
  // codes transposed to [K, N], zero points and scales to [K/g, N]
  const q = unpackCodes(packed);
  const codesKN = new Uint8Array(k * n);
  for (let row = 0; row < n; row++) for (let j = 0; j < k; j++) codesKN[j * n + row] = q[row * k + j];
  const zerosGN = new Uint8Array(groups * n);
  const scales = new Uint16Array(groups * n);
  for (let row = 0; row < n; row++) {
    for (let g = 0; g < groups; g++) {
      zerosGN[g * n + row] = zeroPoint(packed, row, g);
      scales[g * n + row] = f32ToF16Bits(packed.scales[row * groups + g]);
    }
  }
  return { qweight: packAwqRows(codesKN, k, n), qzeros: packAwqRows(zerosGN, groups, n), scales, groups };
}

/**
 * f16 bytes of f32 values, rounding to nearest even — f32ToF16Bits's rule
 * (src/core/safetensors.ts), reading the bits through one view instead of
 * allocating per value (embedding tables have millions).
 */
export function f16Bytes32(values: Float32Array): Uint8Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const x = bits[i];
    const sign = (x >>> 16) & 0x8000;
    const exponent = (x >>> 23) & 0xff;
    const mantissa = x & 0x7fffff;
    const e = exponent - 127 + 15;
    let h: number;
    if (exponent === 0xff || e >= 31 || e <= 0) {
      h = f32ToF16Bits(values[i]); // NaN, infinities, overflow, subnormals: the reference path
    } else {
      h = (e << 10) | (mantissa >>> 13);
      const rest = mantissa & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
      h |= sign;
    }
    view.setUint16(i * 2, h, true);
  }
  return out;
}

function int32Bytes(words: Int32Array): Uint8Array {
  const out = new Uint8Array(words.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < words.length; i++) view.setInt32(i * 4, words[i], true);
  return out;
}

function f16Bytes(bits: Uint16Array): Uint8Array {
  const out = new Uint8Array(bits.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < bits.length; i++) view.setUint16(i * 2, bits[i], true);
  return out;
}

export interface AutoAwqFiles {
  /** the weights: model.safetensors */
  safetensors: Uint8Array;
  /** config.json: the model's own with quantization_config added */
  config: JsonObject;
  groupSize: number;
}

/**
 * The AutoAWQ checkpoint of a collected W4 model. `sourceConfig` is the
 * model's config.json (kept, with quantization_config and dtype added).
 */
export function exportAutoAwq(weights: ExportWeights, family: Family, sourceConfig: JsonObject): AutoAwqFiles {
  const c = weights.config;
  if (weights.embedTokensPacked) throw new Error('AutoAWQ export: the embedding table is quantized, but AutoAWQ keeps it in f16 — export without quantizing the embeddings.');
  if (weights.head.packed) throw new Error('AutoAWQ export: the output head is quantized, but AutoAWQ keeps lm_head in f16 — export without quantizing the head.');
  const tensors: TensorToWrite[] = [];
  const floats = (canonical: string, values: Float32Array, shape: number[]) =>
    tensors.push({ name: checkpointName(family, canonical), dtype: 'F16', shape, data: f16Bytes32(values) });
  let groupSize: number | null = null;
  const quantized = (l: ExportLinear) => {
    const base = checkpointName(family, `${l.name}.weight`).replace(/\.weight$/, '');
    if (!l.packed) throw new Error(`AutoAWQ export: ${l.name} is not quantized; AutoAWQ checkpoints quantize every block linear — export a W4 method.`);
    if (groupSize !== null && l.packed.groupSize !== groupSize) {
      throw new Error(`AutoAWQ export: ${l.name} has groups of ${l.packed.groupSize}, other layers ${groupSize}; AutoAWQ has one group size per model — choose 32, 64 or 128 instead of whole rows.`);
    }
    groupSize = l.packed.groupSize;
    const awq = toAwqGemm(l.packed, l.name);
    tensors.push({ name: `${base}.qweight`, dtype: 'I32', shape: [l.k, l.n / 8], data: int32Bytes(awq.qweight) });
    tensors.push({ name: `${base}.qzeros`, dtype: 'I32', shape: [awq.groups, l.n / 8], data: int32Bytes(awq.qzeros) });
    tensors.push({ name: `${base}.scales`, dtype: 'F16', shape: [awq.groups, l.n], data: f16Bytes(awq.scales) });
    if (l.bias) tensors.push({ name: `${base}.bias`, dtype: 'F16', shape: [l.n], data: f16Bytes32(l.bias) });
  };
  const norm = (prefix: string, n: { weight: Float32Array; bias: Float32Array | null }) => {
    floats(`${prefix}.weight`, n.weight, [c.hiddenSize]);
    if (n.bias) floats(`${prefix}.bias`, n.bias, [c.hiddenSize]);
  };
  floats('embed.tokens', weights.embedTokens, [c.vocabSize, c.hiddenSize]);
  if (weights.embedPositions) floats('embed.positions', weights.embedPositions, [c.maxPositions, c.hiddenSize]);
  weights.blocks.forEach((block, i) => {
    norm(`layers.${i}.attn_norm`, block.attnNorm);
    norm(`layers.${i}.mlp_norm`, block.mlpNorm);
    for (const l of blockLinears(c)) quantized(block.linears[l]);
  });
  norm('final_norm', weights.finalNorm);
  if (!c.tiedEmbeddings) floats('head.weight', weights.head.weight!, [c.vocabSize, c.hiddenSize]);
  if (groupSize === null) throw new Error('AutoAWQ export: the model has no block linears.');
  const config: JsonObject = {
    ...sourceConfig,
    torch_dtype: 'float16',
    quantization_config: { quant_method: 'awq', version: 'gemm', bits: 4, group_size: groupSize, zero_point: true, modules_to_not_convert: null },
  };
  if ('dtype' in config) config.dtype = 'float16';
  return { safetensors: writeSafetensors(tensors, { format: 'pt' }), config, groupSize };
}
