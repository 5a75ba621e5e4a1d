/**
 * The lab's saved state — results, the run queue and the form's settings —
 * as one versioned record in IndexedDB (idb-keyval), so a reload gives back
 * everything measured so far.
 *
 * The record is `{ version: 1, savedAt, results, queue, settings }`. Reading
 * is a pure function (`decodeLab`); a record this version cannot read (a newer
 * version, no version, the wrong shape) is never overwritten: `LabStore.load`
 * copies it aside under its own key and says so. A queue item that was
 * running when the page went away comes back as a Result with status
 * 'interrupted' and the progress it had made (`recoverInterrupted`).
 *
 * Storage sits behind `KeyValueStore`, so all of this runs in Node tests
 * against `memoryKeyValue()`.
 */
import { get, set } from 'idb-keyval';
import type { ExperimentSpec, PartialProgress, Result } from '../core/experiment';
import type { ExperimentProgress } from './browser-run';
import { migrateLab } from './store-migrate';

export const STORE_VERSION = 1;
/** the idb-keyval key of the lab's record */
export const STORE_KEY = 'qlab/lab';

/** One experiment waiting in the queue, or the one running (then `running` is set). */
export interface QueueItem {
  id: string;
  spec: ExperimentSpec;
  /** ISO time it was queued */
  addedAt: string;
  running?: {
    startedAt: string;
    /** the last progress event, kept so a reload mid-run can say how far it got */
    progress: PartialProgress | null;
  };
}

export interface LabState {
  /** finished runs, oldest first */
  results: Result[];
  /** waiting runs in order; the first may be running */
  queue: QueueItem[];
  /** the form's settings as the UI saved them (the UI checks them when it reads them back) */
  settings: unknown;
}

export interface StoredLabV1 {
  version: 1;
  savedAt: string;
  results: Result[];
  queue: QueueItem[];
  settings: unknown;
}

/** The two operations of idb-keyval the store needs. */
export interface KeyValueStore {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
}

/** IndexedDB through idb-keyval's default database. */
export function idbKeyValue(): KeyValueStore {
  return { get: (key) => get(key), set: (key, value) => set(key, value) };
}

/** An in-memory store that copies values in and out as IndexedDB does (for tests and for pages without IndexedDB). */
export function memoryKeyValue(initial: Record<string, unknown> = {}): KeyValueStore & { data: Map<string, unknown> } {
  const data = new Map<string, unknown>(Object.entries(initial).map(([k, v]) => [k, structuredClone(v)]));
  return {
    data,
    get: async (key) => structuredClone(data.get(key)),
    set: async (key, value) => void data.set(key, structuredClone(value)),
  };
}

export const emptyLabState = (): LabState => ({ results: [], queue: [], settings: null });

export function encodeLab(state: LabState, now: Date = new Date()): StoredLabV1 {
  return { version: STORE_VERSION, savedAt: now.toISOString(), results: state.results, queue: state.queue, settings: state.settings };
}

export interface DecodedLab {
  state: LabState;
  /** what could not be read, for a person */
  problems: string[];
  /** false when the record as a whole could not be read: it must be kept, not overwritten */
  readable: boolean;
}

/**
 * Older record versions → the current one. Version 1 is the first, so there
 * is nothing to migrate yet; version n's migration takes an n record to n + 1.
 */
const MIGRATIONS: Record<number, (record: Record<string, unknown>) => Record<string, unknown>> = {};

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

function looksLikeResult(x: unknown): x is Result {
  return isObject(x) && typeof x.id === 'string' && isObject(x.spec) && typeof x.status === 'string' && isObject(x.protocol);
}
function looksLikeQueueItem(x: unknown): x is QueueItem {
  return isObject(x) && typeof x.id === 'string' && isObject(x.spec) && isObject(x.spec.method) && isObject(x.spec.eval);
}

/** The lab's state from a stored record (undefined: nothing saved yet). */
export function decodeLab(raw: unknown): DecodedLab {
  raw = migrateLab(raw); // older shapes to this version; each result checked strictly (src/lab/store-migrate.ts)
  if (raw === undefined) return { state: emptyLabState(), problems: [], readable: true };
  const unreadable = (why: string): DecodedLab => ({ state: emptyLabState(), problems: [why], readable: false });
  if (!isObject(raw) || typeof raw.version !== 'number' || !Number.isInteger(raw.version)) {
    return unreadable('The saved lab data has no schema version, so this version of qlab cannot read it.');
  }
  if (raw.version > STORE_VERSION) {
    return unreadable(
      `The saved lab data is schema version ${raw.version}, written by a newer qlab; this one reads version ${STORE_VERSION}. ` +
        'Open the lab from the newer version to see those results.',
    );
  }
  let record: Record<string, unknown> = raw;
  for (let v = raw.version; v < STORE_VERSION; v++) {
    const migrate = MIGRATIONS[v];
    if (!migrate) return unreadable(`The saved lab data is schema version ${raw.version}, which this qlab cannot convert to version ${STORE_VERSION}.`);
    record = { ...migrate(record), version: v + 1 };
  }
  if (!Array.isArray(record.results) || !Array.isArray(record.queue)) {
    return unreadable(`The saved lab data says version ${STORE_VERSION} but has no results or queue list.`);
  }
  const problems: string[] = [];
  const results = record.results.filter(looksLikeResult);
  const queue = record.queue.filter(looksLikeQueueItem);
  const dropped = record.results.length - results.length + (record.queue.length - queue.length);
  if (dropped > 0) {
    // the whole record is kept aside by LabStore.load, so these entries are not lost
    return { state: { results, queue, settings: record.settings ?? null }, problems: [`${dropped} saved entr${dropped === 1 ? 'y' : 'ies'} could not be read.`], readable: false };
  }
  return { state: { results, queue, settings: record.settings ?? null }, problems, readable: true };
}

