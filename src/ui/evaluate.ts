/**
 * The Evaluate section's logic as pure functions, so the components only
 * render: the form's choices → an ExperimentSpec, progress events → one row
 * per stage, a Result → the cells of the results table.
 */
import { experimentName, type ExperimentSpec, type Result } from '../core/experiment';
import { formatCount } from '../core/format';
import type { SourcedResult } from '../core/results-import';
import type { ProtocolName } from '../core/protocols';
import { EMBEDDED_MODELS, type ExperimentProgress } from '../worker/api';
import { catalogEntry, checkOption, defaultOptions, KV_CHOICES, METHOD_CATALOG, type GroupChoice, type MethodEntry, type OptionValue } from './method-catalog';
import { modelRefFromId } from '../core/model-ref';

export const WINDOW_LENGTHS = [128, 256, 512] as const;

/** One method's part of the builder: ticked or not, its bit widths and group sizes, its options. */
export interface MethodChoice {
  on: boolean;
  bits: number[];
  groups: GroupChoice[];
  options: Record<string, OptionValue>;
}

/** What the queue does when the GPU device is lost mid-run. */
export type DeviceLostPolicy = 'wait' | 'continue';

export interface EvaluateForm {
  modelId: string;
  /** the f32 baseline as an experiment of its own */
  baseline: boolean;
  /** per catalog entry (METHOD_CATALOG), by method id */
  methods: Record<string, MethodChoice>;
  /** put an f32 baseline first when quantized runs have none to compare with */
  autoBaseline: boolean;
  /** KV-cache settings (KV_CHOICES ids); every experiment runs with each */
  kv: string[];
  protocol: ProtocolName;
  windowLength: (typeof WINDOW_LENGTHS)[number];
  /** the whole test set, or only the first `windows` windows */
  fullTestSet: boolean;
  /** null while the number field is empty */
  windows: number | null;
  deviceLost: DeviceLostPolicy;
}

function defaultChoice(entry: MethodEntry, on: boolean): MethodChoice {
  return { on, bits: [...entry.defaultBits], groups: [...entry.defaultGroups], options: defaultOptions(entry) };
}

export function defaultForm(): EvaluateForm {
  return {
    modelId: 'qlab-llama-6m',
    baseline: false,
    methods: Object.fromEntries(METHOD_CATALOG.map((m) => [m.id, defaultChoice(m, m.id === 'rtn')])),
    autoBaseline: true,
    kv: ['f32'],
    protocol: 'gptq',
    windowLength: 512,
    fullTestSet: false,
    windows: 4,
    deviceLost: 'wait',
  };
}

export const DEFAULT_FORM: EvaluateForm = defaultForm();

/** What keeps the form from running, in words; null when it can run. */
export function formProblem(form: EvaluateForm): string | null {
  if (!form.fullTestSet && !(Number.isInteger(form.windows) && (form.windows ?? 0) >= 1)) {
    return 'The number of windows must be a whole number of at least 1.';
  }
  for (const entry of METHOD_CATALOG) {
    const c = form.methods[entry.id];
    if (!c?.on) continue;
    if (entry.bits.length > 0 && c.bits.length === 0) return `${entry.label}: tick at least one bit width.`;
    if (entry.groups.length > 0 && c.groups.length === 0) return `${entry.label}: tick at least one group size.`;
  }
  if (!form.baseline && !METHOD_CATALOG.some((m) => form.methods[m.id]?.on)) return 'Tick the f32 baseline or at least one method.';
  if (form.kv.length === 0) return 'KV cache: tick at least one format (f32 keeps it unquantized).';
  return null;
}

/** The model and evaluation part of every spec the form builds. */
export function baseSpec(form: EvaluateForm): Omit<ExperimentSpec, 'method'> {
  return {
    model: modelRefFromId(form.modelId),
    eval: { protocol: form.protocol, windowLength: form.windowLength, windows: form.fullTestSet ? null : form.windows },
  };
}

/**
 * The experiments the builder's choices make: the baseline if ticked, then
 * each ticked method × its bit widths (high to low) × its group sizes, in
 * catalog order. Cells a method does not take are left out.
 */
export function specsFromForm(form: EvaluateForm): ExperimentSpec[] {
  const kvs = KV_CHOICES.filter((c) => form.kv.includes(c.id));
  return kvs.flatMap((choice) => methodSpecs(form).map((s) => (choice.kv ? { ...s, kv: { ...choice.kv } } : s)));
}

