import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { blobSource, loadModel, readSafetensorsHeader, urlSource, type ModelSource } from '../../src/lab/load';
import { directorySource } from '../../src/lab/source-node';
import { gpt2ConfigJson, llamaConfigJson } from './support/configs';
import { gpt2Tensors, llamaTensors, shardedModel, singleFileModel, tinyTokenizerFiles, type Files } from './support/tiny-models';

const tokenizer = tinyTokenizerFiles();
const blobs = (files: Files): ModelSource =>
  blobSource('tiny', Object.fromEntries(Object.entries(files).map(([k, v]) => [k, new Blob([v as BlobPart])])));

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function onDisk(files: Files): ModelSource {
  const dir = mkdtempSync(join(tmpdir(), 'qlab-load-'));
  dirs.push(dir);
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  return directorySource(dir);
}

/** A fetch serving `files` under https://host/m/, honouring Range unless told not to; counts bytes sent. */
function fakeFetch(files: Files, honourRange = true): { fetch: typeof fetch; sent: () => number } {
  let sent = 0;
  const fn = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const path = decodeURIComponent(String(input).replace('https://host/m/', ''));
    const file = files[path];
    if (file === undefined) return new Response('not found', { status: 404, statusText: 'Not Found' });
    const bytes = typeof file === 'string' ? new TextEncoder().encode(file) : file;
    if (init?.method === 'HEAD') return new Response(null, { status: 200, headers: { 'content-length': String(bytes.length) } });
    const range = new Headers(init?.headers).get('range');
    const m = range && honourRange ? /^bytes=(\d+)-(\d+)$/.exec(range) : null;
    if (m) {
      const begin = Number(m[1]);
      const end = Math.min(Number(m[2]) + 1, bytes.length);
      sent += end - begin;
      return new Response(bytes.slice(begin, end), { status: 206, headers: { 'content-range': `bytes ${begin}-${end - 1}/${bytes.length}` } });
    }
    sent += bytes.length;
    return new Response(bytes.slice(), { status: 200 });
  };
  return { fetch: fn as typeof fetch, sent: () => sent };
}

describe('llama', () => {
  const llamaConfig = { ...llamaConfigJson, num_key_value_heads: 2 };
  const model = singleFileModel(llamaConfig, llamaTensors(llamaConfig, 'BF16', ['model.extra_buffer']), tokenizer);

  test('config, tokenizer, plans; every canonical tensor equals its checkpoint tensor', async () => {
    const loaded = await loadModel(blobs(model.files));
    expect(loaded.family.modelType).toBe('llama');
    expect(loaded.config.numKvHeads).toBe(2);
    expect(loaded.tokenizer!.encode('the hat')).toEqual([116, 257, 32, 104, 97, 116]);
    expect(loaded.tokenizer!.bosTokenId).toBe(261);
    expect(loaded.tensors.length).toBe(1 + 2 * 9 + 2);
    expect(loaded.unexpectedTensors).toEqual(['model.extra_buffer']); // inv_freq is ignored silently
    expect(loaded.warnings.join('\n')).toMatch(/1 tensor\(s\) the llama architecture does not use were ignored: "model\.extra_buffer"/);
    const k = await loaded.getTensor('layers.1.attn.k.weight');
    expect(k).toEqual(model.values.get('model.layers.1.self_attn.k_proj.weight'));
    const names: string[] = [];
    for await (const t of loaded.tensorsInOrder()) {
      names.push(t.name);
      const plan = loaded.tensors.find((p) => p.canonical === t.name)!;
      expect(t.shape).toEqual(plan.shape);
      expect(t.data).toEqual(model.values.get(plan.source));
    }
    expect(names).toEqual(loaded.tensors.map((t) => t.canonical));
    expect(loaded.weightBytes).toBe(loaded.tensors.reduce((s, t) => s + t.entry.end - t.entry.begin, 0));
    await expect(loaded.getTensor('layers.9.attn.q.weight')).rejects.toThrow(/no canonical tensor "layers\.9\.attn\.q\.weight"/);
  });

  test('sharded checkpoint from a folder on disk', async () => {
    const sharded = shardedModel(llamaConfig, llamaTensors(llamaConfig, 'F16'), 3, tokenizer);
    const loaded = await loadModel(onDisk(sharded.files));
    expect(loaded.files.map((f) => f.fileName)).toEqual([
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
    ]);
    expect(await loaded.getTensor('head.weight')).toEqual(sharded.values.get('lm_head.weight'));
    expect(await loaded.getTensor('final_norm.weight')).toEqual(sharded.values.get('model.norm.weight'));
  });

  test('over HTTP with Range requests: the header needs only the first bytes', async () => {
    const server = fakeFetch(model.files);
    const source = urlSource('https://host/m', 'tiny', server.fetch);
    const header = await readSafetensorsHeader(source, 'model.safetensors');
    expect(header.tensors.size).toBe(model.values.size);
    const loaded = await loadModel(source, { tokenizer: false });
    expect(loaded.tokenizer).toBeNull();
    const before = server.sent();
    const q = await loaded.getTensor('layers.0.attn.q.weight');
    expect(q).toEqual(model.values.get('model.layers.0.self_attn.q_proj.weight'));
    expect(server.sent() - before).toBe(q.length * 2); // exactly the tensor's BF16 bytes
  });

  test('over HTTP from a server that ignores Range', async () => {
    const source = urlSource('https://host/m/', 'tiny', fakeFetch(model.files, false).fetch);
    const loaded = await loadModel(source);
    expect(await loaded.getTensor('embed.tokens')).toEqual(model.values.get('model.embed_tokens.weight'));
  });
});

