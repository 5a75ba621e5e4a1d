/**
 * The Content-Security-Policy is in force and the lab still works under it:
 * the page loads its worker, the worker gets a WebGPU adapter and can compile
 * WebAssembly (onnxruntime-web's need, 'wasm-unsafe-eval'), no violation is
 * reported while the page starts; eval and a request to another origin are
 * refused in the page and in the worker (the header covers the worker, the
 * meta tag the page), each reported as a violation. And imported text is
 * never markup: a results file whose model name, source, device and error
 * hold `<img onerror>` shows them as text, in the table and on the frontier.
 */
import type { Browser, Page, Worker } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launchChromium } from './browser';

const labUrl = inject('labUrl');
let browser: Browser;
let page: Page;
let worker: Worker;
let header: string | undefined;
const consoleLines: string[] = [];

interface Violation {
  directive: string;
  blocked: string;
}

beforeAll(async () => {
  browser = await launchChromium('webgpu');
  page = await browser.newPage();
  // init scripts run through the DevTools protocol, outside the page's policy
  await page.addInitScript(() => {
    const w = window as unknown as { __violations: { directive: string; blocked: string }[] };
    w.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => w.__violations.push({ directive: e.effectiveDirective, blocked: e.blockedURI }));
  });
  page.on('console', (m) => consoleLines.push(m.text()));
  page.on('worker', (w) => w.on('console', (m) => consoleLines.push(`worker: ${m.text()}`)));
  const workerStarted = page.waitForEvent('worker', { timeout: 30_000 });
  const response = await page.goto(labUrl);
  header = response?.headers()['content-security-policy'];
  worker = await workerStarted;
  await page.getByTestId('device-card').waitFor({ timeout: 30_000 });
});
afterAll(async () => {
  await browser?.close();
});

const violations = (): Promise<Violation[]> => page.evaluate(() => (window as unknown as { __violations: Violation[] }).__violations);

