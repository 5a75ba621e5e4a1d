/** A Hub in memory for unit tests: a HubCache holding files in a Map, and a fetch serving a repository's files while recording every request. */
import type { CacheKey, HubCache } from '../../../src/lab/hub-cache';

export function memoryCache(): HubCache {
  const files = new Map<string, { bytes: Uint8Array; complete: boolean }>();
  const id = (k: CacheKey) => `${k.repo}@${k.revision}/${k.file}`;
  return {
    description: 'memory',
    stat: async (k) => {
      const f = files.get(id(k));
      return f ? { bytes: f.bytes.length, complete: f.complete } : null;
    },
    openAt: async (k, offset) => {
      const kept = (files.get(id(k))?.bytes ?? new Uint8Array(0)).subarray(0, offset);
      const parts: Uint8Array[] = [kept];
      files.set(id(k), { bytes: kept, complete: false });
      return {
        write: async (chunk) => void parts.push(chunk.slice()),
        close: async () => {
          const all = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
          let at = 0;
          for (const p of parts) all.set(p, (at += p.length) - p.length);
          files.set(id(k), { bytes: all, complete: false });
        },
      };
    },
    markComplete: async (k) => void (files.get(id(k))!.complete = true),
    remove: async (k) => void files.delete(id(k)),
    readRange: async (k, b, e) => (files.get(id(k))?.bytes ?? new Uint8Array(0)).slice(b, e),
    list: async () => [],
    clear: async () => 0,
  };
}

export interface RecordedRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
}

/**
 * A fetch answering for `prefix` (`<base>/<repo>/resolve/<revision>/`) from
 * `files` (404 for others); `status` overrides the answer for every file.
 */
export function hubFetch(prefix: string, files: Record<string, Uint8Array | string>, log: RecordedRequest[], status?: number): typeof fetch {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    log.push({ url, method: init?.method ?? 'GET', headers: Object.fromEntries(new Headers(init?.headers).entries()) });
    if (status !== undefined) return new Response('no', { status, statusText: 'Refused' });
    const body = url.startsWith(prefix) ? files[decodeURIComponent(url.slice(prefix.length))] : undefined;
    if (body === undefined) return new Response('Entry not found', { status: 404 });
    const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
    return new Response(init?.method === 'HEAD' ? null : new Uint8Array(bytes), { status: 200, headers: { 'content-length': String(bytes.length) } });
  }) as typeof fetch;
}
