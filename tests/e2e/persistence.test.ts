/**
 * The queue and IndexedDB persistence end to end in headless Chromium on
 * SwiftShader: a run in flight when the page is reloaded comes back as an
 * interrupted result with how far it got; cancelling the queue keeps what
 * finished. (The default sweep surviving a reload is in lab.test.ts.)
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
  it('keeps a run that was in flight at a reload as an interrupted result with its progress', async () => {
    const { page, errors } = await open();
    await page.getByTestId('window-length').selectOption({ label: '128 tokens' });
    await page.getByTestId('slice-full').check();
    await page.getByTestId('auto-baseline').uncheck();
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
