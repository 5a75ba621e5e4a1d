/**
 * Model sources as the worker and the CLI resolve them (src/lab/model-sources.ts):
 * picked local files (folder prefix dropped, incomplete picks refused with what
 * is missing), Hub models with the token kept in memory and forgotten on
 * request, a model's description and memory plan for the page, and the
 * one-string model ids of the page's form.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelIdOf, modelRefFromId } from '../../src/core/model-ref';
import { directoryCache } from '../../src/lab/hub-cache-node';
import { blobSource, loadModel } from '../../src/lab/load';
import { describeModel, ModelSources } from '../../src/lab/model-sources';
import { startHubServer, type HubServer } from '../helpers/hub-server';
import { tinyModelFiles } from '../helpers/tiny-models';

let server: HubServer;
let dir: string;
beforeAll(async () => {
  server = await startHubServer();
  dir = mkdtempSync(join(tmpdir(), 'qlab-sources-'));
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const blobs = (files: Record<string, Uint8Array>, prefix = ''): Record<string, Blob> =>
  Object.fromEntries(Object.entries(files).map(([k, v]) => [prefix + k, new Blob([v as BlobPart])]));

function sources(): ModelSources {
  return new ModelSources({
    embedded: () => {
      throw new Error('no embedded models here');
    },
    cache: () => directoryCache(dir),
    hub: { baseUrl: server.baseUrl },
  });
}

describe('local files', () => {
  it('a picked folder of shards loads; its folder prefix is dropped', async () => {
    const s = sources();
    const summary = s.addLocal('my-phi3', blobs(tinyModelFiles('phi3', { shards: 2 }), 'my-phi3/'));
    expect(summary.files.map((f) => f.path).sort()).toEqual(
      ['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json'],
    );
    const { source, id } = await s.resolve({ kind: 'local', name: 'my-phi3' });
    expect(id).toBe('local:my-phi3');
    const model = await loadModel(source);
    expect(model.config.family).toBe('phi3');
    expect(model.files.length).toBe(2);
  });

  it('refuses an incomplete pick, naming what is missing', () => {
    const files = tinyModelFiles('llama', { shards: 2 });
    const { ['tokenizer.json']: _t, ['model.safetensors.index.json']: _i, ...rest } = files;
    expect(() => sources().addLocal('x', blobs(rest))).toThrow(/lack tokenizer\.json: pick the model folder's config\.json, tokenizer\.json and \*\.safetensors files together/);
    const { ['model.safetensors.index.json']: _j, ...noIndex } = files;
    expect(() => sources().addLocal('x', blobs(noIndex))).toThrow('2 safetensors shards were picked without model.safetensors.index.json: add the index too.');
  });

  it('a local model not picked in this page asks for its files again', async () => {
    await expect(sources().resolve({ kind: 'local', name: 'gone' })).rejects.toThrow(/not loaded in this page any more .* pick its files again/);
  });
});

describe('Hub settings', () => {
  it('the token is kept in memory, sent in the header, and forgotten on request', async () => {
    server.put('gated/qwen', 'main', tinyModelFiles('qwen2'), { token: 'hf_in_memory' });
    const s = sources();
    await expect(s.resolve({ kind: 'hub', repo: 'gated/qwen', revision: 'main' })).rejects.toThrow(/HTTP 401/);
    s.setHub({ token: ' hf_in_memory ' });
    expect(s.hasToken()).toBe(true);
    const { source, id } = await s.resolve({ kind: 'hub', repo: 'gated/qwen', revision: 'main' });
    expect(id).toBe('hub:gated/qwen@main');
    expect((await loadModel(source)).config.family).toBe('qwen2');
    s.setHub({ token: null });
    expect(s.hasToken()).toBe(false);
    expect(() => s.setHub({ baseUrl: 'ftp://mirror' })).toThrow(/is not an http\(s\) address/);
    expect((await s.listCache()).map((m) => `${m.repo}@${m.revision}`)).toContain('gated/qwen@main');
  });
});

describe('describing a model before a run', () => {
  it('its shape, and the memory plan of the chosen experiments against the limits', async () => {
    const source = blobSource('tiny-qwen2', blobs(tinyModelFiles('qwen2')));
    const evalSpec = { protocol: 'gptq' as const, windowLength: 64, windows: 1 };
    const specs = [{ method: { id: 'none' as const }, eval: evalSpec }, { method: { id: 'rtn' as const, bits: 4 as const, groupSize: 32, symmetric: false, quantizeHead: true, quantizeEmbeddings: true }, eval: evalSpec }];
    // the f32 embedding table (4096 × 64 × 4 = 1 MiB) is one buffer over a 600 kB limit
    const summary = await describeModel(source, specs, { maxBufferSize: 600_000, maxStorageBufferBindingSize: 600_000 });
    expect(summary).toMatchObject({ name: 'tiny-qwen2', modelType: 'qwen2', layers: 2, hidden: 64, vocab: 4096, context: 128 });
    expect(summary.parameters).toBe(4096 * 64 + 2 * (64 * 64 * 2 + 2 * 32 * 64 + 64 + 32 + 32 + 3 * 64 * 96 + 2 * 64) + 64);
    // the quantized run would fit, but its KL comparison loads an f32 copy beside it: the plan says so
    expect(summary.plan!.summary).toBe(
      "Nothing fits: f32 does not: its largest buffer (embed.tokens, 1.0 MB) is over the adapter's maxBufferSize of 600.0 kB; " +
        "RTN W4 g32 +head +embed does not: its largest buffer (embed.tokens (f32 reference), 1.0 MB) is over the adapter's maxBufferSize of 600.0 kB. " +
        'Choose a lower bit width, a shorter window or a smaller model.',
    );
    expect(summary.plan!.experiments[1].run).toBeLessThan(600_000 * 2);
    expect((await describeModel(source, specs, null)).plan).toBeNull();
  });
});

describe('model ids of the page', () => {
  it('round-trip every kind', () => {
    for (const ref of [{ kind: 'embedded', id: 'qlab-llama-6m' }, { kind: 'hub', repo: 'Qwen/Qwen2.5-0.5B', revision: 'main' }, { kind: 'hub', repo: 'a/b', revision: 'v1.0' }, { kind: 'local', name: 'my folder' }] as const) {
      expect(modelRefFromId(modelIdOf(ref))).toEqual(ref);
    }
    expect(modelIdOf({ kind: 'hub', repo: 'Qwen/Qwen2.5-0.5B', revision: 'main' })).toBe('hub:Qwen/Qwen2.5-0.5B@main');
  });
});
