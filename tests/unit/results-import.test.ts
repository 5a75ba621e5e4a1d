import { describe, expect, it } from 'vitest';
import type { ExperimentSpec, MethodSpec, Result } from '../../src/core/experiment';
import { METHOD_IDS } from '../../src/core/method-spec-check';
import { cleanStoredSpec, MAX_IMPORT_BYTES, mergeImported, parseResultsFile, rebuildResult, resultProblem } from '../../src/core/results-import';
import { interruptedResult } from '../../src/lab/store';
import { frontierSvg } from '../../src/ui/plot';
import { resultRow } from '../../src/ui/evaluate';

function result(id: string, bits: 4 | 8 | null, ppl: number): Result {
  return {
    id,
    spec: { model: { kind: 'embedded', id: 'qlab-llama-6m' }, method: bits === null ? { id: 'none' } : { id: 'rtn', bits, groupSize: 128, symmetric: false }, eval: { protocol: 'gptq', windowLength: 128, windows: 1 } },
    status: 'done',
    createdAt: '2026-01-01T00:00:00Z',
    device: { vendor: 'nvidia', architecture: 'ada', description: 'RTX 4090', features: ['shader-f16'] },
    protocol: { protocol: 'gptq', windowLength: 128, windowsTotal: 3460, windows: 1, scoredTokens: 127, textTokens: 300000 },
    metrics: {
      perplexity: ppl, perplexitySe: 1, meanNll: Math.log(ppl), meanNllSe: 0.01, meanNllSeByWindow: 0.01, nllSum: 100,
      bitsPerWeight: bits ?? 32, weightBytes: 1e6 * (bits ?? 32), peakBytes: 4e7, peakByCategory: { weights: 1e6 }, quantizedParams: 5e6, totalParams: 6e6,
      prefillTokensPerSecond: 1000, decodeTokensPerSecond: 50, prefillGpuTokensPerSecond: 2000, decodeGpuTokensPerSecond: null,
    },
    timing: { load: 1.5, evaluate: 2 },
    kernels: ['matmul-f32'],
    windowNll: [400.5],
    methodReport: {},
  };
}

const good = [result('a', null, 20), result('b', 4, 22)];
const failed: Result = { ...result('c', 8, 1), status: 'failed', metrics: null, error: 'out of memory' };
const interrupted = interruptedResult({ id: 'q1', spec: good[0].spec, addedAt: '2026-01-01T00:00:00Z' }, 'reloaded', null);

