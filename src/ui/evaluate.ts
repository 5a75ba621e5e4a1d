/**
 * The Evaluate section's logic as pure functions, so the components only
 * render: the form's choices → an ExperimentSpec, progress events → one row
 * per stage, a Result → the cells of the results table.
 */
import { methodName, type ExperimentSpec, type Result, type RtnMethodSpec } from '../core/experiment';
import { formatCount } from '../core/format';
import type { SourcedResult } from '../core/results-import';
import type { ProtocolName } from '../core/protocols';
import { EMBEDDED_MODELS, type ExperimentProgress } from '../worker/api';

export const BIT_WIDTHS = [8, 4, 3, 2] as const;
export const GROUP_SIZES = [32, 64, 128, 'row'] as const;
export const WINDOW_LENGTHS = [128, 256, 512] as const;

export interface EvaluateForm {
  modelId: string;
  method: 'none' | 'rtn';
  bits: RtnMethodSpec['bits'];
  groupSize: (typeof GROUP_SIZES)[number];
  symmetric: boolean;
  quantizeHead: boolean;
  quantizeEmbeddings: boolean;
  protocol: ProtocolName;
  windowLength: (typeof WINDOW_LENGTHS)[number];
  /** the whole test set, or only the first `windows` windows */
  fullTestSet: boolean;
  /** null while the number field is empty */
  windows: number | null;
}

export const DEFAULT_FORM: EvaluateForm = {
  modelId: 'qlab-llama-6m',
  method: 'rtn',
  bits: 4,
  groupSize: 128,
  symmetric: false,
  quantizeHead: false,
  quantizeEmbeddings: false,
  protocol: 'gptq',
  windowLength: 512,
  fullTestSet: false,
  windows: 4,
};

/** What keeps the form from running, in words; null when it can run. */
export function formProblem(form: EvaluateForm): string | null {
  if (!form.fullTestSet && !(Number.isInteger(form.windows) && (form.windows ?? 0) >= 1)) {
    return 'The number of windows must be a whole number of at least 1.';
  }
  return null;
}

export function specFromForm(form: EvaluateForm): ExperimentSpec {
  const method: ExperimentSpec['method'] =
    form.method === 'none'
      ? { id: 'none' }
      : {
          id: 'rtn',
          bits: form.bits,
          groupSize: form.groupSize,
          symmetric: form.symmetric,
          ...(form.quantizeHead ? { quantizeHead: true } : {}),
          ...(form.quantizeEmbeddings ? { quantizeEmbeddings: true } : {}),
        };
  return {
    model: { kind: 'embedded', id: form.modelId },
    method,
    eval: { protocol: form.protocol, windowLength: form.windowLength, windows: form.fullTestSet ? null : form.windows },
  };
}

/**
 * The form's settings read back from storage: every field that is present
 * and valid, the default for the rest (settings from an older page may lack
 * fields or hold choices this one no longer offers).
 */
export function formFromSettings(saved: unknown): EvaluateForm {
  const form: EvaluateForm = { ...DEFAULT_FORM };
  if (typeof saved !== 'object' || saved === null) return form;
  const s = saved as Record<string, unknown>;
  const oneOf = <T>(value: unknown, allowed: readonly T[]): value is T => allowed.includes(value as T);
  if (typeof s.modelId === 'string' && EMBEDDED_MODELS.some((m) => m.id === s.modelId)) form.modelId = s.modelId;
  if (oneOf(s.method, ['none', 'rtn'] as const)) form.method = s.method;
  if (oneOf(s.bits, BIT_WIDTHS)) form.bits = s.bits;
  if (oneOf(s.groupSize, GROUP_SIZES)) form.groupSize = s.groupSize;
  for (const key of ['symmetric', 'quantizeHead', 'quantizeEmbeddings', 'fullTestSet'] as const) {
    if (typeof s[key] === 'boolean') form[key] = s[key];
  }
  if (oneOf(s.protocol, ['gptq', 'llamacpp'] as const)) form.protocol = s.protocol;
  if (oneOf(s.windowLength, WINDOW_LENGTHS)) form.windowLength = s.windowLength;
  if (s.windows === null || (typeof s.windows === 'number' && Number.isFinite(s.windows))) form.windows = s.windows;
  return form;
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
  const base = specFromForm(form);
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
  return `${modelLabel(spec)} · ${methodName(spec.method)} · ${evalLabel(spec, windowsTotalFor(spec))}`;
}

// ------------------------------------------------------------------ progress

export type StageKey = 'prepare' | 'load' | 'evaluate' | 'speed';

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

const ORDER: StageKey[] = ['prepare', 'load', 'evaluate', 'speed'];

export function initialStages(spec: ExperimentSpec): StageState[] {
  const stage = (key: StageKey, label: string, unit: string): StageState => ({ key, label, unit, done: 0, total: 0, detail: '', startedAt: null, endedAt: null });
  return [
    stage('prepare', 'Evaluation text', ''),
    stage('load', spec.method.id === 'none' ? 'Load weights' : 'Load + quantize', 'tensors'),
    stage('evaluate', 'Perplexity', 'windows'),
    stage('speed', 'Decode speed', ''),
  ];
}

/**
 * The stages after one progress event at page time `now`. A stage ends with
 * its last unit (done = total) or when a later stage reports; the next stage
 * begins the moment the one before it ends, so each elapsed time covers the
 * whole stage, not just the time after its first report.
 */
export function applyProgress(stages: StageState[], p: ExperimentProgress, now: number): StageState[] {
  // RTN quantizes while it loads: a 'quantize' event belongs to the load row.
  const key: StageKey = p.stage === 'quantize' ? 'load' : p.stage;
  const at = ORDER.indexOf(key);
  const complete = p.total > 0 && p.done >= p.total;
  let previousEnd: number | null = null;
  return stages.map((s) => {
    const i = ORDER.indexOf(s.key);
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
    method: methodName(r.spec.method),
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
