/**
 * A model "from the Hub" in the page: a local stand-in for the Hub
 * (tests/helpers/hub-server.ts, CORS like the real one) serves a random-weight
 * llama in two f16 shards behind an access token; the page is opened with
 * ?hub=<its address>. Without a token the download is refused with a message
 * that asks for one; with it the model downloads into the browser's storage,
 * its memory plan is shown (against a budget, then without), and the default
 * sweep runs on it. The token only
 * ever travels in the Authorization header, and the cache list clears.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openLab } from './browser';
import { startHubServer, type HubServer } from '../helpers/hub-server';
import { tinyConfig, tinyModelFiles } from '../helpers/tiny-models';

const labUrl = inject('labUrl');
const TOKEN = 'hf_e2e_secret_token';
const REPO = 'e2e/tiny-llama';

let server: HubServer;
let browser: Browser | null = null;

beforeAll(async () => {
  server = await startHubServer();
  // big enough for every scheme of the default sweep (K = 128 takes groups of 128), small enough for SwiftShader
  const config = { ...tinyConfig('llama'), hidden_size: 128, intermediate_size: 128, num_hidden_layers: 1, head_dim: 32, max_position_embeddings: 256 };
  server.put(REPO, 'main', tinyModelFiles('llama', { config, dtype: 'F16', shards: 2 }), { token: TOKEN });
});
afterAll(async () => {
  await browser?.close();
  await server.close();
});

describe('a model from the Hub', () => {
  it('downloads behind a token, shows its memory plan, runs the default sweep, and clears from the cache', async () => {
    const url = new URL(labUrl);
    url.searchParams.set('hub', server.baseUrl);
    const opened = await openLab('webgpu', url.href);
    browser = opened.browser;
    const { page, errors } = opened;
    await page.getByTestId('evaluate-form').waitFor({ timeout: 30_000 });

    await page.getByTestId('hub-repo').fill(REPO);
    await page.getByTestId('hub-download').click();
    const error = page.getByTestId('hub-error');
    await error.waitFor({ timeout: 30_000 });
    expect(await error.textContent()).toMatch(/e2e\/tiny-llama@main\/config\.json: HTTP 401 — the repository is gated or private .*Paste an access token/);

    // with a budget of 2 MB the plan warns; without one, what the form would run fits
    await page.getByTestId('hub-token').fill(TOKEN);
    await page.getByTestId('gpu-budget').fill('0.002');
    await page.getByTestId('hub-download').click();
    const summary = page.getByTestId('model-summary');
    await summary.waitFor({ timeout: 60_000 });
    expect(await summary.textContent()).toMatch(/llama, 1 layer, hidden 128/);
    expect(await page.getByTestId('memory-plan').textContent()).toMatch(/^GPU memory: Nothing fits: .* is over the budget of 2\.0 MB/);
    await page.getByTestId('gpu-budget').fill('');
    await page.getByTestId('hub-download').click(); // from the cache now
    await page.getByTestId('memory-plan').filter({ hasText: /^GPU memory: [^;]* fits?\.$/ }).waitFor({ timeout: 30_000 });

    // the default sweep (f32, RTN W8 row, W4 g128, W3 g128, W2 g64) on one window of 128
    await page.getByTestId('window-length').selectOption({ label: '128 tokens' });
    await page.getByTestId('slice-first').check();
    await page.getByTestId('windows').fill('1');
    await page.getByTestId('run-sweep').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="result-row"]').length >= 5, null, { timeout: 300_000 });
    const rows = await page.getByTestId('result-row').evaluateAll((els) =>
      els.map((el) => ({
        model: el.querySelector('[data-testid="result-model"]')?.textContent?.trim(),
        method: el.querySelector('[data-testid="result-method"]')?.textContent?.trim(),
        ppl: Number(el.querySelector('[data-testid="result-ppl"]')?.textContent?.replace(/,/g, '')),
      })),
    );
    expect(rows.map((r) => r.model)).toEqual(Array(5).fill(REPO));
    expect(rows.map((r) => r.method).sort()).toEqual(['f32', 'RTN W2 g64', 'RTN W3 g128', 'RTN W4 g128', 'RTN W8 row'].sort());
    for (const r of rows) expect(Number.isFinite(r.ppl) && r.ppl > 1, `${r.method}: ${r.ppl}`).toBe(true);

    // the token went in the Authorization header of the requests after it was given, never in an address
    expect(server.log.some((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    for (const r of server.log) expect(r.url).not.toContain(TOKEN);
    const html = await page.content();
    expect(html).not.toContain(TOKEN.slice(3)); // the field is a password input: its value is not in the markup

    // the cache lists the model with its size; clearing it empties the list
    await page.locator('[data-testid="hub-model"] summary', { hasText: 'Downloaded models' }).click();
    const cache = page.getByTestId('hub-cache');
    expect(await cache.textContent()).toMatch(/e2e\/tiny-llama@main · \d+\.\d MB · 6 files/);
    await page.getByTestId('hub-clear').click();
    await cache.waitFor({ state: 'detached', timeout: 10_000 });

    // 401s show up as failed-resource console lines: expected here, anything else is not
    expect(errors.filter((e) => !/status of 401/.test(e))).toEqual([]);
  }, 420_000);
});
