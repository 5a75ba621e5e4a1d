import { describe, expect, test } from 'vitest';
import { canonicalTensors, type DecoderConfig } from '../../src/core/decoder';
import { applyPlan, familyFor, readModelConfig, resolveTensors, supportedModelTypes } from '../../src/core/families';
import { gpt2 } from '../../src/core/families/gpt2';
import { llama } from '../../src/core/families/llama';
import { gpt2ConfigJson, llamaConfigJson } from './support/configs';

describe('llama config', () => {
  test('maps every HF key', () => {
    const { family, config } = readModelConfig(llamaConfigJson);
    expect(family).toBe(llama);
    expect(config).toEqual<DecoderConfig>({
      family: 'llama',
      vocabSize: 300,
      hiddenSize: 64,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      intermediateSize: 172,
      maxPositions: 256,
      norm: 'rmsnorm',
      normEps: 1e-5,
      positions: 'rope',
      ropeTheta: 10000,
      ropeScaling: null,
      mlp: 'swiglu',
      activation: 'silu',
      attnBias: false,
      attnOutBias: false,
      mlpBias: false,
      tiedEmbeddings: false,
      bosTokenId: 1,
      eosTokenId: 2,
    });
  });

  test('defaults, explicit head_dim, biases, eos lists, llama3 RoPE', () => {
    const { config } = readModelConfig({
      model_type: 'llama',
      hidden_size: 64,
      intermediate_size: 128,
      num_attention_heads: 4,
      num_hidden_layers: 1,
      vocab_size: 100,
      head_dim: 32,
      attention_bias: true,
      mlp_bias: true,
      tie_word_embeddings: true,
      eos_token_id: [5, 6, 7],
      rope_theta: 500000,
      rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    });
    expect(config).toMatchObject({
      numKvHeads: 4,
      headDim: 32,
      maxPositions: 2048,
      normEps: 1e-6,
      attnBias: true,
      attnOutBias: true,
      mlpBias: true,
      tiedEmbeddings: true,
      bosTokenId: null,
      eosTokenId: 5,
      ropeTheta: 500000,
      ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
    });
  });

  test('transformers 5 rope_parameters', () => {
    const { config } = readModelConfig({ ...llamaConfigJson, rope_theta: undefined, rope_parameters: { rope_type: 'default', rope_theta: 1e6 } });
    expect(config.ropeTheta).toBe(1e6);
    expect(config.ropeScaling).toBeNull();
  });

  test('errors name the key and say what was expected', () => {
    const without = (key: string) => Object.fromEntries(Object.entries(llamaConfigJson).filter(([k]) => k !== key));
    expect(() => readModelConfig(without('hidden_size'))).toThrow('config.json: "hidden_size" is missing; a llama config needs it (a positive integer).');
    expect(() => readModelConfig(without('vocab_size'))).toThrow(/"vocab_size" is missing/);
    expect(() => readModelConfig({ ...llamaConfigJson, num_hidden_layers: '2' })).toThrow('config.json: "num_hidden_layers" is "2"; expected a positive integer.');
    expect(() => readModelConfig({ ...llamaConfigJson, rms_norm_eps: 0 })).toThrow(/"rms_norm_eps" is 0; expected a positive number/);
    expect(() => readModelConfig({ ...llamaConfigJson, tie_word_embeddings: 'yes' })).toThrow(/"tie_word_embeddings" is "yes"; expected true or false/);
    expect(() => readModelConfig({ ...llamaConfigJson, num_key_value_heads: 3 })).toThrow(/"num_attention_heads" \(4\) is not a multiple of "num_key_value_heads" \(3\)/);
    expect(() => readModelConfig({ ...llamaConfigJson, hidden_size: 66 })).toThrow(/"hidden_size" \(66\) is not a multiple of "num_attention_heads" \(4\)/);
    expect(() => readModelConfig({ ...llamaConfigJson, hidden_act: 'gelu' })).toThrow(/silu \(SwiGLU\) only/);
    expect(() => readModelConfig({ ...llamaConfigJson, rope_scaling: { rope_type: 'yarn', factor: 4 } })).toThrow(/RoPE scaling "yarn" is not supported yet/);
    expect(() => readModelConfig({ ...llamaConfigJson, bos_token_id: 300 })).toThrow(/"bos_token_id" is 300, outside the vocabulary of 300 tokens/);
  });
});

