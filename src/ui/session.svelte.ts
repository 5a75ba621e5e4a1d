/**
 * The page's state for the Model and Evaluate sections: the form, the queue
 * of experiments, the run in flight (stages, elapsed time, cancel) and the
 * results. The work itself happens in the worker, one run at a time, in
 * queue order; this sends intents, records what comes back and keeps it all
 * in IndexedDB (src/lab/store.ts), each result before the next run starts.
 */
import { untrack } from 'svelte';
import type { PartialProgress } from '../core/experiment';
import { mergeImported, type SourcedResult } from '../core/results-import';
import { decodeExperiments, encodeExperiments, shareParam } from '../core/share';
import { LabStore, partialProgress, interruptedResult, type QueueItem } from '../lab/store';
import type { ExperimentSpec, Result } from '../worker/api';
import { CANCELLED_ERROR, DEVICE_LOST_ERROR } from '../worker/api';
import { runInWorker, type LabClient } from '../worker/client';
import {
  applyProgress,
  DEFAULT_FORM,
  defaultSweep,
  endStages,
  formFromSettings,
  formProblem,
  initialStages,
  specFromForm,
  stagesWithResult,
  windowsTotalFor,
  type EvaluateForm,
  type StageState,
} from './evaluate';

export type RunStatus = 'idle' | 'running' | 'cancelling' | 'done' | 'cancelled' | 'failed';
export type { QueueItem };

