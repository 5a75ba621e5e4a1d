import { describe, expect, it } from 'vitest';
import type { ExperimentSpec, Result } from '../../src/core/experiment';
import {
  applyProgress,
  DEFAULT_FORM,
  defaultForm,
  evalLabel,
  formatPerplexity,
  formatSeconds,
  formProblem,
  initialStages,
  specFromForm,
  specLabel,
  specsFromForm,
  stageRemaining,
  windowsTotalFor,
  withBaseline,
  type EvaluateForm,
} from '../../src/ui/evaluate';
import { METHOD_CATALOG } from '../../src/ui/method-catalog';

/** The default form with RTN's grid and options replaced. */
function rtnForm(bits: number[], groups: (number | 'row')[], options: Record<string, boolean> = {}, extra: Partial<EvaluateForm> = {}): EvaluateForm {
  const form = defaultForm();
  form.methods.rtn = { on: true, bits, groups, options: { ...form.methods.rtn.options, ...options } };
  return { ...form, ...extra };
}

describe('the experiment builder', () => {
  it('turns methods × bit widths × group sizes × options into ExperimentSpecs, bits high to low', () => {
    const specs = specsFromForm(rtnForm([3, 8], ['row', 64], { quantizeHead: true }, { windows: 2, windowLength: 128, baseline: true }));
    expect(specs.map((s) => s.method)).toEqual([
      { id: 'none' },
      { id: 'rtn', bits: 8, groupSize: 64, symmetric: false, quantizeHead: true },
      { id: 'rtn', bits: 8, groupSize: 'row', symmetric: false, quantizeHead: true },
      { id: 'rtn', bits: 3, groupSize: 64, symmetric: false, quantizeHead: true },
      { id: 'rtn', bits: 3, groupSize: 'row', symmetric: false, quantizeHead: true },
    ]);
    for (const s of specs) {
      expect(s.model).toEqual({ kind: 'embedded', id: 'qlab-llama-6m' });
      expect(s.eval).toEqual({ protocol: 'gptq', windowLength: 128, windows: 2 });
    }
    expect(specFromForm({ ...DEFAULT_FORM, baseline: true, fullTestSet: true, protocol: 'llamacpp' })).toEqual({
      model: { kind: 'embedded', id: 'qlab-llama-6m' },
      method: { id: 'none' },
      eval: { protocol: 'llamacpp', windowLength: 512, windows: null },
    });
  });

  it('has one catalog entry per method, each making specs with its own id', () => {
    for (const entry of METHOD_CATALOG) {
      const spec = entry.spec({ bits: entry.defaultBits[0] ?? 0, groupSize: entry.defaultGroups[0] ?? 'row' }, Object.fromEntries(entry.options.map((o) => [o.key, o.default])));
      expect(spec?.id).toBe(entry.id);
      expect(entry.defaultBits.every((b) => entry.bits.includes(b))).toBe(true);
      expect(entry.defaultGroups.every((g) => entry.groups.includes(g))).toBe(true);
    }
    expect(new Set(METHOD_CATALOG.map((m) => m.id)).size).toBe(METHOD_CATALOG.length);
  });

  it('runs every experiment with each ticked KV-cache format, and skips cells a method does not take', () => {
    const form = rtnForm([4], [128], {}, { kv: ['f32', 'int4'] });
    form.methods.mixllm = { ...form.methods.mixllm, on: true, bits: [4, 2], groups: [64], options: { ...form.methods.mixllm.options, highBits: 4 } };
    const specs = specsFromForm(form);
    // MixLLM with 4 high bits takes low bits 2 only (4 + 4 is no mixture)
    expect(specs.map((s) => `${s.method.id}${s.kv ? ` kv${s.kv.bits}` : ''}`)).toEqual(['rtn', 'mixllm', 'rtn kv4', 'mixllm kv4']);
    expect(specs[1].method).toEqual({ id: 'mixllm', lowBits: 2, highBits: 4, highFraction: 0.1, base: 'rtn', groupSize: 64 });
    expect(specs[2].kv).toEqual({ bits: 4, groupSize: 32 });
    expect(formProblem({ ...form, kv: [] })).toMatch(/KV cache/);
    // a quantized KV cache with the f32 baseline is no baseline: one comes first
    expect(withBaseline([specs[2]], [], []).map((s) => [s.method.id, s.kv ?? null])).toEqual([['none', null], ['rtn', { bits: 4, groupSize: 32 }]]);
  });

  it('says what keeps it from running', () => {
    expect(formProblem(DEFAULT_FORM)).toBeNull();
    expect(formProblem({ ...DEFAULT_FORM, windows: null })).toMatch(/whole number/);
    expect(formProblem({ ...DEFAULT_FORM, windows: 0 })).toMatch(/at least 1/);
    expect(formProblem({ ...DEFAULT_FORM, windows: null, fullTestSet: true })).toBeNull();
    expect(formProblem(rtnForm([], [128]))).toMatch(/RTN: tick at least one bit width/);
    expect(formProblem(rtnForm([4], []))).toMatch(/RTN: tick at least one group size/);
    const nothing = defaultForm();
    nothing.methods.rtn.on = false;
    expect(formProblem(nothing)).toMatch(/baseline or at least one method/);
  });

  it('puts an f32 baseline first where quantized runs have none to compare with', () => {
    const specs = specsFromForm(rtnForm([4, 2], [128], {}, { windowLength: 128, windows: 1 }));
    const planned = withBaseline(specs, [], []);
    expect(planned.map((s) => s.method.id)).toEqual(['none', 'rtn', 'rtn']);
    expect(planned[0].eval).toEqual(specs[0].eval);
    // a finished baseline on the same evaluation, or one in the queue, is enough
    const done = { status: 'done', spec: planned[0] } as Result;
    expect(withBaseline(specs, [done], []).map((s) => s.method.id)).toEqual(['rtn', 'rtn']);
    expect(withBaseline(specs, [], [planned[0]]).map((s) => s.method.id)).toEqual(['rtn', 'rtn']);
    // but not one on other windows, nor a failed one
    const other: ExperimentSpec = { ...planned[0], eval: { ...planned[0].eval, windows: 2 } };
    expect(withBaseline(specs, [{ status: 'done', spec: other } as Result, { status: 'failed', spec: planned[0] } as Result], []).map((s) => s.method.id)).toEqual(['none', 'rtn', 'rtn']);
  });

  it('labels runs with their protocol, counting the full test set of an embedded model', () => {
    const full = specFromForm({ ...DEFAULT_FORM, fullTestSet: true });
    expect(windowsTotalFor(full)).toBe(Math.floor(442_974 / 512));
    expect(evalLabel(full, 865)).toBe('gptq, all 865 windows of 512');
    expect(evalLabel(specFromForm({ ...DEFAULT_FORM, windows: 1 }))).toBe('gptq, 1 window of 512');
    expect(specLabel(specFromForm(DEFAULT_FORM))).toBe('qlab-llama-6m · RTN W4 g128 · gptq, 4 windows of 512');
  });

  it('formats perplexities and durations for the table', () => {
    expect(formatPerplexity(321.326, 0.4321)).toEqual({ value: '321.3', se: '0.4' });
    expect(formatPerplexity(23.456, Number.NaN)).toEqual({ value: '23.46', se: '–' });
    expect(formatSeconds(12.34)).toBe('12.3 s');
    expect(formatSeconds(125)).toBe('2 min 05 s');
    expect(formatSeconds(-1)).toBe('–');
  });
});

