/**
 * Llama (transformers' LlamaForCausalLM; also TinyLlama, SmolLM, Llama 2/3 and
 * every checkpoint with `model_type: "llama"`): RMSNorm, RoPE, grouped-query
 * attention, SwiGLU MLP, optional biases, optionally tied head.
 */
import { checkDecoderConfig, ConfigReader, type JsonObject } from '../config';
import type { DecoderConfig, RopeScaling } from '../decoder';
import type { Family } from './family';
import { previewJson } from '../preview';

function ropeScaling(reader: ConfigReader, fileName: string): RopeScaling | null {
  // transformers ≥ 5 folds rope_scaling into rope_parameters
  const raw = reader.object('rope_scaling') ?? reader.object('rope_parameters');
  if (!raw) return null;
  const kind = raw.rope_type ?? raw.type ?? 'default';
  const scaling = new ConfigReader(raw, `${fileName} (rope scaling)`, 'llama');
  switch (kind) {
    case 'default':
      return null;
    case 'linear':
      return { type: 'linear', factor: scaling.number('factor') };
    case 'llama3':
      return {
        type: 'llama3',
        factor: scaling.number('factor'),
        lowFreqFactor: scaling.number('low_freq_factor'),
        highFreqFactor: scaling.number('high_freq_factor'),
        originalMaxPositions: scaling.int('original_max_position_embeddings'),
      };
    default:
      throw new Error(`${fileName}: RoPE scaling ${previewJson(kind)} is not supported yet — qlab runs plain, linear and llama3 RoPE.`);
  }
}

function fromConfig(json: JsonObject, fileName: string): DecoderConfig {
  const r = new ConfigReader(json, fileName, 'llama');
  const hiddenSize = r.int('hidden_size');
  const numHeads = r.int('num_attention_heads');
  if (!r.has('head_dim') && hiddenSize % numHeads !== 0) {
    throw new Error(`${fileName}: "hidden_size" (${hiddenSize}) is not a multiple of "num_attention_heads" (${numHeads}) and "head_dim" is not given.`);
  }
  const activation = r.string('hidden_act', 'silu');
  if (activation !== 'silu' && activation !== 'swish') {
    throw new Error(`${fileName}: "hidden_act" is "${activation}"; qlab runs llama models with silu (SwiGLU) only.`);
  }
  const ropeParameters = r.object('rope_parameters');
  const ropeTheta =
    ropeParameters && ropeParameters.rope_theta !== undefined
      ? new ConfigReader(ropeParameters, `${fileName} (rope_parameters)`, 'llama').number('rope_theta')
      : r.number('rope_theta', { default: 10000 });
  const attentionBias = r.bool('attention_bias', false);
  const config: DecoderConfig = {
    family: 'llama',
    vocabSize: r.int('vocab_size'),
    hiddenSize,
    numLayers: r.int('num_hidden_layers'),
    numHeads,
    numKvHeads: r.int('num_key_value_heads', { default: numHeads }),
    headDim: r.int('head_dim', { default: hiddenSize / numHeads }),
    intermediateSize: r.int('intermediate_size'),
    maxPositions: r.int('max_position_embeddings', { default: 2048 }),
    norm: 'rmsnorm',
    normEps: r.number('rms_norm_eps', { default: 1e-6 }),
    positions: 'rope',
    ropeTheta,
    ropeScaling: ropeScaling(r, fileName),
    mlp: 'swiglu',
    activation: 'silu',
    attnBias: attentionBias,
    attnOutBias: attentionBias, // LlamaAttention gives o_proj the same bias flag as q/k/v
    mlpBias: r.bool('mlp_bias', false),
    tiedEmbeddings: r.bool('tie_word_embeddings', false),
    bosTokenId: r.tokenId('bos_token_id'),
    eosTokenId: r.tokenId('eos_token_id'),
  };
  checkDecoderConfig(config, fileName, {
    vocabSize: 'vocab_size',
    hiddenSize: 'hidden_size',
    numLayers: 'num_hidden_layers',
    numHeads: 'num_attention_heads',
    numKvHeads: 'num_key_value_heads',
    headDim: 'head_dim',
    intermediateSize: 'intermediate_size',
    maxPositions: 'max_position_embeddings',
    normEps: 'rms_norm_eps',
    bosTokenId: 'bos_token_id',
    eosTokenId: 'eos_token_id',
  });
  return config;
}

export const llama: Family = {
  modelType: 'llama',
  architectures: ['LlamaForCausalLM'],
  fromConfig,
  tensors: {
    'embed.tokens': 'model.embed_tokens.weight',
    'layers.{i}.attn_norm.weight': 'model.layers.{i}.input_layernorm.weight',
    'layers.{i}.attn.q.weight': 'model.layers.{i}.self_attn.q_proj.weight',
    'layers.{i}.attn.q.bias': 'model.layers.{i}.self_attn.q_proj.bias',
    'layers.{i}.attn.k.weight': 'model.layers.{i}.self_attn.k_proj.weight',
    'layers.{i}.attn.k.bias': 'model.layers.{i}.self_attn.k_proj.bias',
    'layers.{i}.attn.v.weight': 'model.layers.{i}.self_attn.v_proj.weight',
    'layers.{i}.attn.v.bias': 'model.layers.{i}.self_attn.v_proj.bias',
    'layers.{i}.attn.o.weight': 'model.layers.{i}.self_attn.o_proj.weight',
    'layers.{i}.attn.o.bias': 'model.layers.{i}.self_attn.o_proj.bias',
    'layers.{i}.mlp_norm.weight': 'model.layers.{i}.post_attention_layernorm.weight',
    'layers.{i}.mlp.gate.weight': 'model.layers.{i}.mlp.gate_proj.weight',
    'layers.{i}.mlp.gate.bias': 'model.layers.{i}.mlp.gate_proj.bias',
    'layers.{i}.mlp.up.weight': 'model.layers.{i}.mlp.up_proj.weight',
    'layers.{i}.mlp.up.bias': 'model.layers.{i}.mlp.up_proj.bias',
    'layers.{i}.mlp.down.weight': 'model.layers.{i}.mlp.down_proj.weight',
    'layers.{i}.mlp.down.bias': 'model.layers.{i}.mlp.down_proj.bias',
    'final_norm.weight': 'model.norm.weight',
    'head.weight': 'lm_head.weight',
  },
  ignored: [/^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/, /^lm_head\.weight$/],
};
