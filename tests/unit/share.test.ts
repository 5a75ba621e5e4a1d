import { describe, expect, it } from 'vitest';
import type { ExperimentSpec, MethodSpec } from '../../src/core/experiment';
import { checkKv, checkMethod, METHOD_IDS } from '../../src/core/method-spec-check';
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
  fragmentOf(specs.map((s) => (typeof s === 'object' && s !== null ? { model: (s as ExperimentSpec).model, eval: (s as ExperimentSpec).eval, ...('kv' in s ? { kv: s.kv } : {}), methods: [(s as ExperimentSpec).method] } : s)));
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
      [{ ...base, method: { id: 'qat' } }, /method.id "qat" is none of none, rtn, awq, gptq, hqq, mixllm, smoothquant, atom/],
      [{ ...base, method: { id: 'gptq' } }, /method.bits undefined/],
      [{ ...base, kv: { bits: 2, groupSize: 32 } }, /kv.bits 2 is none of 8, 4/],
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

/** Every method kind, each with all its optional fields and with none of them. */
const calibration = { samples: 16, length: 128 };
const methods: MethodSpec[] = [
  { id: 'none' },
  { id: 'rtn', bits: 4, groupSize: 128, symmetric: false },
  { id: 'rtn', bits: 2, groupSize: 'row', symmetric: true, quantizeHead: false, quantizeEmbeddings: true },
  { id: 'awq', bits: 4, groupSize: 128, symmetric: false },
  { id: 'awq', bits: 3, groupSize: 64, symmetric: true, quantizeHead: true, quantizeEmbeddings: false, calibration, alphaPoints: 10, clip: false, errorTokens: 512 },
  { id: 'gptq', bits: 4, groupSize: 'row', symmetric: false },
  { id: 'gptq', bits: 8, groupSize: 32, symmetric: true, quantizeHead: true, calibration, actOrder: true, dampening: 0.05, blockSize: 64 },
  { id: 'hqq', bits: 4, groupSize: 64, symmetric: false },
  { id: 'hqq', bits: 3, groupSize: 'row', symmetric: false, quantizeEmbeddings: true, iterations: 0 },
  { id: 'mixllm', highBits: 8, lowBits: 4, highFraction: 0.1, base: 'rtn', groupSize: 128 },
  { id: 'mixllm', highBits: 4, lowBits: 2, highFraction: 1, base: 'gptq', groupSize: 'row', symmetric: false, calibration },
  { id: 'smoothquant', alpha: 0.5 },
  { id: 'smoothquant', alpha: 0, calibration },
  { id: 'atom', outliers: 128, groupSize: 128 },
  { id: 'atom', outliers: 0, groupSize: 32, calibration },
];
const model = { kind: 'embedded', id: 'qlab-llama-6m' } as const;
const evalSpec = { protocol: 'gptq', windowLength: 128, windows: 2 } as const;
const kvs = [undefined, { bits: 8, groupSize: 32 }, { bits: 4, groupSize: 64 }] as const;
const everyKind: ExperimentSpec[] = kvs.flatMap((kv) => methods.map((method) => ({ model, method, eval: evalSpec, ...(kv ? { kv: { ...kv } } : {}) })));
const TOKEN = 'hf_secretTokenThatMustNeverLeak';

