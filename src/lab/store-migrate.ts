/**
 * Saved lab records, older or damaged, brought to what the current store
 * reads (src/lab/store.ts calls `migrateLab` first thing in decodeLab).
 * Pure, and never throws, whatever IndexedDB hands back:
 *
 * - version 0, a bare list of results (what the results table's JSON export
 *   holds, put under the key by hand or by a script) → version 1 (an object
 *   without a version is not guessed at: decodeLab keeps it aside);
 * - every stored result is checked as strictly as an imported one
 *   (src/core/results-import.ts) except for its spec, which may name any method
 *   (the page's own results of methods newer than the share format): optional
 *   parts an older build did not write (kernels, windowNll, timing,
 *   methodReport, device features) are filled in, metrics JSON wrote as null
 *   read back as NaN, the spec rebuilt from its known fields where it passes
 *   the strict check (results-import.ts's cleanStoredSpec; otherwise kept,
 *   the model reference cleaned to its own fields); a result
 *   that still cannot be read becomes an
 *   `{ unreadable }` entry, which decodeLab counts and drops, and LabStore.load
 *   then keeps the original record aside under its own key, with a message;
 * - queue items: the spec's shape checked, then cleaned as a result's;
 * - a result stored twice (same id and time) is kept once.
 *
 * Records of a newer version pass through untouched: decodeLab refuses them
 * and they are kept aside whole.
 */
import { cleanStoredSpec, rebuildResult, resultProblem, storedSpecProblem } from '../core/results-import';
import { previewJson } from '../core/preview';
import type { ExperimentSpec, Result } from '../core/experiment';

/** the schema version this module migrates to (store.ts's STORE_VERSION; a test holds them equal) */
export const MIGRATED_VERSION = 1;

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** An entry that could not be read, as decodeLab will drop it (and keep the whole record aside). */
export interface UnreadableEntry {
  unreadable: string;
}

/** Defaults for the parts of a Result that earlier builds did not always write. */
function withDefaults(x: Record<string, unknown>): Record<string, unknown> {
  const device = isObject(x.device) ? x.device : {};
  return {
    ...x,
    device: {
      vendor: typeof device.vendor === 'string' ? device.vendor : '',
      architecture: typeof device.architecture === 'string' ? device.architecture : '',
      description: typeof device.description === 'string' ? device.description : '',
      features: Array.isArray(device.features) ? device.features : [],
    },
    timing: x.timing ?? {},
    kernels: x.kernels ?? [],
    windowNll: x.windowNll ?? [],
    methodReport: x.methodReport ?? {},
  };
}

/** One stored result: read as it is, repaired, or marked unreadable with the reason. */
export function migrateResult(x: unknown): Result | UnreadableEntry {
  try {
    if (resultProblem(x, 'stored') === null) return rebuildResult(x as Result, 'stored');
    const id = isObject(x) && typeof x.id === 'string' ? `result ${previewJson(x.id, 40)}` : 'a result';
    if (!isObject(x)) return { unreadable: `${id}: it is not an object` };
    const repaired = withDefaults(x);
    const problem = resultProblem(repaired, 'stored');
    if (problem !== null) return { unreadable: `${id}: ${problem}` };
    return rebuildResult(repaired as unknown as Result, 'stored');
  } catch (err) {
    // a check that throws is a bug in qlab, not a reason to lose the page
    return { unreadable: `a result could not be checked (${err instanceof Error ? err.message : previewJson(err)})` };
  }
}

/** One stored queue item with its model reference cleaned, or marked unreadable. */
export function migrateQueueItem(x: unknown): Record<string, unknown> | UnreadableEntry {
  if (!isObject(x) || typeof x.id !== 'string') return { unreadable: 'a queue item has no id' };
  const spec = x.spec as ExperimentSpec;
  const problem = storedSpecProblem(spec);
  if (problem !== null) return { unreadable: `queue item ${previewJson(x.id, 40)}: spec: ${problem}` };
  const running = isObject(x.running) && typeof x.running.startedAt === 'string' ? { running: { startedAt: x.running.startedAt, progress: isObject(x.running.progress) ? x.running.progress : null } } : {};
  return { id: x.id, spec: cleanStoredSpec(spec), addedAt: typeof x.addedAt === 'string' ? x.addedAt : new Date(0).toISOString(), ...running };
}

/** Results with duplicates (same id and time, e.g. saved twice around a reload) kept once. */
function once(results: (Result | UnreadableEntry)[]): (Result | UnreadableEntry)[] {
  const seen = new Set<string>();
  return results.filter((r) => {
    if ('unreadable' in r) return true;
    const key = `${r.id}\u0000${r.createdAt}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** A stored record, of any earlier shape, as a current-version record (anything unrecognised is returned as it came). */
export function migrateLab(raw: unknown): unknown {
  try {
    let record: Record<string, unknown>;
    if (Array.isArray(raw)) {
      record = { version: MIGRATED_VERSION, savedAt: null, results: raw, queue: [], settings: null };
    } else if (isObject(raw) && raw.version === MIGRATED_VERSION) {
      record = raw;
    } else {
      return raw;
    }
    if (!Array.isArray(record.results) || !Array.isArray(record.queue)) return record;
    return { ...record, results: once(record.results.map(migrateResult)), queue: record.queue.map(migrateQueueItem) };
  } catch {
    return raw; // decodeLab says what it cannot read
  }
}
