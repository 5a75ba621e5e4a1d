/**
 * The worker's run queue (src/lab/queue.ts) with a scripted runner in place
 * of the GPU: the queue is what is under test — order, results stored before
 * the next run starts, cancel, cancel-queue, a lost device (wait or go on), and
 * a page closed mid-run coming back as an interrupted result.
 */
import { describe, expect, it } from 'vitest';
import type { ExperimentSpec, Result } from '../../src/core/experiment';
import type { ExperimentProgress } from '../../src/lab/browser-run';
import { batchProgress, CANCELLED_ERROR, DEVICE_LOST_ERROR, LabQueue, type ExperimentRunner, type QueueEvent } from '../../src/lab/queue';
import { LabStore, memoryKeyValue, STORE_KEY, type StoredLabV1 } from '../../src/lab/store';

const spec = (bits: 2 | 3 | 4 | 8): ExperimentSpec => ({
  model: { kind: 'embedded', id: 'qlab-llama-6m' },
  method: { id: 'rtn', bits, groupSize: 128, symmetric: false },
  eval: { protocol: 'gptq', windowLength: 128, windows: 3 },
});

const named = (name: string, message: string): Error => Object.assign(new Error(message), { name });

/** Runs each experiment as three evaluation windows, one per `step()`; `failWith` decides how a run ends. */
class ScriptedRunner implements ExperimentRunner {
  started: ExperimentSpec[] = [];
  #release: (() => void) | null = null;
  #reject: ((e: Error) => void) | null = null;
  failWith: (spec: ExperimentSpec) => Error | null = () => null;
  onStart: (spec: ExperimentSpec) => void = () => {};

