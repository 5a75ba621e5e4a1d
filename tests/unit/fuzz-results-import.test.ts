/**
 * Fuzzing the results import (src/core/results-import.ts) with seeded
 * mutations of a real export (done, failed and interrupted results): byte
 * mutations of the text, structural ones (wrong types, nulls where numbers
 * were, huge lists, values nested thousands deep, HTML in names) and random
 * JSON. The import never throws: it returns results or a message. What it
 * accepts must then go through everything the page does with a result —
 * the table row, the CSV, the frontier SVG on both quality axes, the merge
 * with existing results — without a crash.
 */
import { describe, expect, it } from 'vitest';
import type { Result } from '../../src/core/experiment';
import { mergeImported, parseResultsFile, type SourcedResult } from '../../src/core/results-import';
import { interruptedResult } from '../../src/lab/store';
import { resultRow } from '../../src/ui/evaluate';
import { frontierSvg, resultsCsv } from '../../src/ui/plot';
import { fuzz, jsonText, mutateJson, mutateText, random, randomJson } from './support/fuzz';

function result(id: string, bits: 4 | 8 | null, ppl: number): Result {
  return {
    id,
    spec: { model: { kind: 'embedded', id: 'qlab-llama-6m' }, method: bits === null ? { id: 'none' } : { id: 'rtn', bits, groupSize: 128, symmetric: false }, eval: { protocol: 'gptq', windowLength: 128, windows: 2 } },
    status: 'done',
    createdAt: '2026-01-01T00:00:00Z',
    device: { vendor: 'nvidia', architecture: 'hopper', description: 'H100', features: ['shader-f16', 'timestamp-query'] },
    protocol: { protocol: 'gptq', windowLength: 128, windowsTotal: 3460, windows: 2, scoredTokens: 254, textTokens: 300000 },
    metrics: {
      perplexity: ppl, perplexitySe: 1, meanNll: Math.log(ppl), meanNllSe: 0.01, meanNllSeByWindow: 0.01, nllSum: 100,
      bitsPerWeight: bits ?? 32, weightBytes: 1e6 * (bits ?? 32), peakBytes: 4e7, peakByCategory: { weights: 1e6, activations: 2e5 }, quantizedParams: 5e6, totalParams: 6e6,
      prefillTokensPerSecond: 1000, decodeTokensPerSecond: 50, prefillGpuTokensPerSecond: 2000, decodeGpuTokensPerSecond: null,
      ...(bits === null ? {} : { klDivergence: 0.01 * (9 - bits), klStdError: 0.001, top1Agreement: 0.9 }),
    },
    timing: { load: 1.5, evaluate: 2 },
    kernels: ['matmul-f32', 'q4 g128 asym'],
    windowNll: [400.5, 380.25],
    methodReport: { clip: 1 },
  };
}

const exported: Result[] = [
  result('a', null, 20),
  result('b', 4, 22),
  result('c', 8, 20.5),
  { ...result('d', 4, 1), status: 'failed', metrics: null, error: 'out of memory' },
  interruptedResult({ id: 'q1', spec: result('e', 8, 1).spec, addedAt: '2026-01-01T00:00:00Z', running: { startedAt: '2026-01-01T00:00:01Z', progress: null } }, 'reloaded', { stage: 'evaluate', done: 3, total: 40, windowsDone: 3, windowsTotal: 40, perplexity: 51.2, at: '2026-01-01T00:00:09Z' }),
];
const existing = [result('a', null, 20), result('z', 4, 25)];

/** Everything the page does with imported results. */
function importAndShow(text: string) {
  const parsed = parseResultsFile(text, 'results.json');
  if ('error' in parsed) return parsed;
  const { added } = mergeImported(existing, parsed.results);
  const all: SourcedResult[] = [...existing, ...added];
  for (const r of all) {
    const row = resultRow(r);
    expect(typeof row.model).toBe('string');
  }
  expect(resultsCsv(all).split('\n').length).toBeGreaterThan(all.length);
  for (const y of ['perplexity', 'klDivergence'] as const) {
    const svg = frontierSvg(all, { x: 'weightMB', y, width: 640, height: 400 });
    expect(svg).toMatch(/^<svg[^]*<\/svg>$/);
    // imported text never becomes markup: no element other than the plot's own
    expect(svg).not.toMatch(/<(img|script|iframe|foreignObject)\b/i);
  }
  return parsed;
}

export const RESULTS_FUZZ = { text: 2000, json: 2000, random: 1000 };

describe('fuzzing the results import', () => {
  it(`results JSON: ${RESULTS_FUZZ.text} byte-mutated exports, < 20 s`, { timeout: 20_000 }, async () => {
    const r = random(41);
    const text = JSON.stringify(exported, null, 1);
    const stats = await fuzz(RESULTS_FUZZ.text, () => mutateText(text, r), importAndShow, { refusal: (o) => ('error' in o ? o.error : null) });
    expect(stats.accepted).toBeGreaterThan(0);
    expect(stats.refused).toBeGreaterThan(0);
  });

  it(`results JSON: ${RESULTS_FUZZ.json} structurally mutated exports, < 30 s`, { timeout: 30_000 }, async () => {
    const r = random(42);
    const stats = await fuzz(RESULTS_FUZZ.json, () => jsonText(mutateJson(exported, r)), importAndShow, { refusal: (o) => ('error' in o ? o.error : null) });
    expect(stats.accepted).toBeGreaterThan(0);
    expect(stats.refused).toBeGreaterThan(0);
  });

  it(`results JSON: ${RESULTS_FUZZ.random} random JSON values, < 5 s`, { timeout: 5_000 }, async () => {
    const r = random(43);
    await fuzz(RESULTS_FUZZ.random, (i) => jsonText(i % 2 ? randomJson(r) : [randomJson(r)]), importAndShow, { refusal: (o) => ('error' in o ? o.error : null) });
  });

  it('reads a metric written as null (JSON has no NaN) back as NaN, so the table and the plot can show it', () => {
    const b = JSON.parse(JSON.stringify(result('b', 4, NaN))) as Record<string, Record<string, unknown>>;
    expect(b.metrics.perplexity).toBeNull();
    b.metrics.bitsPerWeight = null;
    const parsed = importAndShow(JSON.stringify([b]));
    expect('results' in parsed).toBe(true);
    const m = (parsed as { results: Result[] }).results[0].metrics!;
    expect(m.perplexity).toBeNaN();
    expect(m.bitsPerWeight).toBeNaN();
    expect(resultRow((parsed as { results: Result[] }).results[0]).bitsPerWeight).toBe('NaN');
  });
});
