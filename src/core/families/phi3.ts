/**
 * Phi-3 and Phi-3.5 (transformers' Phi3ForCausalLM, `model_type: "phi3"`):
 * the llama block with two fused projections, split on load —
 *   qkv_proj [(heads + 2·kvHeads)·headDim, hidden] → q, k, v (rows in that order)
 *   gate_up_proj [2·intermediate, hidden]          → gate, up (gate first)
 * — no biases, RMSNorm, RoPE as rope_scaling says (plain for the 4k models,
 * longrope for the 128k ones).
 */
import { checkDecoderConfig, ConfigReader, type JsonObject } from '../config';
import type { DecoderConfig } from '../decoder';
import type { Family, TensorSource } from './family';
import { readRopeScaling, readRopeTheta } from './rope-scaling';

const qkvRows = (c: DecoderConfig): number[] => [c.numHeads * c.headDim, c.numKvHeads * c.headDim, c.numKvHeads * c.headDim];
const qkv = (index: number): TensorSource => ({ from: ['model.layers.{i}.self_attn.qkv_proj.weight'], split: { index, parts: 3, rows: qkvRows } });
const gateUp = (index: number): TensorSource => ({ from: ['model.layers.{i}.mlp.gate_up_proj.weight'], split: { index, parts: 2 } });

function fromConfig(json: JsonObject, fileName: string): DecoderConfig {
  const r = new ConfigReader(json, fileName, 'phi3');
  const hiddenSize = r.int('hidden_size');
  const numHeads = r.int('num_attention_heads');
  if (hiddenSize % numHeads !== 0 && !r.has('head_dim')) {
    throw new Error(`${fileName}: "hidden_size" (${hiddenSize}) is not a multiple of "num_attention_heads" (${numHeads}).`);
  }
  const activation = r.string('hidden_act', 'silu');
  if (activation !== 'silu' && activation !== 'swish') {
    throw new Error(`${fileName}: "hidden_act" is "${activation}"; qlab runs phi3 models with silu (SwiGLU) only.`);
  }
  const partialRotary = r.number('partial_rotary_factor', { default: 1 });
  if (partialRotary !== 1) {
    throw new Error(
      `${fileName}: "partial_rotary_factor" is ${partialRotary}: RoPE on part of each head (Phi-4-mini) is not supported yet — qlab rotates whole heads.`,
    );
  }
  if (r.bool('attention_bias', false)) throw new Error(`${fileName}: "attention_bias" is true; Phi-3 checkpoints have no attention biases and qlab does not map them.`);
  const headDim = r.int('head_dim', { default: hiddenSize / numHeads });
  const maxPositions = r.int('max_position_embeddings', { default: 4096 });
  const originalMaxPositions = r.has('original_max_position_embeddings') ? r.int('original_max_position_embeddings') : null;
  const config: DecoderConfig = {
    family: 'phi3',
    vocabSize: r.int('vocab_size'),
    hiddenSize,
    numLayers: r.int('num_hidden_layers'),
    numHeads,
    numKvHeads: r.int('num_key_value_heads', { default: numHeads }),
    headDim,
    intermediateSize: r.int('intermediate_size'),
    maxPositions,
    norm: 'rmsnorm',
    normEps: r.number('rms_norm_eps', { default: 1e-5 }),
    positions: 'rope',
    ropeTheta: readRopeTheta(r, 10000),
    ropeScaling: readRopeScaling(r, { fileName, family: 'phi3', headDim, maxPositions, originalMaxPositions }),
    mlp: 'swiglu',
    activation: 'silu',
    attnBias: false,
    attnOutBias: false,
    mlpBias: false,
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

export const phi3: Family = {
  modelType: 'phi3',
  architectures: ['Phi3ForCausalLM'],
  fromConfig,
  tensors: {
    'embed.tokens': 'model.embed_tokens.weight',
    'layers.{i}.attn_norm.weight': 'model.layers.{i}.input_layernorm.weight',
    'layers.{i}.attn.q.weight': qkv(0),
    'layers.{i}.attn.k.weight': qkv(1),
    'layers.{i}.attn.v.weight': qkv(2),
    'layers.{i}.attn.o.weight': 'model.layers.{i}.self_attn.o_proj.weight',
    'layers.{i}.mlp_norm.weight': 'model.layers.{i}.post_attention_layernorm.weight',
    'layers.{i}.mlp.gate.weight': gateUp(0),
    'layers.{i}.mlp.up.weight': gateUp(1),
    'layers.{i}.mlp.down.weight': 'model.layers.{i}.mlp.down_proj.weight',
    'final_norm.weight': 'model.norm.weight',
    'head.weight': 'lm_head.weight',
  },
  ignored: [/^model\.layers\.\d+\.self_attn\.rotary_emb\.(inv_freq|short_factor|long_factor)$/, /^lm_head\.weight$/],
};
