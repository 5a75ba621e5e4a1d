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
 *   layers.{i}.mlp.gate.weight   [intermediate, hidden]     (swiglu only)
 *   layers.{i}.mlp.up.weight     [intermediate, hidden]     (.bias when mlpBias)
 *   layers.{i}.mlp.down.weight   [hidden, intermediate]     (.bias when mlpBias)
 *   final_norm.weight            [hidden]   (.bias for layernorm)
 *   head.weight                  [vocab, hidden]            (absent when tiedEmbeddings)
 */
export type NormKind = 'rmsnorm' | 'layernorm';
export type PositionKind = 'rope' | 'learned';
export type MlpKind = 'swiglu' | 'gelu';

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
  /** q/k/v projections carry a bias */
  attnBias: boolean;
  /** the attention output projection carries a bias */
  attnOutBias: boolean;
  /** up/down projections carry a bias */
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