describe('parseResultsFile', () => {
  it('reads what the results table and the CLI write, marking each result with its source', () => {
    const text = JSON.stringify([...good, failed, interrupted], null, 1);
    const parsed = parseResultsFile(text, 'qlab-results-4090.json');
    expect('results' in parsed).toBe(true);
    const { results } = parsed as { results: (Result & { source?: string })[] };
    expect(results.map((r) => r.id)).toEqual(['a', 'b', 'c', 'q1']);
    expect(results.every((r) => r.source === 'qlab-results-4090.json')).toBe(true);
    expect(results[1].metrics).toEqual(good[1].metrics);
    // a result imported before keeps where it first came from
    const again = parseResultsFile(JSON.stringify(results), 'other.json');
    expect((again as { results: { source?: string }[] }).results[0].source).toBe('qlab-results-4090.json');
  });

  it('accepts a metric JSON wrote as null (NaN or Infinity)', () => {
    const r = result('n', 4, 22);
    const text = JSON.stringify([{ ...r, metrics: { ...r.metrics, perplexitySe: NaN } }]);
    expect('results' in parseResultsFile(text, 'f.json')).toBe(true);
  });

  const error = (payload: unknown, raw = false): string => {
    const parsed = parseResultsFile(raw ? (payload as string) : JSON.stringify(payload), 'runs.json');
    expect('error' in parsed, JSON.stringify(parsed).slice(0, 200)).toBe(true);
    return (parsed as { error: string }).error;
  };

  it('refuses a file that is not a list of results, saying which file', () => {
    expect(error('{"results": [', true)).toMatch(/^runs.json cannot be imported: it is not JSON/);
    expect(error({ results: good })).toMatch(/not a list of results/);
    expect(error([])).toMatch(/empty/);
    expect(error(' '.repeat(MAX_IMPORT_BYTES + 1), true)).toMatch(/larger than 32 MB/);
    expect(error(Array(10_001).fill(0))).toMatch(/more than the 10000/);
  });

  it('names the result and the field that is wrong', () => {
    const r = result('bad', 4, 22) as unknown as Record<string, Record<string, unknown>>;
    const cases: [unknown, RegExp][] = [
      [null, /it is not an object/],
      [{ ...r, id: 3 }, /id is missing/],
      [{ ...r, spec: { ...r.spec, method: { id: 'rtn', bits: 5, groupSize: 128, symmetric: false } } }, /spec: method.bits 5/],
      [{ ...r, status: 'ok' }, /status "ok"/],
      [{ ...r, createdAt: undefined }, /createdAt/],
      [{ ...r, device: { vendor: 'x' } }, /device needs/],
      [{ ...r, device: { ...r.device, features: [1] } }, /device needs/],
      [{ ...r, protocol: undefined }, /protocol is missing/],
      [{ ...r, protocol: { ...r.protocol, protocol: 'wiki' } }, /protocol.protocol "wiki"/],
      [{ ...r, protocol: { ...r.protocol, windows: '1' } }, /protocol.windows is missing or not a number/],
      [{ ...r, metrics: 'n/a' }, /metrics is neither null nor an object/],
      [{ ...r, metrics: { ...r.metrics, perplexity: '22' } }, /metrics.perplexity/],
      [{ ...r, metrics: { ...r.metrics, weightBytes: undefined } }, /metrics.weightBytes/],
      [{ ...r, metrics: { ...r.metrics, decodeGpuTokensPerSecond: 'fast' } }, /metrics.decodeGpuTokensPerSecond/],
      [{ ...r, metrics: { ...r.metrics, peakByCategory: null } }, /peakByCategory/],
      [{ ...r, timing: { load: '1s' } }, /timing/],
      [{ ...r, kernels: 'matmul' }, /kernels/],
      [{ ...r, windowNll: [1, 'x'] }, /windowNll/],
      [{ ...r, methodReport: [] }, /methodReport/],
      [{ ...r, error: 5 }, /error must be a string/],
      [{ ...r, partial: 'half' }, /partial/],
      [{ ...r, source: 1 }, /source/],
    ];
    for (const [bad, message] of cases) {
      expect(error([good[0], bad])).toMatch(new RegExp(`result 2.*: .*${message.source}`));
      expect(resultProblem(bad)).not.toBeNull();
    }
    expect(error([good[0], { ...r, status: 'ok' }])).toContain('result 2 (id bad)');
    for (const r of [...good, failed, interrupted]) expect(resultProblem(JSON.parse(JSON.stringify(r)))).toBeNull();
  });

  it('keeps only the known fields of the spec', () => {
    const r = result('s', 4, 22);
    const text = JSON.stringify([{ ...r, spec: { ...r.spec, extra: 1 } }]);
    expect((parseResultsFile(text, 'f.json') as { results: Result[] }).results[0].spec).toEqual(r.spec);
  });
});

describe('mergeImported', () => {
  it('skips results already here and renames a clashing id', () => {
    const incoming = [good[0], { ...good[1], createdAt: '2026-02-02T00:00:00Z' }, result('new', 8, 20.1)];
    const { added, skipped } = mergeImported(good, incoming);
    expect(skipped).toBe(1);
    expect(added.map((r) => r.id)).toEqual(['b~2', 'new']);
    expect(mergeImported([], incoming).added.map((r) => r.id)).toEqual(['a', 'b', 'new']);
  });
});

describe('imported results in the table and the plot', () => {
  it('form a series of their own and say where they came from', () => {
    const imported = (parseResultsFile(JSON.stringify(good), '4090.json') as { results: Result[] }).results.map((r) => ({ ...r, id: `i-${r.id}` }));
    expect(resultRow(imported[0]).source).toBe('4090.json');
    expect(resultRow(good[0]).source).toBeNull();
    const svg = frontierSvg([...good, ...imported], { x: 'weightMB', y: 'perplexity', width: 600, height: 400 });
    const series = [...svg.matchAll(/<g class="series" data-series="([^"]+)"/g)].map((m) => m[1]);
    expect(series).toEqual(['f32 baseline', 'RTN g128', '4090.json · f32 baseline', '4090.json · RTN g128']);
  });
});

