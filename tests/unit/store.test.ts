import { describe, expect, it } from 'vitest';
import type { ExperimentSpec, Result } from '../../src/core/experiment';
import {
  decodeLab,
  describePartial,
  encodeLab,
  LabStore,
  memoryKeyValue,
  partialProgress,
  recoverInterrupted,
  STORE_KEY,
  STORE_VERSION,
  type KeyValueStore,
  type LabState,
  type QueueItem,
} from '../../src/lab/store';
import { DEFAULT_FORM, defaultSweep, formFromSettings } from '../../src/ui/evaluate';

const spec: ExperimentSpec = {
  model: { kind: 'embedded', id: 'qlab-llama-6m' },
  method: { id: 'rtn', bits: 4, groupSize: 128, symmetric: false },
  eval: { protocol: 'gptq', windowLength: 128, windows: 40 },
};

const result: Result = {
  id: 'r1',
  spec,
  status: 'done',
  createdAt: '2026-01-01T00:00:00.000Z',
  device: { vendor: 'google', architecture: 'swiftshader', description: '', features: ['shader-f16'] },
  protocol: { protocol: 'gptq', windowLength: 128, windowsTotal: 3460, windows: 40, scoredTokens: 5080, textTokens: 442974 },
  metrics: null,
  timing: { load: 0.5, evaluate: 2 },
  kernels: ['gemm-q4'],
  windowNll: [400.5, 398.25],
  methodReport: {},
};

const queued = (id: string, running = false): QueueItem => ({
  id,
  spec,
  addedAt: '2026-01-01T00:00:00.000Z',
  ...(running
    ? {
        running: {
          startedAt: '2026-01-01T00:01:00.000Z',
          progress: { stage: 'evaluate', done: 3, total: 40, windowsDone: 3, windowsTotal: 40, perplexity: 51.2, at: '2026-01-01T00:01:09.000Z' },
        },
      }
    : {}),
});

const state: LabState = { results: [result], queue: [queued('q1'), queued('q2')], settings: { ...DEFAULT_FORM, windowLength: 128 } };
const now = new Date('2026-02-02T10:00:00.000Z');

describe('the saved lab record', () => {
  it('round-trips results, queue and settings, as JSON too', () => {
    const record = encodeLab(state, now);
    expect(record.version).toBe(STORE_VERSION);
    expect(record.savedAt).toBe('2026-02-02T10:00:00.000Z');
    expect(decodeLab(structuredClone(record))).toEqual({ state, problems: [], readable: true });
    expect(decodeLab(JSON.parse(JSON.stringify(record)))).toEqual({ state, problems: [], readable: true });
  });

  it('starts empty when nothing was saved', () => {
    expect(decodeLab(undefined)).toEqual({ state: { results: [], queue: [], settings: null }, problems: [], readable: true });
  });

  it('does not load a newer, versionless or malformed record, and says why', () => {
    const newer = decodeLab({ ...encodeLab(state, now), version: 2 });
    expect(newer.readable).toBe(false);
    expect(newer.state.results).toEqual([]);
    expect(newer.problems[0]).toMatch(/schema version 2, written by a newer qlab/);
    expect(decodeLab({ results: [] }).problems[0]).toMatch(/no schema version/);
    expect(decodeLab('hello').readable).toBe(false);
    expect(decodeLab({ version: 1, results: 'x', queue: [] }).readable).toBe(false);
    expect(decodeLab({ version: 0, results: [], queue: [] }).problems[0]).toMatch(/version 0, which this qlab cannot convert/);
  });

  it('marks a record with unreadable entries as one to keep aside, loading the rest', () => {
    const decoded = decodeLab({ ...encodeLab(state, now), results: [result, { id: 7 }] });
    expect(decoded.readable).toBe(false);
    expect(decoded.state.results).toEqual([result]);
    expect(decoded.problems).toEqual(['1 saved entry could not be read.']);
  });
});

