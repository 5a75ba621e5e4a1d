/**
 * Models from the Hugging Face Hub (or a mirror with its URL layout,
 * `<base>/<repo>/resolve/<revision>/<file>`), downloaded with plain fetch into
 * a HubCache and then read from there tensor by tensor (cacheSource).
 *
 * - Files: config.json, tokenizer.json (+ tokenizer_config.json when there),
 *   and model.safetensors or model.safetensors.index.json with its shards.
 * - Progress: bytes of the file and of the whole model, and the speed.
 * - Resumable: a partial file in the cache is continued with an HTTP Range
 *   request; a server that ignores Range starts the file over.
 * - Checked: JSON files must parse, safetensors headers must fit their file,
 *   and where the server names a SHA-256 in X-Linked-ETag (the Hub does for
 *   LFS files it serves without a redirect) the file must hash to it. A file that fails is removed from the
 *   cache, so the next run downloads it afresh.
 * - The access token goes in the Authorization header only: never in a URL,
 *   a message, a result or a log. It is bound to one origin (HubToken) and
 *   goes only with requests to that origin (hubTokenFor): a Hub address from a
 *   link, or one changed after the token was given, gets no token. Requests
 *   are built from the base address alone (hubFileUrl); redirects are
 *   followed by fetch itself, which drops Authorization when a redirect leaves
 *   the origin (Fetch spec, "HTTP-redirect fetch"; Chromium and Node's fetch
 *   do), so the Hub's redirects to its CDNs carry no token either.
 */
import { parseJsonObject, isJsonObject } from '../core/config';
import type { ModelRef } from '../core/experiment';
import { formatCount } from '../core/format';
import { parseHeader, headerByteLength } from '../core/safetensors';
import { Sha256 } from '../core/sha256';
import type { CacheKey, HubCache } from './hub-cache';
import type { ModelSource } from './load';

export const DEFAULT_HUB_BASE = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';

const REPO_ID = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;
const REVISION = /^[\w.\/-]+$/;

/** "owner/name" or "owner/name@revision" → a hub ModelRef; errors say what a repo id looks like. */
export function parseHubRef(text: string): Extract<ModelRef, { kind: 'hub' }> {
  const trimmed = text.trim();
  const at = trimmed.lastIndexOf('@');
  const repo = at > 0 ? trimmed.slice(0, at) : trimmed;
  const revision = at > 0 ? trimmed.slice(at + 1) : DEFAULT_REVISION;
  checkHubRef(repo, revision);
  return { kind: 'hub', repo, revision };
}

export function checkHubRef(repo: string, revision: string): void {
  if (!REPO_ID.test(repo) || repo.includes('..')) {
    throw new Error(`"${repo}" is not a Hugging Face repository id: write it as owner/name, e.g. Qwen/Qwen2.5-0.5B (letters, digits, "-", "_" and ".").`);
  }
  if (!REVISION.test(revision) || revision.includes('..')) {
    throw new Error(`"${revision}" is not a revision: use a branch (main), a tag or a commit hash.`);
  }
}

/** An access token and the one origin (scheme://host:port) it may be sent to. */
export interface HubToken {
  value: string;
  origin: string;
}

/** The origin of an http(s) address, or null for anything else. */
export function originOf(url: string): string | null {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.origin : null;
  } catch {
    return null;
  }
}

/**
 * A token bound to an origin: a plain string is bound to the origin of
 * `baseUrl` (the address in effect when it was given); a HubToken keeps its own
 * origin, normalized. Empty tokens are null.
 */
export function bindHubToken(token: string | HubToken | null | undefined, baseUrl: string): HubToken | null {
  if (token === null || token === undefined) return null;
  const value = (typeof token === 'string' ? token : token.value).trim();
  if (!value) return null;
  const origin = originOf(typeof token === 'string' ? baseUrl : token.origin);
  if (origin === null) throw new Error('An access token must be bound to an http(s) address.');
  return { value, origin };
}

/** The token to send with a request to `url`: only where `url` is on the token's origin, else null. */
export function hubTokenFor(url: string, token: HubToken | null | undefined): string | null {
  if (!token) return null;
  const origin = originOf(url);
  return origin !== null && origin === token.origin ? token.value : null;
}