/** Every method kind, with all its optional fields and with none. */
const calibration = { samples: 16, length: 128 };
const methods: MethodSpec[] = [
  { id: 'none' },
  { id: 'rtn', bits: 4, groupSize: 128, symmetric: false, quantizeHead: false },
  { id: 'awq', bits: 4, groupSize: 128, symmetric: false },
  { id: 'awq', bits: 3, groupSize: 'row', symmetric: true, quantizeHead: true, quantizeEmbeddings: true, calibration, alphaPoints: 20, clip: false, errorTokens: 2048 },
  { id: 'gptq', bits: 4, groupSize: 64, symmetric: false },
  { id: 'gptq', bits: 2, groupSize: 128, symmetric: false, quantizeEmbeddings: false, calibration, actOrder: false, dampening: 0.01, blockSize: 128 },
  { id: 'hqq', bits: 8, groupSize: 'row', symmetric: true },
  { id: 'hqq', bits: 4, groupSize: 64, symmetric: false, quantizeHead: true, iterations: 20 },
  { id: 'mixllm', highBits: 8, lowBits: 3, highFraction: 0.25, base: 'gptq', groupSize: 128 },
  { id: 'mixllm', highBits: 4, lowBits: 2, highFraction: 0, base: 'rtn', groupSize: 'row', symmetric: true, calibration },
  { id: 'smoothquant', alpha: 0.85 },
  { id: 'smoothquant', alpha: 1, calibration },
  { id: 'atom', outliers: 32, groupSize: 64 },
  { id: 'atom', outliers: 128, groupSize: 128, calibration },
];
const withSpec = (id: string, spec: ExperimentSpec): Result => ({ ...result(id, 4, 22), spec });
const base = result('k', 4, 22).spec;
const everyKind: Result[] = [undefined, { bits: 8, groupSize: 32 } as const, { bits: 4, groupSize: 16 } as const].flatMap((kv, k) =>
  methods.map((method, i) => withSpec(`k${k}-${i}`, { ...base, method, ...(kv ? { kv } : {}) })),
);
const TOKEN = 'hf_secretTokenThatMustNeverLeak';