let nextId = 0;
const queueId = (): string => `q-${Date.now().toString(36)}-${(nextId++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

export class LabSession {
  form = $state<EvaluateForm>({ ...DEFAULT_FORM });
  status = $state<RunStatus>('idle');
  /** why the last run ended early (cancelled or failed) */
  message = $state<string | null>(null);
  /** the spec of the run in flight or of the last one */
  spec = $state.raw<ExperimentSpec | null>(null);
  stages = $state.raw<StageState[]>([]);
  startedAt = $state<number | null>(null);
  endedAt = $state<number | null>(null);
  /** page clock, ticking while a run is in flight, for elapsed times */
  now = $state(performance.now());
  /** finished runs, oldest first, including those restored from IndexedDB */
  results = $state.raw<Result[]>([]);
  /** waiting experiments in order; the first one carries `running` while it runs */
  queue = $state.raw<QueueItem[]>([]);
  /** true while the queue is being worked through */
  draining = $state(false);
  /** saved state has been read (or there is no storage): only then is anything written */
  restored = $state(false);
  /** what went wrong reading or writing saved state, for a person */
  storageProblems = $state.raw<string[]>([]);
  /** what the last shared link or results import did, for a person */
  notice = $state.raw<{ kind: 'info' | 'error'; text: string } | null>(null);

  readonly #lab: LabClient;
  #store: LabStore | null;
  #stopAfterCurrent = false;

  constructor(lab: LabClient, store: LabStore | null = null) {
    this.#lab = lab;
    this.#store = store;
    // the form's settings are saved whenever they change (after the saved ones are read)
    $effect.root(() => {
      $effect(() => {
        $state.snapshot(this.form);
        if (this.restored) untrack(() => void this.#persist());
      });
    });
  }

  /** Reads results, queue and settings back from storage; runs left in flight come back as interrupted results. */
  async restore(): Promise<void> {
    if (!this.#store) {
      this.restored = true;
      return;
    }
    try {
      const { state, problems } = await this.#store.load();
      this.results = state.results;
      this.queue = state.queue;
      if (state.settings !== null) this.form = formFromSettings(state.settings);
      if (problems.length > 0) this.storageProblems = problems;
    } catch (err) {
      // without a readable store, writing could overwrite what is there: keep this session in memory only
      this.#store = null;
      this.storageProblems = [`Reading the saved results from IndexedDB failed (${messageOf(err)}). Results of this session will not survive a reload.`];
    } finally {
      this.restored = true;
    }
  }

  get busy(): boolean {
    return this.status === 'running' || this.status === 'cancelling';
  }

  get problem(): string | null {
    return formProblem(this.form);
  }

  /** Windows in the whole test set for the chosen model and window length. */
  get windowsTotal(): number | undefined {
    return windowsTotalFor(specFromForm(this.form));
  }

  get pending(): QueueItem[] {
    return this.queue.filter((q) => !q.running);
  }

  #formSpec(): ExperimentSpec {
    return specFromForm($state.snapshot(this.form) as EvaluateForm);
  }

  #item(spec: ExperimentSpec): QueueItem {
    return { id: queueId(), spec, addedAt: new Date().toISOString() };
  }

  /** Runs the form's experiment next (ahead of what waits in the queue). */
  async run(): Promise<void> {
    if (this.busy || this.problem) return;
    const running = this.queue.filter((q) => q.running);
    this.queue = [...running, this.#item(this.#formSpec()), ...this.pending];
    await this.startQueue();
  }

  /** Adds the form's experiment to the end of the queue; it runs when the queue does. */
  add(): void {
    if (this.problem) return;
    this.queue = [...this.queue, this.#item(this.#formSpec())];
    void this.#persist();
  }

  /** Queues the default sweep (f32, RTN W8 row, W4 g128, W3 g128, W2 g64) for the form's model and protocol, and runs the queue. */
  async runDefaultSweep(): Promise<void> {
    if (this.problem) return;
    const form = $state.snapshot(this.form) as EvaluateForm;
    this.queue = [...this.queue, ...defaultSweep(form).map((spec) => this.#item(spec))];
    await this.startQueue();
  }

  /** The experiments a link should carry: the queue's, or the form's when the queue is empty. */
  shareSpecs(): ExperimentSpec[] {
    return this.queue.length > 0 ? this.queue.map((q) => q.spec) : this.problem ? [] : [this.#formSpec()];
  }

  /** The URL fragment (`#x=v1:…`) that carries `shareSpecs()`; null when there is nothing to share. */
  shareFragment(): string | null {
    const specs = this.shareSpecs();
    return specs.length > 0 ? encodeExperiments(specs) : null;
  }

  /**
   * Puts the experiments of a shared link into the queue (they wait for Run
   * queue) and says so. A fragment without a share part is ignored; the same
   * experiments already waiting at the end of the queue (the page reloaded
   * with the link still in the address bar) are not added twice.
   */
  openShared(fragment: string): void {
    if (shareParam(fragment) === null) return;
    const decoded = decodeExperiments(fragment);
    if ('error' in decoded) {
      this.notice = { kind: 'error', text: decoded.error };
      return;
    }
    const { specs } = decoded;
    const tail = this.pending.slice(-specs.length).map((q) => JSON.stringify(q.spec));
    const n = `${specs.length} experiment${specs.length === 1 ? '' : 's'}`;
    if (tail.length === specs.length && tail.every((s, i) => s === JSON.stringify(specs[i]))) {
      this.notice = { kind: 'info', text: `The ${n} from the link are already waiting in the queue.` };
      return;
    }
    this.queue = [...this.queue, ...specs.map((spec) => this.#item(spec))];
    void this.#persist();
    this.notice = { kind: 'info', text: `The link added ${n} to the queue. Nothing runs until you press Run queue.` };
  }

  /** Adds results measured elsewhere (already checked by parseResultsFile) to this session's, and keeps them. */
  async importResults(results: SourcedResult[], fileName: string): Promise<void> {
    const { added, skipped } = mergeImported(this.results, results);
    if (added.length > 0) this.results = [...this.results, ...added];
    const n = (k: number) => `${k} result${k === 1 ? '' : 's'}`;
    this.notice = { kind: 'info', text: `Imported ${n(added.length)} from ${fileName}${skipped > 0 ? ` (${n(skipped)} already here were skipped)` : ''}.` };
    await this.#persist();
  }

  /** Takes a waiting experiment out of the queue. */
  remove(id: string): void {
    this.queue = this.queue.filter((q) => q.id !== id || q.running);
    void this.#persist();
  }

  /** Works through the queue in order until it is empty or cancelled. */
  async startQueue(): Promise<void> {
    if (this.draining || !this.restored) return;
    this.draining = true;
    this.#stopAfterCurrent = false;
    void this.#persist();
    try {
      while (this.queue.length > 0 && !this.#stopAfterCurrent) await this.#runFirst();
    } finally {
      this.draining = false;
    }
  }

  /** Stops the run in flight; the queue goes on with the next experiment. */
  cancel(): void {
    if (this.status !== 'running') return;
    this.status = 'cancelling';
    void this.#lab.cancel();
  }

  /** Stops the run in flight and empties the queue; finished results stay. */
  cancelQueue(): void {
    this.#stopAfterCurrent = true;
    this.queue = this.queue.filter((q) => q.running);
    void this.#persist();
    this.cancel();
  }

  async #runFirst(): Promise<void> {
    const [first, ...rest] = this.queue;
    const item: QueueItem = { ...first, running: { startedAt: new Date().toISOString(), progress: null } };
    const spec = item.spec;
    this.queue = [item, ...rest];
    await this.#persist();

    this.spec = spec;
    this.stages = initialStages(spec);
    this.status = 'running';
    this.message = null;
    this.startedAt = this.now = performance.now();
    this.endedAt = null;
    let progress: PartialProgress | null = null;
    const tick = setInterval(() => (this.now = performance.now()), 100);
    const finish = async (result: Result | null): Promise<void> => {
      if (result) this.results = [...this.results, result];
      this.queue = this.queue.filter((q) => q.id !== item.id);
      // the result is stored before the next run starts
      await this.#persist();
    };
    try {
      const result = await runInWorker(this.#lab, spec, (p) => {
        this.stages = applyProgress(this.stages, p, performance.now());
        progress = partialProgress(p, spec, progress);
        const running = { ...item.running!, progress };
        this.queue = this.queue.map((q) => (q.id === item.id ? { ...q, running } : q));
        void this.#persist();
      });
      await finish(result);
      this.#end('done', null);
      this.stages = stagesWithResult(this.stages, result);
    } catch (err) {
      const message = messageOf(err);
      const name = err instanceof Error ? err.name : '';
      if (name === DEVICE_LOST_ERROR) {
        // a lost device is not the experiment's fault: keep how far it got
        await finish(interruptedResult(item, message, progress));
        this.#end('failed', message);
      } else {
        await finish(null);
        this.#end(name === CANCELLED_ERROR ? 'cancelled' : 'failed', message);
      }
    } finally {
      clearInterval(tick);
    }
  }

  #persist(): Promise<void> {
    const store = this.#store;
    if (!store || !this.restored) return Promise.resolve();
    const state = { results: this.results, queue: this.queue, settings: $state.snapshot(this.form) };
    return store.save(state).then(
      () => {
        if (this.storageProblems.length > 0 && this.storageProblems[0].startsWith('Saving')) this.storageProblems = [];
      },
      (err: unknown) => {
        this.storageProblems = [`Saving to IndexedDB failed (${messageOf(err)}): results since then are on this page only and will be lost on reload.`];
      },
    );
  }

  #end(status: RunStatus, message: string | null): void {
    const now = performance.now();
    this.stages = endStages(this.stages, now, status === 'done');
    this.status = status;
    this.message = message;
    this.endedAt = this.now = now;
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
