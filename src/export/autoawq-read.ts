/**
 * Reads an AutoAWQ GEMM checkpoint (the layout autoawq.ts writes and
 * AutoAWQ / vLLM / transformers load) back into the lab's packed format:
 * qweight [K, N/8] and qzeros [K/g, N/8] are unpacked with the AWQ order
 * [0, 2, 4, 6, 1, 3, 5, 7], scales [K/g, N] f16 → f32. Every layer comes back
 * asymmetric (AutoAWQ stores its zero points), so a symmetric layer reads back
 * with its implicit zero point 2^(b−1) stored.
 */
import { isJsonObject, type JsonObject } from '../core/config';
import { blockLinears, canonicalTensors, linearShape, type DecoderConfig } from '../core/decoder';
import { readModelConfig, type Family } from '../core/families';
import { packCodes, type PackedLinear } from '../core/quant/format';
import { parseSafetensors, toFloat32 } from '../core/safetensors';
import { AWQ_ORDER, checkpointName } from './autoawq';

export interface AutoAwqModel {
  family: Family;
  config: DecoderConfig;
  bits: 4;
  groupSize: number;
  /** quantized block linears by canonical name ("layers.0.attn.q") */
  packed: Map<string, PackedLinear>;
  /** every other canonical tensor (and the linears' biases), f32 */
  tensors: Map<string, Float32Array>;
}

/** Unpacks int32 [rows, N/8] words in AutoAWQ's order into [rows, N] 4-bit values. */
export function unpackAwqRows(words: Int32Array, rows: number, n: number): Uint8Array {
  const out = new Uint8Array(rows * n);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < n / 8; c++) {
      const word = words[r * (n / 8) + c];
      for (let i = 0; i < 8; i++) out[r * n + c * 8 + AWQ_ORDER[i]] = (word >>> (4 * i)) & 0xf;
    }
  }
  return out;
}

/** One layer's qweight/qzeros/scales → our packed layer W[n, k]. */
export function fromAwqGemm(qweight: Int32Array, qzeros: Int32Array, scales: Float32Array, n: number, k: number, groupSize: number): PackedLinear {
  const groups = k / groupSize;
  const codesKN = unpackAwqRows(qweight, k, n);
  const zerosGN = unpackAwqRows(qzeros, groups, n);
  const q = new Uint8Array(n * k);
  for (let j = 0; j < k; j++) for (let row = 0; row < n; row++) q[row * k + j] = codesKN[j * n + row];
  const zeros = new Uint8Array(n * groups);
  const rowScales = new Float32Array(n * groups);
  for (let g = 0; g < groups; g++) {
    for (let row = 0; row < n; row++) {
      zeros[row * groups + g] = zerosGN[g * n + row];
      rowScales[row * groups + g] = scales[g * n + row];
    }
  }
  const { codes, wordsPerRow } = packCodes(q, n, k, 4);
  return { n, k, bits: 4, groupSize, symmetric: false, wordsPerRow, codes, scales: rowScales, zeros };
}

function int32Tensor(bytes: Uint8Array): Int32Array {
  const out = new Int32Array(bytes.length / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getInt32(i * 4, true);
  return out;
}

/** Reads config.json (with its quantization_config) and model.safetensors of an AutoAWQ GEMM checkpoint. */
export function readAutoAwq(configJson: JsonObject, safetensors: Uint8Array, fileName = 'model.safetensors'): AutoAwqModel {
  const q = configJson.quantization_config;
  if (!isJsonObject(q) || q.quant_method !== 'awq') throw new Error('config.json has no quantization_config with quant_method "awq": this is not an AutoAWQ checkpoint.');
  if (String(q.version ?? 'gemm').toLowerCase() !== 'gemm') throw new Error(`config.json: AWQ version "${String(q.version)}" — only the GEMM layout is read here.`);
  if (q.bits !== 4 && q.w_bit !== 4) throw new Error('config.json: AWQ checkpoints hold 4-bit weights; quantization_config.bits is not 4.');
  const groupSize = Number(q.group_size ?? q.q_group_size);
  if (!Number.isInteger(groupSize) || groupSize <= 0) throw new Error(`config.json: quantization_config.group_size ${String(q.group_size)} is not a positive group size.`);
  const { family, config } = readModelConfig(configJson);
  const file = parseSafetensors(safetensors, fileName);
  const entry = (name: string, dtype: string, shape: number[]) => {
    const e = file.header.tensors.get(name);
    if (!e) throw new Error(`${fileName} has no tensor "${name}", which the AutoAWQ layout needs.`);
    if (e.dtype !== dtype || e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${fileName}: tensor "${name}" is ${e.dtype} ${JSON.stringify(e.shape)}, the AutoAWQ GEMM layout has ${dtype} ${JSON.stringify(shape)}.`);
    }
    return safetensors.subarray(e.begin, e.end);
  };
  const packed = new Map<string, PackedLinear>();
  const tensors = new Map<string, Float32Array>();
  const linearNames = new Set<string>();
  for (let i = 0; i < config.numLayers; i++) {
    for (const l of blockLinears(config)) {
      const name = `layers.${i}.${l}`;
      linearNames.add(`${name}.weight`);
      const [n, k] = linearShape(config, l);
      if (k % groupSize !== 0) throw new Error(`${name}: K=${k} is not a multiple of the checkpoint's group size ${groupSize}.`);
      const base = checkpointName(family, `${name}.weight`).replace(/\.weight$/, '');
      const groups = k / groupSize;
      const qweight = int32Tensor(entry(`${base}.qweight`, 'I32', [k, n / 8]));
      const qzeros = int32Tensor(entry(`${base}.qzeros`, 'I32', [groups, n / 8]));
      const scales = toFloat32(entry(`${base}.scales`, 'F16', [groups, n]), 'F16', `${fileName}, "${base}.scales"`);
      packed.set(name, fromAwqGemm(qweight, qzeros, scales, n, k, groupSize));
    }
  }
  for (const t of canonicalTensors(config)) {
    if (linearNames.has(t.name)) continue;
    const name = checkpointName(family, t.name);
    if (!file.header.tensors.has(name)) throw new Error(`${fileName} has no tensor "${name}" (${t.name}).`);
    tensors.set(t.name, file.tensor(name));
  }
  return { family, config, bits: 4, groupSize, packed, tensors };
}