describe('runs that were in flight', () => {
  it('come back as interrupted results with their progress; the rest of the queue waits', () => {
    const { state: recovered, interrupted } = recoverInterrupted({ ...state, queue: [queued('q0', true), queued('q1')] }, now);
    expect(recovered.queue.map((q) => q.id)).toEqual(['q1']);
    expect(interrupted).toHaveLength(1);
    const r = interrupted[0];
    expect(recovered.results).toEqual([result, r]);
    expect(r).toMatchObject({ id: 'q0', status: 'interrupted', metrics: null, createdAt: '2026-01-01T00:01:00.000Z', spec });
    expect(r.partial).toEqual({ stage: 'evaluate', done: 3, total: 40, windowsDone: 3, windowsTotal: 40, perplexity: 51.2, at: '2026-01-01T00:01:09.000Z' });
    expect(r.protocol).toMatchObject({ windows: 3, windowsTotal: 40, windowLength: 128 });
    expect(r.error).toMatch(/reloaded while this run was in progress/);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
    expect(describePartial(r.partial)).toBe('interrupted during evaluation after window 3 of 40 (running perplexity 51.20)');
  });

  it('leave the state untouched when none was running', () => {
    expect(recoverInterrupted(state, now).state).toBe(state);
  });

  it('record progress events as plain JSON, reading the running perplexity back', () => {
    const load = partialProgress({ stage: 'load', done: 5, total: 57 }, spec, null, now);
    expect(load).toEqual({ stage: 'load', done: 5, total: 57, windowsDone: 0, windowsTotal: 40, perplexity: null, at: now.toISOString() });
    expect(describePartial(load)).toBe('interrupted while loading the model (tensor 5 of 57)');
    const ev = partialProgress({ stage: 'evaluate', done: 2, total: 40, detail: 'ppl 123.45', perplexity: 123.45 }, spec, load, now);
    expect(ev).toMatchObject({ windowsDone: 2, windowsTotal: 40, perplexity: 123.45 });
    // a run that also measures KL divergence reports it after the perplexity
    expect(partialProgress({ stage: 'evaluate', done: 3, total: 40, detail: 'ppl 23.41 kl 0.0123', perplexity: 23.41 }, spec, load, now)).toMatchObject({ perplexity: 23.41 });
    expect(partialProgress({ stage: 'evaluate', done: 3, total: 40, detail: 'ppl 23.41' }, spec, load, now)).toMatchObject({ perplexity: null });
    const speed = partialProgress({ stage: 'speed', done: 0, total: 1, detail: 'decoding one token at a time' }, spec, ev, now);
    expect(speed).toMatchObject({ stage: 'speed', windowsDone: 2, perplexity: 123.45 });
    expect(describePartial(undefined)).toMatch(/before it reported/);
  });
});

