/**
 * The one internal description of a decoder-only language model.
 *
 * Every architecture family (llama, gpt2, later qwen2, phi3, ...) maps its
 * `config.json` and tensor names onto this description in a mapping table
 * (`src/core/families/`), so the executor and the quantization methods never
 * look at family-specific names.
 *
 * Canonical tensor names and layouts (all linear weights are W[N out, K in],
 * row-major, i.e. y = x · Wᵀ; GPT-2's Conv1D weights are transposed on load):
 *
 *   embed.tokens                 [vocab, hidden]
 *   embed.positions              [maxPositions, hidden]      (learned positions only)
 *   layers.{i}.attn_norm.weight  [hidden]   (.bias for layernorm)
 *   layers.{i}.attn.q.weight     [heads·headDim, hidden]    (.bias when attnBias)
 *   layers.{i}.attn.k.weight     [kvHeads·headDim, hidden]
 *   layers.{i}.attn.v.weight     [kvHeads·headDim, hidden]
 *   layers.{i}.attn.o.weight     [hidden, heads·headDim]    (.bias when attnOutBias)
 *   layers.{i}.mlp_norm.weight   [hidden]   (.bias for layernorm)
 *   layers.{i}.mlp.gate.weight   [intermediate, hidden]     (swiglu only; .bias when mlpBias)
 *   layers.{i}.mlp.up.weight     [intermediate, hidden]     (.bias when mlpBias)
 *   layers.{i}.mlp.down.weight   [hidden, intermediate]     (.bias when mlpBias)
 *   final_norm.weight            [hidden]   (.bias for layernorm)
 *   head.weight                  [vocab, hidden]            (absent when tiedEmbeddings)
 */
export type NormKind = 'rmsnorm' | 'layernorm';
export type PositionKind = 'rope' | 'learned';
export type MlpKind = 'swiglu' | 'gelu';
/**
 * The MLP's nonlinearity: swiglu uses silu(gate)·up; the plain (GPT-2) MLP uses
 * gelu — exact erf ('gelu') or the tanh approximation ('gelu_tanh', GPT-2's gelu_new).
 */
export type Activation = 'silu' | 'gelu' | 'gelu_tanh';

/**
 * RoPE frequency scaling, as HF's `rope_scaling`; null = plain RoPE.
 *  - linear: every inverse frequency divided by `factor` (position interpolation)
 *  - llama3: Llama 3.1's piecewise rescaling of low frequencies
 *  - longrope: Phi-3's per-frequency factors (short ones up to
 *    originalMaxPositions, long ones beyond) and cos/sin scaled by attentionFactor
 */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  | { type: 'longrope'; shortFactor: number[]; longFactor: number[]; originalMaxPositions: number; attentionFactor: number };

export interface DecoderConfig {
  /** architecture family, the `model_type` of config.json */
  family: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositions: number;
  norm: NormKind;
  normEps: number;
  positions: PositionKind;
  /** RoPE base frequency (rope only) */
  ropeTheta: number;
  mlp: MlpKind;
  activation: Activation;
  /** RoPE frequency scaling (rope only); null when none */
  ropeScaling: RopeScaling | null;
  /** q/k/v projections carry a bias */
  attnBias: boolean;
  /** the attention output projection carries a bias */
  attnOutBias: boolean;
  /** up/down (and gate) projections carry a bias */
  mlpBias: boolean;
  tiedEmbeddings: boolean;
  bosTokenId: number | null;
  eosTokenId: number | null;
}

/** The linear layers of one block, by canonical short name. */
export function blockLinears(config: DecoderConfig): string[] {
  const attn = ['attn.q', 'attn.k', 'attn.v', 'attn.o'];
  const mlp = config.mlp === 'swiglu' ? ['mlp.gate', 'mlp.up', 'mlp.down'] : ['mlp.up', 'mlp.down'];
  return [...attn, ...mlp];
}

/** Shape [N out, K in] of a canonical linear weight. */
export function linearShape(config: DecoderConfig, linear: string): [number, number] {
  const d = config.hiddenSize;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  switch (linear) {
    case 'attn.q': return [q, d];
    case 'attn.k': return [kv, d];
    case 'attn.v': return [kv, d];
    case 'attn.o': return [d, q];
    case 'mlp.gate': return [config.intermediateSize, d];
    case 'mlp.up': return [config.intermediateSize, d];
    case 'mlp.down': return [d, config.intermediateSize];
    default: throw new Error(`unknown linear layer "${linear}"`);
  }
}

/** A canonical tensor the executor needs, with its shape. */
export interface CanonicalTensor {
  name: string;
  shape: number[];
}

/**
 * Every canonical tensor a model with this config has, in the order the
 * executor meets them (embeddings, blocks 0..n−1, final norm, head).
 */
export function canonicalTensors(config: DecoderConfig): CanonicalTensor[] {
  const d = config.hiddenSize;
  const out: CanonicalTensor[] = [{ name: 'embed.tokens', shape: [config.vocabSize, d] }];
  if (config.positions === 'learned') out.push({ name: 'embed.positions', shape: [config.maxPositions, d] });
  const norm = (name: string): void => {
    out.push({ name: `${name}.weight`, shape: [d] });
    if (config.norm === 'layernorm') out.push({ name: `${name}.bias`, shape: [d] });
  };
  const linears = blockLinears(config);
  for (let i = 0; i < config.numLayers; i++) {
    norm(`layers.${i}.attn_norm`);
    for (const linear of linears) {
      if (linear === 'mlp.gate' || (linear === 'mlp.up' && config.mlp !== 'swiglu')) norm(`layers.${i}.mlp_norm`);
      const shape = linearShape(config, linear);
      out.push({ name: `layers.${i}.${linear}.weight`, shape });
      const hasBias = linear === 'attn.o' ? config.attnOutBias : linear.startsWith('attn.') ? config.attnBias : config.mlpBias;
      if (hasBias) out.push({ name: `layers.${i}.${linear}.bias`, shape: [shape[0]] });
    }
  }
  norm('final_norm');
  if (!config.tiedEmbeddings) out.push({ name: 'head.weight', shape: [config.vocabSize, d] });
  return out;
}
