/**
 * Fuzzing the sharded index `model.safetensors.index.json`, in both places
 * that read it: the loader (src/lab/load.ts, which checks it against the
 * shards' own headers) and the Hub download (src/lab/hub.ts, which decides
 * from it which shards to fetch). Seeded mutations of a real index of a tiny
 * three-shard model: wrong types, missing or extra tensors, shard names that
 * try to leave the repository ("../", absolute URLs), huge lists, values
 * nested thousands deep, and byte mutations of the text. Each input is either
 * refused with a message or loads a model whose every tensor is where the
 * index says; no request ever leaves the repository's folder.
 */
import { describe, expect, it } from 'vitest';
import { llamaConfigJson } from './support/configs';
import { fuzz, jsonText, mutateJson, mutateText, random } from './support/fuzz';
import { llamaTensors, shardedModel, tinyTokenizerFiles, type Files } from './support/tiny-models';
import { blobSource, loadModel } from '../../src/lab/load';
import { downloadHubModel } from '../../src/lab/hub';
import { memoryCache } from './support/hub-fakes';

const INDEX = 'model.safetensors.index.json';
const model = shardedModel(llamaConfigJson, llamaTensors(llamaConfigJson), 3, tinyTokenizerFiles());
const index = JSON.parse(model.files[INDEX] as string) as object;

const asBlob = (v: Uint8Array | string): Blob => new Blob([typeof v === 'string' ? v : new Uint8Array(v)]);

async function loadWithIndex(text: string) {
  const files: Files = { ...model.files, [INDEX]: text };
  const loaded = await loadModel(blobSource('tiny', Object.fromEntries(Object.entries(files).map(([k, v]) => [k, asBlob(v)]))));
  expect(loaded.files.length).toBeGreaterThan(0);
  return loaded;
}

const BASE = 'https://hub.example';
const PREFIX = `${BASE}/owner/tiny/resolve/main/`;

async function downloadWithIndex(text: string) {
  const files: Files = { ...model.files, [INDEX]: text };
  let requests = 0;
  const fetchFn = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    requests++;
    // no request leaves the repository's folder, whatever the index names
    expect(url.startsWith(PREFIX)).toBe(true);
    const path = decodeURIComponent(url.slice(PREFIX.length));
    expect(path.split('/')).not.toContain('..');
    const body = files[path];
    if (body === undefined) return new Response('Entry not found', { status: 404 });
    const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
    return new Response(init?.method === 'HEAD' ? null : new Uint8Array(bytes), { status: 200, headers: { 'content-length': String(bytes.length) } });
  }) as typeof fetch;
  const source = await downloadHubModel({ repo: 'owner/tiny', revision: 'main' }, { cache: memoryCache(), baseUrl: BASE, fetch: fetchFn });
  const loaded = await loadModel(source);
  // one model's worth of requests: a HEAD and a GET per file at most
  expect(requests).toBeLessThanOrEqual(2 * (Object.keys(model.files).length + 2));
  return loaded;
}

export const INDEX_FUZZ = { load: 1200, loadText: 500, hub: 800 };

describe('fuzzing the sharded index', () => {
  it(`index (load): ${INDEX_FUZZ.load} structurally mutated indexes, < 20 s`, { timeout: 20_000 }, async () => {
    const r = random(61);
    const stats = await fuzz(INDEX_FUZZ.load, () => jsonText(mutateJson(index, r)), loadWithIndex, { perInputMs: 2000 });
    expect(stats.refused).toBeGreaterThan(INDEX_FUZZ.load / 4);
    expect(stats.accepted).toBeGreaterThan(0);
  });

  it(`index (load): ${INDEX_FUZZ.loadText} byte-mutated indexes, < 10 s`, { timeout: 10_000 }, async () => {
    const r = random(62);
    await fuzz(INDEX_FUZZ.loadText, () => mutateText(model.files[INDEX] as string, r), loadWithIndex, { perInputMs: 2000 });
  });

  it(`index (Hub download): ${INDEX_FUZZ.hub} mutated indexes, shard names that leave the repository included, < 30 s`, { timeout: 30_000 }, async () => {
    const r = random(63);
    const escapes = ['../../other/repo/model.safetensors', '/etc/passwd', 'https://evil.example/x.safetensors', '%2e%2e/x', 'a/../../b', '..\\x'];
    const stats = await fuzz(
      INDEX_FUZZ.hub,
      (i) => {
        if (i % 4 === 0) {
          const evil = structuredClone(index) as { weight_map: Record<string, string> };
          const names = Object.keys(evil.weight_map);
          evil.weight_map[names[r.int(names.length)]] = r.pick(escapes);
          return JSON.stringify(evil);
        }
        return i % 4 === 1 ? mutateText(model.files[INDEX] as string, r) : jsonText(mutateJson(index, r));
      },
      downloadWithIndex,
      { perInputMs: 3000 },
    );
    expect(stats.refused).toBeGreaterThan(INDEX_FUZZ.hub / 4);
  });
});
