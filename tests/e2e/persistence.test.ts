/**
 * The queue and IndexedDB persistence end to end in headless Chromium on
 * SwiftShader: the default sweep runs five experiments in order, their
 * results survive a reload; a run in flight when the page is reloaded comes
 * back as an interrupted result with how far it got.
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

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

async function resultRows(page: Page): Promise<{ method: string; ppl: string }[]> {
  return page.getByTestId('result-row').evaluateAll((rows) =>
    rows.map((row) => ({
      method: row.querySelector('[data-testid="result-method"]')?.textContent ?? '',
      ppl: row.querySelector('[data-testid="result-ppl"]')?.textContent ?? '',
    })),
  );
}

describe('persistence', () => {
  it('runs the default sweep in order and keeps its five results across a reload', async () => {
    const { page, errors } = await open();
    await page.getByTestId('window-length').selectOption({ label: '128 tokens' });
    await page.getByTestId('slice-first').check();
    await page.getByTestId('windows').fill('1');

    const start = Date.now();
    await page.getByTestId('run-sweep').click();
    await page.getByTestId('queue-item').first().waitFor({ timeout: 10_000 });
    await expect(page.getByTestId('queue-item').count()).resolves.toBe(5);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="result-row"]').length >= 5, null, { timeout: 120_000 });
    await page.getByTestId('queue-summary').getByText('5 done · 0 running · 0 waiting').waitFor({ timeout: 10_000 });
    const took = Date.now() - start;
    console.log(`persistence: the default sweep (5 runs, gptq, 1 window of 128) on SwiftShader took ${seconds(took)}`);

    const before = await resultRows(page);
    expect(before.map((r) => r.method).sort()).toEqual(['RTN W2 g64', 'RTN W3 g128', 'RTN W4 g128', 'RTN W8 row', 'f32'].sort());
    for (const r of before) {
      const ppl = Number(r.ppl);
      expect(Number.isFinite(ppl), `${r.method}: "${r.ppl}"`).toBe(true);
      expect(ppl).toBeGreaterThan(1);
    }
    await expect(page.locator('[data-testid="queue-item"][data-state="done"]').count()).resolves.toBe(5);

    await page.reload();
    await page.getByTestId('evaluate-form').waitFor({ timeout: 30_000 });
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="result-row"]').length >= 5, null, { timeout: 10_000 });
    const after = await resultRows(page);
    expect(after).toEqual(before);
    // the form's settings came back too
    await expect(page.getByTestId('window-length').inputValue()).resolves.toBe('128');
    await expect(page.getByTestId('windows').inputValue()).resolves.toBe('1');

    expect(took).toBeLessThan(120_000);
    mkdirSync(resultsDir, { recursive: true });
    await page.screenshot({ path: `${resultsDir}persistence.png`, fullPage: true });
    expect(errors).toEqual([]);
  });

  it('keeps a run that was in flight at a reload as an interrupted result with its progress', async () => {
    const { page, errors } = await open();
    await page.getByTestId('window-length').selectOption({ label: '128 tokens' });
    await page.getByTestId('slice-full').check();
    await page.getByTestId('run').click();
    // reload once a window or two is scored (and the progress saved)
    await page.getByTestId('stage-evaluate-detail').getByText(/^ppl /).waitFor({ timeout: 90_000 });
    await page.waitForTimeout(500);

    await page.reload();
    await page.getByTestId('evaluate-form').waitFor({ timeout: 30_000 });
    const item = page.locator('[data-testid="queue-item"][data-state="interrupted"]');
    await item.waitFor({ timeout: 10_000 });
    await expect(item.textContent()).resolves.toMatch(/interrupted during evaluation after window \d+ of 3,460 \(running perplexity \d+\.\d\d\)/);
    await expect(page.getByTestId('queue-summary').textContent()).resolves.toMatch(/0 done.*1 interrupted · 0 running · 0 waiting/);
    await expect(page.locator('[data-testid="queue-item"][data-state="running"]').count()).resolves.toBe(0);
    await expect(page.getByTestId('result-row').count()).resolves.toBe(1);

    // and it stays there through another reload
    await page.reload();
    await page.getByTestId('evaluate-form').waitFor({ timeout: 30_000 });
    await page.locator('[data-testid="queue-item"][data-state="interrupted"]').waitFor({ timeout: 10_000 });
    await expect(page.locator('[data-testid="queue-item"]').count()).resolves.toBe(1);
    mkdirSync(resultsDir, { recursive: true });
    await page.locator('#evaluate').screenshot({ path: `${resultsDir}persistence-interrupted.png` });
    expect(errors).toEqual([]);
  });

  it('cancels the whole queue, keeping the results already finished', async () => {
    const { page, errors } = await open();
    await page.getByTestId('window-length').selectOption({ label: '128 tokens' });
    await page.getByTestId('slice-first').check();
    await page.getByTestId('windows').fill('1');
    await page.getByTestId('run-sweep').click();
    await page.getByTestId('result-row').first().waitFor({ timeout: 60_000 });
    await page.getByTestId('cancel-queue').click();
    await page.getByTestId('queue-summary').getByText(/ · 0 running · 0 waiting$/).waitFor({ timeout: 30_000 });
    const kept = await resultRows(page);
    expect(kept.length).toBeGreaterThanOrEqual(1);
    expect(kept.length).toBeLessThan(5);
    expect(kept[0].method).toBe('f32');
    await expect(page.getByTestId('run-queue').isEnabled()).resolves.toBe(false);

    await page.reload();
    await page.getByTestId('evaluate-form').waitFor({ timeout: 30_000 });
    await page.getByTestId('result-row').first().waitFor({ timeout: 10_000 });
    await expect(resultRows(page)).resolves.toEqual(kept);
    await expect(page.locator('[data-testid="queue-item"][data-state="pending"]').count()).resolves.toBe(0);
    expect(errors).toEqual([]);
  });
});
