/**
 * The first page end to end: the worker asks WebGPU for an adapter and the
 * UI shows it on the device card — or, without WebGPU, says what to do.
 */
import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { openLab, type WebGpuMode } from './browser';

const labUrl = inject('labUrl');
const resultsDir = new URL('../../test-results/', import.meta.url).pathname;

let browser: Browser | null = null;

afterEach(async () => {
  await browser?.close();
  browser = null;
});

async function open(mode: WebGpuMode): Promise<{ page: Page; errors: string[] }> {
  const opened = await openLab(mode, labUrl);
  browser = opened.browser;
  return opened;
}

describe('device card', () => {
  it('shows the WebGPU adapter the worker found (SwiftShader here)', async () => {
    const { page, errors } = await open('webgpu');

    const card = page.getByTestId('device-card');
    await card.waitFor({ timeout: 30_000 });
    await expect(page.locator('h1').textContent()).resolves.toContain('qlab — quantization lab on your GPU');

    const vendor = (await page.getByTestId('adapter-vendor').textContent())?.trim() ?? '';
    const architecture = (await page.getByTestId('adapter-architecture').textContent())?.trim() ?? '';
    const description = (await page.getByTestId('adapter-description').textContent())?.trim() ?? '';
    expect(vendor).not.toBe('');
    expect(vendor).not.toBe('not reported');
    expect(`${vendor} ${architecture} ${description}`.toLowerCase()).toMatch(/google|swiftshader/);
    await expect(page.getByTestId('fallback').textContent()).resolves.toMatch(/fallback adapter: (yes|no)/);

    for (const feature of ['timestamp-query', 'shader-f16', 'subgroups']) {
      const text = await page.getByTestId(`feature-${feature}`).textContent();
      expect(text).toMatch(/present|absent/);
    }

    for (const limit of ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize']) {
      const row = page.getByTestId(`limit-${limit}`);
      await expect(row.locator('.human').textContent()).resolves.toMatch(/^\d+(\.\d+)? (B|KiB|MiB|GiB|TiB)$/);
      const exact = (await row.locator('.exact').textContent()) ?? '';
      expect(Number(exact.replace(/[^\d]/g, ''))).toBeGreaterThan(0);
    }

    mkdirSync(resultsDir, { recursive: true });
    await page.screenshot({ path: `${resultsDir}device-card.png`, fullPage: true });
    expect(errors).toEqual([]);
  });

  it('explains which browsers work when requestAdapter() returns null', async () => {
    const { page, errors } = await open('no-adapter');
    const notice = page.getByTestId('no-webgpu');
    await notice.waitFor({ timeout: 30_000 });
    await expect(notice.getAttribute('data-cause')).resolves.toBe('no-adapter');
    const text = (await notice.textContent()) ?? '';
    expect(text).toContain('requestAdapter() returned null');
    expect(text).toContain('--enable-unsafe-webgpu');
    expect(text).toContain('Safari 26');
    expect(text).toContain('Firefox 141');
    expect(text).toMatch(/blocklist/);
    await expect(page.getByTestId('device-card').count()).resolves.toBe(0);
    await page.screenshot({ path: `${resultsDir}no-webgpu.png`, fullPage: true });
    expect(errors).toEqual([]);
  });

  it('explains the same when the page has no navigator.gpu (plain http, not localhost)', async () => {
    const { page, errors } = await open('no-webgpu');
    const notice = page.getByTestId('no-webgpu');
    await notice.waitFor({ timeout: 30_000 });
    await expect(notice.getAttribute('data-cause')).resolves.toBe('no-webgpu');
    await expect(page.getByTestId('no-webgpu-reason').textContent()).resolves.toContain('secure');
    await expect(page.getByTestId('no-webgpu-help').locator('li').count()).resolves.toBeGreaterThanOrEqual(5);
    expect(errors).toEqual([]);
  });
});
