/**
 * A remembered Hub token stays with the origin it was saved for. Two local
 * stand-ins for the Hub (tests/helpers/hub-server.ts) on two ports, i.e. two
 * origins: the token is typed and remembered on the first; a page opened
 * with ?hub=<the second> says the address came from the link and that the
 * saved token is not sent there, and the second server sees no Authorization
 * header at all. Back on the first, the saved token is there again. A third
 * server that redirects everything to the second checks the browser's side:
 * the token typed for the redirecting origin does not follow the redirect.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launchChromium } from './browser';
import { startHubServer, type HubServer } from '../helpers/hub-server';
import { tinyModelFiles } from '../helpers/tiny-models';

const labUrl = inject('labUrl');
const TOKEN = 'hf_e2e_remembered_secret';
const REPO = 'e2e/gated-llama';
// another name on the second server: the first one's download is in the browser's cache (keyed by repository and revision)
const REPO2 = 'e2e/gated-llama-2';

let first: HubServer;
let second: HubServer;
let redirector: Server;
let redirectorUrl: string;
const redirected: { method: string; authorization: string | null }[] = [];
let browser: Browser | null = null;

beforeAll(async () => {
  [first, second] = await Promise.all([startHubServer(), startHubServer()]);
  const files = tinyModelFiles('llama');
  first.put(REPO, 'main', files, { token: TOKEN });
  second.put(REPO2, 'main', files, { token: TOKEN });
  redirector = createServer((req, res) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'Access-Control-Allow-Headers': 'Range, Authorization', 'Access-Control-Allow-Methods': 'GET, HEAD' }).end();
      return;
    }
    redirected.push({ method: req.method ?? 'GET', authorization: req.headers.authorization ?? null });
    res.writeHead(302, { Location: second.baseUrl + (req.url ?? '/') }).end();
  });
  await new Promise<void>((done) => redirector.listen(0, '127.0.0.1', done));
  redirectorUrl = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await browser?.close();
  await Promise.all([first?.close(), second?.close(), new Promise((done) => redirector?.close(done))]);
});

const withHub = (base: string): string => {
  const url = new URL(labUrl);
  url.searchParams.set('hub', base);
  return url.href;
};

describe('a remembered Hub token and a ?hub= link', () => {
  it('is sent only to the origin it was saved for', async () => {
    browser = await launchChromium('no-adapter');
    const page = await browser.newPage();
    const linkNote = page.getByTestId('hub-link-base');

    // 1. typed and remembered on the first server: the download goes through with it
    await page.goto(withHub(first.baseUrl));
    await linkNote.waitFor({ timeout: 30_000 });
    expect(await linkNote.textContent()).not.toMatch(/saved token/);
    await page.getByTestId('hub-repo').fill(REPO);
    await page.getByTestId('hub-token').fill(TOKEN);
    await page.getByTestId('hub-remember').check();
    await page.getByTestId('hub-download').click();
    await page.getByTestId('model-summary').waitFor({ timeout: 30_000 });
    expect(first.log.some((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);

    // 2. a link to the second server: said so, the field is empty, and no request there carries a token
    await page.goto(withHub(second.baseUrl));
    await linkNote.waitFor({ timeout: 30_000 });
    expect((await linkNote.textContent())!.replace(/\s+/g, ' ')).toContain(`Hub address from the link: ${second.baseUrl} — your saved token will not be sent there.`);
    expect(await page.getByTestId('hub-token').inputValue()).toBe('');
    expect(await page.getByTestId('hub-remember').isChecked()).toBe(false);
    await page.getByTestId('hub-repo').fill(REPO2);
    await page.getByTestId('hub-download').click();
    const error = page.getByTestId('hub-error');
    await error.waitFor({ timeout: 30_000 });
    expect(await error.textContent()).toMatch(/config\.json: HTTP 401 — the repository is gated or private/);
    expect(second.log.length).toBeGreaterThan(0);
    expect(second.log.filter((r) => r.authorization !== null || r.url.includes(TOKEN))).toEqual([]);

    // 3. back on the first server, the saved token is in the field again
    await page.goto(withHub(first.baseUrl));
    await linkNote.waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('hub-token').inputValue()).toBe(TOKEN);
    expect(await page.getByTestId('hub-remember').isChecked()).toBe(true);

    // 4. a token typed for a server that redirects to another origin: the redirect arrives without it
    const seen = second.log.length;
    await page.goto(withHub(redirectorUrl));
    await linkNote.waitFor({ timeout: 30_000 });
    expect(await linkNote.textContent()).toMatch(/your saved token will not be sent there/);
    await page.getByTestId('hub-repo').fill(REPO2);
    await page.getByTestId('hub-token').fill(TOKEN);
    await page.getByTestId('hub-download').click();
    await error.waitFor({ timeout: 30_000 });
    expect(redirected.some((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    const after = second.log.slice(seen);
    expect(after.length).toBeGreaterThan(0);
    expect(after.filter((r) => r.authorization !== null)).toEqual([]);
  }, 60_000);
});
