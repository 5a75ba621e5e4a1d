/**
 * Stored lab records, older or damaged (src/lab/store-migrate.ts through
 * LabStore.load): a bare list of results (version 0) is migrated; results an
 * older build wrote without optional parts are completed; metrics saved as
 * null come back as NaN; a result that cannot be read is set aside with a
 * message while the rest loads, and the original record is kept unchanged
 * under its own key; a newer record is never overwritten; duplicates are kept
 * once. Then 2,000 seeded mutations of a real record: loading never throws,
 * and every result it gives back renders as a table row and on the frontier.
 */
import { describe, expect, it } from 'vitest';
import type { Result } from '../../src/core/experiment';
import { decodeLab, encodeLab, LabStore, memoryKeyValue, STORE_KEY, STORE_VERSION, type LabState } from '../../src/lab/store';
import { migrateLab, MIGRATED_VERSION } from '../../src/lab/store-migrate';
import { resultRow } from '../../src/ui/evaluate';
import { frontierSvg } from '../../src/ui/plot';
import { fuzz, jsonText, mutateJson, random } from './support/fuzz';

function result(id: string, ppl: number | null): Result {
  return {
    id,
    spec: { model: { kind: 'embedded', id: 'qlab-llama-6m' }, method: { id: 'rtn', bits: 4, groupSize: 128, symmetric: false }, eval: { protocol: 'gptq', windowLength: 128, windows: 2 } },
    status: ppl === null ? 'failed' : 'done',
    createdAt: `2026-01-0${id.length}T00:00:00.000Z`,
    device: { vendor: 'nvidia', architecture: 'hopper', description: 'H100', features: ['shader-f16'] },
    protocol: { protocol: 'gptq', windowLength: 128, windowsTotal: 3460, windows: 2, scoredTokens: 254, textTokens: 300000 },
    metrics:
      ppl === null
        ? null
        : {
            perplexity: ppl, perplexitySe: 0.5, meanNll: Math.log(ppl), meanNllSe: 0.01, meanNllSeByWindow: 0.01, nllSum: 100,
            bitsPerWeight: 4.5, weightBytes: 3e6, peakBytes: 5e6, peakByCategory: { weights: 3e6 }, quantizedParams: 5e6, totalParams: 6e6,
            prefillTokensPerSecond: 1000, decodeTokensPerSecond: 50, prefillGpuTokensPerSecond: null, decodeGpuTokensPerSecond: null,
          },
    timing: { evaluate: 2 },
    kernels: ['q4 g128 asym'],
    windowNll: [400.5, 380.25],
    methodReport: {},
  };
}

const state: LabState = {
  results: [result('a', 20), result('bb', 22), result('ccc', null)],
  queue: [{ id: 'q1', spec: result('a', 1).spec, addedAt: '2026-01-01T00:00:00.000Z' }],
  settings: { windowLength: 128 },
};
const now = new Date('2026-02-01T00:00:00.000Z');
const stored = () => JSON.parse(JSON.stringify(encodeLab(state, now))) as Record<string, unknown>;

