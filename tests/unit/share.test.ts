import { describe, expect, it } from 'vitest';
import type { ExperimentSpec } from '../../src/core/experiment';
import { checkSpec, decodeExperiments, encodeExperiments, MAX_SHARE_CHARS, MAX_SHARED_EXPERIMENTS, shareParam } from '../../src/core/share';
import { DEFAULT_FORM, defaultSweep } from '../../src/ui/evaluate';

const sweep = defaultSweep({ ...DEFAULT_FORM, windowLength: 128, windows: 2 });
const odd: ExperimentSpec[] = [
  { model: { kind: 'hub', repo: 'Qwen/Qwen2.5-0.5B', revision: 'main' }, method: { id: 'rtn', bits: 3, groupSize: 'row', symmetric: true, quantizeHead: true, quantizeEmbeddings: true }, eval: { protocol: 'llamacpp', windowLength: 512, windows: null } },
  { model: { kind: 'local', name: 'my model ✓.safetensors' }, method: { id: 'none' }, eval: { protocol: 'gptq', windowLength: 2048, windows: 7 } },
];

/** A fragment holding any JSON, to build invalid payloads. */
const fragmentOf = (payload: unknown): string => `#x=v1:${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
/** A fragment with each spec in a group of its own. */
const specsFragment = (specs: unknown[]): string =>
  fragmentOf(specs.map((s) => (typeof s === 'object' && s !== null ? { model: (s as ExperimentSpec).model, eval: (s as ExperimentSpec).eval, methods: [(s as ExperimentSpec).method] } : s)));
const error = (fragment: string): string => {
  const d = decodeExperiments(fragment);
  expect('error' in d, JSON.stringify(d)).toBe(true);
  return (d as { error: string }).error;
};

describe('encodeExperiments / decodeExperiments', () => {
  it('round-trips the default sweep and unusual specs, through a URL too', () => {
    for (const specs of [sweep, odd, [sweep[0]]]) {
      const fragment = encodeExperiments(specs);
      expect(fragment).toMatch(/^#x=v1:[A-Za-z0-9_-]+$/);
      expect(decodeExperiments(fragment)).toEqual({ specs });
      expect(decodeExperiments(fragment.slice(1))).toEqual({ specs });
      const url = new URL(`https://example.org/lab/${fragment}`);
      expect(decodeExperiments(url.hash)).toEqual({ specs });
    }
  });

  it('is compact: the five-run sweep fits in under 500 characters', () => {
    expect(encodeExperiments(sweep).length).toBeLessThan(500);
  });

  it('finds its part among other fragment parameters', () => {
    const fragment = `#a=1&${encodeExperiments(sweep).slice(1)}&b=2`;
    expect(decodeExperiments(fragment)).toEqual({ specs: sweep });
    expect(shareParam('#section')).toBeNull();
    expect(shareParam('')).toBeNull();
  });

  it('drops fields an ExperimentSpec does not have', () => {
    const spec = { ...sweep[2], extra: '<script>', method: { ...sweep[2].method, junk: 1 }, model: { kind: 'embedded', id: 'qlab-llama-6m', evil: true } };
    expect(decodeExperiments(specsFragment([spec]))).toEqual({ specs: [sweep[2]] });
  });

  it('says why a fragment cannot be read', () => {
    expect(error('#section')).toMatch(/no "x=" part/);
    expect(error('#x=abc')).toMatch(/no version/);
    expect(error('#x=v2:W10')).toMatch(/"v2".*reads only v1/);
    expect(error('#x=v1:!!!')).toMatch(/not base64url/);
    expect(error('#x=v1:A')).toMatch(/not base64url/);
    expect(error('#x=v1:_-8')).toMatch(/base64url|JSON/); // bytes that are not UTF-8
    expect(error('#x=v1:e30x')).toMatch(/JSON|base64url/);
    expect(error(`#x=v1:${btoa('[{"model":').replace(/=+$/, '')}`)).toMatch(/does not decode to JSON/);
    expect(error(fragmentOf({ specs: [] }))).toMatch(/no list of experiments/);
    expect(error(fragmentOf([]))).toMatch(/empty/);
    expect(error(fragmentOf([{ model: sweep[0].model, eval: sweep[0].eval, methods: [] }]))).toMatch(/empty/);
    expect(error(specsFragment([sweep[0], 42]))).toMatch(/group 2 is not a model and evaluation/);
    expect(error(fragmentOf([{ model: sweep[0].model, eval: sweep[0].eval, methods: 'rtn' }]))).toMatch(/group 1/);
    expect(error(specsFragment(Array(MAX_SHARED_EXPERIMENTS + 1).fill(sweep[0])))).toMatch(/more than the 64/);
    expect(error(encodeExperiments(Array(MAX_SHARED_EXPERIMENTS + 1).fill(sweep[0])))).toMatch(/more than the 64/);
    expect(error(`#x=v1:${'A'.repeat(MAX_SHARE_CHARS)}`)).toMatch(/more than the 16,000/);
  });

  it('names the experiment and field that is wrong', () => {
    const base = sweep[2] as ExperimentSpec & { method: Record<string, unknown> };
    const cases: [unknown, RegExp][] = [
      [{ ...base, model: null }, /model is not an object/],
      [{ ...base, model: { kind: 'ftp', id: 'x' } }, /model.kind "ftp"/],
      [{ ...base, model: { kind: 'embedded', id: '' } }, /model.id/],
      [{ ...base, model: { kind: 'embedded', id: 'x'.repeat(201) } }, /model.id/],
      [{ ...base, model: { kind: 'hub', repo: 'a/b' } }, /repo and a revision/],
      [{ ...base, model: { kind: 'local' } }, /needs a name/],
      [{ ...base, method: 'rtn' }, /method is not an object/],
      [{ ...base, method: { id: 'gptq' } }, /method.id "gptq"/],
      [{ ...base, method: { ...base.method, bits: 5 } }, /method.bits 5/],
      [{ ...base, method: { ...base.method, bits: '4' } }, /method.bits "4"/],
      [{ ...base, method: { ...base.method, groupSize: 0 } }, /method.groupSize 0/],
      [{ ...base, method: { ...base.method, groupSize: 12.5 } }, /method.groupSize 12.5/],
      [{ ...base, method: { ...base.method, groupSize: 'col' } }, /method.groupSize "col"/],
      [{ ...base, method: { ...base.method, symmetric: 'yes' } }, /method.symmetric/],
      [{ ...base, method: { ...base.method, quantizeHead: 1 } }, /method.quantizeHead/],
      [{ ...base, method: { ...base.method, quantizeEmbeddings: 'no' } }, /method.quantizeEmbeddings/],
      [{ ...base, eval: undefined }, /eval is not an object/],
      [{ ...base, eval: { ...base.eval, protocol: 'lm-eval' } }, /eval.protocol "lm-eval"/],
      [{ ...base, eval: { ...base.eval, windowLength: -1 } }, /eval.windowLength -1/],
      [{ ...base, eval: { ...base.eval, windowLength: 1e9 } }, /eval.windowLength/],
      [{ ...base, eval: { ...base.eval, windows: 0 } }, /eval.windows 0/],
      [{ ...base, eval: { ...base.eval, windows: '4' } }, /eval.windows "4"/],
      [{ ...base, eval: { protocol: 'gptq', windowLength: 128 } }, /eval.windows undefined|eval.windows/],
    ];
    for (const [spec, message] of cases) {
      expect(error(specsFragment([sweep[0], spec]))).toMatch(new RegExp(`experiment 2: .*${message.source}`));
      expect('error' in checkSpec(spec)).toBe(true);
    }
    expect(checkSpec(42)).toEqual({ error: 'it is not an object' });
    // the second method of a group is experiment 3 overall
    const group = { model: sweep[0].model, eval: sweep[0].eval, methods: [{ id: 'none' }, { id: 'rtn', bits: 9, groupSize: 128, symmetric: false }] };
    expect(error(fragmentOf([{ model: sweep[0].model, eval: sweep[0].eval, methods: [{ id: 'none' }] }, group]))).toMatch(/experiment 3: method.bits 9/);
  });
});