describe('gpt2', () => {
  const model = singleFileModel(gpt2ConfigJson, gpt2Tensors(gpt2ConfigJson, 'F16'));

  test('Conv1D transposed, c_attn split into q, k, v, buffers ignored, tied head', async () => {
    const loaded = await loadModel(blobs(model.files), { tokenizer: false });
    expect(loaded.config.tiedEmbeddings).toBe(true);
    expect(loaded.unexpectedTensors).toEqual([]);
    expect(loaded.tensors.some((t) => t.canonical === 'head.weight')).toBe(false);
    const d = 48;
    const cAttn = model.values.get('h.1.attn.c_attn.weight')!; // [d, 3d]
    for (const [part, name] of ['q', 'k', 'v'].entries()) {
      const w = await loaded.getTensor(`layers.1.attn.${name}.weight`); // [d out, d in]
      for (const [o, i] of [[0, 0], [3, 7], [47, 11], [20, 47]]) expect(w[o * d + i]).toBe(cAttn[i * 3 * d + part * d + o]);
      const b = await loaded.getTensor(`layers.1.attn.${name}.bias`);
      expect(b).toEqual(model.values.get('h.1.attn.c_attn.bias')!.slice(part * d, (part + 1) * d));
    }
    const up = await loaded.getTensor('layers.0.mlp.up.weight'); // [192, 48] from c_fc [48, 192]
    const cFc = model.values.get('h.0.mlp.c_fc.weight')!;
    expect(up[5 * d + 9]).toBe(cFc[9 * 192 + 5]);
    expect(await loaded.getTensor('embed.positions')).toEqual(model.values.get('wpe.weight'));
  });

  test('names with the transformer. prefix', async () => {
    const prefixed = singleFileModel(gpt2ConfigJson, gpt2Tensors(gpt2ConfigJson, 'F32', 'transformer.'));
    const loaded = await loadModel(blobs(prefixed.files), { tokenizer: false });
    expect(await loaded.getTensor('final_norm.bias')).toEqual(prefixed.values.get('transformer.ln_f.bias'));
    expect(loaded.tensors[0].source).toBe('transformer.wte.weight');
  });
});