export function hubFileUrl(base: string, repo: string, revision: string, file: string): string {
  const root = base.replace(/\/+$/, '');
  return `${root}/${repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

export interface DownloadProgress {
  /** the file being downloaded */
  file: string;
  fileBytes: number;
  /** null while the server has not said */
  fileTotal: number | null;
  /** bytes of the whole model in the cache so far, and in all (null until every size is known) */
  bytes: number;
  total: number | null;
  /** over the last few seconds of this download (0 at the start) */
  bytesPerSecond: number;
  /** the file was continued from this byte of a partial download */
  resumedFrom?: number;
  /** the file was already complete in the cache */
  cached?: boolean;
}

export interface HubOptions {
  cache: HubCache;
  /** default https://huggingface.co */
  baseUrl?: string;
  /**
   * an access token for gated or private repositories; a string is bound to
   * `baseUrl`'s origin, a HubToken to its own, and it goes only to that origin
   */
  token?: string | HubToken | null;
  fetch?: typeof fetch;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
}

/** An error whose message a person can act on; `status` when the server answered with one. */
export class HubError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'HubError';
  }
}

const INDEX = 'model.safetensors.index.json';
/** the files a complete download consists of, written last (src/lab/hub-cache.ts leaves it out of file counts) */
export const MANIFEST = 'qlab-download.json';
const SINGLE = 'model.safetensors';
const READ_CHUNK = 8 * 2 ** 20;

/** Messages for the answers that need a person to do something; the token itself never appears. */
function httpError(repo: string, revision: string, file: string, response: Response, hadToken: boolean, withheld: { from: string; to: string } | null): HubError {
  const where = `${repo}@${revision}/${file}`;
  const s = response.status;
  if (s === 401) {
    return new HubError(
      hadToken
        ? `${where}: HTTP 401 — the Hub did not accept the access token. Check that it is a valid token (huggingface.co/settings/tokens) with read access, then run again.`
        : withheld !== null
          ? `${where}: HTTP 401 — the repository is gated or private (or does not exist). The access token given is for ${withheld.from} and is not sent to ${withheld.to}: enter a token for this address if it needs one, and run again.`
          : `${where}: HTTP 401 — the repository is gated or private (or does not exist). Paste an access token with read access (huggingface.co/settings/tokens), accept the model's terms on its page if it is gated, and run again.`,
      s,
    );
  }
  if (s === 403) {
    return new HubError(`${where}: HTTP 403 — the token has no access to this repository. If the model is gated, request access on its page with the same account, then run again.`, s);
  }
  if (s === 404) {
    return new HubError(`${where}: HTTP 404 — no such file. Check the repository id "${repo}" and the revision "${revision}" (a branch, tag or commit).`, s);
  }
  if (s === 429) return new HubError(`${where}: HTTP 429 — the Hub is limiting requests. Wait a minute and run again (the download resumes).`, s);
  return new HubError(`${where}: HTTP ${s} ${response.statusText} from the server. Run again to resume; if it persists, the server or the mirror may be down.`, s);
}

/** The Authorization header for a request to `url`: empty unless `url` is on the token's origin. */
function authHeaders(url: string, token: HubToken | null): Record<string, string> {
  const value = hubTokenFor(url, token);
  return value ? { Authorization: `Bearer ${value}` } : {};
}

/**
 * The SHA-256 the Hub names for an LFS file in X-Linked-ETag, or null. A
 * plain ETag is not trusted: CDNs behind the Hub's redirects put other
 * 64-hex-digit hashes there (Xet's content hashes are not SHA-256).
 */
function sha256Of(response: Response): string | null {
  const m = /^(?:W\/)?"?([0-9a-f]{64})"?$/.exec(response.headers.get('x-linked-etag')?.trim() ?? '');
  return m ? m[1] : null;
}

/** Bytes/second over a sliding window of recent chunks. */
class Speed {
  private samples: { t: number; bytes: number }[] = [];
  add(bytes: number): number {
    const t = performance.now();
    this.samples.push({ t, bytes });
    while (this.samples.length > 2 && t - this.samples[0].t > 3000) this.samples.shift();
    const span = (t - this.samples[0].t) / 1000;
    const sum = this.samples.slice(1).reduce((s, x) => s + x.bytes, 0);
    return span > 0 ? sum / span : 0;
  }
}