describe('gpt2 config', () => {
  test('maps every HF key, n_inner null → 4·n_embd, tied by default', () => {
    const { family, config } = readModelConfig(gpt2ConfigJson);
    expect(family).toBe(gpt2);
    expect(config).toEqual<DecoderConfig>({
      family: 'gpt2',
      vocabSize: 50257,
      hiddenSize: 48,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 4,
      headDim: 12,
      intermediateSize: 192,
      maxPositions: 128,
      norm: 'layernorm',
      normEps: 1e-5,
      positions: 'learned',
      ropeTheta: 0,
      ropeScaling: null,
      mlp: 'gelu',
      activation: 'gelu_tanh',
      attnBias: true,
      attnOutBias: true,
      mlpBias: true,
      tiedEmbeddings: true,
      bosTokenId: 50256,
      eosTokenId: 50256,
    });
  });

  test('activation variants, explicit n_inner, untied, errors', () => {
    expect(readModelConfig({ ...gpt2ConfigJson, activation_function: 'gelu' }).config.activation).toBe('gelu');
    expect(readModelConfig({ ...gpt2ConfigJson, activation_function: 'gelu_pytorch_tanh' }).config.activation).toBe('gelu_tanh');
    expect(readModelConfig({ ...gpt2ConfigJson, n_inner: 100, tie_word_embeddings: false }).config).toMatchObject({ intermediateSize: 100, tiedEmbeddings: false });
    expect(() => readModelConfig({ ...gpt2ConfigJson, activation_function: 'relu' })).toThrow(/"activation_function" is "relu"; qlab runs gpt2 models with gelu_new/);
    expect(() => readModelConfig({ ...gpt2ConfigJson, n_head: 5 })).toThrow(/"n_embd" \(48\) is not a multiple of "n_head" \(5\)/);
    expect(() => readModelConfig({ ...gpt2ConfigJson, scale_attn_by_inverse_layer_idx: true })).toThrow(/not supported yet/);
  });
});

describe('registry', () => {
  test('unsupported model_type lists what runs', () => {
    expect(supportedModelTypes()).toEqual(['llama', 'qwen2', 'phi3', 'gpt2']);
    expect(() => readModelConfig({ model_type: 'mamba' })).toThrow('not supported yet: mamba (supported: llama, qwen2, phi3, gpt2)');
    expect(() => familyFor('qwen3')).toThrow('not supported yet: qwen3 (supported: llama, qwen2, phi3, gpt2)');
    expect(() => readModelConfig({ hidden_size: 3 })).toThrow(/config\.json has no "model_type"/);
  });

  test('every canonical tensor of every variant has a table entry, and every entry is used', () => {
    const variants = [
      readModelConfig(llamaConfigJson).config,
      readModelConfig({ ...llamaConfigJson, attention_bias: true, mlp_bias: true, tie_word_embeddings: true }).config,
      readModelConfig(gpt2ConfigJson).config,
      readModelConfig({ ...gpt2ConfigJson, tie_word_embeddings: false }).config,
    ];
    const used = new Map<string, Set<string>>();
    for (const config of variants) {
      const family = familyFor(config.family);
      const keys = used.get(family.modelType) ?? new Set<string>();
      used.set(family.modelType, keys);
      for (const { name } of canonicalTensors(config)) {
        const pattern = name.replace(/^layers\.\d+\./, 'layers.{i}.');
        expect(Object.hasOwn(family.tensors, pattern), `${family.modelType}: ${pattern}`).toBe(true);
        keys.add(pattern);
      }
    }
    for (const family of [llama, gpt2]) expect([...used.get(family.modelType)!].sort()).toEqual(Object.keys(family.tensors).sort());
  });
});

