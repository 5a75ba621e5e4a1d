/**
 * GPT-2 (transformers' GPT2LMHeadModel, `model_type: "gpt2"`): LayerNorm,
 * learned positions, fused q/k/v, GELU MLP (tanh approximation), biases
 * everywhere, head tied to the token embeddings.
 *
 * Its linears are Conv1D modules stored [in, out]; they are transposed to the
 * canonical [out, in]. c_attn fuses q, k, v along the output: [D, 3D] is split
 * into three [D, D]. The original `gpt2` checkpoints name tensors without the
 * `transformer.` prefix that fine-tuned ones carry; both are accepted.
 */
import { checkDecoderConfig, ConfigReader, type JsonObject } from '../config';
import type { Activation, DecoderConfig } from '../decoder';
import type { Family, TensorSource } from './family';

/** a checkpoint name with and without the `transformer.` prefix */
const both = (name: string): string[] => [`transformer.${name}`, name];

const conv1d = (name: string): TensorSource => ({ from: both(name), transpose: true });
const fusedQkvWeight = (index: number): TensorSource => ({ from: both('h.{i}.attn.c_attn.weight'), transpose: true, split: { index, parts: 3 } });
const fusedQkvBias = (index: number): TensorSource => ({ from: both('h.{i}.attn.c_attn.bias'), split: { index, parts: 3 } });

const activations: Record<string, Activation> = {
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  gelu_fast: 'gelu_tanh',
  gelu: 'gelu',
};

function fromConfig(json: JsonObject, fileName: string): DecoderConfig {
  const r = new ConfigReader(json, fileName, 'gpt2');
  const hiddenSize = r.int('n_embd', { default: 768 });
  const numHeads = r.int('n_head', { default: 12 });
  if (hiddenSize % numHeads !== 0) {
    throw new Error(`${fileName}: "n_embd" (${hiddenSize}) is not a multiple of "n_head" (${numHeads}).`);
  }
  const activationName = r.string('activation_function', 'gelu_new');
  const activation = activations[activationName];
  if (!activation) {
    throw new Error(
      `${fileName}: "activation_function" is "${activationName}"; qlab runs gpt2 models with ${Object.keys(activations).join(', ')}.`,
    );
  }
  // These switch GPT-2's attention arithmetic away from the plain 1/sqrt(headDim) softmax.
  if (!r.bool('scale_attn_weights', true) || r.bool('scale_attn_by_inverse_layer_idx', false)) {
    throw new Error(`${fileName}: scale_attn_weights false or scale_attn_by_inverse_layer_idx true is not supported yet.`);
  }
  const config: DecoderConfig = {
    family: 'gpt2',
    vocabSize: r.int('vocab_size', { default: 50257 }),
    hiddenSize,
    numLayers: r.int('n_layer', { default: 12 }),
    numHeads,
    numKvHeads: numHeads,
    headDim: hiddenSize / numHeads,
    intermediateSize: r.int('n_inner', { default: 4 * hiddenSize }),
    maxPositions: r.int('n_positions', { default: 1024 }),
    norm: 'layernorm',
    normEps: r.number('layer_norm_epsilon', { default: 1e-5 }),
    positions: 'learned',
    ropeTheta: 0,
    ropeScaling: null,
    mlp: 'gelu',
    activation,
    attnBias: true,
    attnOutBias: true,
    mlpBias: true,
    tiedEmbeddings: r.bool('tie_word_embeddings', true),
    bosTokenId: r.tokenId('bos_token_id') ?? 50256,
    eosTokenId: r.tokenId('eos_token_id') ?? 50256,
  };
  checkDecoderConfig(config, fileName, {
    vocabSize: 'vocab_size',
    hiddenSize: 'n_embd',
    numLayers: 'n_layer',
    numHeads: 'n_head',
    intermediateSize: 'n_inner',
    maxPositions: 'n_positions',
    normEps: 'layer_norm_epsilon',
    bosTokenId: 'bos_token_id',
    eosTokenId: 'eos_token_id',
  });
  return config;
}

export const gpt2: Family = {
  modelType: 'gpt2',
  architectures: ['GPT2LMHeadModel'],
  fromConfig,
  tensors: {
    'embed.tokens': both('wte.weight'),
    'embed.positions': both('wpe.weight'),
    'layers.{i}.attn_norm.weight': both('h.{i}.ln_1.weight'),
    'layers.{i}.attn_norm.bias': both('h.{i}.ln_1.bias'),
    'layers.{i}.attn.q.weight': fusedQkvWeight(0),
    'layers.{i}.attn.k.weight': fusedQkvWeight(1),
    'layers.{i}.attn.v.weight': fusedQkvWeight(2),
    'layers.{i}.attn.q.bias': fusedQkvBias(0),
    'layers.{i}.attn.k.bias': fusedQkvBias(1),
    'layers.{i}.attn.v.bias': fusedQkvBias(2),
    'layers.{i}.attn.o.weight': conv1d('h.{i}.attn.c_proj.weight'),
    'layers.{i}.attn.o.bias': both('h.{i}.attn.c_proj.bias'),
    'layers.{i}.mlp_norm.weight': both('h.{i}.ln_2.weight'),
    'layers.{i}.mlp_norm.bias': both('h.{i}.ln_2.bias'),
    'layers.{i}.mlp.up.weight': conv1d('h.{i}.mlp.c_fc.weight'),
    'layers.{i}.mlp.up.bias': both('h.{i}.mlp.c_fc.bias'),
    'layers.{i}.mlp.down.weight': conv1d('h.{i}.mlp.c_proj.weight'),
    'layers.{i}.mlp.down.bias': both('h.{i}.mlp.c_proj.bias'),
    'final_norm.weight': both('ln_f.weight'),
    'final_norm.bias': both('ln_f.bias'),
    'head.weight': 'lm_head.weight',
  },
  // attn.bias / attn.masked_bias are the causal-mask buffers older checkpoints saved
  ignored: [/^(transformer\.)?h\.\d+\.attn\.(bias|masked_bias)$/, /^lm_head\.weight$/],
};
