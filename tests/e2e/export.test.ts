/**
 * Export from the results table in headless Chromium (SwiftShader): after a
 * short RTN W4 g128 run, the row's export menu downloads model.onnx and
 * AutoAWQ's ZIP, and "Check in ONNX Runtime" runs the ONNX file in
 * onnxruntime-web (wasm, in the lab's worker) on the result's windows and
 * shows its perplexity beside the lab's, within 0.5 %.
 */
import type { Browser } from 'playwright-core';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { openLab } from './browser';

const labUrl = inject('labUrl');
let browser: Browser | null = null;

afterEach(async () => {
  await browser?.close();
  browser = null;
});

describe('export', () => {
  it('downloads ONNX and AutoAWQ files of a result and checks the ONNX one in onnxruntime-web', async () => {
    const opened = await openLab('webgpu', labUrl);
    browser = opened.browser;
    const { page, errors } = opened;
    await page.getByTestId('evaluate-form').waitFor({ timeout: 30_000 });
    await page.getByTestId('model-qlab-llama-6m').locator('input').check();
    await page.getByTestId('method-rtn').check();
    await page.getByTestId('rtn-bits-4').check();
    await page.getByTestId('rtn-group-128').check();
    await page.getByTestId('auto-baseline').uncheck();
    await page.getByTestId('protocol-gptq').check();
    await page.getByTestId('window-length').selectOption({ label: '128 tokens' });
    await page.getByTestId('slice-first').check();
    await page.getByTestId('windows').fill('2');
    await page.getByTestId('run').click();
    const row = page.getByTestId('result-row');
    await row.waitFor({ timeout: 180_000 });

    await row.getByTestId('export-open').click();
    // opening the menu does not pin the row
    await expect(row.getAttribute('class')).resolves.not.toMatch(/pinned/);

    const onnx = page.waitForEvent('download', { timeout: 60_000 });
    await row.getByTestId('export-onnx').click();
    const onnxFile = await onnx;
    expect(onnxFile.suggestedFilename()).toBe('qlab-llama-6m-rtn-w4-g128.onnx');

    const awq = page.waitForEvent('download', { timeout: 60_000 });
    await row.getByTestId('export-autoawq').click();
    expect((await awq).suggestedFilename()).toBe('qlab-llama-6m-rtn-w4-g128-awq.zip');

    await row.getByTestId('export-verify').click();
    const check = row.getByTestId('export-check');
    await check.waitFor({ timeout: 120_000 });
    const onnxPpl = Number(await row.getByTestId('export-check-onnx').textContent());
    const labPpl = Number(await row.getByTestId('export-check-lab').textContent());
    console.log(`export: ${await check.textContent()}`);
    expect(Number.isFinite(onnxPpl) && onnxPpl > 1).toBe(true);
    expect(labPpl).toBeCloseTo(Number(await row.getByTestId('result-ppl').textContent()), 1);
    expect(Math.abs(onnxPpl / labPpl - 1)).toBeLessThan(0.005);
    await expect(row.getByTestId('export-error').count()).resolves.toBe(0);
    expect(errors).toEqual([]);
  });
});
