/**
 * Loading a model in the Hugging Face layout from any file source:
 *
 *   config.json                        → family (by model_type) → DecoderConfig
 *   model.safetensors                  → headers parsed from the first bytes only
 *   | model.safetensors.index.json + shards
 *   tokenizer.json (+ tokenizer_config.json) → TextTokenizer
 *
 * Every canonical tensor is resolved and its shape checked before any weight
 * byte is read. Weights are then read one tensor at a time through
 * `getTensor` / `tensors()` (a Range request or a Blob slice each), so the
 * engine uploads them to the GPU without the whole model ever being in JS
 * memory.
 */
import { parseJsonObject, isJsonObject } from '../core/config';
import type { DecoderConfig } from '../core/decoder';
import { applyPlan, readModelConfig, resolveTensors, type Family, type TensorPlan } from '../core/families';
import { formatCount, headerByteLength, parseHeader, toFloat32, type SafetensorsHeader, type TensorEntry } from '../core/safetensors';
import { loadTokenizer, type TextTokenizer } from '../core/tokenizer';

/** Where a model's files come from: a folder, a URL prefix, dropped files. Paths are relative ("config.json"). */
export interface ModelSource {
  /** shown in messages and results */
  name: string;
  exists(path: string): Promise<boolean>;
  /** size in bytes; errors when the file is missing */
  size(path: string): Promise<number>;
  readText(path: string): Promise<string>;
  /** bytes [begin, end) of a file */
  readRange(path: string, begin: number, end: number): Promise<Uint8Array>;
}

/** One canonical tensor of a loaded model and where its bytes are. */
export interface ModelTensor extends TensorPlan {
  /** the file holding `source` */
  file: string;
  /** the checkpoint tensor's entry (dtype, absolute byte range) */
  entry: TensorEntry;
}

export interface LoadedModel {
  /** the source's name */
  name: string;
  family: Family;
  config: DecoderConfig;
  /** null when loaded with { tokenizer: false } */
  tokenizer: TextTokenizer | null;
  /** canonical tensors in executor order (embeddings, blocks, final norm, head) */
  tensors: ModelTensor[];
  /** weight files and their parsed headers */
  files: SafetensorsHeader[];
  /** checkpoint tensors the architecture does not use (tolerated, reported) */
  unexpectedTensors: string[];
  warnings: string[];
  /** bytes on disk of the tensors read (a split tensor counted once) */
  weightBytes: number;
  /** a canonical tensor as f32 in canonical layout; reads its bytes from the source now */
  getTensor(canonical: string): Promise<Float32Array>;
  /** every canonical tensor in order, one at a time */
  tensorsInOrder(): AsyncGenerator<{ name: string; shape: number[]; data: Float32Array }>;
}

export interface LoadOptions {
  /** load tokenizer.json too (default true) */
  tokenizer?: boolean;
}

const SINGLE = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';
/** first read for a header: most headers fit, so one request usually suffices */
const HEADER_PROBE_BYTES = 256 * 1024;

async function readExact(source: ModelSource, path: string, begin: number, end: number, what: string): Promise<Uint8Array> {
  const bytes = await source.readRange(path, begin, end);
  if (bytes.length !== end - begin) {
    throw new Error(
      `${source.name}/${path}: asked for bytes ${formatCount(begin)}–${formatCount(end)} (${what}), got ${formatCount(bytes.length)}: ` +
        `the file is shorter than its header says — the download was cut off; download it again.`,
    );
  }
  return bytes;
}

/** Parses a safetensors header reading only the file's first bytes. */
export async function readSafetensorsHeader(source: ModelSource, path: string): Promise<SafetensorsHeader> {
  const size = await source.size(path);
  let prefix = await readExact(source, path, 0, Math.min(size, HEADER_PROBE_BYTES), 'the header');
  const needed = headerByteLength(prefix, path, size);
  if (needed > prefix.length) prefix = await readExact(source, path, 0, needed, 'the header');
  return parseHeader(prefix, path, size);
}

