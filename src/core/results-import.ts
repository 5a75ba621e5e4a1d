/**
 * Results measured elsewhere — the results table's "Download JSON" from
 * another GPU, the CLI's results.json — read back in. Both write a JSON array
 * of Result. Everything in it is checked before it reaches the table: a file
 * that is not such an array is refused with a message naming the first thing
 * wrong, and an imported result carries `source` (where it came from), so the
 * page can show it as its own series.
 */
import type { ExperimentSpec, Result } from './experiment';
import { previewJson } from './preview';
import { checkSpec, cleanModelRef } from './share';

/** A Result with where it came from; `source` is absent for runs made on this page. */
export type SourcedResult = Result & { source?: string };

/** largest file read (bytes): a full sweep with per-window NLLs is a few MB */
export const MAX_IMPORT_BYTES = 32 * 1024 * 1024;
export const MAX_IMPORT_RESULTS = 10_000;

const STATUSES: readonly Result['status'][] = ['done', 'failed', 'cancelled', 'interrupted'];
const METRIC_NUMBERS = [
  'perplexity',
  'perplexitySe',
  'meanNll',
  'meanNllSe',
  'meanNllSeByWindow',
  'nllSum',
  'bitsPerWeight',
  'weightBytes',
  'peakBytes',
  'quantizedParams',
  'totalParams',
  'prefillTokensPerSecond',
  'decodeTokensPerSecond',
] as const;
const PROTOCOL_NUMBERS = ['windowLength', 'windowsTotal', 'windows', 'scoredTokens', 'textTokens'] as const;

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
// JSON has no NaN or Infinity (JSON.stringify writes null), so a metric may be null where the run had none
const isNumber = (x: unknown): boolean => typeof x === 'number' || x === null;
const isStringArray = (x: unknown): boolean => Array.isArray(x) && x.every((s) => typeof s === 'string');

/**
 * How strictly the spec is read. 'known' (imports, links): every field
 * checked (share.ts's checkSpec: each method kind and the KV-cache setting by
 * src/core/method-spec-check.ts) and the spec rebuilt from them. 'stored'
 * (the page's own saved results): any method with an id is accepted; a spec
 * that passes the strict check is rebuilt by it (stray fields dropped), one
 * that does not (a method this build does not know) is kept as it was, its
 * model reference still cleaned to its own fields — see cleanStoredSpec.
 */
export type SpecCheck = 'known' | 'stored';

/**
 * A stored spec (which passed storedSpecProblem) as the page keeps it:
 * rebuilt from its known fields when it passes the strict check, so a stray
 * field (a token) on its method or KV setting is dropped; otherwise as it
 * was, only the model reference cleaned, so nothing the page saved is lost.
 */
export function cleanStoredSpec(spec: ExperimentSpec): ExperimentSpec {
  const strict = checkSpec(spec);
  return 'value' in strict ? strict.value : { ...spec, model: cleanModelRef(spec.model) };
}

export function storedSpecProblem(spec: unknown): string | null {
  if (!isObject(spec)) return 'it is not an object';
  const m = spec.model;
  if (!isObject(m) || !['embedded', 'hub', 'local'].includes(m.kind as string)) return 'model is not a model reference';
  if (!isObject(spec.method) || typeof spec.method.id !== 'string') return 'method has no id';
  const e = spec.eval;
  if (!isObject(e) || (e.protocol !== 'gptq' && e.protocol !== 'llamacpp') || typeof e.windowLength !== 'number') return 'eval needs a protocol and a window length';
  return null;
}

