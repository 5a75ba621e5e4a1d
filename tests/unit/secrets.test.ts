/**
 * An access token never leaves the Hub's Authorization header: not in a
 * request URL, a progress line, an error message, the console, a shared
 * link, an exported or imported result, or the stored record — also when a
 * token rides along on a model reference by mistake (a settings object spread
 * into it). Downloads go through the real Hub client (src/lab/hub.ts via
 * ModelSources) against a repository served from memory. And imported text
 * is never markup: the page's only raw-HTML sinks are the two SVG builders,
 * which escape every label (tests/e2e/csp.test.ts imports such a file into the page).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ExperimentSpec, Result } from '../../src/core/experiment';
import { parseResultsFile } from '../../src/core/results-import';
import { decodeExperiments, encodeExperiments } from '../../src/core/share';
import { loadModel } from '../../src/lab/load';
import { ModelSources } from '../../src/lab/model-sources';
import { encodeLab, LabStore, memoryKeyValue, STORE_KEY } from '../../src/lab/store';
import { resultRow } from '../../src/ui/evaluate';
import { frontierSvg, resultsCsv } from '../../src/ui/plot';
import { llamaConfigJson } from './support/configs';
import { hubFetch, memoryCache, type RecordedRequest } from './support/hub-fakes';
import { llamaTensors, shardedModel, tinyTokenizerFiles } from './support/tiny-models';

const TOKEN = 'hf_qlabSecretToken0123456789abcdef';
const BASE = 'https://hub.example';
const REPO = { kind: 'hub', repo: 'owner/gated-tiny', revision: 'main' } as const;
const PREFIX = `${BASE}/owner/gated-tiny/resolve/main/`;
const files = shardedModel(llamaConfigJson, llamaTensors(llamaConfigJson), 2, tinyTokenizerFiles()).files;

let consoleText: string[] = [];
beforeEach(() => {
  consoleText = [];
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void consoleText.push(args.map(String).join(' ')));
  }
});
afterEach(() => {
  vi.restoreAllMocks();
  expect(consoleText.join('\n')).not.toContain(TOKEN);
});

const sources = (log: RecordedRequest[], status?: number, fetchFn?: typeof fetch) =>
  new ModelSources({ embedded: () => { throw new Error('no embedded models here'); }, cache: memoryCache, fetch: fetchFn ?? hubFetch(PREFIX, files, log, status), hub: { baseUrl: BASE, token: TOKEN } });

describe('an access token', () => {
  it('goes only into the Authorization header of requests to the Hub: never a URL, a progress line or the loaded model', async () => {
    const log: RecordedRequest[] = [];
    const lines: string[] = [];
    const s = sources(log);
    expect(s.hasToken()).toBe(true);
    const { source, id } = await s.resolve(REPO, { onDownload: (p, line) => lines.push(line, JSON.stringify(p)) });
    const model = await loadModel(source);
    expect(model.tensors.length).toBeGreaterThan(0);
    expect(log.length).toBeGreaterThan(Object.keys(files).length - 1);
    for (const r of log) {
      expect(r.url).not.toContain(TOKEN);
      expect(r.url.startsWith(PREFIX)).toBe(true);
      expect(r.headers.authorization).toBe(`Bearer ${TOKEN}`);
      for (const [name, value] of Object.entries(r.headers)) if (name !== 'authorization') expect(value).not.toContain(TOKEN);
    }
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n') + id + model.name + JSON.stringify(model.warnings)).not.toContain(TOKEN);
  });

  it('is in no error message: refused, missing, rate-limited, failing server, broken connection', async () => {
    for (const status of [401, 403, 404, 429, 500]) {
      const err = await sources([], status).resolve(REPO).then(() => null, (e: Error) => e);
      expect(err, `HTTP ${status}`).toBeInstanceOf(Error);
      expect(err!.message).toMatch(new RegExp(`HTTP ${status}`));
      expect(err!.message).not.toContain(TOKEN);
      expect(String(err!.stack)).not.toContain(TOKEN);
    }
    // a fetch that fails echoes what it was given: the URL and the request's headers, as some engines do
    const broken = (async (input: RequestInfo | URL, init?: RequestInit) => {
      throw new TypeError(`fetch failed: ${String(input)} ${JSON.stringify(Object.keys(new Headers(init?.headers)))}`);
    }) as typeof fetch;
    const err = await sources([], undefined, broken).resolve(REPO).then(() => null, (e: Error) => e);
    expect(err!.message).toMatch(/the request to https:\/\/hub\.example failed/);
    expect(err!.message).not.toContain(TOKEN);
  });

  it('riding along on a model reference, reaches no shared link, export, import or stored record', async () => {
    const leaky = { ...REPO, token: TOKEN, hub: { token: TOKEN } } as unknown as ExperimentSpec['model'];
    const specs: ExperimentSpec[] = [
      { model: leaky, method: { id: 'none' }, eval: { protocol: 'gptq', windowLength: 128, windows: 2 } },
      { model: leaky, method: { id: 'rtn', bits: 4, groupSize: 128, symmetric: false }, eval: { protocol: 'gptq', windowLength: 128, windows: 2 } },
    ];
    // shared link
    const link = encodeExperiments(specs);
    const decoded = decodeExperiments(link);
    expect('specs' in decoded && JSON.stringify(decoded.specs)).not.toContain(TOKEN);
    expect(atob(link.slice('#x=v1:'.length).replace(/-/g, '+').replace(/_/g, '/'))).not.toContain(TOKEN);
    // a results file from elsewhere that carries one: rebuilt on import, so the table, CSV, SVG and the JSON export are clean
    const result = (spec: ExperimentSpec, i: number): Result => ({
      id: `r${i}`, spec, status: 'done', createdAt: '2026-01-01T00:00:00Z',
      device: { vendor: 'v', architecture: 'a', description: 'd', features: [] },
      protocol: { protocol: 'gptq', windowLength: 128, windowsTotal: 10, windows: 2, scoredTokens: 254, textTokens: 1000 },
      metrics: { perplexity: 20 + i, perplexitySe: 1, meanNll: 3, meanNllSe: 0.1, meanNllSeByWindow: 0.1, nllSum: 700, bitsPerWeight: 32 - 20 * i, weightBytes: 1e6, peakBytes: 2e6, peakByCategory: {}, quantizedParams: 0, totalParams: 1, prefillTokensPerSecond: 1, decodeTokensPerSecond: 1, prefillGpuTokensPerSecond: null, decodeGpuTokensPerSecond: null },
      timing: {}, kernels: [], windowNll: [350, 350], methodReport: {},
    });
    const parsed = parseResultsFile(JSON.stringify(specs.map(result)), 'results.json');
    expect('results' in parsed).toBe(true);
    const imported = (parsed as { results: Result[] }).results;
    const exports = [JSON.stringify(imported), resultsCsv(imported), frontierSvg(imported, { x: 'weightMB', y: 'perplexity', width: 400, height: 300 }), JSON.stringify(imported.map(resultRow))];
    for (const text of exports) expect(text).not.toContain(TOKEN);
    // a stored record holding one in a queued spec comes back without it, and is saved so
    const kv = memoryKeyValue({ [STORE_KEY]: encodeLab({ results: imported, queue: [{ id: 'q1', spec: specs[0], addedAt: '2026-01-01T00:00:00Z' }], settings: null }) });
    const store = new LabStore(kv);
    const loaded = await store.load();
    expect(JSON.stringify(loaded.state)).not.toContain(TOKEN);
    await store.save(loaded.state);
    expect(JSON.stringify(kv.data.get(STORE_KEY))).not.toContain(TOKEN);
  });
});

describe('imported text', () => {
  it('reaches raw HTML only through the SVG builders, which escape it', () => {
    const sinks: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (/\.(ts|svelte)$/.test(entry.name)) {
          readFileSync(path, 'utf8').split('\n').forEach((line, i) => {
            if (/\{@html\s|\.innerHTML\s*=|\.outerHTML\s*=|insertAdjacentHTML|document\.write\(|new DOMParser/.test(line)) sinks.push(`${path}:${i + 1}: ${line.trim()}`);
          });
        }
      }
    };
    walk('src');
    // frontierSvg (src/ui/plot.ts) escapes every label it writes; the inspector's SVGs hold layer names of the loaded model only
    const allowed = [/^src\/ui\/FrontierPlot\.svelte:\d+: \{@html svg\}$/, /^src\/ui\/LayerInspector\.svelte:\d+: .*\{@html (heatmap|histogramSvg\(histogram\))\}/];
    expect(sinks.filter((s) => !allowed.some((re) => re.test(s)))).toEqual([]);
  });

  it('with <img onerror> in every label of an imported result stays text in the frontier SVG', () => {
    const evil = '<img src=x onerror="alert(1)"><script>alert(2)</script>';
    const r = {
      id: `id${evil}`, spec: { model: { kind: 'hub', repo: `o/${evil}`, revision: evil }, method: { id: 'rtn', bits: 4, groupSize: 128, symmetric: false }, eval: { protocol: 'gptq', windowLength: 128, windows: 1 } },
      status: 'done', createdAt: '2026-01-01T00:00:00Z', device: { vendor: evil, architecture: evil, description: evil, features: [evil] },
      protocol: { protocol: 'gptq', windowLength: 128, windowsTotal: 10, windows: 1, scoredTokens: 127, textTokens: 1000 },
      metrics: { perplexity: 20, perplexitySe: 1, meanNll: 3, meanNllSe: 0.1, meanNllSeByWindow: 0.1, nllSum: 381, bitsPerWeight: 4.5, weightBytes: 1e6, peakBytes: 2e6, peakByCategory: {}, quantizedParams: 1, totalParams: 1, prefillTokensPerSecond: 1, decodeTokensPerSecond: 1, prefillGpuTokensPerSecond: null, decodeGpuTokensPerSecond: null },
      timing: {}, kernels: [evil], windowNll: [381], methodReport: {}, error: evil, source: evil,
    };
    const parsed = parseResultsFile(JSON.stringify([r, { ...r, id: 'second', metrics: { ...r.metrics, weightBytes: 2e6, perplexity: 19 } }]), evil);
    expect('results' in parsed).toBe(true);
    const svg = frontierSvg((parsed as { results: Result[] }).results, { x: 'weightMB', y: 'perplexity', width: 500, height: 300, pinnedId: 'second' });
    // every tag with its quoted attribute values emptied (a quote inside a value is escaped as &quot;)
    const tags = (svg.match(/<[^>]*>/g) ?? []).map((t) => t.replace(/"[^"]*"/g, '""'));
    expect(tags.filter((t) => /^<\/?(img|script|iframe|foreignObject|a)\b/i.test(t) || /\son\w+\s*=/i.test(t))).toEqual([]);
    expect(svg).toContain('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;');
  });
});

