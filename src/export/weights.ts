/**
 * The quantized model an exporter writes: every tensor as the lab's executor
 * sees it, collected through the shared method interface
 * (src/lab/methods/method.ts). `quantize` is called once per matrix in the
 * executor's order (embedding table, each block's linears, head), so
 * methods that quantize on demand export exactly what they evaluate.
 *
 * Float tensors are kept as f32; a quantized matrix is kept only in its
 * packed form, so the collection is about as large as the export.
 */
import { blockLinears, linearShape, type DecoderConfig } from '../core/decoder';
import { dequantize, type PackedLinear } from '../core/quant/format';
import { methodName, type MethodSpec } from '../core/experiment';
import type { TensorReader } from '../gpu/model';
import type { LoadedModel } from '../lab/load';
import { awq } from '../lab/methods/awq';
import { gptq } from '../lab/methods/gptq';
import { hqq } from '../lab/methods/hqq';
import type { MethodProgress, PreparedWeights } from '../lab/methods/method';
import { rtn } from '../lab/methods/rtn';

/** One linear layer: either packed or f32 W[n, k], with its bias. */
export interface ExportLinear {
  /** canonical name: "layers.3.mlp.up", "head" */
  name: string;
  n: number;
  k: number;
  packed: PackedLinear | null;
  /** f32 W[n, k] when not packed */
  weight: Float32Array | null;
  bias: Float32Array | null;
}

export interface ExportNorm {
  weight: Float32Array;
  bias: Float32Array | null;
}

export interface ExportBlock {
  attnNorm: ExportNorm;
  mlpNorm: ExportNorm;
  /** by canonical short name: attn.q, attn.k, attn.v, attn.o, (mlp.gate,) mlp.up, mlp.down */
  linears: Record<string, ExportLinear>;
}

export interface ExportWeights {
  config: DecoderConfig;
  /** the token table as f32 (the dequantized table when it is packed) */
  embedTokens: Float32Array;
  /** the packed token table when the method quantized it */
  embedTokensPacked: PackedLinear | null;
  embedPositions: Float32Array | null;
  blocks: ExportBlock[];
  finalNorm: ExportNorm;
  /**
   * The output head. `tied` with no packed form: the f32 token table itself.
   * A tied model whose token table is packed uses that packed table.
   */
  head: ExportLinear & { tied: boolean };
}

/** A TensorReader over a loaded model: null for tensors the file does not have. */
export function modelReader(model: LoadedModel): TensorReader {
  const names = new Set(model.tensors.map((t) => t.canonical));
  return async (name) => (names.has(name) ? model.getTensor(name) : null);
}

export interface PrepareOptions {
  /** the GPU, for methods that calibrate there (AWQ, GPTQ) */
  device?: GPUDevice;
  /** the calibration text tokenized with the model's tokenizer (AWQ, GPTQ) */
  calibrationTokens?: number[];
  signal?: AbortSignal;
  onProgress?: (p: MethodProgress) => void;
}

/** What a method needs before it can be exported: a GPU and calibration text (AWQ, GPTQ), or nothing. */
export function exportNeeds(method: MethodSpec): { device: boolean; calibration: boolean } {
  const calibrated = method.id === 'awq' || method.id === 'gptq';
  return { device: calibrated, calibration: calibrated };
}

/**
 * The method's weights for a method spec, through the same method objects a
 * run uses. Methods whose layers are not packed weights alone (activation
 * quantization, mixed row sets) have no export form and are refused.
 */
export async function prepareWeights(method: MethodSpec, config: DecoderConfig, read: TensorReader, options: PrepareOptions = {}): Promise<PreparedWeights> {
  const common = { config, read, device: options.device, signal: options.signal, onProgress: options.onProgress };
  switch (method.id) {
    case 'none':
      return { read, quantize: () => null, report: {} };
    case 'rtn':
      return rtn.prepare({ ...common, params: method });
    case 'hqq':
      return hqq.prepare({ ...common, params: method });
    case 'awq':
      return awq.prepare({ ...common, params: method, calibrationTokens: options.calibrationTokens });
    case 'gptq':
      return gptq.prepare({ ...common, params: method, calibrationTokens: options.calibrationTokens });
    default:
      throw new Error(
        `export: ${methodName(method)} computes with layers of its own (quantized activations or mixed row sets), ` +
          `which have no MatMulNBits or AutoAWQ form: export an RTN, AWQ, GPTQ or HQQ result.`,
      );
  }
}