describe('every method kind and the KV-cache setting', () => {
  it('covers every MethodSpec kind', () => {
    expect(new Set(methods.map((m) => m.id))).toEqual(new Set(METHOD_IDS));
  });

  it('round-trip through a link, each kind with and without its optional fields, with each KV setting', () => {
    expect(decodeExperiments(encodeExperiments(everyKind))).toEqual({ specs: everyKind });
    for (const spec of everyKind) {
      expect(decodeExperiments(encodeExperiments([spec]))).toEqual({ specs: [spec] });
      expect(checkSpec(spec)).toEqual({ value: spec });
      expect(checkSpec(JSON.parse(JSON.stringify(spec)))).toEqual({ value: spec });
    }
    // a KV setting per group: a sweep of methods × KV settings is one group per setting
    const groups = JSON.parse(Buffer.from(encodeExperiments(everyKind).slice('#x=v1:'.length), 'base64url').toString());
    expect(groups.map((g: { kv?: unknown }) => g.kv)).toEqual([undefined, { bits: 8, groupSize: 32 }, { bits: 4, groupSize: 64 }]);
    // an f32 cache written as null reads as none
    expect(checkSpec({ ...everyKind[1], kv: null })).toEqual({ value: everyKind[1] });
  });

  it('reads links made before methods other than RTN and the KV setting existed, and still writes them the same way', () => {
    const old = [{ model, eval: evalSpec, methods: [{ id: 'none' }, { id: 'rtn', bits: 4, groupSize: 128, symmetric: false }] }];
    const fragment = fragmentOf(old);
    const specs = old[0].methods.map((method) => ({ model, method, eval: evalSpec }) as ExperimentSpec);
    expect(decodeExperiments(fragment)).toEqual({ specs });
    expect(encodeExperiments(specs)).toBe(fragment);
    // a link of the default sweep as earlier builds wrote it
    expect(decodeExperiments(fragmentOf([{ model: sweep[0].model, eval: sweep[0].eval, methods: sweep.map((s) => s.method) }]))).toEqual({ specs: sweep });
  });

  it('drop every field a kind does not have, on the way in and on the way out: a token never survives', () => {
    for (const spec of everyKind) {
      const m = spec.method as unknown as Record<string, unknown>;
      const leaky = {
        ...spec,
        token: TOKEN,
        method: { ...m, token: TOKEN, hub: { token: TOKEN }, ...(m.calibration ? { calibration: { ...(m.calibration as object), token: TOKEN } } : {}) },
        ...(spec.kv ? { kv: { ...spec.kv, token: TOKEN } } : {}),
      } as unknown as ExperimentSpec;
      const link = encodeExperiments([leaky]);
      expect(Buffer.from(link.slice('#x=v1:'.length), 'base64url').toString()).not.toContain(TOKEN);
      expect(decodeExperiments(link)).toEqual({ specs: [spec] });
      // a link written by someone else, with the stray fields in it
      const crafted = fragmentOf([{ model, eval: evalSpec, token: TOKEN, ...(leaky.kv ? { kv: leaky.kv } : {}), methods: [leaky.method] }]);
      expect(Buffer.from(crafted.slice('#x=v1:'.length), 'base64url').toString()).toContain(TOKEN);
      const decoded = decodeExperiments(crafted);
      expect(decoded).toEqual({ specs: [spec] });
      expect(JSON.stringify(decoded)).not.toContain(TOKEN);
    }
    // a field of another kind is not taken along either
    expect(checkMethod({ id: 'smoothquant', alpha: 0.5, bits: 4, groupSize: 128, outliers: 8 })).toEqual({ value: { id: 'smoothquant', alpha: 0.5 } });
  });

  it('a method that fails its check is written with its own plain fields only, and its reader is told what is wrong', () => {
    const bad = { model, eval: evalSpec, method: { id: 'gptq', bits: 5, groupSize: 128, symmetric: false, token: TOKEN, calibration: { samples: 0, length: 8, token: TOKEN } } } as unknown as ExperimentSpec;
    const link = encodeExperiments([bad]);
    expect(Buffer.from(link.slice('#x=v1:'.length), 'base64url').toString()).not.toContain(TOKEN);
    expect(error(link)).toMatch(/experiment 1: method.bits 5 is none of 2, 3, 4, 8/);
    const badKv = { model, eval: evalSpec, method: { id: 'none' }, kv: { bits: 16, groupSize: 32, token: TOKEN } } as unknown as ExperimentSpec;
    const kvLink = encodeExperiments([badKv]);
    expect(Buffer.from(kvLink.slice('#x=v1:'.length), 'base64url').toString()).not.toContain(TOKEN);
    expect(error(kvLink)).toMatch(/experiment 1: kv.bits 16 is none of 8, 4/);
    expect(error(encodeExperiments([{ model, eval: evalSpec, method: { id: 'magic', token: TOKEN } as unknown as MethodSpec }]))).toMatch(/method.id "magic" is none of none, rtn/);
  });

  it('refuse a wrong value in any field of any kind, and in the KV setting, naming the field', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      // RTN, AWQ, GPTQ, HQQ share the weight-only fields
      ...(['rtn', 'awq', 'gptq', 'hqq'] as const).flatMap((id): [Record<string, unknown>, RegExp][] => {
        const ok = { id, bits: 4, groupSize: 128, symmetric: false };
        return [
          [{ ...ok, bits: 6 }, /method.bits 6 is none of 2, 3, 4, 8/],
          [{ ...ok, bits: undefined }, /method.bits undefined/],
          [{ ...ok, groupSize: -32 }, /method.groupSize -32 is neither a positive whole number nor "row"/],
          [{ ...ok, groupSize: 'col' }, /method.groupSize "col"/],
          [{ ...ok, symmetric: undefined }, /method.symmetric undefined is not true or false/],
          [{ ...ok, symmetric: 0 }, /method.symmetric 0/],
          [{ ...ok, quantizeHead: 'yes' }, /method.quantizeHead "yes"/],
          [{ ...ok, quantizeEmbeddings: null }, /method.quantizeEmbeddings .* is not true or false/],
        ];
      }),
      [{ id: 'awq', bits: 4, groupSize: 128, symmetric: false, alphaPoints: 0 }, /method.alphaPoints 0 is not a whole number from 1/],
      [{ id: 'awq', bits: 4, groupSize: 128, symmetric: false, alphaPoints: 1e9 }, /method.alphaPoints 1000000000/],
      [{ id: 'awq', bits: 4, groupSize: 128, symmetric: false, clip: 'no' }, /method.clip "no" is not true or false/],
      [{ id: 'awq', bits: 4, groupSize: 128, symmetric: false, errorTokens: 1.5 }, /method.errorTokens 1.5/],
      [{ id: 'awq', bits: 4, groupSize: 128, symmetric: false, calibration: '16x128' }, /method.calibration "16x128" is not an object of samples and length/],
      [{ id: 'gptq', bits: 4, groupSize: 128, symmetric: false, actOrder: 1 }, /method.actOrder 1/],
      [{ id: 'gptq', bits: 4, groupSize: 128, symmetric: false, dampening: -0.01 }, /method.dampening -0.01 is not a number of 0 or more/],
      [{ id: 'gptq', bits: 4, groupSize: 128, symmetric: false, dampening: '0.01' }, /method.dampening "0.01"/],
      [{ id: 'gptq', bits: 4, groupSize: 128, symmetric: false, blockSize: 0 }, /method.blockSize 0/],
      [{ id: 'gptq', bits: 4, groupSize: 128, symmetric: false, calibration: { samples: 0, length: 128 } }, /method.calibration.samples 0 is not a whole number from 1/],
      [{ id: 'gptq', bits: 4, groupSize: 128, symmetric: false, calibration: { samples: 8 } }, /method.calibration.length undefined/],
      [{ id: 'hqq', bits: 4, groupSize: 128, symmetric: false, iterations: -1 }, /method.iterations -1/],
      [{ id: 'hqq', bits: 4, groupSize: 128, symmetric: false, iterations: 2.5 }, /method.iterations 2.5/],
      ...((): [Record<string, unknown>, RegExp][] => {
        const ok = { id: 'mixllm', highBits: 8, lowBits: 4, highFraction: 0.1, base: 'rtn', groupSize: 128 };
        return [
          [{ ...ok, highBits: 3 }, /method.highBits 3 is none of 8, 4/],
          [{ ...ok, lowBits: 8 }, /method.lowBits 8 is none of 2, 3, 4/],
          [{ ...ok, highFraction: 1.5 }, /method.highFraction 1.5 is not a fraction from 0 to 1/],
          [{ ...ok, highFraction: '0.1' }, /method.highFraction "0.1"/],
          [{ ...ok, base: 'awq' }, /method.base "awq" is none of rtn, gptq/],
          [{ ...ok, groupSize: 0 }, /method.groupSize 0/],
          [{ ...ok, symmetric: 'true' }, /method.symmetric "true"/],
          [{ ...ok, calibration: { samples: 8, length: 1 } }, /method.calibration.length 1 is not a whole number from 2/],
        ];
      })(),
      [{ id: 'smoothquant', alpha: -0.1 }, /method.alpha -0.1 is not a migration strength from 0 to 1/],
      [{ id: 'smoothquant' }, /method.alpha undefined/],
      [{ id: 'smoothquant', alpha: 0.5, calibration: [16, 128] }, /method.calibration \[16,128\]/],
      [{ id: 'atom', outliers: -4, groupSize: 128 }, /method.outliers -4 is not a whole number from 0/],
      [{ id: 'atom', outliers: 'all', groupSize: 128 }, /method.outliers "all"/],
      [{ id: 'atom', outliers: 128, groupSize: 'row' }, /method.groupSize "row" is not a whole number from 1/],
      [{ id: 'atom', outliers: 128, groupSize: 128, calibration: null }, /method.calibration .* is not an object of samples and length/],
      [{ id: 7 }, /method.id 7 is none of none, rtn, awq, gptq, hqq, mixllm, smoothquant, atom/],
    ];
    const ids = new Set<unknown>();
    for (const [method, message] of cases) {
      ids.add(method.id);
      expect(checkMethod(method)).toEqual({ error: expect.stringMatching(message) });
      expect(error(specsFragment([everyKind[0], { model, eval: evalSpec, method }]))).toMatch(new RegExp(`experiment 2: ${message.source}`));
    }
    for (const id of METHOD_IDS) if (id !== 'none') expect(ids, id).toContain(id);
    // the KV setting
    const kvCases: [unknown, RegExp][] = [
      [{ bits: 2, groupSize: 32 }, /kv.bits 2 is none of 8, 4/],
      [{ bits: '8', groupSize: 32 }, /kv.bits "8"/],
      [{ bits: 8 }, /kv.groupSize undefined is not a whole number/],
      [{ bits: 8, groupSize: 0 }, /kv.groupSize 0/],
      [{ bits: 4, groupSize: 12.5 }, /kv.groupSize 12.5/],
      ['int8', /kv "int8" is neither absent \(an f32 cache\) nor an object/],
      [[8, 32], /kv \[8,32\]/],
    ];
    for (const [kv, message] of kvCases) {
      expect(checkKv(kv)).toEqual({ error: expect.stringMatching(message) });
      expect(error(fragmentOf([{ model, eval: evalSpec, methods: [{ id: 'none' }] }, { model, eval: evalSpec, kv, methods: [{ id: 'none' }] }]))).toMatch(new RegExp(`experiment 2: ${message.source}`));
    }
  });
});