describe('canonical tensors', () => {
  test('llama: 2 + 9 per layer, head when untied; biases when asked', () => {
    const c = readModelConfig(llamaConfigJson).config;
    const names = canonicalTensors(c).map((t) => t.name);
    expect(names.slice(0, 11)).toEqual([
      'embed.tokens',
      'layers.0.attn_norm.weight',
      'layers.0.attn.q.weight',
      'layers.0.attn.k.weight',
      'layers.0.attn.v.weight',
      'layers.0.attn.o.weight',
      'layers.0.mlp_norm.weight',
      'layers.0.mlp.gate.weight',
      'layers.0.mlp.up.weight',
      'layers.0.mlp.down.weight',
      'layers.1.attn_norm.weight',
    ]);
    expect(names.length).toBe(1 + 2 * 9 + 2);
    expect(canonicalTensors(c).find((t) => t.name === 'layers.1.attn.k.weight')!.shape).toEqual([32, 64]);
    const biased = readModelConfig({ ...llamaConfigJson, attention_bias: true, mlp_bias: true, tie_word_embeddings: true }).config;
    expect(canonicalTensors(biased).length).toBe(1 + 2 * 16 + 1);
  });

  test('gpt2: positions, layernorm biases, everything biased, no head when tied', () => {
    const c = readModelConfig(gpt2ConfigJson).config;
    const tensors = canonicalTensors(c);
    expect(tensors.map((t) => t.name).slice(0, 16)).toEqual([
      'embed.tokens',
      'embed.positions',
      'layers.0.attn_norm.weight',
      'layers.0.attn_norm.bias',
      'layers.0.attn.q.weight',
      'layers.0.attn.q.bias',
      'layers.0.attn.k.weight',
      'layers.0.attn.k.bias',
      'layers.0.attn.v.weight',
      'layers.0.attn.v.bias',
      'layers.0.attn.o.weight',
      'layers.0.attn.o.bias',
      'layers.0.mlp_norm.weight',
      'layers.0.mlp_norm.bias',
      'layers.0.mlp.up.weight',
      'layers.0.mlp.up.bias',
    ]);
    expect(tensors.length).toBe(2 + 2 * 16 + 2);
    expect(tensors.at(-1)!.name).toBe('final_norm.bias');
  });
});

/** The checkpoint names and shapes transformers' GPT2LMHeadModel saves (the `gpt2` repo omits the prefix). */
function gpt2Checkpoint(c: DecoderConfig, prefix: string): Map<string, { shape: number[] }> {
  const d = c.hiddenSize;
  const m = new Map<string, { shape: number[] }>([
    [`${prefix}wte.weight`, { shape: [c.vocabSize, d] }],
    [`${prefix}wpe.weight`, { shape: [c.maxPositions, d] }],
    [`${prefix}ln_f.weight`, { shape: [d] }],
    [`${prefix}ln_f.bias`, { shape: [d] }],
  ]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `${prefix}h.${i}.`;
    m.set(`${p}ln_1.weight`, { shape: [d] }).set(`${p}ln_1.bias`, { shape: [d] });
    m.set(`${p}attn.c_attn.weight`, { shape: [d, 3 * d] }).set(`${p}attn.c_attn.bias`, { shape: [3 * d] });
    m.set(`${p}attn.c_proj.weight`, { shape: [d, d] }).set(`${p}attn.c_proj.bias`, { shape: [d] });
    m.set(`${p}attn.bias`, { shape: [1, 1, c.maxPositions, c.maxPositions] }).set(`${p}attn.masked_bias`, { shape: [] });
    m.set(`${p}ln_2.weight`, { shape: [d] }).set(`${p}ln_2.bias`, { shape: [d] });
    m.set(`${p}mlp.c_fc.weight`, { shape: [d, c.intermediateSize] }).set(`${p}mlp.c_fc.bias`, { shape: [c.intermediateSize] });
    m.set(`${p}mlp.c_proj.weight`, { shape: [c.intermediateSize, d] }).set(`${p}mlp.c_proj.bias`, { shape: [d] });
  }
  return m;
}

