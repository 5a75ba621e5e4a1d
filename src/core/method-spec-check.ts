/**
 * Strict checks of a MethodSpec and a KV-cache setting read from untrusted
 * JSON (a shared link, a results file from another GPU, a stored record):
 * one validator per method kind, each rebuilding the spec from its own
 * fields only. Every field is checked for its type and the values the type
 * allows; an optional field that is absent stays absent, and one that is
 * present is kept as it was (false included); anything else on the object (an
 * access token spread in by mistake, a field of another method) is dropped,
 * never copied through. Used by src/core/share.ts (links), and through its
 * checkSpec by src/core/results-import.ts and src/lab/store-migrate.ts.
 *
 * What a value must be to run on a given model (a group size that divides
 * the rows, Atom's outlier count against K, a KV group that divides the head
 * dimension) is the run's to check: a failed run's result still imports.
 */
import type {
  ActCalibrationSpec,
  AtomMethodSpec,
  AwqMethodSpec,
  GptqMethodSpec,
  HqqMethodSpec,
  MethodSpec,
  MixllmMethodSpec,
  RtnMethodSpec,
  SmoothQuantMethodSpec,
} from './experiment';
import type { KvCacheSpec } from './quant/kv';
import { previewJson } from './preview';

export type Checked<T> = { value: T } | { error: string };

/** largest group size, block size or token count a spec may name */
const MAX_COUNT = 1 << 20;
/** largest grid or iteration count (AWQ's α points, HQQ's iterations): each is a pass over the model's layers */
const MAX_STEPS = 10_000;

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** A test for one field's value and what to say when it fails ("is none of 2, 3, 4, 8"). */
interface Check<T> {
  test: (v: unknown) => v is T;
  says: string;
}

const oneOf = <T extends string | number>(values: readonly T[]): Check<T> => ({
  test: (v): v is T => values.includes(v as T),
  says: `is none of ${values.join(', ')}`,
});
const bool: Check<boolean> = { test: (v): v is boolean => typeof v === 'boolean', says: 'is not true or false' };
const int = (min: number, max: number): Check<number> => ({
  test: (v): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max,
  says: `is not a whole number from ${min} to ${max}`,
});
const fraction = (what: string): Check<number> => ({
  test: (v): v is number => typeof v === 'number' && v >= 0 && v <= 1,
  says: `is not ${what} from 0 to 1`,
});
const group: Check<number | 'row'> = {
  test: (v): v is number | 'row' => v === 'row' || int(1, MAX_COUNT).test(v),
  says: 'is neither a positive whole number nor "row"',
};
const nonNegative: Check<number> = {
  test: (v): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0,
  says: 'is not a number of 0 or more',
};
const calibration: Check<Record<string, unknown>> = { test: isObject, says: 'is not an object of samples and length' };

/** Thrown inside a validator for the first wrong field; checkMethod turns it into a message. */
class FieldError extends Error {}

/** The fields of one object, read with checks; `at` names it in messages ("method", "kv"). */
class Fields {
  constructor(
    private readonly o: Record<string, unknown>,
    private readonly at: string,
  ) {}

  req<T>(key: string, check: Check<T>): T {
    const v = this.o[key];
    if (!check.test(v)) throw new FieldError(`${this.at}.${key} ${previewJson(v)} ${check.says}`);
    return v;
  }

  /** `{ key: value }` when the field is there (and right), `{}` when it is absent. */
  opt<K extends string, T>(key: K, check: Check<T>): { [P in K]?: T } {
    if (this.o[key] === undefined) return {};
    return { [key]: this.req(key, check) } as { [P in K]?: T };
  }

  /** The calibration setting (samples × tokens per sample), when there is one. */
  calibration(): { calibration?: ActCalibrationSpec } {
    if (this.o.calibration === undefined) return {};
    const c = new Fields(this.req('calibration', calibration), `${this.at}.calibration`);
    return { calibration: { samples: c.req('samples', int(1, MAX_COUNT)), length: c.req('length', int(2, MAX_COUNT)) } };
  }
}

const WEIGHT_BITS: readonly RtnMethodSpec['bits'][] = [2, 3, 4, 8];

/** bits, groups, symmetry, head and embeddings: what RTN, AWQ, GPTQ and HQQ all have */
function weightOnly(f: Fields) {
  return {
    bits: f.req('bits', oneOf(WEIGHT_BITS)),
    groupSize: f.req('groupSize', group),
    symmetric: f.req('symmetric', bool),
    ...f.opt('quantizeHead', bool),
    ...f.opt('quantizeEmbeddings', bool),
  };
}