interface FileJob {
  file: string;
  required: boolean;
}

/**
 * Downloads what the model needs into the cache (what is complete there is
 * not fetched again) and returns a ModelSource over the cached files.
 */
export async function downloadHubModel(ref: { repo: string; revision: string }, options: HubOptions): Promise<ModelSource> {
  const { repo, revision } = ref;
  checkHubRef(repo, revision);
  const base = options.baseUrl ?? DEFAULT_HUB_BASE;
  // bound to one origin here, checked against every request's address in authHeaders
  const token = bindHubToken(options.token, base);
  const fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
  const cache = options.cache;
  const key = (file: string): CacheKey => ({ repo, revision, file });
  let modelBytes = 0;
  const sizes = new Map<string, number>();
  let plannedFiles: string[] = [];
  const total = (): number | null => (plannedFiles.every((f) => sizes.has(f)) ? plannedFiles.reduce((s, f) => s + sizes.get(f)!, 0) : null);

  /** The file in the cache, complete and checked; false when optional and absent on the server. */
  const fetchFile = async (job: FileJob): Promise<boolean> => {
    const { file } = job;
    const state = await cache.stat(key(file));
    if (state?.complete) {
      sizes.set(file, state.bytes);
      modelBytes += state.bytes;
      options.onProgress?.({ file, fileBytes: state.bytes, fileTotal: state.bytes, bytes: modelBytes, total: total(), bytesPerSecond: 0, cached: true });
      return true;
    }
    let offset = state?.bytes ?? 0;
    const url = hubFileUrl(base, repo, revision, file);
    const request = (from: number) =>
      fetchFn(url, { headers: { ...authHeaders(url, token), ...(from > 0 ? { Range: `bytes=${from}-` } : {}) }, redirect: 'follow', signal: options.signal });
    let response: Response;
    try {
      response = await request(offset);
      if (response.status === 416 && offset > 0) {
        await response.body?.cancel();
        const serverSize = Number(/\/(\d+)\s*$/.exec(response.headers.get('content-range') ?? '')?.[1]);
        if (serverSize === offset) {
          // every byte arrived before, the check or the marker did not: finish that now
          sizes.set(file, offset);
          await checkFile(file, offset, null);
          await cache.markComplete(key(file));
          modelBytes += offset;
          return true;
        }
        // the partial file is longer than what the server has now: start over
        offset = 0;
        response = await request(0);
      }
    } catch (e) {
      options.signal?.throwIfAborted();
      throw new HubError(`${repo}@${revision}/${file}: the request to ${base} failed (${(e as Error).message}). Check the connection (and the Hub address, if you changed it), then run again${offset > 0 ? ' — the download resumes' : ''}.`);
    }
    if (response.status === 404 && !job.required) {
      await response.body?.cancel();
      return false;
    }
    if (!response.ok) {
      await response.body?.cancel();
      const sent = hubTokenFor(url, token) !== null;
      throw httpError(repo, revision, file, response, sent, !sent && token ? { from: token.origin, to: originOf(url) ?? base } : null);
    }
    if (offset > 0 && response.status !== 206) offset = 0; // Range ignored: the whole file comes
    if (response.status === 206) {
      const start = Number(/bytes\s+(\d+)-/.exec(response.headers.get('content-range') ?? '')?.[1]);
      if (start !== offset) {
        await response.body?.cancel();
        throw new HubError(`${repo}@${revision}/${file}: asked to resume at byte ${formatCount(offset)}, the server answered from byte ${Number.isFinite(start) ? formatCount(start) : '(unknown)'}. Clear this model from the cache and download it again.`);
      }
    }
    const length = response.headers.get('content-length');
    const rangeTotal = /\/(\d+)\s*$/.exec(response.headers.get('content-range') ?? '')?.[1];
    const encoded = response.headers.get('content-encoding') !== null && response.headers.get('content-encoding') !== 'identity';
    const fileTotal = rangeTotal !== undefined ? Number(rangeTotal) : length !== null && !encoded ? offset + Number(length) : null;
    const linked = response.headers.get('x-linked-size');
    if (fileTotal !== null) sizes.set(file, fileTotal);
    const expectedSha = sha256Of(response);

    const writer = await cache.openAt(key(file), offset);
    let received = offset;
    const speed = new Speed();
    let lastReport = 0;
    const report = (bytesPerSecond: number, force = false) => {
      // at most ten events a second: each crosses to the page
      const now = performance.now();
      if (!force && now - lastReport < 100) return;
      lastReport = now;
      options.onProgress?.({ file, fileBytes: received, fileTotal, bytes: modelBytes + received, total: total(), bytesPerSecond, ...(offset > 0 ? { resumedFrom: offset } : {}) });
    };
    report(0, true);
    let cutOff: Error | null = null;
    try {
      const reader = response.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        await writer.write(value);
        received += value.length;
        report(speed.add(value.length));
      }
    } catch (e) {
      if (options.signal?.aborted) {
        await writer.close();
        throw options.signal.reason;
      }
      cutOff = e as Error;
    }
    await writer.close();
    report(0, true);
    const kept = `${formatCount(received)} bytes are kept in ${cache.description}: run again to resume from there`;
    if (cutOff || (fileTotal !== null && received < fileTotal)) {
      throw new HubError(
        `${repo}@${revision}/${file}: the download was cut off at byte ${formatCount(received)} of ${fileTotal === null ? 'an unknown size' : formatCount(fileTotal)}` +
          `${cutOff ? ` (${cutOff.message})` : ''}; ${kept}.`,
      );
    }
    if (fileTotal !== null && received > fileTotal) {
      await cache.remove(key(file));
      throw new HubError(`${repo}@${revision}/${file}: the server sent ${formatCount(received)} bytes but its Content-Length said ${formatCount(fileTotal)}: the answer is damaged (a proxy or mirror?). The partial file was removed; run again.`);
    }
    if (linked !== null && Number(linked) !== received) {
      await cache.remove(key(file));
      throw new HubError(`${repo}@${revision}/${file}: received ${formatCount(received)} bytes, but the Hub says the file has ${formatCount(Number(linked))} (X-Linked-Size): the server's Content-Length is wrong. The file was removed from the cache; run again, or use another mirror.`);
    }
    sizes.set(file, received);
    await checkFile(file, received, expectedSha);
    await cache.markComplete(key(file));
    modelBytes += received;
    return true;
  };

  /** What a complete file must be; a file that fails is removed so the next run fetches it afresh. */
  const checkFile = async (file: string, size: number, sha: string | null): Promise<void> => {
    const damaged = async (why: string): Promise<never> => {
      await cache.remove(key(file));
      throw new HubError(
        `${repo}@${revision}/${file} is damaged: ${why}. It was removed from the cache: run again to download it afresh; ` +
          `if this happens again, the file on the server (or the mirror) is damaged or its Content-Length is wrong.`,
      );
    };
    try {
      if (file.endsWith('.json')) {
        parseJsonObject(new TextDecoder().decode(await cache.readRange(key(file), 0, size)), file);
      } else if (file.endsWith('.safetensors')) {
        const prefix = await cache.readRange(key(file), 0, Math.min(size, 8));
        const headerEnd = headerByteLength(prefix, file, size);
        parseHeader(await cache.readRange(key(file), 0, headerEnd), file, size);
      }
    } catch (e) {
      await damaged((e as Error).message.replace(/\.$/, ''));
    }
    if (sha) {
      const hash = new Sha256();
      for (let at = 0; at < size; at += READ_CHUNK) hash.update(await cache.readRange(key(file), at, Math.min(size, at + READ_CHUNK)));
      const got = hash.hex();
      if (got !== sha) await damaged(`its SHA-256 is ${got.slice(0, 12)}…, the server's X-Linked-ETag says ${sha.slice(0, 12)}…`);
    }
  };

  // a model downloaded whole before is read from the cache without a request (offline too)
  const manifest = await cache.stat(key(MANIFEST));
  if (manifest?.complete) {
    try {
      const listed = JSON.parse(new TextDecoder().decode(await cache.readRange(key(MANIFEST), 0, manifest.bytes))) as { files: string[] };
      const states = await Promise.all(listed.files.map((f) => cache.stat(key(f))));
      if (states.every((st) => st?.complete)) {
        const bytes = states.reduce((sum, st) => sum + st!.bytes, 0);
        options.onProgress?.({ file: MANIFEST, fileBytes: manifest.bytes, fileTotal: manifest.bytes, bytes, total: bytes, bytesPerSecond: 0, cached: true });
        return cacheSource(cache, repo, revision);
      }
    } catch {
      // an unreadable manifest: check file by file below
    }
  }

  plannedFiles = ['config.json'];
  await fetchFile({ file: 'config.json', required: true });
  let weights: string[];
  if (await fetchFile({ file: INDEX, required: false })) {
    const index = parseJsonObject(new TextDecoder().decode(await cache.readRange(key(INDEX), 0, sizes.get(INDEX)!)), INDEX);
    if (!isJsonObject(index.weight_map)) {
      await cache.remove(key(INDEX));
      throw new HubError(`${repo}@${revision}/${INDEX} has no "weight_map": the index is damaged. It was removed from the cache; run again.`);
    }
    weights = [...new Set(Object.values(index.weight_map).filter((f): f is string => typeof f === 'string'))];
    for (const f of weights) {
      if (f.includes('..') || f.startsWith('/')) throw new HubError(`${repo}@${revision}/${INDEX} names the shard "${f}", which is not a file of the repository.`);
    }
  } else {
    weights = [SINGLE];
  }
  // sizes up front where the server tells them cheaply, so progress has a total
  plannedFiles = ['config.json', ...(sizes.has(INDEX) ? [INDEX] : []), ...weights, 'tokenizer.json'];
  await Promise.all(
    plannedFiles.filter((f) => !sizes.has(f)).map(async (f) => {
      const state = await cache.stat(key(f));
      if (state?.complete) return sizes.set(f, state.bytes);
      try {
        const url = hubFileUrl(base, repo, revision, f);
        const head = await fetchFn(url, { method: 'HEAD', headers: authHeaders(url, token), redirect: 'follow', signal: options.signal });
        const n = head.headers.get('x-linked-size') ?? (head.headers.get('content-encoding') ? null : head.headers.get('content-length'));
        if (head.ok && n !== null) sizes.set(f, Number(n));
      } catch {
        // sizes are for progress only; the download itself reports errors
      }
    }),
  );
  for (const file of weights) await fetchFile({ file, required: true });
  await fetchFile({ file: 'tokenizer.json', required: true });
  const files = [...plannedFiles];
  if (await fetchFile({ file: 'tokenizer_config.json', required: false })) files.push('tokenizer_config.json');
  const writer = await cache.openAt(key(MANIFEST), 0);
  await writer.write(new TextEncoder().encode(JSON.stringify({ files })));
  await writer.close();
  await cache.markComplete(key(MANIFEST));
  return cacheSource(cache, repo, revision);
}

