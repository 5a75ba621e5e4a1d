import { describe, expect, it } from 'vitest';
import { int8At, int8DotRef, int8RescaleRef, quantizeInt8Rows, scaleColumns, smoothingFactors, weightChannelMax } from '../../src/core/quant/smoothquant';
import { randomF32 } from '../helpers/random';
import { readModelConfig } from '../../src/core/families';
import { canonicalTensors } from '../../src/core/decoder';
import { decoderForwardRef } from '../../src/core/reference';
import { smoothingPlan } from '../../src/lab/methods/smoothquant';
import { siteOf } from '../../src/lab/methods/act-stats';
import { gpt2ConfigJson, llamaConfigJson } from './support/configs';

describe('SmoothQuant pieces', () => {
  it('smoothing factors follow max|X|^α / max|W|^(1−α) and leave x·Wᵀ unchanged', () => {
    const [m, n, k] = [4, 5, 8];
    const x = randomF32(m * k, 1, 1);
    for (let r = 0; r < m; r++) x[r * k + 3] *= 40; // an outlier channel
    const w = randomF32(n * k, 2, 0.2);
    const act = new Float32Array(k).map((_, j) => Math.max(...Array.from({ length: m }, (_, r) => Math.abs(x[r * k + j]))));
    const wmax = weightChannelMax(w, n, k);
    const s = smoothingFactors(act, wmax, 0.5);
    for (let j = 0; j < k; j++) expect(s[j]).toBeCloseTo(Math.sqrt(act[j]) / Math.sqrt(wmax[j]), 5);
    // the outlier channel's range moves into the weights: after smoothing, activation and weight maxima are equal (α = 0.5)
    for (let j = 0; j < k; j++) expect(act[j] / s[j]).toBeCloseTo(wmax[j] * s[j], 4);
    const ws = w.slice();
    scaleColumns(ws, n, k, s);
    for (let a = 0; a < m; a++) for (let b = 0; b < n; b++) {
      let y = 0, ys = 0;
      for (let j = 0; j < k; j++) {
        y += x[a * k + j] * w[b * k + j];
        ys += (x[a * k + j] / s[j]) * ws[b * k + j];
      }
      expect(ys).toBeCloseTo(y, 5);
    }
    expect(smoothingFactors([4], [1], 1)[0]).toBeCloseTo(4, 6);
    expect(smoothingFactors([4], [2], 0)[0]).toBeCloseTo(0.5, 6);
    expect(() => smoothingFactors([1], [1], 1.5)).toThrow(/choose a value from 0 to 1/);
  });

  it('int8 rows: codes in −127 … 127, the largest magnitude at ±127, error at most half a step', () => {
    const [rows, k] = [6, 20];
    const x = randomF32(rows * k, 3, 5);
    const q = quantizeInt8Rows(x, rows, k);
    for (let r = 0; r < rows; r++) {
      let top = 0;
      for (let j = 0; j < k; j++) {
        const c = int8At(q.codes, k, r, j);
        expect(Math.abs(c)).toBeLessThanOrEqual(127);
        top = Math.max(top, Math.abs(c));
        expect(Math.abs(c * q.scales[r] - x[r * k + j])).toBeLessThanOrEqual(q.scales[r] / 2 + 1e-7);
      }
      expect(top).toBe(127);
    }
    expect(() => quantizeInt8Rows(x, 1, 6)).toThrow(/multiple of 4/);
  });

  it('the integer product and its rescale', () => {
    const x = quantizeInt8Rows(Float32Array.from([1, -2, 3, 4, 0, 0, 0, 8]), 2, 4);
    const w = quantizeInt8Rows(Float32Array.from([1, 1, 1, 1]), 1, 4);
    const acc = int8DotRef(x, w);
    const cx = [0, 1, 2, 3].map((j) => int8At(x.codes, 4, 0, j));
    expect(acc[0]).toBe(cx.reduce((s, c) => s + c * 127, 0));
    const y = int8RescaleRef(acc, x, w, [0.5]);
    expect(y[0]).toBeCloseTo(6.5, 1);
    expect(y[1]).toBeCloseTo(8.5, 1);
  });
});

