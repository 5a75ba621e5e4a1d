/**
 * The Evaluate step end to end in headless Chromium on SwiftShader: the page
 * asks its worker to load an embedded model, quantize it (RTN), measure
 * WikiText-2 perplexity and speed, and shows the result; a run can be
 * cancelled and the lab runs again afterwards. SwiftShader is a CPU driver,
 * so runs here are short (windows of 128).
 */
import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { openLab } from './browser';

const labUrl = inject('labUrl');
const resultsDir = new URL('../../test-results/', import.meta.url).pathname;

let browser: Browser | null = null;

afterEach(async () => {
  await browser?.close();
  browser = null;
});

async function open(): Promise<{ page: Page; errors: string[] }> {
  const opened = await openLab('webgpu', labUrl);
  browser = opened.browser;
  await opened.page.getByTestId('evaluate-form').waitFor({ timeout: 30_000 });
  return opened;
}

/** Round trip page → main thread → back, in ms: stays small while the worker is busy. */
async function pageLatency(page: Page): Promise<number> {
  return page.evaluate(() => {
    const start = performance.now();
    return new Promise<number>((resolve) => setTimeout(() => resolve(performance.now() - start), 0));
  });
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

describe('evaluate', () => {
  it('quantizes qlab-llama-6m to RTN W4 g128 in the worker and shows its perplexity', async () => {
    const { page, errors } = await open();

    await page.getByTestId('model-qlab-llama-6m').locator('input').check();
    await page.getByTestId('method-rtn').check();
    await page.getByTestId('rtn-bits-4').check();
    await page.getByTestId('rtn-group-128').check();
    // this run alone: no f32 baseline before it
    await page.getByTestId('auto-baseline').uncheck();
    await page.getByTestId('protocol-gptq').check();
    await page.getByTestId('window-length').selectOption({ label: '128 tokens' });
    await page.getByTestId('slice-first').check();
    await page.getByTestId('windows').fill('2');
    await expect(page.getByTestId('spec-preview').textContent()).resolves.toBe('qlab-llama-6m · RTN W4 g128 · gptq, 2 windows of 128');

    const start = Date.now();
    await page.getByTestId('run').click();
    await expect(page.getByTestId('run-status').textContent()).resolves.toBe('Running');
    await page.getByTestId('stage-load').and(page.locator('[data-state="active"], [data-state="ended"]')).waitFor({ timeout: 60_000 });
    // the page stays responsive while the worker works
    expect(await pageLatency(page)).toBeLessThan(500);

    const row = page.getByTestId('result-row');
    await row.waitFor({ timeout: 120_000 });
    const took = Date.now() - start;
    console.log(`evaluate: RTN W4 g128, gptq, 2 windows of 128 on SwiftShader took ${seconds(took)} from Run to the result row`);

    await expect(page.getByTestId('run-status').textContent()).resolves.toBe('Done');
    await expect(row.getByTestId('result-model').textContent()).resolves.toBe('qlab-llama-6m');
    await expect(row.getByTestId('result-method').textContent()).resolves.toBe('RTN W4 g128');
    await expect(row.getByTestId('result-windows').textContent()).resolves.toBe('2 of 3,460 windows');
    const pplText = (await row.getByTestId('result-ppl').textContent()) ?? '';
    const ppl = Number(pplText);
    expect(Number.isFinite(ppl)).toBe(true);
    expect(ppl).toBeGreaterThan(1);
    expect(ppl).toBeLessThan(5000);
    await expect(row.getByTestId('result-ppl-se').textContent()).resolves.toMatch(/^± \d+(\.\d+)?$/);
    await expect(row.getByTestId('result-bpw').textContent()).resolves.toBe('4.31');
    for (const cell of ['result-weight-mb', 'result-peak-mb']) {
      expect(Number(await row.getByTestId(cell).textContent())).toBeGreaterThan(0);
    }
    for (const cell of ['result-prefill', 'result-decode']) {
      await expect(row.getByTestId(cell).textContent()).resolves.toMatch(/^\s*[\d,.]+/);
    }
    for (const stage of ['prepare', 'load', 'evaluate', 'speed']) {
      await expect(page.getByTestId(`stage-${stage}`).getAttribute('data-state')).resolves.toBe('ended');
    }
    await expect(page.getByTestId('stage-evaluate-detail').textContent()).resolves.toBe(`ppl ${pplText}`);

    expect(took).toBeLessThan(120_000);
    mkdirSync(resultsDir, { recursive: true });
    await page.screenshot({ path: `${resultsDir}evaluate.png`, fullPage: true });
    expect(errors).toEqual([]);
  });

  it('cancels a full-test-set run, says so, and runs again', async () => {
    const { page, errors } = await open();

    await page.getByTestId('window-length').selectOption({ label: '128 tokens' });
    await page.getByTestId('slice-full').check();
    await page.getByTestId('auto-baseline').uncheck();
    await expect(page.getByTestId('spec-preview').textContent()).resolves.toBe('qlab-llama-6m · RTN W4 g128 · gptq, all 3,460 windows of 128');
    await page.getByTestId('run').click();
    // cancel once the first window is scored
    await page.getByTestId('stage-evaluate-detail').getByText(/^ppl /).waitFor({ timeout: 90_000 });

    const cancelledAt = Date.now();
    await page.getByTestId('cancel').click();
    await page.getByTestId('run-progress').and(page.locator('[data-status="cancelled"]')).waitFor({ timeout: 30_000 });
    console.log(`evaluate: cancel took effect after ${seconds(Date.now() - cancelledAt)}`);
    await expect(page.getByTestId('run-status').textContent()).resolves.toBe('Cancelled');
    await expect(page.getByTestId('run-message').textContent()).resolves.toMatch(/^Cancelled during evaluation, after window \d+ of 3,460\.$/);
    await expect(page.getByTestId('results-empty').count()).resolves.toBe(1);
    await expect(page.getByTestId('run').isEnabled()).resolves.toBe(true);
    await expect(page.getByTestId('cancel').isEnabled()).resolves.toBe(false);
    mkdirSync(resultsDir, { recursive: true });
    await page.locator('#evaluate').screenshot({ path: `${resultsDir}evaluate-cancelled.png` });

    // The worker and its GPU device are fine after a cancel: a short f32 run completes.
    await page.getByTestId('method-none').check();
    await page.getByTestId('method-rtn').uncheck();
    await page.getByTestId('slice-first').check();
    await page.getByTestId('windows').fill('1');
    const start = Date.now();
    await page.getByTestId('run').click();
    const row = page.getByTestId('result-row');
    await row.waitFor({ timeout: 120_000 });
    console.log(`evaluate: f32, 1 window of 128 after the cancel took ${seconds(Date.now() - start)}`);
    await expect(row.getByTestId('result-method').textContent()).resolves.toBe('f32');
    await expect(row.getByTestId('result-bpw').textContent()).resolves.toBe('32.00');
    const ppl = Number(await row.getByTestId('result-ppl').textContent());
    expect(ppl).toBeGreaterThan(1);
    expect(ppl).toBeLessThan(5000);
    await page.screenshot({ path: `${resultsDir}evaluate-after-cancel.png`, fullPage: true });
    expect(errors).toEqual([]);
  });
});
