import { describe, expect, it } from 'vitest';
import { DEFAULT_FORM, evalLabel, formatPerplexity, formatSeconds, formProblem, specFromForm, specLabel, windowsTotalFor } from '../../src/ui/evaluate';

describe('the Evaluate form', () => {
  it('turns into the ExperimentSpec the worker runs', () => {
    expect(specFromForm({ ...DEFAULT_FORM, bits: 3, groupSize: 64, quantizeHead: true, windows: 2, windowLength: 128 })).toEqual({
      model: { kind: 'embedded', id: 'qlab-llama-6m' },
      method: { id: 'rtn', bits: 3, groupSize: 64, symmetric: false, quantizeHead: true },
      eval: { protocol: 'gptq', windowLength: 128, windows: 2 },
    });
    expect(specFromForm({ ...DEFAULT_FORM, method: 'none', fullTestSet: true, protocol: 'llamacpp' })).toEqual({
      model: { kind: 'embedded', id: 'qlab-llama-6m' },
      method: { id: 'none' },
      eval: { protocol: 'llamacpp', windowLength: 512, windows: null },
    });
  });

  it('says what keeps it from running', () => {
    expect(formProblem(DEFAULT_FORM)).toBeNull();
    expect(formProblem({ ...DEFAULT_FORM, windows: null })).toMatch(/whole number/);
    expect(formProblem({ ...DEFAULT_FORM, windows: 0 })).toMatch(/at least 1/);
    expect(formProblem({ ...DEFAULT_FORM, windows: null, fullTestSet: true })).toBeNull();
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