  async run(spec: ExperimentSpec, onProgress: (p: ExperimentProgress) => void): Promise<Result> {
    this.started.push(spec);
    this.onStart(spec);
    for (let w = 1; w <= 3; w++) {
      try {
        await new Promise<void>((resolve, reject) => {
          this.#release = resolve;
          this.#reject = reject;
        });
      } finally {
        this.#release = this.#reject = null;
      }
      const failure = w === 2 ? this.failWith(spec) : null;
      if (failure) throw failure;
      onProgress({ stage: 'evaluate', done: w, total: 3, perplexity: 40 + w });
    }
    return { id: `r-${this.started.length}`, spec, status: 'done', metrics: { perplexity: 42 } } as unknown as Result;
  }
  cancel(): void {
    const reject = this.#reject;
    this.#release = this.#reject = null;
    reject?.(named(CANCELLED_ERROR, 'Cancelled during evaluation, after window 1 of 3.'));
  }
  /** resolves once a run waits for its next window */
  async waiting(): Promise<void> {
    while (!this.#release) await new Promise((r) => setTimeout(r, 0));
  }
  /** lets the waiting run score one window */
  async step(): Promise<void> {
    await this.waiting();
    this.#release?.();
    await new Promise((r) => setTimeout(r, 0));
  }
}

async function runAll(runner: ScriptedRunner, queue: LabQueue): Promise<void> {
  const done = queue.start();
  let finished = false;
  void done.then(() => (finished = true));
  while (!finished) {
    await Promise.race([runner.step(), done]);
  }
}

describe('the run queue', () => {
  it('runs experiments in order, storing each result before the next run starts', async () => {
    const kv = memoryKeyValue();
    const runner = new ScriptedRunner();
    const queue = new LabQueue(runner, new LabStore(kv));
    const events: QueueEvent['type'][] = [];
    queue.subscribe((e) => events.push(e.type));
    const stored: number[] = [];
    runner.onStart = () => stored.push(((kv.data.get(STORE_KEY) as StoredLabV1 | undefined)?.results ?? []).length);
    await queue.enqueue([spec(8), spec(4)]);
    await queue.enqueue([spec(2)], true); // ahead of the waiting ones
    await runAll(runner, queue);
    expect(runner.started.map((s) => (s.method as { bits: number }).bits)).toEqual([2, 8, 4]);
    expect(stored).toEqual([0, 1, 2]);
    const saved = kv.data.get(STORE_KEY) as StoredLabV1;
    expect(saved.results.map((r) => r.status)).toEqual(['done', 'done', 'done']);
    expect(saved.queue).toEqual([]);
    expect(events.filter((t) => t === 'run-start')).toHaveLength(3);
    expect(events.filter((t) => t === 'progress')).toHaveLength(9);
    expect(queue.state().draining).toBe(false);
  });

  it('cancels one run and goes on; cancelling the queue drops what waits but keeps results', async () => {
    const runner = new ScriptedRunner();
    const queue = new LabQueue(runner, new LabStore(memoryKeyValue()));
    const ends: string[] = [];
    queue.subscribe((e) => e.type === 'run-end' && ends.push(e.status));
    await queue.enqueue([spec(8), spec(4), spec(3), spec(2)]);
    const done = queue.start();
    await runner.step();
    await runner.waiting();
    queue.cancel(); // W8 cancelled mid-run
    await runner.step(); // W4 runs to the end
    await runner.step();
    await runner.step();
    await runner.waiting(); // W3 waits for its first window
    await queue.cancelQueue();
    await done;
    expect(ends).toEqual(['cancelled', 'done', 'cancelled']);
    expect(queue.state().results.map((r) => (r.spec.method as { bits: number }).bits)).toEqual([4]);
    expect(queue.state().queue).toEqual([]);
  });

  it('keeps a run cut off by a lost device as interrupted, then waits or goes on as the setting says', async () => {
    for (const policy of ['wait', 'continue'] as const) {
      const runner = new ScriptedRunner();
      runner.failWith = (s) => ((s.method as { bits: number }).bits === 8 ? named(DEVICE_LOST_ERROR, 'The GPU device was lost.') : null);
      const queue = new LabQueue(runner, new LabStore(memoryKeyValue()));
      queue.setDeviceLostPolicy(policy);
      await queue.enqueue([spec(8), spec(4)]);
      await runAll(runner, queue);
      const [lost, ...rest] = queue.state().results;
      expect(lost.status).toBe('interrupted');
      expect(lost.partial).toMatchObject({ stage: 'evaluate', windowsDone: 1, windowsTotal: 3, perplexity: 41 });
      if (policy === 'wait') {
        expect(rest).toEqual([]);
        expect(queue.state().queue).toHaveLength(1);
        expect(queue.state().paused).toMatch(/lost.*waits/);
        await runAll(runner, queue); // Run queue: goes on with a new device
        expect(queue.state().paused).toBeNull();
      }
      expect(queue.state().results.map((r) => r.status)).toEqual(['interrupted', 'done']);
    }
  });

  it('applies the setting when the engine itself ends a run as interrupted (device lost inside runExperiment)', async () => {
    const runner = new ScriptedRunner();
    const run = runner.run.bind(runner);
    runner.run = async (s, onProgress) => {
      const r = await run(s, onProgress);
      return (s.method as { bits: number }).bits === 8 ? { ...r, status: 'interrupted', error: 'The GPU device was lost (reason: unknown).' } : r;
    };
    const queue = new LabQueue(runner, new LabStore(memoryKeyValue()));
    await queue.enqueue([spec(8), spec(4)]);
    await runAll(runner, queue);
    expect(queue.state().results.map((r) => r.status)).toEqual(['interrupted']);
    expect(queue.state().paused).toMatch(/device was lost.*The queue waits/);
    expect(queue.state().queue).toHaveLength(1);
  });

  it('gives back a run that was in flight when the page closed as interrupted, with its progress', async () => {
    const kv = memoryKeyValue();
    const runner = new ScriptedRunner();
    const queue = new LabQueue(runner, new LabStore(kv));
    await queue.saveSettings({ windows: 3 });
    await queue.enqueue([spec(8), spec(4)]);
    void queue.start();
    await runner.step();
    await runner.step();
    await runner.waiting();
    await new Promise((r) => setTimeout(r, 0));
    // the page goes away: a new worker reads the same IndexedDB
    const next = new LabQueue(new ScriptedRunner(), new LabStore(kv));
    const { state, settings } = await next.restore();
    expect(settings).toEqual({ windows: 3 });
    expect(state.results).toHaveLength(1);
    expect(state.results[0]).toMatchObject({ status: 'interrupted', partial: { windowsDone: 2, windowsTotal: 3, perplexity: 42 } });
    expect(state.queue.map((q) => (q.spec.method as { bits: number }).bits)).toEqual([4]);
    expect(state.queue[0].running).toBeUndefined();
  });
});

describe('progress batching for the page', () => {
  it('sends progress in batches, in order, and flushes them before any other event', async () => {
    const sent: QueueEvent[] = [];
    const send = batchProgress((e) => sent.push(e), 20);
    const p = (done: number): QueueEvent => ({ type: 'progress', itemId: 'a', progress: { stage: 'load', done, total: 70 } });
    for (let i = 1; i <= 5; i++) send(p(i));
    expect(sent).toEqual([]);
    await new Promise((r) => setTimeout(r, 40));
    expect(sent).toEqual([{ type: 'progress-batch', itemId: 'a', events: [1, 2, 3, 4, 5].map((done) => ({ stage: 'load', done, total: 70 })) }]);
    send(p(6));
    send({ type: 'run-end', itemId: 'a', status: 'done', message: null, result: null });
    expect(sent.slice(1).map((e) => e.type)).toEqual(['progress-batch', 'run-end']);
    await new Promise((r) => setTimeout(r, 40));
    expect(sent).toHaveLength(3);
  });
});
