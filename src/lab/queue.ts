/**
 * The run queue, kept where the GPU is (the page's dedicated worker): runs
 * experiments one at a time in order on one runner (BrowserLab), records every
 * result, and keeps results, queue and the page's settings in the store
 * (IndexedDB) — each result before the next run starts, the running item's
 * progress as it goes, so a reload mid-run gives back an interrupted result
 * with how far it got.
 *
 * The page only sends intents (enqueue, start, cancel, …) and listens to
 * events: the queue's state when it changes, and each run's start, progress
 * and end.
 *
 * When the GPU device is lost mid-run the run is kept as interrupted with its
 * progress; the queue then either waits for the person (`deviceLost: 'wait'`)
 * or goes on with a new device (`'continue'`).
 */
import type { ExperimentSpec, PartialProgress, Result } from '../core/experiment';
import { mergeImported, type SourcedResult } from '../core/results-import';
import type { CANCELLED_ERROR as CancelledName, DEVICE_LOST_ERROR as DeviceLostName, ExperimentProgress } from './browser-run';
import { interruptedResult, partialProgress, type LabStore, type QueueItem } from './store';

export type { QueueItem };

// browser-run.ts's error names, restated (and typed to agree) so the queue does not pull the engine in.
export const CANCELLED_ERROR: typeof CancelledName = 'RunCancelled';
export const DEVICE_LOST_ERROR: typeof DeviceLostName = 'GpuDeviceLost';

export interface QueueState {
  /** finished runs, oldest first (interrupted and imported ones included) */
  results: Result[];
  /** waiting experiments in order; the first carries `running` while it runs */
  queue: QueueItem[];
  /** true while the queue is being worked through */
  draining: boolean;
  /** why the queue stopped to wait for the person (a lost GPU device); null otherwise */
  paused: string | null;
  /** what went wrong reading or writing saved state, for a person */
  problems: string[];
}

export type RunEndStatus = 'done' | 'cancelled' | 'failed' | 'interrupted';

export type QueueEvent =
  /** the queue's state; `results` is left out (null) when they have not changed since the last event, so the page need not re-read them */
  | { type: 'state'; state: Omit<QueueState, 'results'> & { results: Result[] | null } }
  | { type: 'run-start'; itemId: string; spec: ExperimentSpec }
  | { type: 'progress'; itemId: string; progress: ExperimentProgress }
  /** several progress events of one run at once, in order (the worker batches them for the page: batchProgress) */
  | { type: 'progress-batch'; itemId: string; events: ExperimentProgress[] }
  | { type: 'run-end'; itemId: string; status: RunEndStatus; message: string | null; result: Result | null };

export type DeviceLostPolicy = 'wait' | 'continue';

/** What runs one experiment: BrowserLab in the worker. */
export interface ExperimentRunner {
  run(spec: ExperimentSpec, onProgress: (p: ExperimentProgress) => void): Promise<Result>;
  cancel(): void;
}