async function readWeightFiles(source: ModelSource): Promise<{ headers: SafetensorsHeader[]; fileOf: Map<string, string>; warnings: string[] }> {
  const warnings: string[] = [];
  let files: string[];
  let weightMap: Map<string, string> | null = null;
  if (await source.exists(INDEX)) {
    const index = parseJsonObject(await source.readText(INDEX), INDEX);
    if (!isJsonObject(index.weight_map)) throw new Error(`${source.name}/${INDEX} has no "weight_map" object: the index is damaged — download it again.`);
    weightMap = new Map();
    for (const [name, file] of Object.entries(index.weight_map)) {
      if (typeof file !== 'string') throw new Error(`${source.name}/${INDEX}: weight_map["${name}"] is not a file name.`);
      weightMap.set(name, file);
    }
    files = [...new Set(weightMap.values())];
  } else if (await source.exists(SINGLE)) {
    files = [SINGLE];
  } else {
    throw new Error(
      `${source.name} has neither ${SINGLE} nor ${INDEX}: qlab reads safetensors weights only ` +
        `(for pytorch_model.bin, convert the checkpoint to safetensors first).`,
    );
  }

  const headers: SafetensorsHeader[] = [];
  const fileOf = new Map<string, string>();
  for (const file of files) {
    if (!(await source.exists(file))) throw new Error(`${source.name}/${INDEX} lists the shard ${file}, which is missing: download it.`);
    const header = await readSafetensorsHeader(source, file);
    headers.push(header);
    warnings.push(...header.warnings);
    for (const name of header.tensors.keys()) {
      const other = fileOf.get(name);
      if (other !== undefined) throw new Error(`tensor "${name}" is in both ${other} and ${file}: the shards belong to different checkpoints.`);
      fileOf.set(name, file);
    }
  }
  if (weightMap) {
    for (const [name, file] of weightMap) {
      const actual = fileOf.get(name);
      if (actual !== file) {
        throw new Error(
          `${INDEX} says tensor "${name}" is in ${file}, but ${actual === undefined ? 'no shard has it' : `it is in ${actual}`}: ` +
            `the index and the shards belong to different checkpoints — download them again.`,
        );
      }
    }
  }
  return { headers, fileOf, warnings };
}

/** Loads config, weight headers and tokenizer; weights themselves are read later, tensor by tensor. */
export async function loadModel(source: ModelSource, options: LoadOptions = {}): Promise<LoadedModel> {
  if (!(await source.exists('config.json'))) {
    throw new Error(`${source.name} has no config.json: qlab loads models in the Hugging Face layout (config.json, model.safetensors, tokenizer.json).`);
  }
  const { family, config } = readModelConfig(parseJsonObject(await source.readText('config.json'), 'config.json'), 'config.json');
  const { headers, fileOf, warnings } = await readWeightFiles(source);

  const entries = new Map<string, TensorEntry>();
  for (const header of headers) for (const [name, entry] of header.tensors) entries.set(name, entry);
  const missingFile = headers.length === 1 ? headers[0].fileName : `the weight files (${headers.map((h) => h.fileName).join(', ')})`;
  const { plans, unexpected } = resolveTensors(family, config, entries, (name) => fileOf.get(name) ?? missingFile);
  if (unexpected.length > 0) {
    const shown = unexpected.slice(0, 5).map((n) => `"${n}"`).join(', ');
    warnings.push(`${unexpected.length} tensor(s) the ${family.modelType} architecture does not use were ignored: ${shown}${unexpected.length > 5 ? ', …' : ''}.`);
  }

  const tensors: ModelTensor[] = plans.map((plan) => ({ ...plan, file: fileOf.get(plan.source)!, entry: entries.get(plan.source)! }));
  const byName = new Map(tensors.map((t) => [t.canonical, t]));
  const counted = new Set<string>();
  let weightBytes = 0;
  for (const t of tensors) {
    if (counted.has(t.source)) continue;
    counted.add(t.source);
    weightBytes += t.entry.end - t.entry.begin;
  }

  let tokenizer: TextTokenizer | null = null;
  if (options.tokenizer ?? true) {
    if (!(await source.exists('tokenizer.json'))) {
      throw new Error(
        `${source.name} has no tokenizer.json: qlab tokenizes with the Hugging Face "fast" tokenizer file ` +
          `(models with only tokenizer.model or vocab.json/merges.txt need it generated with transformers' AutoTokenizer.save_pretrained).`,
      );
    }
    const tokenizerConfig = (await source.exists('tokenizer_config.json')) ? await source.readText('tokenizer_config.json') : null;
    tokenizer = loadTokenizer(await source.readText('tokenizer.json'), tokenizerConfig, config, 'tokenizer.json');
    if (tokenizer.vocabSize > config.vocabSize) {
      throw new Error(
        `tokenizer.json produces token ids up to ${tokenizer.vocabSize - 1}, but config.json's vocabulary has ${config.vocabSize} entries: ` +
          `the tokenizer belongs to another model.`,
      );
    }
  }

  // A fused checkpoint tensor (GPT-2's c_attn weight and bias → q, k, v) is read once
  // for its parts: the last two fused tensors read stay cached.
  const fused = new Map<string, Float32Array>();
  const getTensor = async (canonical: string): Promise<Float32Array> => {
    const t = byName.get(canonical);
    if (!t) throw new Error(`${source.name}: no canonical tensor "${canonical}" in this ${family.modelType} model.`);
    let data = fused.get(t.source);
    if (!data) {
      const bytes = await readExact(source, t.file, t.entry.begin, t.entry.end, `tensor "${t.source}"`);
      data = toFloat32(bytes, t.entry.dtype, `${t.file}, tensor "${t.source}"`);
      if (t.split) {
        fused.set(t.source, data);
        if (fused.size > 2) fused.delete(fused.keys().next().value!);
      }
    }
    return applyPlan(t, data);
  };

  async function* tensorsInOrder(): AsyncGenerator<{ name: string; shape: number[]; data: Float32Array }> {
    for (const t of tensors) yield { name: t.canonical, shape: t.shape, data: await getTensor(t.canonical) };
  }

  return {
    name: source.name,
    family,
    config,
    tokenizer,
    tensors,
    files: headers,
    unexpectedTensors: unexpected,
    warnings,
    weightBytes,
    getTensor,
    tensorsInOrder,
  };
}

