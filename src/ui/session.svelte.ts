/**
 * The page's state for the Model and Evaluate sections: the experiment
 * builder's form, a mirror of the worker's run queue and results, and the
 * run in flight (stages, elapsed and remaining time). The queue itself lives
 * in the worker beside the GPU (src/lab/queue.ts), which runs it and keeps
 * it in IndexedDB; this sends intents and renders the events that come back,
 * so the page's main thread only ever does small pieces of work.
 */
import { untrack } from 'svelte';
import type { SourcedResult } from '../core/results-import';
import { decodeExperiments, encodeExperiments, shareParam } from '../core/share';
import type { ExperimentProgress, ExperimentSpec, GpuMemoryReport, QueueEvent, QueueItem, QueueState, Result } from '../worker/api';
import { subscribeToQueue, type LabClient } from '../worker/client';
import {
  applyProgress,
  defaultForm,
  defaultSweep,
  endStages,
  formFromSettings,
  formProblem,
  initialStages,
  specFromForm,
  specsFromForm,
  stagesWithResult,
  windowsTotalFor,
  withBaseline,
  type EvaluateForm,
  type StageState,
} from './evaluate';

export type RunStatus = 'idle' | 'running' | 'cancelling' | 'done' | 'cancelled' | 'failed' | 'interrupted';
export type { QueueItem };

export class LabSession {
  form = $state<EvaluateForm>(defaultForm());
  status = $state<RunStatus>('idle');
  /** why the last run ended early (cancelled, failed, interrupted) */
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
  /** true while the worker works through the queue */
  draining = $state(false);
  /** why the queue stopped to wait (a lost GPU device); null otherwise */
  paused = $state<string | null>(null);
  /** saved state has been read: only then is anything written */
  restored = $state(false);
  /** what went wrong reading or writing saved state, for a person */
  storageProblems = $state.raw<string[]>([]);
  /** the lab's GPU memory (its ledger and every live buffer on its device), read while a run is in flight and after it */
  memory = $state.raw<GpuMemoryReport | null>(null);
  /** the adapter's description (the device results record), for time estimates from earlier runs here */
  deviceDescription = $state<string | null>(null);
  /** what the last shared link or results import did, for a person */
  notice = $state.raw<{ kind: 'info' | 'error'; text: string } | null>(null);

  readonly #lab: LabClient;
  #runningId: string | null = null;
  #tick: ReturnType<typeof setInterval> | null = null;