function methodSpecs(form: EvaluateForm): ExperimentSpec[] {
  const base = baseSpec(form);
  const specs: ExperimentSpec[] = form.baseline ? [{ ...base, method: { id: 'none' } }] : [];
  for (const entry of METHOD_CATALOG) {
    const c = form.methods[entry.id];
    if (!c?.on) continue;
    const bits = entry.bits.length > 0 ? entry.bits.filter((b) => c.bits.includes(b)) : [0];
    const groups = entry.groups.length > 0 ? entry.groups.filter((g) => c.groups.includes(g)) : ['row' as const];
    for (const b of bits) {
      for (const g of groups) {
        const method = entry.spec({ bits: b, groupSize: g }, c.options);
        if (method) specs.push({ ...base, method });
      }
    }
  }
  return specs;
}

/** The first experiment of the form (what a one-experiment link or label shows). */
export function specFromForm(form: EvaluateForm): ExperimentSpec {
  return specsFromForm(form)[0] ?? { ...baseSpec(form), method: { id: 'none' } };
}

const evalKey = (s: Pick<ExperimentSpec, 'model' | 'eval'>): string => JSON.stringify([s.model, s.eval]);

/**
 * `specs` with an f32 baseline put first for each model and evaluation that
 * has quantized runs but no baseline among them, the finished results or the
 * queue: KL divergence, the frontier and "how much worse than f32" all need one.
 */
export function withBaseline(specs: ExperimentSpec[], results: readonly Result[], queued: readonly ExperimentSpec[]): ExperimentSpec[] {
  const isBaseline = (s: ExperimentSpec): boolean => s.method.id === 'none' && !s.kv;
  const have = new Set([
    ...results.filter((r) => r.status === 'done' && isBaseline(r.spec)).map((r) => evalKey(r.spec)),
    ...queued.filter(isBaseline).map(evalKey),
    ...specs.filter(isBaseline).map(evalKey),
  ]);
  const baselines: ExperimentSpec[] = [];
  for (const s of specs) {
    const key = evalKey(s);
    if (isBaseline(s) || have.has(key)) continue;
    have.add(key);
    baselines.push({ model: s.model, eval: s.eval, method: { id: 'none' } });
  }
  return [...baselines, ...specs];
}

/**
 * The form's settings read back from storage: every field that is present
 * and valid, the default for the rest (settings from an older page may lack
 * fields or hold choices this one no longer offers). Settings of the
 * one-method form before the builder (method, bits, groupSize, …) are read too.
 */
export function formFromSettings(saved: unknown): EvaluateForm {
  const form = defaultForm();
  if (typeof saved !== 'object' || saved === null) return form;
  const s = saved as Record<string, unknown>;
  const oneOf = <T>(value: unknown, allowed: readonly T[]): value is T => allowed.includes(value as T);
  // Hub models come back too (they are in the download cache); picked local files do not outlive the page
  if (typeof s.modelId === 'string' && (EMBEDDED_MODELS.some((m) => m.id === s.modelId) || s.modelId.startsWith('hub:'))) form.modelId = s.modelId;
  for (const key of ['baseline', 'autoBaseline', 'fullTestSet'] as const) {
    if (typeof s[key] === 'boolean') form[key] = s[key];
  }
  if (oneOf(s.protocol, ['gptq', 'llamacpp'] as const)) form.protocol = s.protocol;
  if (oneOf(s.windowLength, WINDOW_LENGTHS)) form.windowLength = s.windowLength;
  if (s.windows === null || (typeof s.windows === 'number' && Number.isFinite(s.windows))) form.windows = s.windows;
  if (oneOf(s.deviceLost, ['wait', 'continue'] as const)) form.deviceLost = s.deviceLost;
  if (Array.isArray(s.kv)) form.kv = KV_CHOICES.map((c) => c.id).filter((id) => (s.kv as unknown[]).includes(id));
  const methods = typeof s.methods === 'object' && s.methods !== null ? (s.methods as Record<string, unknown>) : null;
  if (methods) {
    for (const entry of METHOD_CATALOG) {
      const m = methods[entry.id];
      if (typeof m !== 'object' || m === null) continue;
      form.methods[entry.id] = choiceFrom(entry, m as Record<string, unknown>);
    }
  } else if (oneOf(s.method, ['none', 'rtn'] as const)) {
    // the one-method form: its method becomes the builder's one ticked choice
    const rtn = catalogEntry('rtn')!;
    form.baseline = s.method === 'none';
    form.methods.rtn = choiceFrom(rtn, { on: s.method === 'rtn', bits: [s.bits], groups: [s.groupSize], options: s });
  }
  return form;
}

