/**
 * ONNX export of a (quantized) decoder: one graph
 *
 *   input_ids int64 [batch, sequence]  →  logits float [batch, sequence, vocab]
 *
 * computing exactly src/core/reference.ts's decoderForwardRef. Without a KV
 * cache (the default) every call runs the whole sequence from position 0;
 * with `kvCache` the graph also takes past keys/values and returns the
 * present ones (OnnxExportOptions.kvCache). Quantized linears are `com.microsoft` MatMulNBits nodes
 * (layout: matmul-nbits.ts); everything else is standard ONNX, opset 17:
 *
 *   embeddings   Gather (+ Gather of learned positions, Add)
 *   RMSNorm      x · 1/√(mean(x²) + ε) · w   (Mul, ReduceMean, Add, Sqrt, Reciprocal)
 *   LayerNorm    LayerNormalization
 *   RoPE         rotate-half with cos/sin of position · inv_freq computed in
 *                the graph (Range, Cast, Mul, Concat, Cos, Sin, Slice, Neg)
 *   attention    MatMul, Mul by 1/√headDim, Where with a causal mask
 *                (Greater of two Range views), Softmax, MatMul; grouped-query
 *                heads by broadcasting [B, kvHeads, group, S, hd] against
 *                [B, kvHeads, 1, S, hd]
 *   MLP          SiLU as x·Sigmoid(x); GELU (tanh or erf) from Tanh / Erf
 *   f32 linears  MatMul with Wᵀ stored [K, N]; a tied f32 head is MatMul with
 *                Transpose of the token table (stored once)
 *
 * A packed token table (embeddings quantized) is gathered from its
 * dequantized f32 copy (the same values the lab's gather kernel produces);
 * a tied head then reads the packed table through MatMulNBits.
 *
 * Written with the protobuf definition of the npm package `onnx-proto`. All
 * tensors are stored inside the model file, so the model must stay under
 * protobuf's 2 GiB.
 */
import * as onnxProto from 'onnx-proto';
import type { DecoderConfig } from '../core/decoder';
import { ropeInverseFrequencies } from '../core/rope';
import type { PackedLinear } from '../core/quant/format';
import { toMatMulNBits } from './matmul-nbits';
import type { ExportLinear, ExportNorm, ExportWeights } from './weights';

// a CommonJS module: its namespace sits on the default export under Node's ESM loader
const onnx = (onnxProto.onnx ?? (onnxProto as unknown as { default: typeof onnxProto }).default.onnx) as typeof onnxProto.onnx;
type INodeProto = import('onnx-proto').onnx.INodeProto;
type ITensorProto = import('onnx-proto').onnx.ITensorProto;
type IAttributeProto = import('onnx-proto').onnx.IAttributeProto;

export const ONNX_OPSET = 17;
export const MS_DOMAIN = 'com.microsoft';
/** protobuf's limit on one message */
const MAX_MODEL_BYTES = 2 ** 31 - 1;

const FLOAT = 1;
const UINT8 = 2;
const INT64 = 7;

type AttrValue = number | number[] | string | { float: number };

function attribute(name: string, value: AttrValue): IAttributeProto {
  if (typeof value === 'string') return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: value };
  if (typeof value === 'object') return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: value.float };
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
}

/** Raw little-endian bytes of f32 values (a copy; Float32Array is host-endian). */
function floatBytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
  return out;
}

/** Builds the node list and initializers of one graph, with unique names. */
class GraphBuilder {
  readonly nodes: INodeProto[] = [];
  readonly initializers: ITensorProto[] = [];
  private readonly used = new Set<string>();
  private counter = 0;
  private readonly scalars = new Map<string, string>();
  bytes = 0;