  constructor(lab: LabClient) {
    this.#lab = lab;
    // the form's settings are saved whenever they change (after the saved ones are read)
    $effect.root(() => {
      $effect(() => {
        const settings = $state.snapshot(this.form);
        if (this.restored) untrack(() => void this.#lab.saveSettings(settings, settings.deviceLost));
      });
    });
  }

  /** Listens to the worker's queue and reads results, queue and settings back from storage. */
  async restore(): Promise<void> {
    await subscribeToQueue(this.#lab, (e) => this.#onEvent(e));
    try {
      const { state, settings } = await this.#lab.restore();
      this.#applyState(state);
      if (settings !== null) this.form = formFromSettings(settings);
      // a run already in flight (the page was not reloaded, only this session restarted) shows up through events
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

  #form(): EvaluateForm {
    return $state.snapshot(this.form) as EvaluateForm;
  }

  /**
   * The experiments the builder makes, with an f32 baseline first where the
   * quantized ones have none among the results or the queue.
   */
  plannedSpecs(): ExperimentSpec[] {
    const form = this.#form();
    if (formProblem(form)) return [];
    const specs = specsFromForm(form);
    return form.autoBaseline ? withBaseline(specs, this.results, this.queue.map((q) => q.spec)) : specs;
  }

  /** Runs the builder's experiments next (ahead of what waits in the queue). */
  async run(): Promise<void> {
    if (this.problem) return;
    await this.#lab.enqueue(this.plannedSpecs(), true);
    await this.startQueue();
  }

  /** Adds the builder's experiments to the end of the queue; they run when the queue does. */
  async add(): Promise<void> {
    if (this.problem) return;
    await this.#lab.enqueue(this.plannedSpecs());
  }

  /** Queues the default sweep (f32, RTN W8 row, W4 g128, W3 g128, W2 g64) for the form's model and protocol, and runs the queue. */
  async runDefaultSweep(): Promise<void> {
    if (this.problem) return;
    await this.#lab.enqueue(defaultSweep(this.#form()));
    await this.startQueue();
  }

  /** The experiments a link should carry: the queue's, or the builder's when the queue is empty. */
  shareSpecs(): ExperimentSpec[] {
    return this.queue.length > 0 ? this.queue.map((q) => q.spec) : this.plannedSpecs();
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
  async openShared(fragment: string): Promise<void> {
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
    this.#applyState(await this.#lab.enqueue(specs));
    this.notice = { kind: 'info', text: `The link added ${n} to the queue. Nothing runs until you press Run queue.` };
  }

  /** Adds results measured elsewhere (already checked by parseResultsFile) to this session's, and keeps them. */
  async importResults(results: SourcedResult[], fileName: string): Promise<void> {
    const { added, skipped } = await this.#lab.importResults(results);
    const n = (k: number) => `${k} result${k === 1 ? '' : 's'}`;
    this.notice = { kind: 'info', text: `Imported ${n(added)} from ${fileName}${skipped > 0 ? ` (${n(skipped)} already here were skipped)` : ''}.` };
  }

  /** Takes a waiting experiment out of the queue. */
  remove(id: string): void {
    void this.#lab.remove(id);
  }

  /** Works through the queue in order until it is empty or cancelled. */
  async startQueue(): Promise<void> {
    if (!this.restored) return;
    this.paused = null;
    await this.#lab.startQueue();
  }

  /** Stops the run in flight; the queue goes on with the next experiment. */
  cancel(): void {
    if (this.status !== 'running') return;
    this.status = 'cancelling';
    void this.#lab.cancel();
  }

  /** Stops the run in flight and empties the queue; finished results stay. */
  cancelQueue(): void {
    if (this.status === 'running') this.status = 'cancelling';
    void this.#lab.cancelQueue();
  }

  #progress: { p: ExperimentProgress; at: number }[] = [];
  #flushTimer: ReturnType<typeof setTimeout> | null = null;

  #flushProgress(): void {
    if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    if (this.#progress.length === 0) return;
    let stages = this.stages;
    for (const { p, at } of this.#progress) stages = applyProgress(stages, p, at);
    this.#progress = [];
    this.stages = stages;
  }

  /** Destroys the worker's GPU device, as a driver reset would: a demo of a lost GPU. */
  simulateDeviceLoss(): void {
    void this.#lab.loseDevice();
  }

  /** Asks the worker how much GPU memory the lab holds now. */
  async readMemory(): Promise<GpuMemoryReport> {
    const report = await this.#lab.memory();
    this.memory = report;
    return report;
  }

  #applyState(state: Omit<QueueState, 'results'> & { results: Result[] | null }): void {
    // unchanged results are not sent again: the table and the plot re-render only when they change
    if (state.results !== null) this.results = state.results;
    if (JSON.stringify(state.queue) !== JSON.stringify(this.queue)) this.queue = state.queue;
    this.draining = state.draining;
    this.paused = state.paused;
    this.storageProblems = state.problems;
  }

  #onEvent(e: QueueEvent): void {
    const now = performance.now();
    switch (e.type) {
      case 'state':
        this.#applyState(e.state);
        return;
      case 'run-start':
        this.#runningId = e.itemId;
        this.spec = e.spec;
        this.stages = initialStages(e.spec);
        this.status = 'running';
        this.message = null;
        this.startedAt = this.now = now;
        this.endedAt = null;
        if (this.#tick === null) {
          let ticks = 0;
          this.#tick = setInterval(() => {
            this.now = performance.now();
            if (ticks++ % 2 === 0) void this.readMemory();
          }, 500);
        }
        return;
      case 'progress':
      case 'progress-batch':
        if (e.itemId !== this.#runningId) return;
        // loading reports every tensor: events are applied in batches, so the page re-renders a few times a second, not per event
        for (const p of e.type === 'progress' ? [e.progress] : e.events) this.#progress.push({ p, at: now });
        this.#flushTimer ??= setTimeout(() => this.#flushProgress(), 150);
        return;
      case 'run-end': {
        if (e.itemId !== this.#runningId) return;
        this.#flushProgress();
        this.#runningId = null;
        if (this.#tick !== null) clearInterval(this.#tick);
        this.#tick = null;
        this.stages = endStages(this.stages, now, e.status === 'done');
        if (e.result && e.status === 'done') this.stages = stagesWithResult(this.stages, e.result);
        this.status = e.status;
        this.message = e.message;
        this.endedAt = this.now = now;
        void this.readMemory();
      }
    }
  }
}
