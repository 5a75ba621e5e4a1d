/**
 * Downloads from a local stand-in for the Hub (tests/helpers/hub-server.ts):
 * the embedded models served as if from the Hub, unsharded and re-cut into
 * shards, load tensor for tensor bit-identical to the direct load; a second
 * load comes from the cache; tokens only travel in the Authorization header;
 * 401/403/404, a cut-off body, wrong Content-Lengths and corrupt shards give
 * messages that say what to do; a cut-off download resumes with a Range
 * request and ends identical.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Sha256 } from '../../src/core/sha256';
import { directoryCache } from '../../src/lab/hub-cache-node';
import { summarizeCache, type HubCache } from '../../src/lab/hub-cache';
import { downloadHubModel, parseHubRef, type DownloadProgress } from '../../src/lab/hub';
import { loadModel, type LoadedModel } from '../../src/lab/load';
import { directorySource } from '../../src/lab/source-node';
import { startHubServer, type HubServer } from '../helpers/hub-server';
import { embeddedDir, embeddedModelFiles, tinyModelFiles } from '../helpers/tiny-models';

let server: HubServer;
let dir: string;
let cache: HubCache;

beforeAll(async () => {
  server = await startHubServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'qlab-hub-'));
  cache = directoryCache(dir);
  server.log.length = 0;
  return () => rmSync(dir, { recursive: true, force: true });
});

const download = (repo: string, extra: Partial<Parameters<typeof downloadHubModel>[1]> = {}, revision = 'main') =>
  downloadHubModel({ repo, revision }, { cache, baseUrl: server.baseUrl, ...extra });

async function expectSameTensors(a: LoadedModel, b: LoadedModel): Promise<void> {
  expect(a.tensors.map((t) => t.canonical)).toEqual(b.tensors.map((t) => t.canonical));
  for (const t of a.tensors) {
    const x = await a.getTensor(t.canonical);
    const y = await b.getTensor(t.canonical);
    expect(Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength)), t.canonical).toBe(true);
  }
}

describe('embedded models served as if from the Hub', () => {
  for (const [id, shards] of [['qlab-llama-6m', 1], ['qlab-gpt2-6m', 3]] as const) {
    it(`${id}, ${shards === 1 ? 'one file' : `${shards} shards with an index`}: bit-identical to the direct load, then served from the cache`, async () => {
      server.put(`qlab/${id}`, 'main', embeddedModelFiles(id, shards));
      const events: DownloadProgress[] = [];
      const source = await download(`qlab/${id}`, { onProgress: (p) => events.push(p) });
      const hub = await loadModel(source);
      const direct = await loadModel(directorySource(embeddedDir(id)));
      expect(hub.files.length).toBe(shards);
      await expectSameTensors(hub, direct);
      const text = 'The quick brown fox, 1993.\n';
      expect(hub.tokenizer!.encode(text)).toEqual(direct.tokenizer!.encode(text));
      // progress: bytes grow to the total, which is known and right
      const last = events.at(-1)!;
      const files = embeddedModelFiles(id, shards);
      const needed = Object.entries(files).reduce((s, [, v]) => s + v.length, 0);
      expect(last.bytes).toBe(needed);
      expect(events.some((e) => e.total === needed - files['tokenizer_config.json'].length)).toBe(true);
      // a second load reads the cache without a single request (it would work offline)
      server.log.length = 0;
      const again = await loadModel(await download(`qlab/${id}`));
      expect(server.log).toEqual([]);
      await expectSameTensors(again, direct);
      const listed = summarizeCache(await cache.list());
      expect(listed).toEqual([{ repo: `qlab/${id}`, revision: 'main', bytes: needed, files: Object.keys(files).length, complete: true }]);
      const freed = await cache.clear({ repo: `qlab/${id}` });
      expect(freed - needed).toBeGreaterThan(0); // and the download's small manifest
      expect(freed - needed).toBeLessThan(1000);
      expect(await cache.list()).toEqual([]);
    });
  }
});

describe('access tokens', () => {
  beforeAll(() => server.put('gated/tiny-llama', 'main', tinyModelFiles('llama'), { token: 'hf_secret_123' }));

  it('401 without a token says to paste one; 403 with a wrong one says to request access; neither message holds the token', async () => {
    await expect(download('gated/tiny-llama')).rejects.toThrow(/gated\/tiny-llama@main\/config\.json: HTTP 401 — the repository is gated or private .* Paste an access token/);
    const wrong = download('gated/tiny-llama', { token: 'hf_wrong_456' });
    await expect(wrong).rejects.toThrow(/HTTP 403 — the token has no access/);
    await expect(wrong).rejects.not.toThrow(/hf_wrong_456/);
  });

  it('with the right token it loads; the token is only ever in the Authorization header', async () => {
    const model = await loadModel(await download('gated/tiny-llama', { token: 'hf_secret_123' }));
    expect(model.config.family).toBe('llama');
    const gets = server.log.filter((r) => r.method === 'GET');
    expect(gets.length).toBeGreaterThanOrEqual(3);
    for (const r of server.log) {
      expect(r.url).not.toContain('hf_secret');
      expect(r.authorization).toBe('Bearer hf_secret_123');
    }
  });
});

describe('errors a person can act on', () => {
  it('404: names the repository and the revision to check', async () => {
    await expect(download('nobody/nothing', {}, 'v2')).rejects.toThrow('nobody/nothing@v2/config.json: HTTP 404 — no such file. Check the repository id "nobody/nothing" and the revision "v2"');
  });

  it('a cut-off body keeps the partial file; the next run resumes it with a Range request and ends identical', async () => {
    const files = embeddedModelFiles('qlab-llama-6m', 2);
    const shard = 'model-00002-of-00002.safetensors';
    server.put('qlab/cut', 'main', files);
    server.fault('qlab/cut', 'main', shard, { cutAfter: 1_000_000, times: 1 });
    await expect(download('qlab/cut')).rejects.toThrow(new RegExp(`qlab/cut@main/${shard}: the download was cut off at byte 1,000,000 of ${files[shard].length.toLocaleString('en-US')}.*kept in the folder .*run again to resume`));
    const partial = (await cache.list()).find((e) => e.file === shard)!;
    expect(partial).toMatchObject({ bytes: 1_000_000, complete: false });
    server.log.length = 0;
    const events: DownloadProgress[] = [];
    const source = await download('qlab/cut', { onProgress: (p) => events.push(p) });
    expect(server.log.find((r) => r.method === 'GET' && r.url.endsWith(shard))?.range).toBe('bytes=1000000-');
    expect(events.some((e) => e.file === shard && e.resumedFrom === 1_000_000)).toBe(true);
    const cached = readFileSync(join(dir, encodeURIComponent('qlab/cut'), 'main', shard));
    expect(createHash('sha256').update(cached).digest('hex')).toBe(createHash('sha256').update(files[shard]).digest('hex'));
    await expectSameTensors(await loadModel(source), await loadModel(directorySource(embeddedDir('qlab-llama-6m'))));
  });

  it('a file whose bytes all arrived but was never marked complete is checked and kept, not fetched again', async () => {
    const files = tinyModelFiles('gpt2');
    server.put('qlab/whole', 'main', files);
    const writer = await cache.openAt({ repo: 'qlab/whole', revision: 'main', file: 'model.safetensors' }, 0);
    await writer.write(files['model.safetensors']);
    await writer.close();
    server.log.length = 0;
    const model = await loadModel(await download('qlab/whole'));
    expect(model.config.family).toBe('gpt2');
    const get = server.log.find((r) => r.method === 'GET' && r.url.endsWith('/model.safetensors'))!;
    expect(get.range).toBe(`bytes=${files['model.safetensors'].length}-`); // answered 416: nothing more to send
  });

  it('a server that ignores Range on resume: the file starts over and ends identical', async () => {
    const files = tinyModelFiles('qwen2');
    server.put('qlab/norange', 'main', files);
    server.fault('qlab/norange', 'main', 'model.safetensors', { cutAfter: 5000, times: 1 });
    await expect(download('qlab/norange')).rejects.toThrow(/cut off at byte 5,000/);
    server.fault('qlab/norange', 'main', 'model.safetensors', { noRange: true });
    await download('qlab/norange');
    const cached = readFileSync(join(dir, encodeURIComponent('qlab/norange'), 'main', 'model.safetensors'));
    expect(Buffer.compare(cached, Buffer.from(files['model.safetensors']))).toBe(0);
  });

  it('a Content-Length larger than the body reads as a cut-off download', async () => {
    const files = tinyModelFiles('llama');
    server.put('qlab/long', 'main', files);
    server.fault('qlab/long', 'main', 'tokenizer.json', { length: files['tokenizer.json'].length + 100, times: 1 });
    await expect(download('qlab/long')).rejects.toThrow(/tokenizer\.json: the download was cut off at byte/);
  });

  it('a Content-Length smaller than the file: the truncated shard is caught by its header and removed from the cache', async () => {
    const files = embeddedModelFiles('qlab-gpt2-6m', 2);
    const shard = 'model-00001-of-00002.safetensors';
    server.put('qlab/short', 'main', files);
    server.fault('qlab/short', 'main', shard, { length: files[shard].length - 4096 });
    await expect(download('qlab/short')).rejects.toThrow(new RegExp(`qlab/short@main/${shard} is damaged: .*the download was cut off.*removed from the cache: run again to download it afresh`));
    expect((await cache.list()).some((e) => e.file === shard)).toBe(false);
  });

  it('a corrupt shard header is named, and the shard removed', async () => {
    const files = embeddedModelFiles('qlab-gpt2-6m', 2);
    const shard = 'model-00002-of-00002.safetensors';
    const bad = files[shard].slice();
    bad.fill(0x7b, 8, 40); // '{' over the start of the JSON header
    server.put('qlab/corrupt', 'main', { ...files, [shard]: bad });
    await expect(download('qlab/corrupt')).rejects.toThrow(new RegExp(`qlab/corrupt@main/${shard} is damaged: .*header.*run again to download it afresh`));
    expect((await cache.list()).some((e) => e.file === shard)).toBe(false);
  });

  it('corrupt shard data: caught by the SHA-256 the server names in X-Linked-ETag', async () => {
    const files = embeddedModelFiles('qlab-llama-6m', 2);
    const shard = 'model-00001-of-00002.safetensors';
    server.put('qlab/sha', 'main', files, { etagSha256: true });
    const good = await download('qlab/sha'); // every file checked against its digest
    expect(await good.exists(shard)).toBe(true);
    await cache.clear();
    const bad = files[shard].slice();
    bad[bad.length - 10] ^= 0x55;
    // damaged in transit: the server's digest of the good file, with bad bytes
    server.put('qlab/sha2', 'main', files, { etagSha256: true });
    const realFetch = globalThis.fetch;
    const tampering: typeof fetch = async (input, init) => {
      const response = await realFetch(input, init);
      if (!String(input).endsWith(shard) || (init?.method ?? 'GET') !== 'GET') return response;
      return new Response(bad, { status: 200, headers: response.headers });
    };
    await expect(download('qlab/sha2', { fetch: tampering })).rejects.toThrow(new RegExp(`qlab/sha2@main/${shard} is damaged: its SHA-256 is [0-9a-f]{12}…, the server's X-Linked-ETag says [0-9a-f]{12}…`));
  });

  it('refuses a malformed repository id before any request', async () => {
    await expect(download('../etc/passwd')).rejects.toThrow(/is not a Hugging Face repository id/);
    expect(server.log).toEqual([]);
  });
});

describe('pure parts', () => {
  it('repo ids with and without a revision', () => {
    expect(parseHubRef('Qwen/Qwen2.5-0.5B')).toEqual({ kind: 'hub', repo: 'Qwen/Qwen2.5-0.5B', revision: 'main' });
    expect(parseHubRef(' HuggingFaceTB/SmolLM2-135M@a1b2c3 ')).toEqual({ kind: 'hub', repo: 'HuggingFaceTB/SmolLM2-135M', revision: 'a1b2c3' });
    expect(() => parseHubRef('not a repo')).toThrow(/not a Hugging Face repository id/);
  });

  it('SHA-256 fed in pieces equals node:crypto', () => {
    for (const n of [0, 1, 55, 56, 63, 64, 65, 1000, 100_003]) {
      const data = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 255);
      const hash = new Sha256().update(data.subarray(0, n >> 1)).update(data.subarray(n >> 1, n - 3)).update(data.subarray(n - 3 < 0 ? 0 : n - 3)).hex();
      expect(hash, `${n} bytes`).toBe(createHash('sha256').update(data).digest('hex'));
    }
  });
});
