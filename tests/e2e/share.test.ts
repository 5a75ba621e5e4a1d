/**
 * Sharing and importing in headless Chromium: a results JSON from another
 * GPU becomes rows marked with its file and a series of its own on the
 * frontier, and survives a reload; "Copy link" puts the queue in the URL, and
 * opening that URL in a fresh browser fills its queue without running it; a
 * broken link gets a message, not a crash.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { Result } from '../../src/core/experiment';
import { launchChromium, openLab } from './browser';

const labUrl = inject('labUrl');
const resultsDir = new URL('../../test-results/', import.meta.url).pathname;

let browser: Browser | null = null;

afterEach(async () => {
  await browser?.close();
  browser = null;
});

/** A finished run as another GPU would have exported it. */
function exported(id: string, bits: 4 | null, ppl: number, weightBytes: number): Result {
  return {
    id,
    spec: { model: { kind: 'embedded', id: 'qlab-llama-6m' }, method: bits === null ? { id: 'none' } : { id: 'rtn', bits, groupSize: 128, symmetric: false }, eval: { protocol: 'gptq', windowLength: 128, windows: 1 } },
    status: 'done',
    createdAt: '2026-11-01T12:00:00.000Z',
    device: { vendor: 'nvidia', architecture: 'ada', description: 'NVIDIA GeForce RTX 4090', features: ['shader-f16', 'timestamp-query'] },
    protocol: { protocol: 'gptq', windowLength: 128, windowsTotal: 3460, windows: 1, scoredTokens: 127, textTokens: 442888 },
    metrics: {
      perplexity: ppl, perplexitySe: ppl / 20, meanNll: Math.log(ppl), meanNllSe: 0.05, meanNllSeByWindow: 0.05, nllSum: 127 * Math.log(ppl),
      bitsPerWeight: bits === null ? 32 : 4.25, weightBytes, peakBytes: weightBytes * 2, peakByCategory: { weights: weightBytes }, quantizedParams: 4.2e6, totalParams: 6.1e6,
      prefillTokensPerSecond: 52000, decodeTokensPerSecond: 410, prefillGpuTokensPerSecond: 90000, decodeGpuTokensPerSecond: 1200,
    },
    timing: { prepare: 0.2, load: 0.4, evaluate: 0.1, speed: 1 },
    kernels: ['matmul-f32', 'matmul-q4'],
    windowNll: [127 * Math.log(ppl)],
    methodReport: {},
  };
}

async function ready(page: Page): Promise<void> {
  await page.getByTestId('evaluate-form').waitFor({ timeout: 30_000 });
}