  unique(hint: string): string {
    let name = hint;
    while (this.used.has(name)) name = `${hint}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  /** One node; returns its output names (one unless `outputs` says more). */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, options: { domain?: string; name?: string } = {}): string {
    const name = this.unique(options.name ?? opType);
    const output = this.unique(`${name}_out`);
    this.nodes.push({
      opType,
      domain: options.domain ?? '',
      name,
      input: inputs,
      output: [output],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return output;
  }

  floats(hint: string, values: Float32Array, dims: number[]): string {
    const name = this.unique(hint);
    this.initializers.push({ name, dataType: FLOAT, dims, rawData: floatBytes(values) });
    this.bytes += values.length * 4;
    return name;
  }

  uint8(hint: string, values: Uint8Array, dims: number[]): string {
    const name = this.unique(hint);
    this.initializers.push({ name, dataType: UINT8, dims, rawData: values });
    this.bytes += values.length;
    return name;
  }

  int64(hint: string, values: number[], dims: number[] = [values.length]): string {
    const name = this.unique(hint);
    const data = new BigInt64Array(values.map((v) => BigInt(v)));
    const raw = new Uint8Array(data.length * 8);
    const view = new DataView(raw.buffer);
    data.forEach((v, i) => view.setBigInt64(i * 8, v, true));
    this.initializers.push({ name, dataType: INT64, dims, rawData: raw });
    return name;
  }

  /** A float scalar constant, shared by value. */
  scalar(value: number): string {
    const key = `f${value}`;
    let name = this.scalars.get(key);
    if (!name) {
      name = this.floats(`const_${this.scalars.size}`, new Float32Array([value]), []);
      this.scalars.set(key, name);
    }
    return name;
  }

  /** An int64 vector constant, shared by value. */
  ints(values: number[]): string {
    const key = `i${values.join(',')}`;
    let name = this.scalars.get(key);
    if (!name) {
      name = this.int64(`ints_${this.scalars.size}`, values);
      this.scalars.set(key, name);
    }
    return name;
  }

  /** An int64 scalar constant (rank 0), shared by value. */
  intScalar(value: number): string {
    const key = `s${value}`;
    let name = this.scalars.get(key);
    if (!name) {
      name = this.int64(`int_${this.scalars.size}`, [value], []);
      this.scalars.set(key, name);
    }
    return name;
  }
}

/** W[n, k] row-major → Wᵀ [k, n]. */
function transpose(w: Float32Array, n: number, k: number): Float32Array {
  const t = new Float32Array(n * k);
  for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) t[c * n + r] = w[r * k + c];
  return t;
}

function matMulNBits(g: GraphBuilder, x: string, packed: PackedLinear, name: string): string {
  const w = toMatMulNBits(packed, name);
  const inputs = [
    x,
    g.uint8(`${name}.qweight`, w.b, [w.n, w.blocksPerRow, (w.blockSize * w.bits) / 8]),
    g.floats(`${name}.scales`, w.scales, [w.n, w.blocksPerRow]),
  ];
  if (w.zeroPoints) inputs.push(g.uint8(`${name}.zero_points`, w.zeroPoints, [w.n, w.zeroPoints.length / w.n]));
  return g.op('MatMulNBits', inputs, { K: w.k, N: w.n, bits: w.bits, block_size: w.blockSize }, { domain: MS_DOMAIN, name });
}

function linear(g: GraphBuilder, x: string, l: ExportLinear): string {
  let y: string;
  if (l.packed) {
    y = matMulNBits(g, x, l.packed, l.name);
  } else {
    y = g.op('MatMul', [x, g.floats(`${l.name}.weight_t`, transpose(l.weight!, l.n, l.k), [l.k, l.n])], {}, { name: l.name });
  }
  return l.bias ? g.op('Add', [y, g.floats(`${l.name}.bias`, l.bias, [l.n])]) : y;
}

function norm(g: GraphBuilder, x: string, n: ExportNorm, c: DecoderConfig, name: string): string {
  const weight = g.floats(`${name}.weight`, n.weight, [c.hiddenSize]);
  if (c.norm === 'layernorm') {
    return g.op('LayerNormalization', [x, weight, g.floats(`${name}.bias`, n.bias!, [c.hiddenSize])], { axis: -1, epsilon: { float: c.normEps } }, { name });
  }
  const meanSquare = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 });
  const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSquare, g.scalar(c.normEps)])])]);
  return g.op('Mul', [g.op('Mul', [x, inv]), weight], {}, { name });
}

/** Rotate-half RoPE on x [B, S, heads, hd] with cos/sin [S, 1, hd]. */
function rope(g: GraphBuilder, x: string, cos: string, sin: string, headDim: number): string {
  const half = headDim / 2;
  const axis = g.ints([-1]);
  const first = g.op('Slice', [x, g.ints([0]), g.ints([half]), axis]);
  const second = g.op('Slice', [x, g.ints([half]), g.ints([headDim]), axis]);
  const rotated = g.op('Concat', [g.op('Neg', [second]), first], { axis: -1 });
  return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rotated, sin])]);
}

function activation(g: GraphBuilder, x: string, c: DecoderConfig): string {
  switch (c.activation) {
    case 'silu':
      return g.op('Mul', [x, g.op('Sigmoid', [x])]);
    case 'gelu': // 0.5·x·(1 + erf(x/√2))
      return g.op('Mul', [g.op('Mul', [x, g.scalar(0.5)]), g.op('Add', [g.op('Erf', [g.op('Div', [x, g.scalar(Math.SQRT2)])]), g.scalar(1)])]);
    case 'gelu_tanh': { // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
      const cube = g.op('Mul', [g.op('Mul', [x, x]), x]);
      const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [cube, g.scalar(0.044715)])]), g.scalar(Math.sqrt(2 / Math.PI))]);
      return g.op('Mul', [g.op('Mul', [x, g.scalar(0.5)]), g.op('Add', [g.op('Tanh', [inner]), g.scalar(1)])]);
    }
  }
}

export interface OnnxExportOptions {
  /**
   * Past keys and values as inputs `past_key_values.{i}.key|value` and outputs
   * `present.{i}.key|value`, float [batch, kvHeads, length, headDim] (keys
   * after RoPE), for generation one token at a time; positions continue from
   * the past length. Pass empty pasts (length 0) for a first call.
   */
  kvCache?: boolean;
  /** stored in the model's metadata_props (method, scheme, source model) */
  metadata?: Record<string, string>;
  /** the graph's name */
  name?: string;
}

/** The ONNX model (serialized ModelProto) of a collected, possibly quantized, decoder. */
export function exportOnnx(weights: ExportWeights, options: OnnxExportOptions = {}): Uint8Array {
  const c = weights.config;
  const g = new GraphBuilder();
  g.unique('input_ids');
  g.unique('logits');
  const H = c.numHeads;
  const Hkv = c.numKvHeads;
  const hd = c.headDim;
  const group = H / Hkv;

  const kvCache = options.kvCache ?? false;
  const pastKey = (i: number) => `past_key_values.${i}.key`;
  const pastValue = (i: number) => `past_key_values.${i}.value`;
  if (kvCache) for (let i = 0; i < c.numLayers; i++) for (const n of [pastKey(i), pastValue(i), `present.${i}.key`, `present.${i}.value`]) g.unique(n);

  // positions P … P+S−1 (P = past length, 0 without a cache) and the causal
  // mask over all P+S keys: key j is masked for the query at position p when j > p
  const seqLen = g.op('Gather', [g.op('Shape', ['input_ids']), g.intScalar(1)], { axis: 0 });
  const pastLen = kvCache ? g.op('Gather', [g.op('Shape', [pastKey(0)]), g.intScalar(2)], { axis: 0 }) : g.intScalar(0);
  const totalLen = kvCache ? g.op('Add', [pastLen, seqLen]) : seqLen;
  const positions = g.op('Range', [pastLen, totalLen, g.intScalar(1)]);
  const keyPositions = kvCache ? g.op('Range', [g.intScalar(0), totalLen, g.intScalar(1)]) : positions;
  const future = g.op('Greater', [g.op('Unsqueeze', [keyPositions, g.ints([0])]), g.op('Unsqueeze', [positions, g.ints([1])])]);

  let x = g.op('Gather', [g.floats('embed.tokens', weights.embedTokens, [c.vocabSize, c.hiddenSize]), 'input_ids'], { axis: 0 }, { name: 'embed_tokens' });
  let cos = '';
  let sin = '';
  if (c.positions === 'learned') {
    const table = g.floats('embed.positions', weights.embedPositions!, [c.maxPositions, c.hiddenSize]);
    x = g.op('Add', [x, g.op('Gather', [table, positions], { axis: 0 }, { name: 'embed_positions' })]);
  } else {
    // angle = fp32(position · inv_freq), as transformers computes it; [S, 1, hd] with both halves equal
    const invFreq = g.floats('rope.inv_freq', ropeInverseFrequencies(c), [1, hd / 2]);
    const angles = g.op('Mul', [g.op('Unsqueeze', [g.op('Cast', [positions], { to: FLOAT }), g.ints([1])]), invFreq]);
    const full = g.op('Unsqueeze', [g.op('Concat', [angles, angles], { axis: -1 }), g.ints([1])]);
    cos = g.op('Cos', [full], {}, { name: 'rope_cos' });
    sin = g.op('Sin', [full], {}, { name: 'rope_sin' });
  }
  const negInf = g.scalar(-Infinity);
  const scale = g.scalar(1 / Math.sqrt(hd));

  weights.blocks.forEach((block, i) => {
    const p = `layers.${i}`;
    const xn = norm(g, x, block.attnNorm, c, `${p}.attn_norm`);
    let q = g.op('Reshape', [linear(g, xn, block.linears['attn.q']), g.ints([0, 0, H, hd])]);
    let k = g.op('Reshape', [linear(g, xn, block.linears['attn.k']), g.ints([0, 0, Hkv, hd])]);
    const v = g.op('Reshape', [linear(g, xn, block.linears['attn.v']), g.ints([0, 0, Hkv, hd])]);
    if (c.positions === 'rope') {
      q = rope(g, q, cos, sin, hd);
      k = rope(g, k, cos, sin, hd);
    }
    // keys and values [B, Hkv, T, hd] (T = P + S; the cache's layout), the past ones first
    let keys = g.op('Transpose', [k], { perm: [0, 2, 1, 3] });
    let values = g.op('Transpose', [v], { perm: [0, 2, 1, 3] });
    if (kvCache) {
      keys = g.op('Concat', [pastKey(i), keys], { axis: 2 });
      values = g.op('Concat', [pastValue(i), values], { axis: 2 });
      g.nodes.push({ opType: 'Identity', domain: '', name: `present.${i}.key_output`, input: [keys], output: [`present.${i}.key`], attribute: [] });
      g.nodes.push({ opType: 'Identity', domain: '', name: `present.${i}.value_output`, input: [values], output: [`present.${i}.value`], attribute: [] });
    }
    // q [B, Hkv, group, S, hd]; kᵀ [B, Hkv, 1, hd, T]; v [B, Hkv, 1, T, hd]
    const qh = g.op('Transpose', [g.op('Reshape', [q, g.ints([0, 0, Hkv, group, hd])])], { perm: [0, 2, 3, 1, 4] });
    const kt = g.op('Transpose', [g.op('Unsqueeze', [keys, g.ints([2])])], { perm: [0, 1, 2, 4, 3] });
    const vh = g.op('Unsqueeze', [values, g.ints([2])]);
    const scores = g.op('Mul', [g.op('MatMul', [qh, kt]), scale]);
    const probs = g.op('Softmax', [g.op('Where', [future, negInf, scores])], { axis: -1 });
    const context = g.op('Transpose', [g.op('MatMul', [probs, vh])], { perm: [0, 3, 1, 2, 4] });
    const attn = linear(g, g.op('Reshape', [context, g.ints([0, 0, H * hd])]), block.linears['attn.o']);
    x = g.op('Add', [x, attn], {}, { name: `${p}.attn_residual` });
    const xm = norm(g, x, block.mlpNorm, c, `${p}.mlp_norm`);
    let h: string;
    if (c.mlp === 'swiglu') {
      h = g.op('Mul', [activation(g, linear(g, xm, block.linears['mlp.gate']), c), linear(g, xm, block.linears['mlp.up'])]);
    } else {
      h = activation(g, linear(g, xm, block.linears['mlp.up']), c);
    }
    x = g.op('Add', [x, linear(g, h, block.linears['mlp.down'])], {}, { name: `${p}.mlp_residual` });
  });

  const xf = norm(g, x, weights.finalNorm, c, 'final_norm');
  const head = weights.head;
  let logits: string;
  if (head.packed) {
    logits = matMulNBits(g, xf, head.packed, head.tied ? 'head (tied to embed.tokens)' : 'head');
  } else if (head.tied) {
    logits = g.op('MatMul', [xf, g.op('Transpose', ['embed.tokens'], { perm: [1, 0] })], {}, { name: 'head' });
  } else {
    logits = linear(g, xf, head);
  }
  // the last node writes the graph output
  g.nodes.push({ opType: 'Identity', domain: '', name: 'logits_output', input: [logits], output: ['logits'], attribute: [] });

  if (g.bytes > MAX_MODEL_BYTES - 64 * 2 ** 20) {
    throw new Error(
      `the ONNX model would hold ${(g.bytes / 2 ** 30).toFixed(2)} GiB of tensors, more than the 2 GiB a single ONNX file can hold: ` +
        `quantize the embedding table and head too, or export a smaller model.`,
    );
  }
  const dim = (d: number | string) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d });
  const cacheNames = kvCache
    ? weights.blocks.map((_, i) => [{ key: pastKey(i), value: pastValue(i) }, { key: `present.${i}.key`, value: `present.${i}.value` }] as const)
    : [];
  const cacheValue = (name: string, length: string) => ({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: [dim('batch'), dim(Hkv), dim(length), dim(hd)] } } } });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'qlab',
    producerVersion: '0.1.0',
    opsetImport: [{ domain: '', version: ONNX_OPSET }, { domain: MS_DOMAIN, version: 1 }],
    metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: options.name ?? `qlab ${c.family}`,
      input: [
        { name: 'input_ids', type: { tensorType: { elemType: INT64, shape: { dim: [dim('batch'), dim('sequence')] } } } },
        ...cacheNames.flatMap(([past]) => [past.key, past.value]).map((name) => cacheValue(name, 'past_sequence')),
      ],
      output: [
        { name: 'logits', type: { tensorType: { elemType: FLOAT, shape: { dim: [dim('batch'), dim('sequence'), dim(c.vocabSize)] } } } },
        ...cacheNames.flatMap(([, present]) => [present.key, present.value]).map((name) => cacheValue(name, 'total_sequence')),
      ],
      initializer: g.initializers,
      node: g.nodes,
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