function choiceFrom(entry: MethodEntry, m: Record<string, unknown>): MethodChoice {
  const list = (x: unknown): unknown[] => (Array.isArray(x) ? x : []);
  const bits = entry.bits.filter((b) => list(m.bits).includes(b));
  const groups = entry.groups.filter((g) => list(m.groups).includes(g));
  const saved = typeof m.options === 'object' && m.options !== null ? (m.options as Record<string, unknown>) : {};
  return {
    on: m.on === true,
    bits: bits.length > 0 || Array.isArray(m.bits) ? bits : [...entry.defaultBits],
    groups: groups.length > 0 || Array.isArray(m.groups) ? groups : [...entry.defaultGroups],
    options: Object.fromEntries(entry.options.map((o) => [o.key, checkOption(o, saved[o.key])])),
  };
}

/** The methods of the default sweep, from the baseline down to 2 bits. */
export const DEFAULT_SWEEP: readonly ExperimentSpec['method'][] = [
  { id: 'none' },
  { id: 'rtn', bits: 8, groupSize: 'row', symmetric: false },
  { id: 'rtn', bits: 4, groupSize: 128, symmetric: false },
  { id: 'rtn', bits: 3, groupSize: 128, symmetric: false },
  { id: 'rtn', bits: 2, groupSize: 64, symmetric: false },
];

/** The default sweep for the form's model on its protocol, window length and slice. */
export function defaultSweep(form: EvaluateForm): ExperimentSpec[] {
  const base = baseSpec(form);
  return DEFAULT_SWEEP.map((method) => ({ ...base, method: { ...method } }));
}

export function modelLabel(spec: ExperimentSpec): string {
  const m = spec.model;
  return m.kind === 'embedded' ? m.id : m.kind === 'hub' ? m.repo : m.name;
}

/** Windows in the whole test set for an embedded model and window length; undefined for other models. */
export function windowsTotalFor(spec: ExperimentSpec): number | undefined {
  const ref = spec.model;
  const model = ref.kind === 'embedded' ? EMBEDDED_MODELS.find((m) => m.id === ref.id) : undefined;
  return model ? Math.floor(model.wikitextTokens / spec.eval.windowLength) : undefined;
}

/** "gptq, 2 windows of 128" / "llamacpp, all 865 windows of 512" (when the total is known). */
export function evalLabel(spec: ExperimentSpec, windowsTotal?: number): string {
  const e = spec.eval;
  const n = e.windows === null ? (windowsTotal === undefined ? 'all windows' : `all ${formatCount(windowsTotal)} windows`) : `${formatCount(e.windows)} window${e.windows === 1 ? '' : 's'}`;
  return `${e.protocol}, ${n} of ${e.windowLength}`;
}

export function specLabel(spec: ExperimentSpec): string {
  return `${modelLabel(spec)} · ${experimentName(spec)} · ${evalLabel(spec, windowsTotalFor(spec))}`;
}

// ------------------------------------------------------------------ progress

/** Stage names of the engine's progress events; methods may report others, shown after these. */
export type StageKey = string;

export interface StageState {
  key: StageKey;
  label: string;
  /** what a unit of `done` is ("tensors", "windows"); empty for a step without a count */
  unit: string;
  done: number;
  total: number;
  detail: string;
  /** page clock (performance.now()) when the stage began / ended; null before */
  startedAt: number | null;
  endedAt: number | null;
}

/** The stages a run goes through, in order, with their labels and units. */
const STAGES: readonly { key: string; label: string; unit: string }[] = [
  { key: 'prepare', label: 'Evaluation text', unit: '' },
  { key: 'load', label: 'Load weights', unit: 'tensors' },
  { key: 'calibrate', label: 'Calibrate', unit: 'blocks' },
  { key: 'quantize', label: 'Quantize', unit: 'layers' },
  { key: 'evaluate', label: 'Perplexity', unit: 'windows' },
  { key: 'speed', label: 'Decode speed', unit: '' },
];
const ORDER = STAGES.map((s) => s.key);
const orderOf = (key: string): number => {
  const i = ORDER.indexOf(key);
  return i >= 0 ? i : ORDER.indexOf('evaluate') - 0.5; // a method's own stage: before evaluation
};