describe('share and import', () => {
  it('imports a results JSON as its own series, kept across a reload', async () => {
    const start = Date.now();
    const opened = await openLab('webgpu', labUrl);
    browser = opened.browser;
    const { page, errors } = opened;
    await ready(page);

    mkdirSync(resultsDir, { recursive: true });
    const file = `${resultsDir}rtx4090-results.json`;
    writeFileSync(file, JSON.stringify([exported('gpu-f32', null, 28.4, 24.4e6), exported('gpu-w4', 4, 30.1, 7.1e6)], null, 1));
    await page.getByTestId('import-file').setInputFiles(file);
    await page.getByTestId('share-notice').getByText('Imported 2 results from rtx4090-results.json.').waitFor({ timeout: 10_000 });

    const rows = page.getByTestId('result-row');
    await expect(rows.count()).resolves.toBe(2);
    // imported results are not runs of this page's queue
    await expect(page.getByTestId('queue-item').count()).resolves.toBe(0);
    await expect(page.getByTestId('result-source').allTextContents()).resolves.toEqual(['from rtx4090-results.json', 'from rtx4090-results.json']);
    await expect(page.getByTestId('result-ppl').allTextContents()).resolves.toEqual(['28.40', '30.10']);
    const plot = page.getByTestId('frontier-plot');
    await expect(plot.locator('g.point').count()).resolves.toBe(2);
    const series = await plot.locator('g.series').evaluateAll((gs) => gs.map((g) => g.getAttribute('data-series')));
    expect(series).toEqual(['rtx4090-results.json · f32 baseline', 'rtx4090-results.json · RTN g128']);
    await plot.locator('g.point[data-id="gpu-w4"] circle').last().hover();
    await expect(page.getByTestId('frontier-info').textContent()).resolves.toContain('imported from rtx4090-results.json');

    // the same file again adds nothing; a broken one is refused with a message
    await page.getByTestId('import-file').setInputFiles(file);
    await page.getByTestId('share-notice').getByText(/Imported 0 results .*2 results already here were skipped/).waitFor({ timeout: 10_000 });
    await page.getByTestId('import-file').setInputFiles({ name: 'broken.json', mimeType: 'application/json', buffer: Buffer.from('[{"id": "x"}]') });
    await page.locator('[data-testid="share-notice"][data-kind="error"]').getByText(/^broken.json cannot be imported: result 1 \(id x\): spec: /).waitFor({ timeout: 10_000 });
    await expect(rows.count()).resolves.toBe(2);

    await page.reload();
    await ready(page);
    await rows.nth(1).waitFor({ timeout: 10_000 });
    await expect(page.getByTestId('result-source').count()).resolves.toBe(2);
    await expect(page.getByTestId('frontier-plot').locator('g.point').count()).resolves.toBe(2);
    await page.locator('#evaluate').screenshot({ path: `${resultsDir}import-results.png` });
    console.log(`share: import test took ${((Date.now() - start) / 1000).toFixed(1)} s`);
    expect(errors).toEqual([]);
  });

  it('copies a link to the queue; opening it fills a fresh queue without running it', async () => {
    const opened = await openLab('webgpu', labUrl);
    browser = opened.browser;
    const { page, errors } = opened;
    await ready(page);
    await page.getByTestId('window-length').selectOption({ label: '128 tokens' });
    await page.getByTestId('slice-first').check();
    await page.getByTestId('windows').fill('2');
    await page.getByTestId('method-none').check();
    await page.getByTestId('method-rtn').uncheck();
    await page.getByTestId('queue-add').click();
    await page.getByTestId('method-none').uncheck();
    await page.getByTestId('method-rtn').check();
    await page.getByTestId('rtn-bits-3').check();
    await page.getByTestId('rtn-bits-4').uncheck();
    await page.getByTestId('queue-add').click();
    const labels = await page.locator('[data-testid="queue-item"] .label').allTextContents();
    expect(labels).toHaveLength(2);

    await page.getByTestId('copy-link').click();
    const link = await page.getByTestId('share-link').inputValue();
    expect(link).toMatch(/#x=v1:[A-Za-z0-9_-]+$/);
    expect(await page.evaluate(() => location.hash)).toBe(new URL(link).hash);

    // a fresh browser profile (its own IndexedDB) opens the link
    const context = await browser.newContext();
    const other = await context.newPage();
    const otherErrors: string[] = [];
    other.on('pageerror', (err) => otherErrors.push(err.message));
    await other.goto(link);
    await ready(other);
    await other.getByTestId('share-notice').getByText('The link added 2 experiments to the queue. Nothing runs until you press Run queue.').waitFor({ timeout: 10_000 });
    await expect(other.locator('[data-testid="queue-item"] .label').allTextContents()).resolves.toEqual(labels);
    await expect(other.locator('[data-testid="queue-item"][data-state="pending"]').count()).resolves.toBe(2);
    await expect(other.getByTestId('result-row').count()).resolves.toBe(0);

    // reloading with the link still in the address bar does not add them twice
    await other.reload();
    await ready(other);
    await other.getByTestId('share-notice').getByText(/already waiting in the queue/).waitFor({ timeout: 10_000 });
    await expect(other.locator('[data-testid="queue-item"]').count()).resolves.toBe(2);

    // a broken link: a message, no crash
    await other.goto(new URL('#x=v1:bm90IGpzb24', labUrl).href);
    await other.reload();
    await ready(other);
    await other.locator('[data-testid="share-notice"][data-kind="error"]').getByText(/does not decode to JSON/).waitFor({ timeout: 10_000 });
    await expect(other.locator('[data-testid="queue-item"]').count()).resolves.toBe(2);
    expect(otherErrors).toEqual([]);
    expect(errors).toEqual([]);
  });
});