// ------------------------------------------------------------------ sources

/**
 * Files under a URL prefix (public/models/<name>/ in the page, later
 * https://huggingface.co/<repo>/resolve/<revision>/), read with Range requests.
 */
export function urlSource(baseUrl: string, name = baseUrl, fetchFn: typeof fetch = (input, init) => fetch(input, init)): ModelSource {
  const base = baseUrl.endsWith('/') ? baseUrl : baseUrl + '/';
  const sizes = new Map<string, number>();
  const url = (path: string): string => base + path.split('/').map(encodeURIComponent).join('/');
  const fail = (path: string, response: Response, what: string): Error =>
    new Error(
      `${name}/${path}: ${what} failed with HTTP ${response.status} ${response.statusText}` +
        (response.status === 401 || response.status === 403 ? ' (the repository may be gated or private: it needs a login)' : '') +
        (response.status === 404 ? ' (no such file: check the model name and revision)' : '') +
        '.',
    );

  const source: ModelSource = {
    name,
    async exists(path) {
      const response = await fetchFn(url(path), { method: 'HEAD' });
      if (response.ok) {
        const length = response.headers.get('content-length');
        if (length !== null && response.headers.get('content-encoding') === null) sizes.set(path, Number(length));
        return true;
      }
      if (response.status === 404) return false;
      throw fail(path, response, 'checking the file');
    },
    async size(path) {
      const known = sizes.get(path);
      if (known !== undefined) return known;
      // A one-byte range answers with the total size in Content-Range, whatever the compression.
      const response = await fetchFn(url(path), { headers: { Range: 'bytes=0-0' } });
      if (!response.ok) throw fail(path, response, 'reading the size');
      const total = /\/(\d+)\s*$/.exec(response.headers.get('content-range') ?? '')?.[1];
      let size: number;
      if (total !== undefined) {
        size = Number(total);
        await response.body?.cancel();
      } else {
        // The server ignored Range: the body is the whole file.
        size = (await response.arrayBuffer()).byteLength;
      }
      sizes.set(path, size);
      return size;
    },
    async readText(path) {
      const response = await fetchFn(url(path));
      if (!response.ok) throw fail(path, response, 'downloading');
      return response.text();
    },
    async readRange(path, begin, end) {
      if (end <= begin) return new Uint8Array(0);
      const response = await fetchFn(url(path), { headers: { Range: `bytes=${begin}-${end - 1}` } });
      if (!response.ok) throw fail(path, response, `reading bytes ${begin}–${end}`);
      const body = new Uint8Array(await response.arrayBuffer());
      // 200 means the server ignored Range and sent the whole file.
      return response.status === 206 ? body : body.subarray(begin, Math.min(end, body.length));
    },
  };
  return source;
}

/** Files the person picked or dropped (or in-memory files in tests), by relative path. */
export function blobSource(name: string, files: Record<string, Blob> | Map<string, Blob>): ModelSource {
  const map = files instanceof Map ? files : new Map(Object.entries(files));
  const get = (path: string): Blob => {
    const blob = map.get(path);
    if (!blob) throw new Error(`${name} has no ${path}: add it to the files you picked.`);
    return blob;
  };
  return {
    name,
    exists: async (path) => map.has(path),
    size: async (path) => get(path).size,
    readText: async (path) => get(path).text(),
    readRange: async (path, begin, end) => new Uint8Array(await get(path).slice(begin, end).arrayBuffer()),
  };
}
