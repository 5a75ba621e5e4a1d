/**
 * Where a run's model comes from, for the worker and the CLI alike:
 * embedded models (a caller-given source), Hugging Face repositories
 * (downloaded into the cache first, then read from it) and files the person
 * picked or dropped (Blobs handed over by the page), and what the page shows
 * of a model before a run (describeModel: its shape and memory plan). The
 * refusal of a run the GPU cannot hold is runExperiment's (faults.ts checkRunFits).
 *
 * The access token lives here, in memory, and goes only into the Hub's
 * Authorization header, and only to the origin it is bound to (hub.ts
 * hubTokenFor): changing the Hub address does not carry it to the new one.
 */
import type { ExperimentSpec, ModelRef } from '../core/experiment';
import { summarizeCache, type CachedModel, type HubCache } from './hub-cache';
import { bindHubToken, DEFAULT_HUB_BASE, downloadHubModel, formatDownload, hubTokenFor, originOf, type DownloadProgress, type HubToken } from './hub';
import { blobSource, loadModel, type ModelSource } from './load';
import { planMemory, type MemoryPlan, type PlanLimits } from './memory-plan';

export interface HubSettings {
  /** the Hub or a mirror with its URL layout */
  baseUrl: string;
  /**
   * for gated and private repositories; null for none. A string is bound to
   * the origin of the address in effect when it is given (after `baseUrl` of
   * the same call), a HubToken to its own origin; it is sent only there.
   */
  token: string | HubToken | null;
}

/** What the page learns about files it handed over. */
export interface LocalModelSummary {
  name: string;
  files: { path: string; bytes: number }[];
  bytes: number;
}

export interface ModelSourcesOptions {
  /** an embedded model's files */
  embedded: (id: string) => ModelSource;
  /** the download cache, created on first use */
  cache: () => HubCache;
  fetch?: typeof fetch;
  hub?: Partial<HubSettings>;
}

export class ModelSources {
  readonly #options: ModelSourcesOptions;
  #hub: { baseUrl: string; token: HubToken | null };
  #cache: HubCache | null = null;
  readonly #local = new Map<string, Map<string, Blob>>();

  constructor(options: ModelSourcesOptions) {
    this.#options = options;
    const baseUrl = options.hub?.baseUrl ?? DEFAULT_HUB_BASE;
    this.#hub = { baseUrl, token: bindHubToken(options.hub?.token, baseUrl) };
  }

  get cache(): HubCache {
    this.#cache ??= this.#options.cache();
    return this.#cache;
  }

  /**
   * Changes the Hub address and/or the token (null forgets it). A token keeps
   * the origin it was bound to: after a change of address to another origin it
   * stays unsent until given again for the new one.
   */
  setHub(settings: Partial<HubSettings>): void {
    if (settings.baseUrl !== undefined) {
      const url = settings.baseUrl.trim() || DEFAULT_HUB_BASE;
      if (!/^https?:\/\/[^\s]+$/.test(url) || originOf(url) === null) throw new Error(`"${url}" is not an http(s) address: the Hub setting takes an address like https://huggingface.co.`);
      this.#hub.baseUrl = url.replace(/\/+$/, '');
    }
    if (settings.token !== undefined) this.#hub.token = bindHubToken(settings.token, this.#hub.baseUrl);
  }

  hubBase(): string {
    return this.#hub.baseUrl;
  }