describe('resolving the gpt2 table', () => {
  const c = readModelConfig(gpt2ConfigJson).config;

  for (const prefix of ['', 'transformer.']) {
    test(`names ${prefix ? 'with' : 'without'} the transformer. prefix; buffers ignored; lm_head of a tied model ignored`, () => {
      const checkpoint = gpt2Checkpoint(c, prefix);
      checkpoint.set('lm_head.weight', { shape: [c.vocabSize, c.hiddenSize] });
      checkpoint.set('score.weight', { shape: [2, c.hiddenSize] });
      const { plans, unexpected } = resolveTensors(gpt2, c, checkpoint, () => 'model.safetensors');
      expect(unexpected).toEqual(['score.weight']);
      const k = plans.find((p) => p.canonical === 'layers.1.attn.k.weight')!;
      expect(k).toMatchObject({ source: `${prefix}h.1.attn.c_attn.weight`, sourceShape: [48, 144], shape: [48, 48], transpose: true, split: { index: 1, parts: 3 } });
      const up = plans.find((p) => p.canonical === 'layers.0.mlp.up.weight')!;
      expect(up).toMatchObject({ sourceShape: [48, 192], shape: [192, 48], transpose: true, split: null });
    });
  }

  test('a missing tensor is named with its file', () => {
    const checkpoint = gpt2Checkpoint(c, '');
    checkpoint.delete('h.1.mlp.c_fc.bias');
    expect(() => resolveTensors(gpt2, c, checkpoint, (n) => (n.startsWith('transformer.') ? 'model.safetensors' : 'x'))).toThrow(
      'model.safetensors has no tensor "transformer.h.1.mlp.c_fc.bias" (nor "h.1.mlp.c_fc.bias"), which a gpt2 model with this config.json needs as layers.1.mlp.up.bias: the checkpoint is incomplete, or config.json belongs to another model.',
    );
  });

  test('an untied head must be present', () => {
    const untied = readModelConfig({ ...gpt2ConfigJson, tie_word_embeddings: false }).config;
    expect(() => resolveTensors(gpt2, untied, gpt2Checkpoint(untied, ''), () => 'model.safetensors')).toThrow(
      /has no tensor "lm_head\.weight".*tie_word_embeddings is false/,
    );
  });

  test('a misshapen tensor is named with both shapes', () => {
    const checkpoint = gpt2Checkpoint(c, '');
    checkpoint.set('h.0.mlp.c_fc.weight', { shape: [192, 48] }); // saved as nn.Linear, not Conv1D
    expect(() => resolveTensors(gpt2, c, checkpoint, () => 'model.safetensors')).toThrow(
      'model.safetensors: tensor "h.0.mlp.c_fc.weight" has shape [192, 48], but config.json implies [48, 192] (for layers.0.mlp.up.weight): config.json and the weights disagree — they belong to different models.',
    );
  });
});

describe('applyPlan', () => {
  // c_attn-like source [in=2, out=3·2]: value = 10·row + column
  const source = Float32Array.from({ length: 12 }, (_, i) => 10 * Math.floor(i / 6) + (i % 6));
  const plan = { canonical: 'x', source: 's', sourceShape: [2, 6] };

  test('transpose + split takes output columns and makes them rows', () => {
    for (let part = 0; part < 3; part++) {
      const out = applyPlan({ ...plan, shape: [2, 2], transpose: true, split: { index: part, parts: 3 } }, source);
      // canonical [out, in]: out[o][i] = source[i][part·2 + o]
      expect(Array.from(out)).toEqual([0 + 2 * part, 10 + 2 * part, 1 + 2 * part, 11 + 2 * part]);
    }
  });

  test('transpose only', () => {
    const out = applyPlan({ ...plan, shape: [6, 2], transpose: true, split: null }, source);
    expect(Array.from(out)).toEqual([0, 10, 1, 11, 2, 12, 3, 13, 4, 14, 5, 15]);
  });

  test('split only (biases) and identity', () => {
    const bias = Float32Array.from([0, 1, 2, 3, 4, 5]);
    expect(Array.from(applyPlan({ canonical: 'b', source: 's', sourceShape: [6], shape: [2], transpose: false, split: { index: 2, parts: 3 } }, bias))).toEqual([4, 5]);
    expect(applyPlan({ canonical: 'b', source: 's', sourceShape: [6], shape: [6], transpose: false, split: null }, bias)).toBe(bias);
  });

  test('wrong element count is an error', () => {
    expect(() => applyPlan({ ...plan, shape: [2, 2], transpose: true, split: null }, new Float32Array(5))).toThrow(/got 5 values, shape \[2, 6\] has 12/);
  });
});
