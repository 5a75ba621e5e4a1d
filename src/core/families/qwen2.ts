/**
 * Qwen2 and Qwen2.5 (transformers' Qwen2ForCausalLM, `model_type: "qwen2"`):
 * the llama block with biases on q, k and v (never on o or the MLP), RMSNorm,
 * RoPE with a large base (10⁶), grouped-query attention, SwiGLU; the small
 * models tie the head to the embeddings. Tensor names are llama's.
 */
import { checkDecoderConfig, ConfigReader, type JsonObject } from '../config';
import type { DecoderConfig } from '../decoder';
import type { Family } from './family';
import { llama } from './llama';
import { readRopeScaling, readRopeTheta } from './rope-scaling';

function fromConfig(json: JsonObject, fileName: string): DecoderConfig {
  const r = new ConfigReader(json, fileName, 'qwen2');
  const hiddenSize = r.int('hidden_size');
  const numHeads = r.int('num_attention_heads');
  if (!r.has('head_dim') && hiddenSize % numHeads !== 0) {
    throw new Error(`${fileName}: "hidden_size" (${hiddenSize}) is not a multiple of "num_attention_heads" (${numHeads}) and "head_dim" is not given.`);
  }
  const activation = r.string('hidden_act', 'silu');
  if (activation !== 'silu' && activation !== 'swish') {
    throw new Error(`${fileName}: "hidden_act" is "${activation}"; qlab runs qwen2 models with silu (SwiGLU) only.`);
  }
  const headDim = r.int('head_dim', { default: hiddenSize / numHeads });
  const maxPositions = r.int('max_position_embeddings', { default: 32768 });
  const config: DecoderConfig = {
    family: 'qwen2',
    vocabSize: r.int('vocab_size'),
    hiddenSize,
    numLayers: r.int('num_hidden_layers'),
    numHeads,
    numKvHeads: r.int('num_key_value_heads', { default: numHeads }),
    headDim,
    intermediateSize: r.int('intermediate_size'),
    maxPositions,
    norm: 'rmsnorm',
    normEps: r.number('rms_norm_eps', { default: 1e-6 }),
    positions: 'rope',
    ropeTheta: readRopeTheta(r, 10000),
    ropeScaling: readRopeScaling(r, { fileName, family: 'qwen2', headDim, maxPositions, originalMaxPositions: null }),
    mlp: 'swiglu',
    activation: 'silu',
    // Qwen2Attention: bias on q/k/v, none on o_proj; Qwen2MLP: no biases
    attnBias: true,
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

export const qwen2: Family = {
  modelType: 'qwen2',
  architectures: ['Qwen2ForCausalLM'],
  fromConfig,
  tensors: llama.tensors,
  ignored: llama.ignored,
};