describe('run progress', () => {
  const spec = specFromForm(DEFAULT_FORM);

  it('moves through the stages, each starting when the one before ends, and tells the time left', () => {
    let s = initialStages(spec);
    expect(s.map((x) => x.key)).toEqual(['prepare', 'load', 'evaluate', 'speed']);
    s = applyProgress(s, { stage: 'prepare', done: 0, total: 2 }, 0);
    s = applyProgress(s, { stage: 'load', done: 10, total: 40 }, 1000);
    // RTN quantizes as it loads: its quantize events count on the load row
    s = applyProgress(s, { stage: 'quantize', done: 20, total: 40 }, 2000);
    expect(s.find((x) => x.key === 'prepare')).toMatchObject({ startedAt: 0, endedAt: 1000 });
    expect(s.find((x) => x.key === 'load')).toMatchObject({ done: 20, total: 40, startedAt: 1000, endedAt: null });
    // 1 s for 20 tensors → 20 more take 1 s
    expect(stageRemaining(s.find((x) => x.key === 'load')!, 2000)).toBeCloseTo(1, 9);
    s = applyProgress(s, { stage: 'evaluate', done: 1, total: 4 }, 5000);
    expect(s.find((x) => x.key === 'load')).toMatchObject({ done: 40, endedAt: 5000 });
    expect(stageRemaining(s.find((x) => x.key === 'evaluate')!, 5000)).toBe(0);
    expect(stageRemaining(s.find((x) => x.key === 'speed')!, 5000)).toBeNull();
  });

  it('gives a stage no row expected one of its own, in order before evaluation', () => {
    let s = initialStages(spec);
    s = applyProgress(s, { stage: 'calibrate', done: 1, total: 6 } as never, 100);
    expect(s.map((x) => x.key)).toEqual(['prepare', 'load', 'calibrate', 'evaluate', 'speed']);
    expect(s.find((x) => x.key === 'calibrate')).toMatchObject({ label: 'Calibrate', unit: 'blocks', done: 1, total: 6 });
  });
});