/** The cached files of one repository and revision as a ModelSource (reads are Range reads of the cache). */
export function cacheSource(cache: HubCache, repo: string, revision: string): ModelSource {
  const key = (file: string): CacheKey => ({ repo, revision, file });
  const name = revision === DEFAULT_REVISION ? repo : `${repo}@${revision}`;
  const complete = async (path: string) => {
    const state = await cache.stat(key(path));
    return state?.complete ? state : null;
  };
  return {
    name,
    exists: async (path) => (await complete(path)) !== null,
    async size(path) {
      const state = await complete(path);
      if (!state) throw new Error(`${name}/${path} is not in ${cache.description}: download the model again.`);
      return state.bytes;
    },
    async readText(path) {
      const state = await complete(path);
      if (!state) throw new Error(`${name}/${path} is not in ${cache.description}: download the model again.`);
      return new TextDecoder().decode(await cache.readRange(key(path), 0, state.bytes));
    },
    readRange: (path, begin, end) => cache.readRange(key(path), begin, end),
  };
}

/** "12.3 MB of 988.1 MB · 45.6 MB/s": a progress line for people. */
export function formatDownload(p: DownloadProgress): string {
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  const of = p.total !== null ? `${mb(p.bytes)} of ${mb(p.total)}` : mb(p.bytes);
  return `${p.file}: ${of}${p.cached ? ' (cached)' : p.bytesPerSecond > 0 ? ` · ${mb(p.bytesPerSecond)}/s` : ''}${p.resumedFrom ? ` · resumed at ${mb(p.resumedFrom)}` : ''}`;
}