describe('errors name the file and tensor', () => {
  const llamaConfig = llamaConfigJson;
  const model = singleFileModel(llamaConfig, llamaTensors(llamaConfig, 'F32'), tokenizer);

  test('cut-off download', async () => {
    const weights = model.files['model.safetensors'] as Uint8Array;
    const files = { ...model.files, 'model.safetensors': weights.subarray(0, Math.floor(weights.length / 2)) };
    await expect(loadModel(onDisk(files))).rejects.toThrow(/model\.safetensors ends at byte [\d,]+ of [\d,]+ \(tensor ".*" lies past the end\): the download was cut off — download it again/);
  });

  test('missing files', async () => {
    const without = (name: string) => Object.fromEntries(Object.entries(model.files).filter(([k]) => k !== name));
    await expect(loadModel(blobs(without('config.json')))).rejects.toThrow(/tiny has no config\.json/);
    await expect(loadModel(blobs(without('model.safetensors')))).rejects.toThrow(/tiny has neither model\.safetensors nor model\.safetensors\.index\.json/);
    await expect(loadModel(blobs(without('tokenizer.json')))).rejects.toThrow(/tiny has no tokenizer\.json/);
  });

  test('config.json and weights disagree', async () => {
    const files = { ...model.files, 'config.json': JSON.stringify({ ...llamaConfig, intermediate_size: 100 }) };
    await expect(loadModel(blobs(files))).rejects.toThrow(
      'model.safetensors: tensor "model.layers.0.mlp.gate_proj.weight" has shape [172, 64], but config.json implies [100, 64] (for layers.0.mlp.gate.weight)',
    );
    const deeper = { ...model.files, 'config.json': JSON.stringify({ ...llamaConfig, num_hidden_layers: 3 }) };
    await expect(loadModel(blobs(deeper))).rejects.toThrow(/model\.safetensors has no tensor "model\.layers\.2\.input_layernorm\.weight"/);
  });

  test('unsupported architecture', async () => {
    const files = { ...model.files, 'config.json': JSON.stringify({ ...llamaConfig, model_type: 'qwen3' }) };
    await expect(loadModel(blobs(files))).rejects.toThrow('not supported yet: qwen3 (supported: llama, qwen2, phi3, gpt2)');
  });

  test('index and shards disagree', async () => {
    const sharded = shardedModel(llamaConfig, llamaTensors(llamaConfig, 'F32'), 2, tokenizer);
    const index = JSON.parse(sharded.files['model.safetensors.index.json'] as string);
    index.weight_map['model.norm.weight'] = 'model-00001-of-00002.safetensors';
    await expect(loadModel(blobs({ ...sharded.files, 'model.safetensors.index.json': JSON.stringify(index) }))).rejects.toThrow(
      /says tensor "model\.norm\.weight" is in model-00001-of-00002\.safetensors, but it is in model-00002-of-00002\.safetensors/,
    );
    const missingShard = Object.fromEntries(Object.entries(sharded.files).filter(([k]) => k !== 'model-00002-of-00002.safetensors'));
    await expect(loadModel(blobs(missingShard))).rejects.toThrow(/lists the shard model-00002-of-00002\.safetensors, which is missing/);
  });

  test('tokenizer larger than the model vocabulary', async () => {
    const small = { ...llamaConfig, vocab_size: 200 };
    const m = singleFileModel(small, llamaTensors(small, 'F32'), tokenizer);
    await expect(loadModel(blobs(m.files))).rejects.toThrow(/tokenizer\.json produces token ids up to 262, but config\.json's vocabulary has 200 entries/);
  });

  test('HTTP errors', async () => {
    const source = urlSource('https://host/m', 'gated/repo', (async () => new Response('', { status: 401, statusText: 'Unauthorized' })) as typeof fetch);
    await expect(loadModel(source)).rejects.toThrow(/gated\/repo\/config\.json: checking the file failed with HTTP 401 Unauthorized \(the repository may be gated or private/);
  });
});