let nextId = 0;
const queueId = (): string => `q-${Date.now().toString(36)}-${(nextId++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class LabQueue {
  readonly #runner: ExperimentRunner;
  #store: LabStore | null;
  #results: Result[] = [];
  #queue: QueueItem[] = [];
  #settings: unknown = null;
  #draining = false;
  #paused: string | null = null;
  #problems: string[] = [];
  #stopAfterCurrent = false;
  #deviceLost: DeviceLostPolicy = 'wait';
  #restored: Promise<void> | null = null;
  readonly #listeners = new Set<(e: QueueEvent) => void>();
  /** resolves when the drain loop in progress ends */
  #drained: Promise<void> = Promise.resolve();

  constructor(runner: ExperimentRunner, store: LabStore | null, problems: string[] = []) {
    this.#runner = runner;
    this.#store = store;
    this.#problems = problems;
  }

  subscribe(listener: (e: QueueEvent) => void): () => void {
    this.#listeners.add(listener);
    this.#sentResults = null; // a new listener gets the results with the next state
    return () => this.#listeners.delete(listener);
  }

  state(): QueueState {
    return { results: this.#results, queue: this.#queue, draining: this.#draining, paused: this.#paused, problems: this.#problems };
  }

  /** Reads the saved state (once); runs left running by a closed page come back as interrupted results. */
  restore(): Promise<{ state: QueueState; settings: unknown }> {
    this.#restored ??= this.#load();
    return this.#restored.then(() => ({ state: this.state(), settings: this.#settings }));
  }

  async #load(): Promise<void> {
    if (!this.#store) return;
    try {
      const { state, problems } = await this.#store.load();
      this.#results = state.results;
      this.#queue = state.queue;
      this.#settings = state.settings;
      this.#problems = [...this.#problems, ...problems];
    } catch (err) {
      // without a readable store, writing could overwrite what is there: keep this session in memory only
      this.#store = null;
      this.#problems = [...this.#problems, `Reading the saved results from IndexedDB failed (${messageOf(err)}). Results of this session will not survive a reload.`];
    }
  }

  /** Keeps the page's form settings with the results (the page checks them when it reads them back). */
  async saveSettings(settings: unknown): Promise<void> {
    await this.restore();
    this.#settings = settings;
    await this.#persist();
  }

  setDeviceLostPolicy(policy: DeviceLostPolicy): void {
    this.#deviceLost = policy;
  }

  /** Adds experiments at the end of the queue, or right after the running one (`front`); they run when the queue does. */
  async enqueue(specs: ExperimentSpec[], front = false): Promise<QueueState> {
    await this.restore();
    const items = specs.map((spec): QueueItem => ({ id: queueId(), spec, addedAt: new Date().toISOString() }));
    const running = this.#queue.filter((q) => q.running);
    const pending = this.#queue.filter((q) => !q.running);
    this.#queue = front ? [...running, ...items, ...pending] : [...this.#queue, ...items];
    await this.#changed();
    return this.state();
  }

  /** Takes a waiting experiment out of the queue. */
  async remove(id: string): Promise<void> {
    this.#queue = this.#queue.filter((q) => q.id !== id || q.running);
    await this.#changed();
  }

  /** Adds results measured elsewhere (already checked) and keeps them. */
  async importResults(results: SourcedResult[]): Promise<{ added: number; skipped: number }> {
    await this.restore();
    const { added, skipped } = mergeImported(this.#results, results);
    if (added.length > 0) this.#results = [...this.#results, ...added];
    await this.#changed();
    return { added: added.length, skipped };
  }

  /** Starts working through the queue (nothing when it already is); resolves when it stops. */
  async start(): Promise<void> {
    await this.restore();
    if (this.#draining) return this.#drained;
    this.#draining = true;
    this.#paused = null;
    this.#stopAfterCurrent = false;
    this.#drained = (async () => {
      try {
        await this.#changed();
        while (this.#queue.length > 0 && !this.#stopAfterCurrent) await this.#runFirst();
      } finally {
        this.#draining = false;
        await this.#changed();
      }
    })();
    return this.#drained;
  }

  /** Stops the run in flight; the queue goes on with the next experiment. */
  cancel(): void {
    if (this.#queue.some((q) => q.running)) this.#runner.cancel();
  }

  /** Stops the run in flight and empties the queue; finished results stay. */
  async cancelQueue(): Promise<void> {
    this.#stopAfterCurrent = true;
    this.#queue = this.#queue.filter((q) => q.running);
    this.cancel();
    await this.#changed();
  }

  /** Resolves once the queue is idle (for tests and the CLI). */
  idle(): Promise<void> {
    return this.#drained;
  }

  #emit(e: QueueEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(e);
      } catch {
        // a listener that fails (a closed page's proxy) must not stop the queue
      }
    }
  }

  /** the results array last sent to listeners (the array is replaced, never changed in place, when results change) */
  #sentResults: Result[] | null = null;

  #emitState(): void {
    const state = this.state();
    const results = state.results === this.#sentResults ? null : state.results;
    this.#sentResults = state.results;
    this.#emit({ type: 'state', state: { ...state, results } });
  }

  async #changed(): Promise<void> {
    this.#emitState();
    await this.#persist();
  }

  async #runFirst(): Promise<void> {
    const [first, ...rest] = this.#queue;
    const item: QueueItem = { ...first, running: { startedAt: new Date().toISOString(), progress: null } };
    this.#queue = [item, ...rest];
    await this.#changed();
    this.#emit({ type: 'run-start', itemId: item.id, spec: item.spec });

    let progress: PartialProgress | null = null;
    const finish = async (status: RunEndStatus, result: Result | null, message: string | null): Promise<void> => {
      if (result) this.#results = [...this.#results, result];
      this.#queue = this.#queue.filter((q) => q.id !== item.id);
      this.#emitState();
      this.#emit({ type: 'run-end', itemId: item.id, status, message, result });
      // the result is stored before the next run starts
      await this.#persist();
    };
    try {
      const result = await this.#runner.run(item.spec, (p) => {
        progress = partialProgress(p, item.spec, progress);
        const running = { ...item.running!, progress };
        this.#queue = this.#queue.map((q) => (q.id === item.id ? { ...q, running } : q));
        this.#emit({ type: 'progress', itemId: item.id, progress: p });
        void this.#persist();
      });
      if (result.status === 'interrupted') {
        // the engine ended the run itself when the device was lost
        await this.#deviceWasLost(result.error ?? 'The GPU device was lost.');
        await finish('interrupted', result, result.error ?? null);
      } else {
        await finish(result.status, result, result.error ?? null);
      }
    } catch (err) {
      const message = messageOf(err);
      const name = err instanceof Error ? err.name : '';
      if (name === DEVICE_LOST_ERROR) {
        // a lost device is not the experiment's fault: keep how far it got
        await this.#deviceWasLost(message);
        await finish('interrupted', interruptedResult(item, message, progress), message);
      } else {
        await finish(name === CANCELLED_ERROR ? 'cancelled' : 'failed', null, message);
      }
    }
  }

  /** After a lost device: the queue waits for the person, or goes on (BrowserLab asks for a new device), as the setting says. */
  async #deviceWasLost(message: string): Promise<void> {
    if (this.#deviceLost !== 'wait') return;
    this.#stopAfterCurrent = true;
    this.#paused = `${message} The queue waits: press Run queue to go on with a new GPU device.`;
  }

  #persist(): Promise<void> {
    const store = this.#store;
    if (!store) return Promise.resolve();
    return store.save({ results: this.#results, queue: this.#queue, settings: this.#settings }).then(
      () => {
        if (this.#problems.length > 0 && this.#problems[0].startsWith('Saving')) {
          this.#problems = [];
          this.#emitState();
        }
      },
      (err: unknown) => {
        const text = `Saving to IndexedDB failed (${messageOf(err)}): results since then are on this page only and will be lost on reload.`;
        if (this.#problems[0] !== text) {
          this.#problems = [text];
          this.#emitState();
        }
      },
    );
  }
}

/**
 * A listener that forwards progress events in batches, at most one message
 * per `ms` (a run loading a model reports every tensor), and everything else
 * at once, after the progress that came before it.
 */
export function batchProgress(send: (e: QueueEvent) => void, ms = 150): (e: QueueEvent) => void {
  let batch: { itemId: string; events: ExperimentProgress[] } | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const flush = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (batch) send({ type: 'progress-batch', itemId: batch.itemId, events: batch.events });
    batch = null;
  };
  return (e) => {
    if (e.type !== 'progress') {
      flush();
      send(e);
      return;
    }
    if (batch && batch.itemId !== e.itemId) flush();
    batch ??= { itemId: e.itemId, events: [] };
    batch.events.push(e.progress);
    timer ??= setTimeout(flush, ms);
  };
}