/** One validator per method kind: the spec rebuilt from its own fields, or a FieldError for the first wrong one. */
const VALIDATORS: { [K in MethodSpec['id']]: (f: Fields) => Extract<MethodSpec, { id: K }> } = {
  none: () => ({ id: 'none' }),
  rtn: (f): RtnMethodSpec => ({ id: 'rtn', ...weightOnly(f) }),
  awq: (f): AwqMethodSpec => ({
    id: 'awq',
    ...weightOnly(f),
    ...f.calibration(),
    ...f.opt('alphaPoints', int(1, MAX_STEPS)),
    ...f.opt('clip', bool),
    ...f.opt('errorTokens', int(1, MAX_COUNT)),
  }),
  gptq: (f): GptqMethodSpec => ({
    id: 'gptq',
    ...weightOnly(f),
    ...f.calibration(),
    ...f.opt('actOrder', bool),
    ...f.opt('dampening', nonNegative),
    ...f.opt('blockSize', int(1, MAX_COUNT)),
  }),
  hqq: (f): HqqMethodSpec => ({ id: 'hqq', ...weightOnly(f), ...f.opt('iterations', int(0, MAX_STEPS)) }),
  mixllm: (f): MixllmMethodSpec => ({
    id: 'mixllm',
    highBits: f.req('highBits', oneOf<MixllmMethodSpec['highBits']>([8, 4])),
    lowBits: f.req('lowBits', oneOf<MixllmMethodSpec['lowBits']>([2, 3, 4])),
    highFraction: f.req('highFraction', fraction('a fraction')),
    base: f.req('base', oneOf<MixllmMethodSpec['base']>(['rtn', 'gptq'])),
    groupSize: f.req('groupSize', group),
    ...f.opt('symmetric', bool),
    ...f.calibration(),
  }),
  smoothquant: (f): SmoothQuantMethodSpec => ({ id: 'smoothquant', alpha: f.req('alpha', fraction('a migration strength')), ...f.calibration() }),
  atom: (f): AtomMethodSpec => ({
    id: 'atom',
    outliers: f.req('outliers', int(0, MAX_COUNT)),
    groupSize: f.req('groupSize', int(1, MAX_COUNT)),
    ...f.calibration(),
  }),
};

/** Every MethodSpec id (a kind without a validator does not compile), in the order messages name them. */
export const METHOD_IDS = Object.keys(VALIDATORS) as readonly MethodSpec['id'][];

const isMethodId = (x: unknown): x is MethodSpec['id'] => METHOD_IDS.includes(x as MethodSpec['id']);

/** A MethodSpec from untrusted JSON, rebuilt from the fields of its kind only; or what is wrong with it. */
export function checkMethod(m: unknown): Checked<MethodSpec> {
  if (!isObject(m)) return { error: 'method is not an object' };
  if (!isMethodId(m.id)) return { error: `method.id ${previewJson(m.id)} is none of ${METHOD_IDS.join(', ')}` };
  try {
    return { value: VALIDATORS[m.id](new Fields(m, 'method')) };
  } catch (err) {
    if (err instanceof FieldError) return { error: err.message };
    throw err;
  }
}

/**
 * The KV-cache setting of a spec from untrusted JSON: `{ value: undefined }`
 * where there is none (absent, or null: an f32 cache), the setting rebuilt
 * from its own fields, or what is wrong with it.
 */
export function checkKv(kv: unknown): Checked<KvCacheSpec | undefined> {
  if (kv === undefined || kv === null) return { value: undefined };
  if (!isObject(kv)) return { error: `kv ${previewJson(kv)} is neither absent (an f32 cache) nor an object of bits and groupSize` };
  const f = new Fields(kv, 'kv');
  try {
    return { value: { bits: f.req('bits', oneOf<KvCacheSpec['bits']>([8, 4])), groupSize: f.req('groupSize', int(1, MAX_COUNT)) } };
  } catch (err) {
    if (err instanceof FieldError) return { error: err.message };
    throw err;
  }
}

/** Only plain values of the keys `o` may have: what a spec that fails its check is written with, so nothing else rides along. */
function knownPlain(o: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    const v = o[k];
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
  }
  return out;
}

/** the keys each method kind has (for methodForLink's fallback) */
const WEIGHT_KEYS = ['bits', 'groupSize', 'symmetric', 'quantizeHead', 'quantizeEmbeddings'];
const METHOD_KEYS: { [K in MethodSpec['id']]: readonly string[] } = {
  none: [],
  rtn: WEIGHT_KEYS,
  awq: [...WEIGHT_KEYS, 'alphaPoints', 'clip', 'errorTokens'],
  gptq: [...WEIGHT_KEYS, 'actOrder', 'dampening', 'blockSize'],
  hqq: [...WEIGHT_KEYS, 'iterations'],
  mixllm: ['highBits', 'lowBits', 'highFraction', 'base', 'groupSize', 'symmetric'],
  smoothquant: ['alpha'],
  atom: ['outliers', 'groupSize'],
};

/**
 * A method as a link writes it: rebuilt when it passes checkMethod; when it
 * does not (a bug upstream), only the plain values of its kind's own fields,
 * so the link still carries no stray field and its reader is told which
 * field is wrong.
 */
export function methodForLink(m: MethodSpec): MethodSpec {
  const checked = checkMethod(m);
  if ('value' in checked) return checked.value;
  const o = m as unknown as Record<string, unknown>;
  if (!isObject(o)) return {} as MethodSpec; // read back as "method.id undefined is none of …"
  if (!isMethodId(o.id)) return { id: typeof o.id === 'string' ? o.id.slice(0, 40) : null } as unknown as MethodSpec;
  const c = o.calibration;
  return { id: o.id, ...knownPlain(o, METHOD_KEYS[o.id]), ...(isObject(c) ? { calibration: knownPlain(c, ['samples', 'length']) } : {}) } as MethodSpec;
}

/** A KV-cache setting as a link writes it: rebuilt, or only its plain bits and groupSize (see methodForLink); undefined for none. */
export function kvForLink(kv: unknown): KvCacheSpec | undefined {
  const checked = checkKv(kv);
  if ('value' in checked) return checked.value;
  return (isObject(kv) ? knownPlain(kv, ['bits', 'groupSize']) : {}) as unknown as KvCacheSpec;
}
