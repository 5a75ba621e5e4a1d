/**
 * The estimate shown before a run, checked against the real embedded models:
 * the shapes the page keeps for them match their config.json, and the weight
 * bytes it predicts for RTN are exactly what quantizing every layer stores.
 */
import { describe, expect, it } from 'vitest';
import { canonicalTensors } from '../../src/core/decoder';
import type { ExperimentSpec, Result } from '../../src/core/experiment';
import { packedBytes } from '../../src/core/quant/format';
import { quantizeRtn } from '../../src/core/quant/rtn';
import { loadModel } from '../../src/lab/load';
import { directorySource } from '../../src/lab/source-node';
import { configOfShape, estimateMemory, estimatePlan, estimateTime, tokensEvaluated } from '../../src/ui/estimate';
import { EMBEDDED_MODELS } from '../../src/worker/api';

const modelDir = (id: string) => new URL(`../../public/models/${id}/`, import.meta.url).pathname;
const spec = (method: ExperimentSpec['method'], windows: number | null = 4, windowLength = 128): ExperimentSpec => ({
  model: { kind: 'embedded', id: 'qlab-llama-6m' },
  method,
  eval: { protocol: 'gptq', windowLength, windows },
});

describe('the memory estimate', () => {
  it('keeps each embedded model shape as its config.json says', async () => {
    for (const m of EMBEDDED_MODELS) {
      const model = await loadModel(directorySource(modelDir(m.id)), { tokenizer: false });
      const c = model.config;
      for (const [key, value] of Object.entries(m.shape)) expect(c[key as keyof typeof c], `${m.id}.${key}`).toEqual(value);
      const params = canonicalTensors(configOfShape(m.shape)).reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
      expect(params).toBe(m.parameters);
    }
  });

  it('predicts the packed weight bytes of RTN exactly (W4 g128 and W3 g64 symmetric with the head)', async () => {
    const m = EMBEDDED_MODELS[0];
    const model = await loadModel(directorySource(modelDir(m.id)), { tokenizer: false });
    for (const method of [
      { id: 'rtn', bits: 4, groupSize: 128, symmetric: false },
      { id: 'rtn', bits: 3, groupSize: 64, symmetric: true, quantizeHead: true },
    ] as const) {
      let bytes = 0;
      for (const t of canonicalTensors(model.config)) {
        const w = await model.getTensor(t.name);
        const linear = /^layers\.\d+\.(attn|mlp)\.\w+\.weight$/.test(t.name) || (t.name === 'head.weight' && 'quantizeHead' in method);
        bytes += linear ? packedBytes(quantizeRtn(w, t.shape[0], t.shape[1], method)) : w.length * 4;
      }
      const est = estimateMemory(configOfShape(m.shape), spec(method));
      expect(est.weights).toBe(bytes);
      expect(est.weightsF32).toBe(m.parameters * 4);
    }
  });

  it('counts the KV cache and the KL reference copy for the window length', () => {
    const c = configOfShape(EMBEDDED_MODELS[0].shape);
    const base = estimateMemory(c, spec({ id: 'none' }, 4, 512));
    const q = estimateMemory(c, spec({ id: 'rtn', bits: 4, groupSize: 128, symmetric: false }, 4, 512));
    // 6 layers × K and V × 512 positions × 2 KV heads × 32 dims × 4 bytes
    expect(base.kv).toBe(6 * 2 * 512 * 2 * 32 * 4);
    expect(base.klReference).toBe(0);
    // the f32 copy and its log-probs over the window, beside the quantized model
    expect(q.klReference).toBeGreaterThan(base.weightsF32 + 512 * 4096 * 4);
    expect(q.total).toBe(q.weights + q.activations + q.kv + q.klReference);
    expect(q.weights).toBeLessThan(base.weights / 2);
    // an int4 KV cache in groups of 32: 4 bits per value plus an f16 scale and offset per 32 values = 5 bits of 32
    const kv4 = estimateMemory(c, { ...spec({ id: 'none' }, 4, 512), kv: { bits: 4, groupSize: 32 } });
    expect(kv4.kv * 32).toBe(base.kv * 5);
  });
});

describe('the time estimate', () => {
  const c = configOfShape(EMBEDDED_MODELS[0].shape);
  const earlier = (tps: number, load: number, description = 'GPU A'): Result =>
    ({
      status: 'done',
      spec: spec({ id: 'none' }),
      device: { vendor: '', architecture: '', description, features: [] },
      metrics: { prefillTokensPerSecond: tps },
      timing: { tokenize: 0, 'load+quantize': load },
    }) as unknown as Result;

  it('uses the speed this device measured before, twice the evaluation when a KL copy runs beside', () => {
    const s = spec({ id: 'rtn', bits: 4, groupSize: 128, symmetric: false }, 10, 128);
    expect(tokensEvaluated(s, 442_974)).toBe(1280);
    const t = estimateTime(c, s, 442_974, [earlier(1000, 1), earlier(3000, 3), earlier(2000, 2), earlier(10, 100, 'GPU B')], 'GPU A');
    expect(t.measured).toBe(true);
    expect(t.seconds).toBeCloseTo(2 + (1280 / 2000) * 2, 9);
    expect(t.basis).toMatch(/3 earlier runs.*none of rtn/);
    // the time before evaluation comes from runs of the same method where there are some (GPTQ's solves, AWQ's search)
    const rtnRun = { ...earlier(2000, 7), spec: s, timing: { tokenize: 0.5, prepare: 6, 'load+quantize': 1, evaluate: 99, decode: 99 } } as Result;
    expect(estimateTime(c, s, 442_974, [earlier(2000, 2), rtnRun], 'GPU A').seconds).toBeCloseTo(7.5 + (1280 / 2000) * 2, 9);
    const baseline = estimateTime(c, spec({ id: 'none' }, 10, 128), 442_974, [earlier(2000, 2)], 'GPU A');
    expect(baseline.seconds).toBeCloseTo(2 + 1280 / 2000, 9);
  });

  it('states a rough default when there is nothing measured, and sums a plan', () => {
    const t = estimateTime(c, spec({ id: 'none' }, null, 512), 442_974, [], 'GPU A');
    expect(t.measured).toBe(false);
    expect(t.basis).toMatch(/rough guess/);
    expect(t.seconds).toBeGreaterThan(100); // the whole test set
    const plan = estimatePlan(c, [spec({ id: 'none' }), spec({ id: 'rtn', bits: 2, groupSize: 64, symmetric: false })], 442_974, [], null);
    expect(plan.seconds).toBeCloseTo(plan.specs[0].time.seconds + plan.specs[1].time.seconds, 9);
    expect(plan.peakBytes).toBe(Math.max(plan.specs[0].memory.total, plan.specs[1].memory.total));
  });
});
