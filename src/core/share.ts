/**
 * A set of experiments in a URL fragment, so a sweep can be sent as a link:
 * `#x=v1:<base64url of the specs' JSON>`. The version comes first so a later
 * encoding can change the payload and still say clearly what a link is.
 * Decoding never throws: a link someone pasted gets a message, not a crash,
 * and only the fields an ExperimentSpec has survive (anything else is dropped).
 * Every method kind and the KV-cache setting are checked field by field
 * (src/core/method-spec-check.ts), on the way out as well as in.
 */
import type { ExperimentSpec, MethodSpec, ModelRef } from './experiment';
import type { KvCacheSpec } from './quant/kv';
import { checkKv, checkMethod, kvForLink, methodForLink, type Checked } from './method-spec-check';
import { previewJson } from './preview';

export const SHARE_PARAM = 'x';
export const SHARE_VERSION = 'v1';
/** longest fragment read (characters): far above any real sweep, far below what would hurt the page */
export const MAX_SHARE_CHARS = 16_000;
export const MAX_SHARED_EXPERIMENTS = 64;

const MAX_NAME = 200;
const MAX_WINDOW_LENGTH = 1 << 16;

function toBase64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(encoded: string): string | null {
  if (!/^[A-Za-z0-9_-]*$/.test(encoded) || encoded.length % 4 === 1) return null;
  try {
    const binary = atob(encoded.replace(/-/g, '+').replace(/_/g, '/'));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/**
 * v1's payload: runs of experiments that share a model, an evaluation and a
 * KV-cache setting, each written once — a sweep is one group with a list of
 * methods. `kv` is absent for an f32 cache (and in every link made before
 * the setting existed, which so still read as they did).
 */
interface ShareGroupV1 {
  model: ModelRef;
  eval: ExperimentSpec['eval'];
  kv?: KvCacheSpec;
  methods: MethodSpec[];
}

/**
 * A model reference with its known fields only: whatever else rode along on
 * the object (an access token spread in with the Hub settings, say) never
 * reaches a link, a result, an export or the store.
 */
export function cleanModelRef(ref: ModelRef): ModelRef {
  switch (ref.kind) {
    case 'embedded':
      return { kind: 'embedded', id: ref.id };
    case 'hub':
      return { kind: 'hub', repo: ref.repo, revision: ref.revision };
    case 'local':
      return { kind: 'local', name: ref.name };
    default:
      return ref;
  }
}

/** The fragment (with its leading `#`) that carries `specs`, in order. */
export function encodeExperiments(specs: ExperimentSpec[]): string {
  const groups: ShareGroupV1[] = [];
  for (const spec of specs) {
    const last = groups.at(-1);
    const model = cleanModelRef(spec.model);
    const evalSpec = { protocol: spec.eval.protocol, windowLength: spec.eval.windowLength, windows: spec.eval.windows };
    const kv = kvForLink(spec.kv);
    const method = methodForLink(spec.method);
    if (last && JSON.stringify([last.model, last.eval, last.kv ?? null]) === JSON.stringify([model, evalSpec, kv ?? null])) last.methods.push(method);
    else groups.push({ model, eval: evalSpec, ...(kv ? { kv } : {}), methods: [method] });
  }
  return `#${SHARE_PARAM}=${SHARE_VERSION}:${toBase64Url(JSON.stringify(groups))}`;
}

/** The value of the share parameter in a fragment (`#x=…`, `x=…`, or among other `&` parameters); null when there is none. */
export function shareParam(fragment: string): string | null {
  const body = fragment.startsWith('#') ? fragment.slice(1) : fragment;
  for (const part of body.split('&')) {
    if (part.startsWith(`${SHARE_PARAM}=`)) return part.slice(SHARE_PARAM.length + 1);
  }
  return null;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isName = (x: unknown): x is string => typeof x === 'string' && x.length > 0 && x.length <= MAX_NAME;
const isPositiveInt = (x: unknown, max: number): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= max;

function checkModel(m: unknown): Checked<ModelRef> {
  if (!isObject(m)) return { error: 'model is not an object' };
  if (m.kind === 'embedded') return isName(m.id) ? { value: { kind: 'embedded', id: m.id } } : { error: 'model.id must be a model name' };
  if (m.kind === 'hub') {
    return isName(m.repo) && isName(m.revision) ? { value: { kind: 'hub', repo: m.repo, revision: m.revision } } : { error: 'a hub model needs a repo and a revision' };
  }
  if (m.kind === 'local') return isName(m.name) ? { value: { kind: 'local', name: m.name } } : { error: 'a local model needs a name' };
  return { error: `model.kind ${previewJson(m.kind)} is none of embedded, hub, local` };
}

/** One ExperimentSpec from untrusted JSON, rebuilt from its known fields; or what is wrong with it. */
export function checkSpec(x: unknown): Checked<ExperimentSpec> {
  if (!isObject(x)) return { error: 'it is not an object' };
  const model = checkModel(x.model);
  if ('error' in model) return model;
  const method = checkMethod(x.method);
  if ('error' in method) return method;
  const e = x.eval;
  if (!isObject(e)) return { error: 'eval is not an object' };
  if (e.protocol !== 'gptq' && e.protocol !== 'llamacpp') return { error: `eval.protocol ${previewJson(e.protocol)} is none of gptq, llamacpp` };
  if (!isPositiveInt(e.windowLength, MAX_WINDOW_LENGTH)) return { error: `eval.windowLength ${previewJson(e.windowLength)} is not a whole number from 1 to ${MAX_WINDOW_LENGTH}` };
  if (e.windows !== null && !isPositiveInt(e.windows, 1e9)) return { error: `eval.windows ${previewJson(e.windows)} is neither null (the whole test set) nor a positive whole number` };
  const kv = checkKv(x.kv);
  if ('error' in kv) return kv;
  return { value: { model: model.value, method: method.value, eval: { protocol: e.protocol, windowLength: e.windowLength, windows: e.windows }, ...(kv.value ? { kv: kv.value } : {}) } };
}

/**
 * The experiments in a share fragment (`#x=v1:…`, the `#` optional), or a
 * message saying why the link cannot be read.
 */
export function decodeExperiments(fragment: string): { specs: ExperimentSpec[] } | { error: string } {
  const fail = (why: string) => ({ error: `This link's experiments cannot be read: ${why}.` });
  if (fragment.length > MAX_SHARE_CHARS) return fail(`it is ${fragment.length.toLocaleString('en-US')} characters long, more than the ${MAX_SHARE_CHARS.toLocaleString('en-US')} a link may carry`);
  const value = shareParam(fragment);
  if (value === null) return fail(`it has no "${SHARE_PARAM}=" part`);
  const colon = value.indexOf(':');
  if (colon < 0) return fail('it has no version (expected "v1:" after "x=")');
  const version = value.slice(0, colon);
  if (version !== SHARE_VERSION) return fail(`it is encoding ${JSON.stringify(version.slice(0, 20))}, and this qlab reads only ${SHARE_VERSION} — it may come from a newer qlab`);
  const json = fromBase64Url(value.slice(colon + 1));
  if (json === null) return fail('the text after "v1:" is not base64url (was the link cut off or changed?)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return fail('it does not decode to JSON (was the link cut off?)');
  }
  if (!Array.isArray(parsed)) return fail('it holds no list of experiments');
  const specs: ExperimentSpec[] = [];
  for (const [g, group] of parsed.entries()) {
    if (!isObject(group) || !Array.isArray(group.methods)) return fail(`group ${g + 1} is not a model and evaluation with a list of methods`);
    if (specs.length + group.methods.length > MAX_SHARED_EXPERIMENTS) return fail(`it holds more than the ${MAX_SHARED_EXPERIMENTS} experiments a link may carry`);
    for (const method of group.methods) {
      const checked = checkSpec({ model: group.model, method, eval: group.eval, kv: group.kv });
      if ('error' in checked) return fail(`experiment ${specs.length + 1}: ${checked.error}`);
      specs.push(checked.value);
    }
  }
  if (specs.length === 0) return fail('its list of experiments is empty');
  return { specs };
}
