/**
 * The Frontier step end to end in headless Chromium on SwiftShader: two short
 * runs (f32 and RTN W4 g128 of qlab-llama-6m, one window of 128) become two
 * points on the plot with the Pareto frontier through the best; hovering
 * shows a result, clicking pins it in the table too; the table sorts and
 * its CSV download holds the rows the table shows.
 */
import { mkdirSync, readFileSync } from 'node:fs';
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

async function runOnce(page: Page, method: 'none' | 'rtn', rows: number): Promise<void> {
  await page.getByTestId('method-none').setChecked(method === 'none');
  await page.getByTestId('method-rtn').setChecked(method === 'rtn');
  if (method === 'rtn') {
    await page.getByTestId('rtn-bits-4').check();
    await page.getByTestId('rtn-group-128').check();
  }
  await page.getByTestId('run').click();
  await page.getByTestId('result-row').nth(rows - 1).waitFor({ timeout: 120_000 });
}

/** A CSV line split into cells (quoted cells may hold commas and doubled quotes). */
function csvCells(line: string): string[] {
  return [...line.matchAll(/("(?:[^"]|"")*"|[^,]*)(?:,|$)/g)].slice(0, -1).map((m) => (m[1].startsWith('"') ? m[1].slice(1, -1).replace(/""/g, '"') : m[1]));
}

describe('frontier', () => {
  it('plots two runs with their Pareto frontier, pins one, and downloads the table as CSV', async () => {
    const start = Date.now();
    const opened = await openLab('webgpu', labUrl);
    browser = opened.browser;
    const { page, errors } = opened;
    await page.getByTestId('evaluate-form').waitFor({ timeout: 30_000 });
    await expect(page.getByTestId('frontier-empty').count()).resolves.toBe(1);

    await page.getByTestId('model-qlab-llama-6m').locator('input').check();
    await page.getByTestId('protocol-gptq').check();
    await page.getByTestId('window-length').selectOption({ label: '128 tokens' });
    await page.getByTestId('slice-first').check();
    await page.getByTestId('windows').fill('1');
    await runOnce(page, 'none', 1);
    await runOnce(page, 'rtn', 2);
    console.log(`frontier: two runs of 1 window of 128 took ${((Date.now() - start) / 1000).toFixed(1)} s from page open`);

    const plot = page.getByTestId('frontier-plot');
    const points = plot.locator('g.point');
    await expect(points.count()).resolves.toBe(2);
    const rowIds = await page.getByTestId('result-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));
    const pointIds = await points.evaluateAll((ps) => ps.map((p) => p.getAttribute('data-id')));
    expect([...pointIds].sort()).toEqual([...rowIds].sort());
    const pareto = plot.locator('path.pareto');
    await expect(pareto.count()).resolves.toBe(1);
    const frontierIds = ((await pareto.getAttribute('data-ids')) ?? '').split(' ');
    expect(frontierIds.length).toBeGreaterThanOrEqual(1);
    for (const id of frontierIds) expect(pointIds).toContain(id);
    await expect(plot.locator('g.point[data-frontier="true"]').count()).resolves.toBe(frontierIds.length);
    await expect(plot.locator('.y-axis text.axis-label').textContent()).resolves.toBe('Perplexity (log scale)WikiText-2 · gptq · seqlen 128 · 1 of 3,460 windows');

    // hover shows the result, click pins it in the plot and the table
    const w4 = page.getByTestId('result-row').filter({ hasText: 'RTN W4 g128' });
    const w4Id = (await w4.getAttribute('data-id'))!;
    const w4Point = plot.locator(`g.point[data-id="${w4Id}"]`);
    await w4Point.locator('circle').last().hover();
    await expect(page.getByTestId('frontier-info').textContent()).resolves.toContain('qlab-llama-6m · RTN W4 g128');
    await w4Point.locator('circle').last().click();
    await expect(plot.locator('g.point.pinned').getAttribute('data-id')).resolves.toBe(w4Id);
    await expect(w4.getAttribute('class')).resolves.toMatch(/\bpinned\b/);

    // the cost axis can change
    await page.getByTestId('frontier-x').selectOption('bitsPerWeight');
    await expect(plot.locator('.x-axis text.axis-label').textContent()).resolves.toContain('Bits per weight');
    await expect(points.count()).resolves.toBe(2);

    // sort by perplexity, descending: the f32 baseline (the lower perplexity) comes last
    await page.getByTestId('sort-perplexity').click();
    await page.getByTestId('sort-perplexity').click();
    const ppls = (await page.getByTestId('result-ppl').allTextContents()).map(Number);
    expect(ppls[0]).toBeGreaterThanOrEqual(ppls[1]);

    // the CSV holds the table's rows, in the table's order
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-csv').click()]);
    expect(download.suggestedFilename()).toMatch(/^qlab-results-.*\.csv$/);
    const csv = readFileSync((await download.path())!, 'utf8').trimEnd().split('\n');
    const head = csvCells(csv[0]);
    expect(csv).toHaveLength(3);
    const rows = page.getByTestId('result-row');
    for (let i = 0; i < 2; i++) {
      const cells = Object.fromEntries(csvCells(csv[i + 1]).map((v, j) => [head[j], v]));
      const row = rows.nth(i);
      const text = async (id: string) => ((await row.getByTestId(id).textContent()) ?? '').trim();
      expect(cells.id).toBe(await row.getAttribute('data-id'));
      expect(cells.model).toBe(await text('result-model'));
      expect(cells.method).toBe(await text('result-method'));
      expect(`${cells.protocol} · ${cells.window_length}`).toBe(await text('result-protocol'));
      expect(cells.windows).toBe(await text('result-windows'));
      expect(cells.perplexity).toBe(await text('result-ppl'));
      expect(`± ${cells.perplexity_se}`).toBe(await text('result-ppl-se'));
      expect(cells.bits_per_weight).toBe(await text('result-bpw'));
      expect(cells.weight_mb).toBe(await text('result-weight-mb'));
      expect(cells.peak_mb).toBe(await text('result-peak-mb'));
      expect((await text('result-decode')).replace(/,/g, '')).toMatch(new RegExp(`^${cells.decode_tok_s.replace('.', '\\.')}\\b`));
    }

    // the plot downloads as SVG and PNG
    const [svg] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-svg').click()]);
    expect(readFileSync((await svg.path())!, 'utf8')).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    const [png] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-png').click()]);
    expect([...readFileSync((await png.path())!).subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);

    await page.getByTestId('frontier-x').selectOption('weightMB');
    mkdirSync(resultsDir, { recursive: true });
    await page.locator('#frontier').scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${resultsDir}frontier.png`, fullPage: true });
    await page.locator('#frontier').screenshot({ path: `${resultsDir}frontier-plot.png` });
    expect(errors).toEqual([]);
    console.log(`frontier: whole test took ${((Date.now() - start) / 1000).toFixed(1)} s`);
  });
});
