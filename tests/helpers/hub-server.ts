/**
 * A stand-in for the Hugging Face Hub on 127.0.0.1: files served in the Hub's
 * URL layout (`/<repo>/resolve/<revision>/<file>`), GET and HEAD, Range
 * requests (206 with Content-Range), and faults injected per file:
 *   status      answer with this HTTP status (401, 403, 404, 500, ...)
 *   cutAfter    send Content-Length of the whole file, then close the
 *               connection after this many body bytes
 *   length      announce this Content-Length (and send that many bytes)
 *   noRange     ignore Range headers (answer 200 with the whole file)
 *   times       the fault applies to the next n GET requests only
 * A repository can require a token (401 without, 403 with a wrong one). Every
 * request is logged (method, URL, Range, Authorization) so tests can check
 * where the token went.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Fault {
  status?: number;
  cutAfter?: number;
  length?: number;
  noRange?: boolean;
  times?: number;
}

export interface LoggedRequest {
  method: string;
  url: string;
  range: string | null;
  authorization: string | null;
}

export interface HubServer {
  baseUrl: string;
  log: LoggedRequest[];
  /** (re)places a repository's files at a revision */
  put(repo: string, revision: string, files: Record<string, Uint8Array | string>, options?: { token?: string; etagSha256?: boolean }): void;
  /** serves a folder's files, read from disk per request (large models: never all in memory) */
  putDirectory(repo: string, revision: string, dir: string): void;
  /** a fault for one file (`repo`, `revision`, `file`), replacing any earlier one */
  fault(repo: string, revision: string, file: string, fault: Fault | null): void;
  close(): Promise<void>;
}

interface Repo {
  files: Map<string, Uint8Array | { path: string; size: number }>;
  token?: string;
  etagSha256: boolean;
}

export async function startHubServer(): Promise<HubServer> {
  const repos = new Map<string, Repo>();
  const faults = new Map<string, Fault>();
  const log: LoggedRequest[] = [];
  const id = (repo: string, revision: string, file = '') => `${repo}@${revision}/${file}`;

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    // the page (another origin) reads it as it reads the Hub: CORS with Range and Authorization allowed
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', 'Content-Range, Content-Length, ETag, X-Linked-Etag, X-Linked-Size, Accept-Ranges');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'Access-Control-Allow-Headers': 'Range, Authorization', 'Access-Control-Allow-Methods': 'GET, HEAD', 'Access-Control-Max-Age': '600' }).end();
      return;
    }
    log.push({ method: req.method ?? 'GET', url: req.url ?? '', range: req.headers.range ?? null, authorization: req.headers.authorization ?? null });
    const m = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!m) {
      res.writeHead(404).end('Not Found');
      return;
    }
    const [repoName, revision, file] = [m[1], decodeURIComponent(m[2]), m[3].split('/').map(decodeURIComponent).join('/')];
    const repo = repos.get(id(repoName, revision));
    const fault = faults.get(id(repoName, revision, file));
    // faults hit GETs (a HEAD for the size neither triggers nor uses up a body fault)
    const isGet = req.method !== 'HEAD';
    const applies = fault !== undefined && (fault.times === undefined || fault.times > 0) && (isGet || fault.status !== undefined);
    if (applies && isGet && fault.times !== undefined) fault.times--;
    if (applies && fault.status) {
      res.writeHead(fault.status, { 'Content-Type': 'text/plain' }).end(`injected ${fault.status}`);
      return;
    }
    if (repo?.token !== undefined) {
      const auth = req.headers.authorization;
      if (!auth) return void res.writeHead(401, { 'Content-Type': 'text/plain' }).end('Access to this model is restricted.');
      if (auth !== `Bearer ${repo.token}`) return void res.writeHead(403, { 'Content-Type': 'text/plain' }).end('Forbidden.');
    }
    const data = repo?.files.get(file);
    if (!data) {
      res.writeHead(404, { 'Content-Type': 'text/plain', 'X-Error-Code': 'EntryNotFound' }).end('Entry not found');
      return;
    }
    const headers: Record<string, string | number> = { 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes' };
    if (!(data instanceof Uint8Array)) {
      // a file on disk: whole or one range, streamed (no faults)
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      const start = range ? Number(range[1]) : 0;
      const end = range && range[2] ? Math.min(Number(range[2]), data.size - 1) : data.size - 1;
      if (range) headers['Content-Range'] = `bytes ${start}-${end}/${data.size}`;
      headers['Content-Length'] = Math.max(0, end - start + 1);
      res.writeHead(range ? 206 : 200, headers);
      if (req.method === 'HEAD' || end < start) return void res.end();
      createReadStream(data.path, { start, end }).pipe(res);
      return;
    }
    if (repo!.etagSha256) headers['X-Linked-Etag'] = `"${createHash('sha256').update(data).digest('hex')}"`;
    let body = data;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range && !(applies && fault.noRange)) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), data.length - 1) : data.length - 1;
      if (start >= data.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${data.length}` }).end();
        return;
      }
      body = data.subarray(start, end + 1);
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${data.length}`;
    }
    const announced = applies && fault.length !== undefined ? fault.length : body.length;
    headers['Content-Length'] = announced;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') return void res.end();
    // a body shorter than announced: send it, then close the connection (a FIN, so what was sent arrives)
    const cutAt = applies && fault.cutAfter !== undefined ? fault.cutAfter : announced > body.length ? body.length : null;
    if (cutAt !== null) {
      res.write(body.subarray(0, cutAt), () => setTimeout(() => req.socket.end(), 20));
      return;
    }
    res.end(body.subarray(0, Math.min(announced, body.length)));
  };

  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    log,
    put(repo, revision, files, options = {}) {
      const map = new Map(Object.entries(files).map(([k, v]) => [k, typeof v === 'string' ? new TextEncoder().encode(v) : v]));
      repos.set(id(repo, revision), { files: map, token: options.token, etagSha256: options.etagSha256 ?? false });
    },
    putDirectory(repo, revision, dir) {
      const files = new Map<string, { path: string; size: number }>();
      for (const name of readdirSync(dir)) files.set(name, { path: join(dir, name), size: statSync(join(dir, name)).size });
      repos.set(id(repo, revision), { files, etagSha256: false });
    },
    fault(repo, revision, file, fault) {
      if (fault) faults.set(id(repo, revision, file), { ...fault });
      else faults.delete(id(repo, revision, file));
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