describe('LabStore', () => {
  it('saves and loads through a key-value store, turning a run in flight into an interrupted result (and saving that)', async () => {
    const kv = memoryKeyValue();
    const store = new LabStore(kv);
    await store.save({ ...state, queue: [queued('q0', true), queued('q1')] }, now);
    const loaded = await new LabStore(kv).load(now);
    expect(loaded.problems).toEqual([]);
    expect(loaded.interrupted.map((r) => r.id)).toEqual(['q0']);
    expect(loaded.state.results.map((r) => r.status)).toEqual(['done', 'interrupted']);
    expect(loaded.state.queue.map((q) => q.id)).toEqual(['q1']);
    // the interrupted result is stored, so a second reload does not lose or repeat it
    const again = await new LabStore(kv).load(now);
    expect(again.state).toEqual(loaded.state);
    expect(again.interrupted).toEqual([]);
  });

  it('keeps a record it cannot read under its own key instead of overwriting it', async () => {
    const newer = { version: 9, results: [{ from: 'the future' }] };
    const kv = memoryKeyValue({ [STORE_KEY]: newer });
    const loaded = await new LabStore(kv).load(now);
    expect(loaded.state.results).toEqual([]);
    const aside = `${STORE_KEY}/unreadable/${now.toISOString()}`;
    expect(kv.data.get(aside)).toEqual(newer);
    expect(loaded.problems.join(' ')).toContain(aside);
    expect(kv.data.get(STORE_KEY)).toMatchObject({ version: STORE_VERSION, results: [] });
  });

  it('writes one record at a time, the latest state last', async () => {
    const writes: unknown[] = [];
    let release: () => void = () => {};
    const slow: KeyValueStore = {
      get: async () => undefined,
      set: (_key, value) => {
        writes.push(value);
        return new Promise<void>((resolve) => (release = resolve));
      },
    };
    const store = new LabStore(slow);
    const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
    const first = store.save({ ...state, results: [] }, now);
    await tick();
    expect(writes).toHaveLength(1);
    // two saves while the first write is in flight collapse into one write of the latest state
    const second = store.save({ ...state, queue: [] }, now);
    const third = store.save(state, now);
    await tick();
    expect(writes).toHaveLength(1);
    release();
    await first;
    await tick();
    release();
    await Promise.all([second, third]);
    expect(writes).toHaveLength(2);
    expect(writes[1]).toMatchObject({ queue: state.queue, results: state.results });
  });

  it('goes on writing after a failed write', async () => {
    let fail = true;
    const kv = memoryKeyValue();
    const flaky: KeyValueStore = { get: kv.get, set: (k, v) => (fail ? Promise.reject(new Error('QuotaExceededError')) : kv.set(k, v)) };
    const store = new LabStore(flaky);
    await expect(store.save(state, now)).rejects.toThrow('QuotaExceededError');
    fail = false;
    await store.save(state, now);
    expect(kv.data.get(STORE_KEY)).toMatchObject({ version: 1, results: [result] });
  });
});

describe('settings and the default sweep', () => {
  it('reads saved settings back, falling back to defaults field by field', () => {
    const saved = { ...DEFAULT_FORM, windowLength: 128, windows: 1, baseline: true, deviceLost: 'continue' };
    expect(formFromSettings(JSON.parse(JSON.stringify(saved)))).toEqual(saved);
    expect(formFromSettings({ windowLength: 100, modelId: 'gone', protocol: 'llamacpp', deviceLost: 'explode' })).toEqual({ ...DEFAULT_FORM, protocol: 'llamacpp' });
    expect(formFromSettings(null)).toEqual(DEFAULT_FORM);
  });

  it('reads the one-method form of earlier versions into the builder', () => {
    const old = { modelId: 'qlab-gpt2-6m', method: 'rtn', bits: 3, groupSize: 64, symmetric: true, quantizeHead: false, quantizeEmbeddings: true, protocol: 'gptq', windowLength: 128, fullTestSet: false, windows: 2 };
    const form = formFromSettings(old);
    expect(form.baseline).toBe(false);
    expect(form.methods.rtn).toEqual({ on: true, bits: [3], groups: [64], options: { symmetric: true, quantizeHead: false, quantizeEmbeddings: true } });
    expect(formFromSettings({ ...old, method: 'none' }).baseline).toBe(true);
    expect(formFromSettings({ ...old, method: 'none' }).methods.rtn.on).toBe(false);
  });

  it('queues f32, W8 row, W4 g128, W3 g128 and W2 g64 on the form protocol and slice', () => {
    const sweep = defaultSweep({ ...DEFAULT_FORM, modelId: 'qlab-gpt2-6m', windowLength: 128, windows: 1, baseline: true });
    expect(sweep.map((s) => s.method)).toEqual([
      { id: 'none' },
      { id: 'rtn', bits: 8, groupSize: 'row', symmetric: false },
      { id: 'rtn', bits: 4, groupSize: 128, symmetric: false },
      { id: 'rtn', bits: 3, groupSize: 128, symmetric: false },
      { id: 'rtn', bits: 2, groupSize: 64, symmetric: false },
    ]);
    for (const s of sweep) {
      expect(s.model).toEqual({ kind: 'embedded', id: 'qlab-gpt2-6m' });
      expect(s.eval).toEqual({ protocol: 'gptq', windowLength: 128, windows: 1 });
    }
  });
});
