/**
 * The page's state for the Model and Evaluate sections: the form, the run in
 * flight (stages, elapsed time, cancel) and the results of this session. The
 * work itself happens in the worker; this only sends intents and records
 * what comes back.
 */
import type { ExperimentSpec, Result } from '../worker/api';
import { CANCELLED_ERROR } from '../worker/api';
import { runInWorker, type LabClient } from '../worker/client';
import { applyProgress, DEFAULT_FORM, endStages, formProblem, initialStages, specFromForm, stagesWithResult, windowsTotalFor, type EvaluateForm, type StageState } from './evaluate';

export type RunStatus = 'idle' | 'running' | 'cancelling' | 'done' | 'cancelled' | 'failed';

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
  /** the runs done this session, oldest first */
  results = $state.raw<Result[]>([]);

  readonly #lab: LabClient;

  constructor(lab: LabClient) {
    this.#lab = lab;
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

  async run(): Promise<void> {
    if (this.busy || this.problem) return;
    const spec = specFromForm($state.snapshot(this.form) as EvaluateForm);
    this.spec = spec;
    this.stages = initialStages(spec);
    this.status = 'running';
    this.message = null;
    this.startedAt = this.now = performance.now();
    this.endedAt = null;
    const tick = setInterval(() => (this.now = performance.now()), 100);
    try {
      const result = await runInWorker(this.#lab, spec, (p) => (this.stages = applyProgress(this.stages, p, performance.now())));
      this.results = [...this.results, result];
      this.#end('done', null);
      this.stages = stagesWithResult(this.stages, result);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.#end(error.name === CANCELLED_ERROR ? 'cancelled' : 'failed', error.message);
    } finally {
      clearInterval(tick);
    }
  }

  cancel(): void {
    if (this.status !== 'running') return;
    this.status = 'cancelling';
    void this.#lab.cancel();
  }

  #end(status: RunStatus, message: string | null): void {
    const now = performance.now();
    this.stages = endStages(this.stages, now, status === 'done');
    this.status = status;
    this.message = message;
    this.endedAt = this.now = now;
  }
}