describe('SmoothQuant folding on whole models', () => {
  // tiny models of both MLP kinds: llama (RMSNorm, SwiGLU, grouped-query attention) and gpt2 (LayerNorm with biases, GELU)
  const configs = {
    llama: readModelConfig({ ...llamaConfigJson, vocab_size: 40 }).config,
    gpt2: readModelConfig({ ...gpt2ConfigJson, vocab_size: 40, bos_token_id: 0, eos_token_id: 0 }).config,
  };
  for (const [name, c] of Object.entries(configs)) {
    it(`${name}: smoothing folded into norms, v and up leaves the logits unchanged and shrinks the outlier channel`, async () => {
      const tensors = new Map<string, Float32Array>();
      let seed = 50;
      for (const t of canonicalTensors(c)) {
        const v = randomF32(t.shape.reduce((a, b) => a * b, 1), seed++, 0.4);
        if (t.name.endsWith('norm.weight')) v.forEach((x, i) => (v[i] = 1 + x));
        tensors.set(t.name, v);
      }
      // an outlier input channel: norm weight 3 of block 0 scaled up 30×
      tensors.get('layers.0.attn_norm.weight')![3] *= 30;
      const ids = [1, 7, 3, 22, 9, 14, 30, 2];
      const site = (linear: string) => siteOf(linear);
      const maxAbs = new Map<string, Float32Array>();
      const base = decoderForwardRef(c, (n) => tensors.get(n) ?? null, ids, (linear, x, rows) => {
        const k = x.length / rows;
        const m = maxAbs.get(site(linear)) ?? new Float32Array(k);
        for (let r = 0; r < rows; r++) for (let j = 0; j < k; j++) m[j] = Math.max(m[j], Math.abs(x[r * k + j]));
        maxAbs.set(site(linear), m);
      });
      const plan = await smoothingPlan(c, async (n) => tensors.get(n) ?? null, (s) => maxAbs.get(s)!, 0.5);
      const smoothed = new Map<string, Float32Array>();
      for (const t of canonicalTensors(c)) smoothed.set(t.name, (await plan.read(t.name))!);
      const after = new Map<string, number>();
      const out = decoderForwardRef(c, (n) => smoothed.get(n) ?? null, ids, (linear, x, rows) => {
        if (linear !== 'layers.0.attn.q') return;
        const k = x.length / rows;
        let top = 0, rest = 0;
        for (let r = 0; r < rows; r++) for (let j = 0; j < k; j++) (j === 3 ? (top = Math.max(top, Math.abs(x[r * k + j]))) : (rest = Math.max(rest, Math.abs(x[r * k + j]))));
        after.set('ratio', top / rest);
      });
      let err = 0, ref = 0;
      for (let i = 0; i < base.logits.length; i++) {
        err = Math.max(err, Math.abs(out.logits[i] - base.logits[i]));
        ref = Math.max(ref, Math.abs(base.logits[i]));
      }
      // float32 rounding of the rescaled weights only
      expect(err / ref).toBeLessThan(1e-5);
      const m0 = maxAbs.get('layers.0.attn-in')!;
      const before = m0[3] / Math.max(...Array.from(m0).filter((_, j) => j !== 3));
      expect(before).toBeGreaterThan(5);
      // α = 0.5 takes about the square root of the outlier's excess
      expect(after.get('ratio')!).toBeLessThan(before / 3);
      expect(plan.smoothing.at(-1)).toMatch(name === 'llama' ? /via the rows of up/ : /not smoothed/);
      // every kind of fold happened: norms, v rows, o and down columns
      for (const t of ['layers.1.attn_norm.weight', 'layers.1.attn.v.weight', 'layers.1.attn.o.weight', 'layers.1.mlp.down.weight']) {
        expect(Array.from(smoothed.get(t)!).some((v, i) => v !== tensors.get(t)![i]), t).toBe(name === 'llama' || t !== 'layers.1.mlp.down.weight');
      }
    });
  }
});