describe('Content-Security-Policy', () => {
  it('is sent as a header and a meta tag, without unsafe-eval, limiting connections to this origin and the Hub', async () => {
    const meta = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
    for (const policy of [meta, header]) {
      expect(policy).toBeTruthy();
      expect(policy).not.toContain("'unsafe-eval'");
      expect(policy).toMatch(/script-src 'self' 'wasm-unsafe-eval';/);
      // the header adds QLAB_HUB_ORIGINS (the e2e server's local Hub stand-in), never a whole scheme or everything
      const connect = / connect-src ([^;]+)/.exec(policy!)![1].split(' ');
      expect(connect.slice(0, 4)).toEqual(["'self'", 'https://huggingface.co', 'https://*.huggingface.co', 'https://*.hf.co']);
      expect(connect.every((o) => o !== '*' && !/^[a-z]+:$/.test(o))).toBe(true);
    }
    expect(/ connect-src ([^;]+)/.exec(meta!)![1]).toBe("'self' https://huggingface.co https://*.huggingface.co https://*.hf.co");
    expect(header).toContain("frame-ancestors 'none'");
  });

  it('lets the lab start: worker, WebGPU adapter, no violation reported', async () => {
    const vendor = (await page.getByTestId('adapter-vendor').textContent())?.trim() ?? '';
    expect(vendor).not.toBe('');
    expect(await violations()).toEqual([]);
    expect(consoleLines.filter((l) => /Content Security Policy|Refused to/i.test(l))).toEqual([]);
  });

  it('refuses eval and other origins in the page, reporting each', async () => {
    const outcome = await page.evaluate(async () => {
      // DevTools' own evaluation may compile strings; code running later in a task of the page may not
      const inTask = (f: () => unknown): Promise<string> =>
        new Promise((resolve) => setTimeout(() => {
          try {
            resolve(String(f()));
          } catch (e) {
            resolve((e as Error).name);
          }
        }, 0));
      const evalResult = await inTask(() => (0, eval)('1 + 1'));
      const fnResult = await inTask(() => new Function('return 2')());
      const fetchResult = await fetch('https://example.com/').then(() => 'fetched', (e: Error) => e.name);
      return { evalResult, fnResult, fetchResult };
    });
    expect(outcome).toEqual({ evalResult: 'EvalError', fnResult: 'EvalError', fetchResult: 'TypeError' });
    // each reported once per policy in force (the meta tag's and the header's)
    await expect.poll(async () => [...new Set((await violations()).map((v) => v.directive))].sort()).toEqual(['connect-src', 'script-src']);
    const list = await violations();
    expect(list.filter((v) => v.directive === 'script-src' && v.blocked === 'eval').length).toBeGreaterThanOrEqual(2);
    expect(list.some((v) => v.directive === 'connect-src' && v.blocked.startsWith('https://example.com'))).toBe(true);
  });

  it('holds in the worker too: eval and other origins refused, WebAssembly compiles', async () => {
    const outcome = await worker.evaluate(async () => {
      const evalResult = await new Promise<string>((resolve) => setTimeout(() => {
        try {
          resolve(String((0, eval)('1 + 1')));
        } catch (e) {
          resolve((e as Error).name);
        }
      }, 0));
      const fetchResult = await fetch('https://example.com/').then(() => 'fetched', (e: Error) => e.name);
      // the smallest WebAssembly module: magic number and version
      const wasm = await WebAssembly.compile(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])).then(() => 'compiled', (e: Error) => `${e.name}: ${e.message}`);
      return { evalResult, fetchResult, wasm };
    });
    expect(outcome).toEqual({ evalResult: 'EvalError', fetchResult: 'TypeError', wasm: 'compiled' });
  });

  it('shows imported labels holding <img onerror> as text: no element is created, nothing runs', async () => {
    const evil = '<img src=x onerror="window.__pwned=1">';
    const result = (id: string, bits: 4 | null, ppl: number) => ({
      id: `${id}${evil}`,
      spec: { model: { kind: 'hub', repo: `evil/${evil}`, revision: 'main' }, method: bits === null ? { id: 'none' } : { id: 'rtn', bits, groupSize: 128, symmetric: false }, eval: { protocol: 'gptq', windowLength: 128, windows: 1 } },
      status: 'done', createdAt: '2026-01-01T00:00:00Z',
      device: { vendor: evil, architecture: evil, description: evil, features: [evil] },
      protocol: { protocol: 'gptq', windowLength: 128, windowsTotal: 10, windows: 1, scoredTokens: 127, textTokens: 1000 },
      metrics: { perplexity: ppl, perplexitySe: 1, meanNll: Math.log(ppl), meanNllSe: 0.01, meanNllSeByWindow: 0.01, nllSum: 127 * Math.log(ppl), bitsPerWeight: bits ?? 32, weightBytes: 1e6 * (bits ?? 32), peakBytes: 4e7, peakByCategory: {}, quantizedParams: 1, totalParams: 1, prefillTokensPerSecond: 10, decodeTokensPerSecond: 5, prefillGpuTokensPerSecond: null, decodeGpuTokensPerSecond: null },
      timing: {}, kernels: [evil], windowNll: [127 * Math.log(ppl)], methodReport: { note: evil }, error: evil, source: evil,
    });
    await page.getByTestId('import-file').setInputFiles({ name: 'evil.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify([result('a', null, 20), result('b', 4, 22)])) });
    await page.getByTestId('result-row').first().waitFor({ timeout: 10_000 });
    await page.getByTestId('frontier-plot').locator('g.point').first().hover();
    await page.waitForTimeout(300);
    const dom = await page.evaluate(() => ({ imgs: document.querySelectorAll('img').length, pwned: (window as unknown as { __pwned?: number }).__pwned ?? 0, text: document.body.innerText }));
    expect(dom.imgs).toBe(0);
    expect(dom.pwned).toBe(0);
    expect(dom.text).toContain('<img src=x onerror=');
  });
});

