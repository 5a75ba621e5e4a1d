/**
 * The qwen2 and phi3 mappings on generated checkpoints with transformers'
 * names: q/k/v biases and the tied head (qwen2), fused qkv_proj under
 * grouped-query attention and gate_up_proj split on load (phi3), longrope
 * frequencies, and the refusals that name what is not supported.
 */
import { describe, expect, it } from 'vitest';
import { readModelConfig } from '../../src/core/families';
import { ropeAttentionFactor, ropeInverseFrequencies, ropeTableFor } from '../../src/core/rope';
import { parseSafetensors } from '../../src/core/safetensors';
import { blobSource, loadModel } from '../../src/lab/load';
import { tinyConfig, tinyModelFiles } from '../helpers/tiny-models';

const source = (files: Record<string, Uint8Array>) => blobSource('tiny', Object.fromEntries(Object.entries(files).map(([k, v]) => [k, new Blob([v as BlobPart])])));
const checkpoint = (files: Record<string, Uint8Array>) => parseSafetensors(files['model.safetensors'], 'model.safetensors');

describe('qwen2', () => {
  it('reads q/k/v biases (none on o or the MLP) and the tied head from config.json', () => {
    const { config } = readModelConfig(tinyConfig('qwen2'));
    expect(config).toMatchObject({ family: 'qwen2', attnBias: true, attnOutBias: false, mlpBias: false, tiedEmbeddings: true, ropeTheta: 1e6, normEps: 1e-6, headDim: 16, numKvHeads: 2 });
  });

  it('loads a checkpoint: biases mapped, no head tensor needed, every value as stored', async () => {
    const files = tinyModelFiles('qwen2');
    const model = await loadModel(source(files));
    const names = model.tensors.map((t) => t.canonical);
    expect(names).toContain('layers.1.attn.k.bias');
    expect(names).not.toContain('layers.0.attn.o.bias');
    expect(names).not.toContain('head.weight');
    const ckpt = checkpoint(files);
    for (const [canonical, source] of [['layers.1.attn.k.bias', 'model.layers.1.self_attn.k_proj.bias'], ['layers.0.attn.q.weight', 'model.layers.0.self_attn.q_proj.weight']]) {
      expect(Array.from(await model.getTensor(canonical))).toEqual(Array.from(ckpt.tensor(source)));
    }
    expect(model.unexpectedTensors).toEqual([]);
  });

  it('refuses a RoPE variant it does not run, naming it and what runs', () => {
    expect(() => readModelConfig({ ...tinyConfig('qwen2'), rope_scaling: { type: 'yarn', factor: 4, original_max_position_embeddings: 32768 } })).toThrow(
      /RoPE scaling "yarn" is not supported yet — qlab runs plain, linear, llama3 and longrope RoPE/,
    );
  });
});

describe('phi3', () => {
  it('splits qkv_proj unevenly under grouped-query attention and gate_up_proj in halves', async () => {
    const files = tinyModelFiles('phi3');
    const model = await loadModel(source(files));
    const c = model.config;
    expect(c).toMatchObject({ family: 'phi3', numHeads: 4, numKvHeads: 2, headDim: 16, attnBias: false, tiedEmbeddings: false, ropeScaling: null });
    const ckpt = checkpoint(files);
    const D = 64;
    const qkv = ckpt.tensor('model.layers.1.self_attn.qkv_proj.weight'); // [(4 + 2·2)·16, 64]
    const rows = (t: Float32Array, from: number, to: number) => Array.from(t.subarray(from * D, to * D));
    expect(Array.from(await model.getTensor('layers.1.attn.q.weight'))).toEqual(rows(qkv, 0, 64));
    expect(Array.from(await model.getTensor('layers.1.attn.k.weight'))).toEqual(rows(qkv, 64, 96));
    expect(Array.from(await model.getTensor('layers.1.attn.v.weight'))).toEqual(rows(qkv, 96, 128));
    const gateUp = ckpt.tensor('model.layers.0.mlp.gate_up_proj.weight'); // [2·96, 64]
    expect(Array.from(await model.getTensor('layers.0.mlp.gate.weight'))).toEqual(rows(gateUp, 0, 96));
    expect(Array.from(await model.getTensor('layers.0.mlp.up.weight'))).toEqual(rows(gateUp, 96, 192));
    expect(model.unexpectedTensors).toEqual([]);
  });

  it('names a qkv_proj of the wrong shape against what config.json implies', async () => {
    const files = tinyModelFiles('phi3');
    const config = JSON.parse(new TextDecoder().decode(files['config.json']));
    files['config.json'] = new TextEncoder().encode(JSON.stringify({ ...config, num_key_value_heads: 4 }));
    await expect(loadModel(source(files))).rejects.toThrow(/"model\.layers\.0\.self_attn\.qkv_proj\.weight" has shape \[128, 64\], but config\.json implies \[192, 64\]/);
  });

  it('longrope: short factors up to the original context, long beyond, cos/sin scaled by the attention factor', () => {
    const json = tinyConfig('phi3', { longrope: true });
    const { config } = readModelConfig(json);
    const s = config.ropeScaling;
    if (s?.type !== 'longrope') throw new Error('expected longrope');
    // transformers: sqrt(1 + ln(max / original) / ln(original))
    expect(s.attentionFactor).toBeCloseTo(Math.sqrt(1 + Math.log(512 / 64) / Math.log(64)), 12);
    expect(ropeAttentionFactor(config)).toBe(s.attentionFactor);
    const rs = json.rope_scaling as { short_factor: number[]; long_factor: number[] };
    const short = ropeInverseFrequencies(config, 64);
    const long = ropeInverseFrequencies(config, 65);
    for (let i = 0; i < 8; i++) {
      const plain = 10000 ** (-(2 * i) / 16);
      expect(short[i]).toBeCloseTo(plain / rs.short_factor[i], 6);
      expect(long[i]).toBeCloseTo(plain / rs.long_factor[i], 6);
    }
    const table = ropeTableFor(config, 64);
    const pos = 5, i = 3;
    expect(table[(pos * 8 + i) * 2]).toBeCloseTo(Math.cos(pos * short[i]) * s.attentionFactor, 6);
    expect(table[(pos * 8 + i) * 2 + 1]).toBeCloseTo(Math.sin(pos * short[i]) * s.attentionFactor, 6);
    // the same model with "su", the name of Phi-3's first 128k configs
    const su = readModelConfig({ ...json, rope_scaling: { ...rs, type: 'su' } }).config.ropeScaling;
    expect(su).toEqual(s);
  });

  it('refuses partial rotary embeddings and a longrope factor list of the wrong length', () => {
    expect(() => readModelConfig({ ...tinyConfig('phi3'), partial_rotary_factor: 0.75 })).toThrow(/"partial_rotary_factor" is 0\.75: RoPE on part of each head .* is not supported yet/);
    const json = tinyConfig('phi3', { longrope: true });
    expect(() => readModelConfig({ ...json, rope_scaling: { type: 'longrope', short_factor: [1, 2], long_factor: [1, 2] } })).toThrow(/"short_factor" must list 8 positive numbers/);
  });
});

describe('the registry', () => {
  it('names an unknown model_type and lists the supported ones', () => {
    expect(() => readModelConfig({ model_type: 'mistral' })).toThrow('not supported yet: mistral (supported: llama, qwen2, phi3, gpt2)');
  });
});