/** What is wrong with one result, or null when it has every field a Result needs with the right type. */
export function resultProblem(x: unknown, specCheck: SpecCheck = 'known'): string | null {
  if (!isObject(x)) return 'it is not an object';
  if (typeof x.id !== 'string' || x.id.length === 0) return 'id is missing or not a string';
  const specError = specCheck === 'stored' ? storedSpecProblem(x.spec) : ((s) => ('error' in s ? s.error : null))(checkSpec(x.spec));
  if (specError !== null) return `spec: ${specError}`;
  if (!STATUSES.includes(x.status as Result['status'])) return `status ${previewJson(x.status)} is none of ${STATUSES.join(', ')}`;
  if (typeof x.createdAt !== 'string') return 'createdAt is missing or not a string';
  const d = x.device;
  if (!isObject(d) || typeof d.vendor !== 'string' || typeof d.architecture !== 'string' || typeof d.description !== 'string' || !isStringArray(d.features)) {
    return 'device needs vendor, architecture, description (strings) and features (a list of strings)';
  }
  const p = x.protocol;
  if (!isObject(p)) return 'protocol is missing';
  if (p.protocol !== 'gptq' && p.protocol !== 'llamacpp') return `protocol.protocol ${previewJson(p.protocol)} is none of gptq, llamacpp`;
  for (const key of PROTOCOL_NUMBERS) if (typeof p[key] !== 'number') return `protocol.${key} is missing or not a number`;
  const m = x.metrics;
  if (m !== null) {
    if (!isObject(m)) return 'metrics is neither null nor an object';
    for (const key of METRIC_NUMBERS) if (!isNumber(m[key])) return `metrics.${key} is missing or not a number`;
    for (const key of ['prefillGpuTokensPerSecond', 'decodeGpuTokensPerSecond'] as const) if (!isNumber(m[key])) return `metrics.${key} is neither a number nor null`;
    for (const key of ['klDivergence', 'klStdError', 'top1Agreement'] as const) if (m[key] !== undefined && !isNumber(m[key])) return `metrics.${key} is neither a number nor null`;
    if (!isObject(m.peakByCategory) || !Object.values(m.peakByCategory).every(isNumber)) return 'metrics.peakByCategory must map memory categories to bytes';
  }
  if (!isObject(x.timing) || !Object.values(x.timing).every((t) => typeof t === 'number')) return 'timing must map stages to seconds';
  if (!isStringArray(x.kernels)) return 'kernels must be a list of strings';
  if (!Array.isArray(x.windowNll) || !x.windowNll.every(isNumber)) return 'windowNll must be a list of numbers';
  if (!isObject(x.methodReport)) return 'methodReport is missing';
  if (x.error !== undefined && typeof x.error !== 'string') return 'error must be a string';
  if (x.partial !== undefined && !isObject(x.partial)) return 'partial must be an object';
  if (x.source !== undefined && typeof x.source !== 'string') return 'source must be a string';
  const f = x.numericalFault;
  if (f !== undefined && !(isObject(f) && (f.metric === 'nll' || f.metric === 'kl') && typeof f.window === 'number' && typeof f.position === 'number' && typeof f.value === 'string' && typeof f.layer === 'string')) {
    return 'numericalFault must give metric, window, position, value and layer';
  }
  return null;
}

/**
 * The results in a JSON file's text, each marked with `source` (a result
 * that already has one keeps it), or a message for a person naming the file
 * and what is wrong.
 */
export function parseResultsFile(text: string, fileName: string, source: string = fileName): { results: SourcedResult[] } | { error: string } {
  const fail = (why: string) => ({ error: `${fileName} cannot be imported: ${why}.` });
  if (text.length > MAX_IMPORT_BYTES) return fail(`it is larger than ${MAX_IMPORT_BYTES / 1024 / 1024} MB`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return fail(`it is not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!Array.isArray(parsed)) return fail('it is not a list of results (expected the JSON array the results table or the CLI writes)');
  if (parsed.length === 0) return fail('its list of results is empty');
  if (parsed.length > MAX_IMPORT_RESULTS) return fail(`it holds ${parsed.length} results, more than the ${MAX_IMPORT_RESULTS} this page imports at once`);
  const results: SourcedResult[] = [];
  for (const [i, item] of parsed.entries()) {
    const problem = resultProblem(item);
    if (problem) {
      const id = isObject(item) && typeof item.id === 'string' ? ` (id ${item.id.slice(0, 60)})` : '';
      return fail(`result ${i + 1}${id}: ${problem}`);
    }
    const r = rebuildResult(item as SourcedResult);
    results.push({ ...r, source: r.source ?? source });
  }
  return { results };
}

/**
 * A result that passed resultProblem, rebuilt for the page: the spec from its
 * known fields only, so nothing else in it reaches the queue or the store;
 * numbers JSON wrote as null (it has no NaN or Infinity) back as NaN, so every
 * metric is a number again. Also used for results read back from IndexedDB.
 */
export function rebuildResult<R extends Result>(r: R, specCheck: SpecCheck = 'known'): R {
  const spec = specCheck === 'stored' ? { value: cleanStoredSpec(r.spec) } : checkSpec(r.spec);
  return {
    ...r,
    spec: 'value' in spec ? spec.value : r.spec,
    metrics: r.metrics === null ? null : nullsToNaN(r.metrics),
    windowNll: r.windowNll.map((v) => v ?? NaN),
  };
}

/** metrics whose null means "the adapter had no timestamps", not a NaN */
const NULLABLE_METRICS = new Set(['prefillGpuTokensPerSecond', 'decodeGpuTokensPerSecond']);

function nullsToNaN<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = v === null && !NULLABLE_METRICS.has(k) ? NaN : isObject(v) ? nullsToNaN(v) : v;
  return out as T;
}

/**
 * `incoming` to add to `existing`: a result already there (same id and
 * time) is skipped, and one whose id is taken by a different result gets a
 * new id, so rows and points stay distinct.
 */
export function mergeImported(existing: Result[], incoming: SourcedResult[]): { added: SourcedResult[]; skipped: number } {
  const byId = new Map(existing.map((r) => [r.id, r]));
  const added: SourcedResult[] = [];
  let skipped = 0;
  for (const r of incoming) {
    const same = byId.get(r.id);
    if (same && same.createdAt === r.createdAt) {
      skipped++;
      continue;
    }
    let id = r.id;
    for (let n = 2; byId.has(id); n++) id = `${r.id}~${n}`;
    const result = id === r.id ? r : { ...r, id };
    byId.set(id, result);
    added.push(result);
  }
  return { added, skipped };
}
