/**
 * The rule for where a Hub access token goes (src/lab/hub.ts hubTokenFor,
 * bindHubToken; src/lab/model-sources.ts): a token is bound to one origin —
 * the address in effect when it was given, or the origin it was remembered
 * for — and rides only on requests to that origin. Changing the Hub address
 * (a ?hub= link does so through setHub) leaves the token unsent; a redirect
 * from the token's origin to another one arrives without it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directoryCache } from '../../src/lab/hub-cache-node';
import { bindHubToken, downloadHubModel, hubTokenFor, originOf } from '../../src/lab/hub';
import { ModelSources } from '../../src/lab/model-sources';
import { startHubServer, type HubServer } from '../helpers/hub-server';
import { tinyModelFiles } from '../helpers/tiny-models';

const TOKEN = 'hf_origin_bound_secret';
const HF = { value: TOKEN, origin: 'https://huggingface.co' };

describe('hubTokenFor: the token goes only to its own origin', () => {
  it('same scheme, host and port: sent', () => {
    expect(hubTokenFor('https://huggingface.co/org/m/resolve/main/config.json', HF)).toBe(TOKEN);
    expect(hubTokenFor('https://HuggingFace.co:443/x', HF)).toBe(TOKEN);
  });
  it.each([
    'https://evil.example/org/m/resolve/main/config.json',
    'https://huggingface.co.evil.example/x',
    'https://huggingface.co@evil.example/x',
    'https://cdn-lfs.huggingface.co/x',
    'http://huggingface.co/x',
    'https://huggingface.co:8443/x',
    'ftp://huggingface.co/x',
    'not a url',
  ])('%s: not sent', (url) => {
    expect(hubTokenFor(url, HF)).toBeNull();
  });
  it('no token: nothing', () => {
    expect(hubTokenFor('https://huggingface.co/x', null)).toBeNull();
  });
});

describe('bindHubToken', () => {
  it('binds a plain string to the base address given with it; a bound token keeps its own origin, normalized', () => {
    expect(bindHubToken(` ${TOKEN} `, 'http://127.0.0.1:8080/mirror/')).toEqual({ value: TOKEN, origin: 'http://127.0.0.1:8080' });
    expect(bindHubToken({ value: TOKEN, origin: 'https://HuggingFace.co/' }, 'https://evil.example')).toEqual(HF);
    expect(bindHubToken('  ', 'https://huggingface.co')).toBeNull();
    expect(bindHubToken(null, 'https://huggingface.co')).toBeNull();
    expect(() => bindHubToken({ value: TOKEN, origin: 'javascript:alert(1)' }, 'https://huggingface.co')).toThrow(/http\(s\) address/);
    expect(originOf('https://huggingface.co/org/m')).toBe('https://huggingface.co');
  });
});

describe('ModelSources: the token does not follow a change of address', () => {
  let first: HubServer;
  let second: HubServer;
  let redirector: Server;
  let redirectorUrl: string;
  const redirected: (string | null)[] = [];
  let dir: string;

  beforeAll(async () => {
    [first, second] = await Promise.all([startHubServer(), startHubServer()]);
    first.put('gated/llama', 'main', tinyModelFiles('llama'), { token: TOKEN });
    second.put('gated/llama', 'main', tinyModelFiles('llama'), { token: TOKEN });
    second.put('open/llama', 'main', tinyModelFiles('llama'));
    // a Hub whose files all live on another origin (like the Hub's CDN redirects)
    redirector = createServer((req, res) => {
      redirected.push(req.headers.authorization ?? null);
      res.writeHead(302, { Location: second.baseUrl + (req.url ?? '/') }).end();
    });
    await new Promise<void>((done) => redirector.listen(0, '127.0.0.1', done));
    redirectorUrl = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}`;
    dir = mkdtempSync(join(tmpdir(), 'qlab-token-origin-'));
  });
  afterAll(async () => {
    await Promise.all([first.close(), second.close(), new Promise((done) => redirector.close(done))]);
    rmSync(dir, { recursive: true, force: true });
  });

  const sources = (sub: string) =>
    new ModelSources({
      embedded: () => {
        throw new Error('no embedded models here');
      },
      cache: () => directoryCache(join(dir, sub)),
      hub: { baseUrl: first.baseUrl },
    });

  it('a token given for the first address is not sent to a second one set after it (a ?hub= link), and is sent again back home', async () => {
    const s = sources('a');
    s.setHub({ token: TOKEN });
    expect(s.tokenOrigin()).toBe(first.baseUrl);
    s.setHub({ baseUrl: second.baseUrl });
    expect(s.hasToken()).toBe(false);
    await expect(s.resolve({ kind: 'hub', repo: 'gated/llama', revision: 'main' })).rejects.toThrow(
      new RegExp(`HTTP 401 — .*The access token given is for ${first.baseUrl} and is not sent to ${second.baseUrl}`),
    );
    expect(second.log.length).toBeGreaterThan(0);
    expect(second.log.filter((r) => r.authorization !== null)).toEqual([]);

    s.setHub({ baseUrl: first.baseUrl });
    expect(s.hasToken()).toBe(true);
    await s.resolve({ kind: 'hub', repo: 'gated/llama', revision: 'main' });
    expect(first.log.some((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
  });

  it('a remembered token bound to another origin is not sent, even when given together with the address', async () => {
    const before = second.log.length;
    const s = sources('b');
    s.setHub({ baseUrl: second.baseUrl, token: { value: TOKEN, origin: first.baseUrl } });
    expect(s.hasToken()).toBe(false);
    await expect(s.resolve({ kind: 'hub', repo: 'gated/llama', revision: 'main' })).rejects.toThrow(/HTTP 401/);
    expect(second.log.slice(before).filter((r) => r.authorization !== null)).toEqual([]);
    // confirmed for the second origin explicitly: sent there
    s.setHub({ token: { value: TOKEN, origin: second.baseUrl } });
    expect(s.hasToken()).toBe(true);
    await s.resolve({ kind: 'hub', repo: 'gated/llama', revision: 'main' });
    expect(second.log.slice(before).some((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
  });

  it('a redirect from the token\'s origin to another one arrives without the token (fetch drops Authorization)', async () => {
    const before = second.log.length;
    await downloadHubModel({ repo: 'open/llama', revision: 'main' }, { cache: directoryCache(join(dir, 'c')), baseUrl: redirectorUrl, token: TOKEN });
    expect(redirected.length).toBeGreaterThan(0);
    expect(redirected.every((a) => a === `Bearer ${TOKEN}`)).toBe(true); // the token's own origin got it
    const after = second.log.slice(before);
    expect(after.length).toBeGreaterThan(0);
    expect(after.filter((r) => r.authorization !== null)).toEqual([]);
  });
});