function newStage(key: string): StageState {
  const known = STAGES.find((s) => s.key === key);
  return { key, label: known?.label ?? key[0].toUpperCase() + key.slice(1), unit: known?.unit ?? '', done: 0, total: 0, detail: '', startedAt: null, endedAt: null };
}

/**
 * The rows a run starts with. RTN quantizes each layer as it loads, so its
 * quantize events share the load row; methods that calibrate get their own
 * rows, and a stage no row expects gets one when its first event arrives.
 */
export function initialStages(spec: ExperimentSpec): StageState[] {
  const entry = catalogEntry(spec.method.id);
  if (entry?.calibrates) {
    // calibrated methods quantize layer by layer on the calibration text before the model is loaded for evaluation
    return ['prepare', 'quantize', 'load', 'evaluate', 'speed'].map((k) => (k === 'quantize' ? { ...newStage(k), label: 'Calibrate + quantize' } : newStage(k)));
  }
  const keys = ['prepare', 'load', 'evaluate', 'speed'];
  return keys.map((k) => (k === 'load' && spec.method.id !== 'none' ? { ...newStage(k), label: 'Load + quantize' } : newStage(k)));
}

/**
 * The stages after one progress event at page time `now`. A stage ends with
 * its last unit (done = total) or when a later stage reports; the next stage
 * begins the moment the one before it ends, so each elapsed time covers the
 * whole stage, not just the time after its first report.
 */
export function applyProgress(stages: StageState[], p: ExperimentProgress, now: number): StageState[] {
  let key: StageKey = p.stage;
  if (!stages.some((s) => s.key === key)) {
    if (key === 'quantize' && stages.some((s) => s.key === 'load')) key = 'load';
    else stages = [...stages, newStage(key)].sort((a, b) => orderOf(a.key) - orderOf(b.key));
  }
  const at = stages.findIndex((s) => s.key === key);
  const complete = p.total > 0 && p.done >= p.total;
  let previousEnd: number | null = null;
  return stages.map((s, i) => {
    let next = s;
    if (i < at) {
      next = s.endedAt === null ? { ...s, done: s.total, startedAt: s.startedAt ?? previousEnd ?? now, endedAt: now } : s;
    } else if (i === at) {
      next = { ...s, done: p.done, total: p.total, detail: p.detail ?? s.detail, startedAt: s.startedAt ?? previousEnd ?? now, endedAt: complete ? now : null };
    } else if (i === at + 1 && complete && s.startedAt === null) {
      next = { ...s, startedAt: now };
    }
    previousEnd = next.endedAt;
    return next;
  });
}

/**
 * Seconds left in a running stage, from its pace so far (elapsed per unit
 * done); null before the first unit or for a stage without a count (or units).
 */
export function stageRemaining(s: StageState, now: number): number | null {
  if (!s.unit || s.startedAt === null || s.endedAt !== null || s.total <= 0 || s.done <= 0) return null;
  const elapsed = (now - s.startedAt) / 1000;
  return (elapsed / s.done) * (s.total - s.done);
}

/** Every stage that ran ends at `now`; on success the running ones are complete. */
export function endStages(stages: StageState[], now: number, succeeded: boolean): StageState[] {
  return stages.map((s) => {
    if (s.startedAt === null || s.endedAt !== null) return s;
    return succeeded ? { ...s, done: s.total, endedAt: now } : { ...s, endedAt: now };
  });
}

/** The stages of a finished run, their details saying what each one measured. */
export function stagesWithResult(stages: StageState[], r: Result): StageState[] {
  const m = r.metrics;
  if (!m) return stages;
  const detail: Partial<Record<StageKey, string>> = {
    load: `${megabytes(m.weightBytes)} MB of weights`,
    evaluate: `ppl ${formatPerplexity(m.perplexity, m.perplexitySe).value}`,
    speed: `${formatRate(m.decodeTokensPerSecond)} tok/s`,
  };
  return stages.map((s) => (detail[s.key] && s.startedAt !== null ? { ...s, detail: detail[s.key]! } : s));
}