describe('migrating stored records', () => {
  it('migrates to the store version and leaves a current, valid record as it was', () => {
    expect(MIGRATED_VERSION).toBe(STORE_VERSION);
    expect(decodeLab(stored())).toEqual({ state, problems: [], readable: true });
  });

  it('reads a bare list of results (version 0) as a record with those results', async () => {
    const kv = memoryKeyValue({ [STORE_KEY]: JSON.parse(JSON.stringify(state.results)) });
    const loaded = await new LabStore(kv).load(now);
    expect(loaded.problems).toEqual([]);
    expect(loaded.state.results).toEqual(state.results);
    // the next save writes it in the current shape
    await new LabStore(kv).save(loaded.state, now);
    expect((kv.data.get(STORE_KEY) as { version: number }).version).toBe(STORE_VERSION);
  });

  it('completes results an older build wrote without kernels, windowNll, timing or device features, and reads null metrics as NaN', () => {
    const old = stored();
    const [first] = old.results as Record<string, unknown>[];
    delete first.kernels;
    delete first.windowNll;
    delete first.timing;
    (first.device as Record<string, unknown>).features = undefined;
    (first.metrics as Record<string, unknown>).perplexitySe = null;
    const decoded = decodeLab(old);
    expect(decoded.readable).toBe(true);
    const r = decoded.state.results[0];
    expect(r).toMatchObject({ id: 'a', kernels: [], windowNll: [], timing: {}, device: { features: [] } });
    expect(r.metrics!.perplexitySe).toBeNaN();
    expect(resultRow(r).perplexitySe).toBe('–');
  });

  it('sets aside a result that cannot be read, with a message, keeps the original record, and loads the rest', async () => {
    const bad = stored();
    (bad.results as Record<string, unknown>[])[1].metrics = { perplexity: 'twenty' };
    (bad.queue as unknown[]).push({ id: 'q2', spec: { model: { kind: 'embedded', id: 'x' }, method: { id: 'magic' }, eval: {} } });
    const kv = memoryKeyValue({ [STORE_KEY]: bad });
    const loaded = await new LabStore(kv).load(now);
    expect(loaded.state.results.map((r) => r.id)).toEqual(['a', 'ccc']);
    expect(loaded.state.queue.map((q) => q.id)).toEqual(['q1']);
    expect(loaded.problems[0]).toBe('2 saved entries could not be read.');
    expect(loaded.problems[1]).toMatch(/kept unchanged in IndexedDB under the key "qlab\/lab\/unreadable\/2026-02-01T00:00:00.000Z"/);
    expect(kv.data.get(`${STORE_KEY}/unreadable/2026-02-01T00:00:00.000Z`)).toEqual(bad);
    // what could be read is saved in the current shape, so the next load is clean
    expect((await new LabStore(kv).load(now)).problems).toEqual([]);
  });

  it('never touches a record of a newer version: it is refused and kept aside whole', async () => {
    const newer = { ...stored(), version: STORE_VERSION + 1, results: [{ something: 'new' }] };
    expect(migrateLab(newer)).toBe(newer);
    const kv = memoryKeyValue({ [STORE_KEY]: newer });
    const loaded = await new LabStore(kv).load(now);
    expect(loaded.problems[0]).toMatch(/written by a newer qlab/);
    expect(kv.data.get(`${STORE_KEY}/unreadable/2026-02-01T00:00:00.000Z`)).toEqual(newer);
  });

  it("keeps the page's own results and queue items of any method as they were (methods newer than the share format, a KV-cache setting)", () => {
    const own = stored();
    const gptq = { id: 'gptq', bits: 3, groupSize: 128, symmetric: false, actOrder: true, calibration: { samples: 8, length: 256 } };
    const kv = { bits: 8, groupSize: 32 };
    (own.results as Record<string, unknown>[])[0].spec = { ...result('a', 1).spec, method: gptq, kv };
    (own.queue as Record<string, unknown>[])[0].spec = { ...result('a', 1).spec, method: gptq, kv };
    const decoded = decodeLab(own);
    expect(decoded.readable).toBe(true);
    expect(decoded.state.results[0].spec).toEqual({ ...result('a', 1).spec, method: gptq, kv });
    expect(decoded.state.queue[0].spec).toEqual({ ...result('a', 1).spec, method: gptq, kv });
  });

  it('keeps a result saved twice (same id and time) once', () => {
    const twice = stored();
    twice.results = [...(twice.results as unknown[]), (twice.results as unknown[])[0]];
    expect(decodeLab(twice).state.results.map((r) => r.id)).toEqual(['a', 'bb', 'ccc']);
  });

  it('stored records: 2000 mutated records load without a crash, every result renders, < 20 s', { timeout: 20_000 }, async () => {
    const r = random(71);
    const base = stored();
    let setAside = 0;
    const stats = await fuzz(
      2000,
      () => JSON.parse(jsonText(mutateJson(base, r), 500)) as unknown,
      async (raw) => {
        const kv = memoryKeyValue();
        kv.data.set(STORE_KEY, raw);
        const loaded = await new LabStore(kv).load(now);
        if (kv.data.size > 1) setAside++;
        for (const result of loaded.state.results) resultRow(result);
        frontierSvg(loaded.state.results, { x: 'weightMB', y: 'perplexity', width: 400, height: 300 });
        return loaded;
      },
      { refusal: (loaded) => (loaded.problems.length ? loaded.problems.join(' ') : null) },
    );
    expect(setAside).toBeGreaterThan(100);
    expect(stats.accepted).toBeGreaterThan(100);
  });
});