  /** whether a token would go with requests to the current Hub address */
  hasToken(): boolean {
    return hubTokenFor(this.#hub.baseUrl, this.#hub.token) !== null;
  }

  /** the origin the token in memory is bound to (null without one) */
  tokenOrigin(): string | null {
    return this.#hub.token?.origin ?? null;
  }

  /**
   * Keeps picked files under `name` (their paths relative to the model folder;
   * a folder prefix shared by all is dropped). Checks that they make a model.
   */
  addLocal(name: string, files: Record<string, Blob>): LocalModelSummary {
    const paths = Object.keys(files);
    const prefix = commonFolder(paths);
    const map = new Map<string, Blob>();
    for (const [path, blob] of Object.entries(files)) map.set(path.slice(prefix.length), blob);
    const missing = ['config.json', 'tokenizer.json'].filter((f) => !map.has(f));
    const weights = [...map.keys()].filter((f) => f.endsWith('.safetensors'));
    if (missing.length || weights.length === 0) {
      const lacking = [...missing, ...(weights.length ? [] : ['a *.safetensors file (or the shards and model.safetensors.index.json)'])];
      throw new Error(`The picked files lack ${lacking.join(', ')}: pick the model folder's config.json, tokenizer.json and *.safetensors files together.`);
    }
    if (weights.length > 1 && !map.has('model.safetensors.index.json') && !map.has('model.safetensors')) {
      throw new Error(`${weights.length} safetensors shards were picked without model.safetensors.index.json: add the index too.`);
    }
    this.#local.set(name, map);
    const list = [...map].map(([path, blob]) => ({ path, bytes: blob.size }));
    return { name, files: list, bytes: list.reduce((s, f) => s + f.bytes, 0) };
  }

  /** The source of a model reference; Hub models are downloaded (or found in the cache) first. */
  async resolve(ref: ModelRef, options: { signal?: AbortSignal; onDownload?: (p: DownloadProgress, line: string) => void } = {}): Promise<{ source: ModelSource; id: string }> {
    switch (ref.kind) {
      case 'embedded':
        return { source: this.#options.embedded(ref.id), id: ref.id };
      case 'local': {
        const files = this.#local.get(ref.name);
        if (!files) throw new Error(`The local model "${ref.name}" is not loaded in this page any more (files picked from disk are not kept across reloads): pick its files again.`);
        return { source: blobSource(ref.name, files), id: `local:${ref.name}` };
      }
      case 'hub': {
        const source = await downloadHubModel(ref, {
          cache: this.cache,
          baseUrl: this.#hub.baseUrl,
          token: this.#hub.token,
          fetch: this.#options.fetch,
          signal: options.signal,
          onProgress: (p) => options.onDownload?.(p, formatDownload(p)),
        });
        return { source, id: `hub:${ref.repo}@${ref.revision}` };
      }
    }
  }

  async listCache(): Promise<CachedModel[]> {
    return summarizeCache(await this.cache.list());
  }

  async clearCache(filter?: { repo?: string; revision?: string }): Promise<number> {
    return this.cache.clear(filter);
  }
}

function commonFolder(paths: string[]): string {
  if (paths.length === 0 || !paths.every((p) => p.includes('/'))) return '';
  const first = paths[0].slice(0, paths[0].lastIndexOf('/') + 1);
  return paths.every((p) => p.startsWith(first) && !p.slice(first.length).includes('/')) ? first : '';
}

/** What the page shows about a model before running it. */
export interface ModelSummary {
  name: string;
  modelType: string;
  layers: number;
  hidden: number;
  vocab: number;
  context: number;
  parameters: number;
  /** bytes of the weight files' tensors */
  weightBytes: number;
  warnings: string[];
  /** the memory plan of the experiments asked about, against the adapter's limits (null without an adapter) */
  plan: MemoryPlan | null;
}

/** Reads a model's config and headers (no weights) and plans `specs` against `limits`. */
export async function describeModel(source: ModelSource, specs: Pick<ExperimentSpec, 'method' | 'eval' | 'kv'>[], limits: PlanLimits | null): Promise<ModelSummary> {
  const model = await loadModel(source, { tokenizer: false });
  const c = model.config;
  const parameters = model.tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
  return {
    name: model.name,
    modelType: model.family.modelType,
    layers: c.numLayers,
    hidden: c.hiddenSize,
    vocab: c.vocabSize,
    context: c.maxPositions,
    parameters,
    weightBytes: model.weightBytes,
    warnings: model.warnings,
    plan: limits && specs.length ? planMemory(c, specs, limits) : null,
  };
}