/** Fraction done of a stage for its bar (0…1). */
export function stageFraction(s: StageState): number {
  if (s.total > 0) return Math.min(1, s.done / s.total);
  return s.endedAt !== null && s.startedAt !== null ? 1 : 0;
}

/** "0.4 s", "12.3 s", "2 min 05 s". */
export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${String(Math.floor(seconds - m * 60)).padStart(2, '0')} s`;
}

// ------------------------------------------------------------------ results

export interface ResultRow {
  id: string;
  model: string;
  method: string;
  protocol: string;
  windowLength: number;
  windows: string;
  perplexity: string;
  perplexitySe: string;
  bitsPerWeight: string;
  weightMB: string;
  peakMB: string;
  prefill: string;
  decode: string;
  /** GPU-time throughputs; null where the adapter has no timestamp queries */
  prefillGpu: string | null;
  decodeGpu: string | null;
  /** mean KL against the f32 model (nats per position) and its standard error; '–' where not measured */
  klDivergence: string;
  klSe: string;
  /** positions where the f32 and this model's most likely next token agree, in percent; '–' where not measured */
  top1: string;
  /** seconds the whole run took */
  seconds: string;
  device: string;
  /** where an imported result came from (its file); null for runs made on this page */
  source: string | null;
}

/** A perplexity with as many decimals as its size warrants, the same for its standard error. */
export function formatPerplexity(ppl: number, se: number): { value: string; se: string } {
  const digits = ppl >= 1000 ? 0 : ppl >= 100 ? 1 : 2;
  return { value: ppl.toFixed(digits), se: Number.isFinite(se) ? se.toFixed(digits) : '–' };
}

export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return '–';
  return perSecond >= 100 ? formatCount(perSecond) : perSecond.toFixed(1);
}

/** A mean KL (nats) to three significant figures, its standard error to the same decimals. */
export function formatKl(kl: number | undefined, se: number | undefined): { value: string; se: string } {
  if (kl === undefined || !Number.isFinite(kl)) return { value: '–', se: '–' };
  const digits = kl > 0 ? Math.min(6, Math.max(3, 2 - Math.floor(Math.log10(kl)))) : 3;
  return { value: kl.toFixed(digits), se: se !== undefined && Number.isFinite(se) ? se.toFixed(digits) : '–' };
}

const megabytes = (bytes: number): string => (bytes / 1e6).toFixed(2);

export function resultRow(r: Result): ResultRow {
  const m = r.metrics;
  const ppl = m ? formatPerplexity(m.perplexity, m.perplexitySe) : { value: '–', se: '–' };
  const kl = formatKl(m?.klDivergence, m?.klStdError);
  const p = r.protocol;
  return {
    id: r.id,
    model: modelLabel(r.spec),
    method: experimentName(r.spec),
    protocol: p.protocol,
    windowLength: p.windowLength,
    windows: p.windows === p.windowsTotal ? `all ${formatCount(p.windows)} windows` : `${formatCount(p.windows)} of ${formatCount(p.windowsTotal)} windows`,
    perplexity: ppl.value,
    perplexitySe: ppl.se,
    bitsPerWeight: m ? m.bitsPerWeight.toFixed(2) : '–',
    weightMB: m ? megabytes(m.weightBytes) : '–',
    peakMB: m ? megabytes(m.peakBytes) : '–',
    prefill: m ? formatRate(m.prefillTokensPerSecond) : '–',
    decode: m ? formatRate(m.decodeTokensPerSecond) : '–',
    prefillGpu: m?.prefillGpuTokensPerSecond ? formatRate(m.prefillGpuTokensPerSecond) : null,
    decodeGpu: m?.decodeGpuTokensPerSecond ? formatRate(m.decodeGpuTokensPerSecond) : null,
    klDivergence: kl.value,
    klSe: kl.se,
    top1: m?.top1Agreement !== undefined && Number.isFinite(m.top1Agreement) ? (m.top1Agreement * 100).toFixed(1) : '–',
    seconds: formatSeconds(Object.values(r.timing).reduce((sum, t) => sum + t, 0)),
    device: r.device.description || [r.device.vendor, r.device.architecture].filter(Boolean).join(' '),
    source: (r as SourcedResult).source ?? null,
  };
}
