/**
 * The memory plan on real configs (Qwen2.5-0.5B's and Phi-3-mini's shapes,
 * random nothing: only config.json is read) against adapter limits and a
 * budget: the byte counts follow from the shapes, and the summary says what
 * fits and what does not. The GPU test (tests/gpu/hub-families.test.ts)
 * checks the estimate against a real run's ledger.
 */
import { describe, expect, it } from 'vitest';
import { canonicalTensors } from '../../src/core/decoder';
import type { ExperimentSpec } from '../../src/core/experiment';
import { readModelConfig } from '../../src/core/families';
import { planExperiment, planMemory } from '../../src/lab/memory-plan';

/** Qwen2.5-0.5B's config.json (the keys that matter). */
const qwen05 = {
  architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14,
  num_key_value_heads: 2, max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000.0, tie_word_embeddings: true, vocab_size: 151936,
  hidden_act: 'silu', bos_token_id: 151643, eos_token_id: 151643, use_sliding_window: false, sliding_window: 32768, max_window_layers: 21,
};
/** Phi-3-mini-4k-instruct's config.json (the keys that matter). */
const phi3mini = {
  architectures: ['Phi3ForCausalLM'], model_type: 'phi3', hidden_size: 3072, intermediate_size: 8192, num_hidden_layers: 32, num_attention_heads: 32,
  num_key_value_heads: 32, max_position_embeddings: 4096, original_max_position_embeddings: 4096, rms_norm_eps: 1e-5, rope_theta: 10000.0, rope_scaling: null,
  tie_word_embeddings: false, vocab_size: 32064, hidden_act: 'silu', bos_token_id: 1, eos_token_id: 32000, sliding_window: 2047,
};

const evalSpec = { protocol: 'gptq' as const, windowLength: 512, windows: 4 };
const f32: Pick<ExperimentSpec, 'method' | 'eval'> = { method: { id: 'none' }, eval: evalSpec };
const w4: Pick<ExperimentSpec, 'method' | 'eval'> = { method: { id: 'rtn', bits: 4, groupSize: 128, symmetric: false }, eval: evalSpec };
const w4all: Pick<ExperimentSpec, 'method' | 'eval'> = { method: { id: 'rtn', bits: 4, groupSize: 128, symmetric: false, quantizeHead: true, quantizeEmbeddings: true }, eval: evalSpec };
const GiB = 2 ** 30;

describe('memory plan', () => {
  const { config } = readModelConfig(qwen05);
  const params = canonicalTensors(config).reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);

  it('f32 weights are 4 bytes a parameter (plus the RoPE table; the tied head multiplies with the embedding table); W4 g128 packs the block linears to 4.25 bits + zero points', () => {
    const limits = { maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 2 * GiB };
    const a = planExperiment(config, f32, limits);
    expect(params).toBe(494_032_768); // Qwen2.5-0.5B: 0.49 B parameters, the head tied
    const embedding = config.vocabSize * config.hiddenSize;
    // the tied head shares the table, f32 or packed: it is counted once
    expect(a.weights).toBe(params * 4 + 512 * 64 * 4);
    expect(a.klReference).toBe(0);
    const b = planExperiment(config, w4, limits, { kl: false });
    const linears = params - embedding - (2 * config.numLayers + 1) * config.hiddenSize - config.numLayers * (896 + 2 * 128);
    // codes 4 bits, one f32 scale and one u8 zero point per 128 weights
    const packed = (linears * (4 + (32 + 8) / 128)) / 8;
    expect(b.weights - embedding * 4).toBeGreaterThan(packed);
    expect(b.weights - embedding * 4).toBeLessThan(packed * 1.02 + 2e6);
    // KV cache: layers × 2 × window × kvHeads·headDim × 4 bytes
    expect(a.kv).toBe(24 * 2 * 512 * 128 * 4);
  });

  it('says that W4 g128 fits where f32 does not, against a budget', () => {
    const plan = planMemory(config, [f32, w4], { maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 2 * GiB, budgetBytes: 1.5e9 });
    expect(plan.allFit).toBe(false);
    expect(plan.experiments.map((e) => e.fits)).toEqual([false, true]);
    expect(plan.summary).toMatch(/^RTN W4 g128 \(8\d\d\.\d MB\) fits; f32 does not: 2\.\d\d GB is over the budget of 1\.50 GB\.$/);
  });

  it("with a browser's default limits the f32 embedding table is one buffer too many; quantizing it too fits", () => {
    const limits = { maxBufferSize: 256 * 2 ** 20, maxStorageBufferBindingSize: 128 * 2 ** 20 };
    const plan = planMemory(config, [f32, w4, w4all], limits);
    expect(plan.experiments.map((e) => e.fits)).toEqual([false, false, true]);
    expect(plan.experiments[0].problems[0]).toBe("its largest buffer (embed.tokens, 544.5 MB) is over the adapter's maxBufferSize of 268.4 MB");
    expect(plan.summary).toMatch(/^RTN W4 g128 \+head \+embed \(\d+\.\d MB\) fits; f32 does not: .*; RTN W4 g128 does not: .*embed\.tokens/);
  });

  it('a small model compares with its f32 copy by default, and counts it', () => {
    const { config: phi } = readModelConfig(phi3mini);
    const small = readModelConfig({ ...qwen05, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 4096, bos_token_id: 0, eos_token_id: 0 }).config;
    const limits = { maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 2 * GiB };
    const withKl = planExperiment(small, w4, limits);
    expect(withKl.klReference).toBeGreaterThan(planExperiment(small, f32, limits).weights);
    expect(withKl.total).toBe(withKl.run + withKl.klReference);
    // 3.8 B parameters: no f32 reference by default, and it is refused on a 8 GB budget in f32 only
    const plan = planMemory(phi, [f32, w4], { ...limits, budgetBytes: 8e9 });
    expect(plan.experiments[1].klReference).toBe(0);
    expect(plan.experiments.map((e) => e.fits)).toEqual([false, true]);
  });

  it('nothing fits: says what to change', () => {
    const plan = planMemory(config, [f32], { maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 2 * GiB, budgetBytes: 1e8 });
    expect(plan.summary).toMatch(/^Nothing fits: f32 does not: .* Choose a lower bit width, a shorter window or a smaller model\.$/);
  });
});