describe('results of every method kind and KV-cache setting', () => {
  it('import as they were written, optional fields kept where present and absent where not', () => {
    expect(new Set(methods.map((m) => m.id))).toEqual(new Set(METHOD_IDS));
    const parsed = parseResultsFile(JSON.stringify(everyKind), 'kinds.json');
    expect('results' in parsed, JSON.stringify(parsed).slice(0, 300)).toBe(true);
    const { results } = parsed as { results: Result[] };
    expect(results.map((r) => r.spec)).toEqual(everyKind.map((r) => r.spec));
    expect(results.filter((r) => r.spec.kv).map((r) => r.spec.kv)).toEqual([...methods.map(() => ({ bits: 8, groupSize: 32 })), ...methods.map(() => ({ bits: 4, groupSize: 16 }))]);
    // as the CLI writes them: an f32 cache absent, optional fields left out
    for (const r of everyKind) expect(resultProblem(JSON.parse(JSON.stringify(r)))).toBeNull();
  });

  it('lose every field a spec does not have: a token on a method, its calibration or the KV setting never gets in', () => {
    const leaky = everyKind.map((r) => {
      const m = r.spec.method as unknown as Record<string, unknown>;
      return {
        ...r,
        spec: {
          ...r.spec,
          token: TOKEN,
          method: { ...m, token: TOKEN, headers: { authorization: `Bearer ${TOKEN}` }, ...(m.calibration ? { calibration: { ...(m.calibration as object), token: TOKEN } } : {}) },
          ...(r.spec.kv ? { kv: { ...r.spec.kv, token: TOKEN } } : {}),
        },
      };
    });
    const parsed = parseResultsFile(JSON.stringify(leaky), 'leaky.json') as { results: Result[] };
    expect(parsed.results.map((r) => r.spec)).toEqual(everyKind.map((r) => r.spec));
    expect(JSON.stringify(parsed.results.map((r) => r.spec))).not.toContain(TOKEN);
  });

  it('refuse a wrong field in any kind, or in the KV setting, naming the result and the field', () => {
    const cases: [Partial<ExperimentSpec> & Record<string, unknown>, RegExp][] = [
      [{ method: { id: 'qat', bits: 4 } as unknown as MethodSpec }, /spec: method.id "qat" is none of none, rtn, awq, gptq, hqq, mixllm, smoothquant, atom/],
      [{ method: { id: 'rtn', bits: 4, groupSize: 128, symmetric: 'no' } as unknown as MethodSpec }, /spec: method.symmetric "no"/],
      [{ method: { id: 'awq', bits: 4, groupSize: 128, symmetric: false, clip: 'off' } as unknown as MethodSpec }, /spec: method.clip "off"/],
      [{ method: { id: 'awq', bits: 7, groupSize: 128, symmetric: false } as unknown as MethodSpec }, /spec: method.bits 7/],
      [{ method: { id: 'gptq', bits: 4, groupSize: 128, symmetric: false, blockSize: -1 } as unknown as MethodSpec }, /spec: method.blockSize -1/],
      [{ method: { id: 'gptq', bits: 4, groupSize: 128, symmetric: false, calibration: { samples: 1.5, length: 128 } } as unknown as MethodSpec }, /spec: method.calibration.samples 1.5/],
      [{ method: { id: 'hqq', bits: 4, groupSize: 0, symmetric: false } as unknown as MethodSpec }, /spec: method.groupSize 0/],
      [{ method: { id: 'hqq', bits: 4, groupSize: 64, symmetric: false, iterations: 'many' } as unknown as MethodSpec }, /spec: method.iterations "many"/],
      [{ method: { id: 'mixllm', highBits: 8, lowBits: 4, highFraction: 2, base: 'rtn', groupSize: 128 } as unknown as MethodSpec }, /spec: method.highFraction 2/],
      [{ method: { id: 'mixllm', highBits: 8, lowBits: 4, highFraction: 0.1, base: 'hqq', groupSize: 128 } as unknown as MethodSpec }, /spec: method.base "hqq"/],
      [{ method: { id: 'smoothquant', alpha: 'half' } as unknown as MethodSpec }, /spec: method.alpha "half"/],
      [{ method: { id: 'atom', outliers: 1.5, groupSize: 128 } as unknown as MethodSpec }, /spec: method.outliers 1.5/],
      [{ method: { id: 'atom', outliers: 128 } as unknown as MethodSpec }, /spec: method.groupSize undefined/],
      [{ kv: { bits: 16, groupSize: 32 } as unknown as ExperimentSpec['kv'] }, /spec: kv.bits 16 is none of 8, 4/],
      [{ kv: { bits: 8, groupSize: -32 } as unknown as ExperimentSpec['kv'] }, /spec: kv.groupSize -32/],
      [{ kv: 'int8' as unknown as ExperimentSpec['kv'] }, /spec: kv "int8"/],
    ];
    for (const [change, message] of cases) {
      const bad = { ...result('bad', 4, 22), spec: { ...base, ...change } };
      expect(parseResultsFile(JSON.stringify([everyKind[0], bad]), 'runs.json')).toEqual({ error: expect.stringMatching(new RegExp(`^runs.json cannot be imported: result 2 \\(id bad\\): ${message.source}`)) });
    }
  });

  it('stored on this page: a spec that passes is rebuilt (stray fields dropped), one of a method this build does not know is kept', () => {
    for (const r of everyKind) {
      const leaky = { ...r, spec: { ...r.spec, method: { ...r.spec.method, token: TOKEN }, ...(r.spec.kv ? { kv: { ...r.spec.kv, token: TOKEN } } : {}) } } as unknown as Result;
      expect(rebuildResult(leaky, 'stored').spec).toEqual(r.spec);
    }
    const future = { ...base, method: { id: 'quip', bits: 2, codebook: 'e8' } as unknown as MethodSpec, model: { ...base.model, token: TOKEN } as unknown as ExperimentSpec['model'] };
    expect(cleanStoredSpec(future)).toEqual({ ...base, method: { id: 'quip', bits: 2, codebook: 'e8' } });
  });
});