/** A progress event in plain JSON, with the running perplexity of the evaluation stage. */
export function partialProgress(p: ExperimentProgress, spec: ExperimentSpec, previous: PartialProgress | null, now: Date = new Date()): PartialProgress {
  const evaluating = p.stage === 'evaluate';
  return {
    stage: p.stage,
    done: p.done,
    total: p.total,
    windowsDone: evaluating ? p.done : p.stage === 'speed' ? (previous?.windowsDone ?? 0) : 0,
    windowsTotal: evaluating ? p.total : (previous?.windowsTotal ?? spec.eval.windows),
    perplexity: evaluating && p.perplexity !== undefined ? p.perplexity : p.stage === 'speed' ? (previous?.perplexity ?? null) : null,
    at: now.toISOString(),
  };
}

/** The Result for a run that stopped without an answer of its own: page reloaded, GPU device lost. */
export function interruptedResult(item: QueueItem, reason: string, progress: PartialProgress | null, now: Date = new Date()): Result {
  const e = item.spec.eval;
  const windowsTotal = progress?.windowsTotal ?? e.windows ?? 0;
  return {
    id: item.id,
    spec: item.spec,
    status: 'interrupted',
    createdAt: item.running?.startedAt ?? now.toISOString(),
    device: { vendor: '', architecture: '', description: '', features: [] },
    protocol: { protocol: e.protocol, windowLength: e.windowLength, windowsTotal, windows: progress?.windowsDone ?? 0, scoredTokens: 0, textTokens: 0 },
    metrics: null,
    timing: {},
    kernels: [],
    windowNll: [],
    methodReport: {},
    error: reason,
    ...(progress ? { partial: progress } : {}),
  };
}

/** Queue items left running (the page went away mid-run) become interrupted results; the rest of the queue waits. */
export function recoverInterrupted(state: LabState, now: Date = new Date()): { state: LabState; interrupted: Result[] } {
  const interrupted = state.queue
    .filter((q) => q.running)
    .map((q) => interruptedResult(q, 'The page was closed or reloaded while this run was in progress.', q.running?.progress ?? null, now));
  if (interrupted.length === 0) return { state, interrupted };
  return { state: { ...state, results: [...state.results, ...interrupted], queue: state.queue.filter((q) => !q.running) }, interrupted };
}

/** "interrupted during evaluation after window 3 of 40 (ppl 51.20)". */
export function describePartial(p: PartialProgress | undefined): string {
  if (!p) return 'interrupted before it reported any progress';
  if (p.stage === 'evaluate' || p.stage === 'speed') {
    const of = p.windowsTotal === null ? '' : ` of ${p.windowsTotal.toLocaleString('en-US')}`;
    const ppl = p.perplexity === null ? '' : ` (running perplexity ${p.perplexity.toFixed(2)})`;
    return `interrupted ${p.stage === 'speed' ? 'while timing decode speed' : 'during evaluation'} after window ${p.windowsDone.toLocaleString('en-US')}${of}${ppl}`;
  }
  if (p.stage === 'prepare') return 'interrupted while preparing the evaluation text';
  return `interrupted while loading the model (tensor ${p.done} of ${p.total})`;
}

/**
 * The lab's record in a key-value store. Writes are serialised and
 * coalesced: a save resolves once that state (or a later one) is stored.
 */
export class LabStore {
  readonly #kv: KeyValueStore;
  readonly #key: string;
  #next: StoredLabV1 | null = null;
  #chain: Promise<void> = Promise.resolve();

  constructor(kv: KeyValueStore, key: string = STORE_KEY) {
    this.#kv = kv;
    this.#key = key;
  }

  /**
   * The saved state, with interrupted runs turned into results (and saved so).
   * A record that cannot be read is copied under `<key>/unreadable/<time>` first,
   * so the lab can go on saving without losing it.
   */
  async load(now: Date = new Date()): Promise<{ state: LabState; problems: string[]; interrupted: Result[] }> {
    const raw = await this.#kv.get(this.#key);
    const decoded = decodeLab(raw);
    const problems = [...decoded.problems];
    if (!decoded.readable) {
      const aside = `${this.#key}/unreadable/${now.toISOString()}`;
      await this.#kv.set(aside, raw);
      problems.push(`It was kept unchanged in IndexedDB under the key "${aside}"; the lab starts from what it could read.`);
    }
    const { state, interrupted } = recoverInterrupted(decoded.state, now);
    if (interrupted.length > 0 || !decoded.readable) await this.save(state, now);
    return { state, problems, interrupted };
  }

  save(state: LabState, now: Date = new Date()): Promise<void> {
    this.#next = encodeLab(state, now);
    const write = this.#chain.then(() => this.#flush());
    this.#chain = write.catch(() => {});
    return write;
  }

  async #flush(): Promise<void> {
    const record = this.#next;
    if (!record) return;
    this.#next = null;
    await this.#kv.set(this.#key, record);
  }
}