/** Reads every tensor through `prepared`, quantizing in the executor's order. */
export async function collectWeights(config: DecoderConfig, prepared: PreparedWeights, onProgress?: (done: number, total: number) => void): Promise<ExportWeights> {
  const c = config;
  if (prepared.layer || prepared.activationBits) {
    throw new Error('export: this method computes with layers of its own (quantized activations or mixed row sets), which have no MatMulNBits or AutoAWQ form.');
  }
  const total = 3 + c.numLayers;
  let done = 0;
  const tick = () => onProgress?.(++done, total);
  const required = async (name: string, expected: number): Promise<Float32Array> => {
    const t = await prepared.read(name);
    if (!t) throw new Error(`the model has no tensor "${name}", which a ${c.family} model needs: the weights file does not match config.json.`);
    if (t.length !== expected) throw new Error(`tensor "${name}" has ${t.length} values where config.json implies ${expected}: the weights file does not match config.json.`);
    return t;
  };
  const norm = async (prefix: string): Promise<ExportNorm> => ({
    weight: await required(`${prefix}.weight`, c.hiddenSize),
    bias: c.norm === 'layernorm' ? await required(`${prefix}.bias`, c.hiddenSize) : null,
  });
  const tokens = await required('embed.tokens', c.vocabSize * c.hiddenSize);
  const embedTokensPacked = prepared.quantize('embed.tokens', tokens, c.vocabSize, c.hiddenSize);
  const embedTokens = embedTokensPacked ? dequantize(embedTokensPacked) : tokens;
  const embedPositions = c.positions === 'learned' ? await required('embed.positions', c.maxPositions * c.hiddenSize) : null;
  tick();
  const blocks: ExportBlock[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const attnNorm = await norm(`layers.${i}.attn_norm`);
    const mlpNorm = await norm(`layers.${i}.mlp_norm`);
    const linears: Record<string, ExportLinear> = {};
    for (const l of blockLinears(c)) {
      const [n, k] = linearShape(c, l);
      const name = `layers.${i}.${l}`;
      const w = await required(`${name}.weight`, n * k);
      const hasBias = l === 'attn.o' ? c.attnOutBias : l.startsWith('attn.') ? c.attnBias : c.mlpBias;
      const bias = hasBias ? await required(`${name}.bias`, n) : null;
      const packed = prepared.quantize(name, w, n, k);
      linears[l] = { name, n, k, packed, weight: packed ? null : w, bias };
    }
    blocks.push({ attnNorm, mlpNorm, linears });
    tick();
  }
  const finalNorm = await norm('final_norm');
  tick();
  let head: ExportWeights['head'];
  if (c.tiedEmbeddings && embedTokensPacked) {
    head = { name: 'head', n: c.vocabSize, k: c.hiddenSize, packed: embedTokensPacked, weight: null, bias: null, tied: true };
  } else {
    const weight = c.tiedEmbeddings ? tokens : await required('head.weight', c.vocabSize * c.hiddenSize);
    const packed = prepared.quantize('head', weight, c.vocabSize, c.hiddenSize);
    head = { name: 'head', n: c.vocabSize, k: c.hiddenSize, packed, weight: packed ? null : weight, bias: null, tied: c.tiedEmbeddings };
  }
  tick();
  return { config: c, embedTokens, embedTokensPacked, embedPositions, blocks, finalNorm, head };
}

/** The f32 weights the model computes with, canonical names (packed layers dequantized): for reference forwards in tests. */
export function dequantizedTensors(w: ExportWeights): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  m.set('embed.tokens', w.embedTokens);
  if (w.embedPositions) m.set('embed.positions', w.embedPositions);
  const putNorm = (name: string, n: ExportNorm) => {
    m.set(`${name}.weight`, n.weight);
    if (n.bias) m.set(`${name}.bias`, n.bias);
  };
  const putLinear = (l: ExportLinear) => {
    m.set(`${l.name}.weight`, l.packed ? dequantize(l.packed) : l.weight!);
    if (l.bias) m.set(`${l.name}.bias`, l.bias);
  };
  w.blocks.forEach((b, i) => {
    putNorm(`layers.${i}.attn_norm`, b.attnNorm);
    putNorm(`layers.${i}.mlp_norm`, b.mlpNorm);
    for (const l of Object.values(b.linears)) putLinear(l);
  });
  putNorm('final_norm', w.finalNorm);
  putLinear(w.head);
  return m;
}
