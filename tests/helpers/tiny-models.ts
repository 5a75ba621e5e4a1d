/**
 * Random-weight models of each family in the Hugging Face layout, generated
 * here in TypeScript: config.json with the keys transformers writes, safetensors
 * with the checkpoint names transformers saves (fused tensors fused, GPT-2's
 * Conv1D weights [in, out]), sharded with model.safetensors.index.json when
 * asked, and the embedded models' tokenizer (ids < 4096, so vocab ≥ 4096).
 *
 * In memory for the tests (tinyModelFiles), or streamed to a folder tensor by
 * tensor for realistically sized configs (writeModelDir; bench/hub-model.ts).
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DTYPE_BYTES, encodeFloats, parseHeader, writeSafetensors, type TensorToWrite } from '../../src/core/safetensors';
import { rng } from './random';

export type TinyFamily = 'llama' | 'qwen2' | 'phi3' | 'gpt2';
export const TINY_FAMILIES: readonly TinyFamily[] = ['llama', 'qwen2', 'phi3', 'gpt2'];
type Dtype = 'F32' | 'F16' | 'BF16';

/** The repository root: the nearest folder above this file (or its bundle, dist-node/) with public/models. */
function findRoot(): string {
  let dir = new URL('.', import.meta.url).pathname;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'public/models'))) return dir;
    dir = join(dir, '..');
  }
  return process.cwd();
}
const root = findRoot();
export const embeddedDir = (id: string): string => join(root, 'public/models', id);

/** The embedded models' tokenizer.json and tokenizer_config.json (vocabulary of 4096). */
export function embeddedTokenizerFiles(): Record<string, Uint8Array> {
  const dir = embeddedDir('qlab-llama-6m');
  return {
    'tokenizer.json': new Uint8Array(readFileSync(join(dir, 'tokenizer.json'))),
    'tokenizer_config.json': new Uint8Array(readFileSync(join(dir, 'tokenizer_config.json'))),
  };
}

/** Small configs with odd-ish shapes: GQA everywhere it exists, vocab 4096 for the embedded tokenizer. */
export function tinyConfig(family: TinyFamily, options: { longrope?: boolean } = {}): Record<string, unknown> {
  const common = { bos_token_id: 0, eos_token_id: 0, vocab_size: 4096, torch_dtype: 'float32' };
  switch (family) {
    case 'llama':
      return { ...common, architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, hidden_act: 'silu', max_position_embeddings: 128, rms_norm_eps: 1e-5, rope_theta: 10000, rope_scaling: null, attention_bias: false, mlp_bias: false, tie_word_embeddings: false };
    case 'qwen2':
      return { ...common, architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, hidden_act: 'silu', max_position_embeddings: 128, rms_norm_eps: 1e-6, rope_theta: 1000000, rope_scaling: null, tie_word_embeddings: true, use_sliding_window: false, sliding_window: 128, max_window_layers: 2 };
    case 'phi3': {
      const config: Record<string, unknown> = { ...common, architectures: ['Phi3ForCausalLM'], model_type: 'phi3', hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, hidden_act: 'silu', max_position_embeddings: 128, original_max_position_embeddings: 128, rms_norm_eps: 1e-5, rope_theta: 10000, rope_scaling: null, tie_word_embeddings: false, sliding_window: 127, attention_bias: false };
      if (options.longrope) {
        const r = rng(77);
        const half = 8; // head_dim 16
        Object.assign(config, {
          max_position_embeddings: 512,
          original_max_position_embeddings: 64,
          rope_scaling: { type: 'longrope', short_factor: Array.from({ length: half }, () => 1 + r() * 0.5), long_factor: Array.from({ length: half }, () => 1 + r() * 8) },
        });
      }
      return config;
    }
    case 'gpt2':
      return { ...common, architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', activation_function: 'gelu_new', n_embd: 64, n_head: 4, n_layer: 2, n_positions: 128, n_ctx: 128, n_inner: null, layer_norm_epsilon: 1e-5, bos_token_id: 0, eos_token_id: 0 };
  }
}

/** Checkpoint tensor names and shapes of a config, in the order transformers saves them. */
export function checkpointTensors(family: TinyFamily, c: Record<string, unknown>): { name: string; shape: number[] }[] {
  const n = (k: string): number => c[k] as number;
  const out: { name: string; shape: number[] }[] = [];
  const t = (name: string, shape: number[]) => out.push({ name, shape });
  if (family === 'gpt2') {
    const d = n('n_embd');
    const inter = (c.n_inner as number | null) ?? 4 * d;
    t('transformer.wte.weight', [n('vocab_size'), d]);
    t('transformer.wpe.weight', [n('n_positions'), d]);
    for (let i = 0; i < n('n_layer'); i++) {
      const p = `transformer.h.${i}.`;
      t(`${p}ln_1.weight`, [d]);
      t(`${p}ln_1.bias`, [d]);
      t(`${p}attn.c_attn.weight`, [d, 3 * d]);
      t(`${p}attn.c_attn.bias`, [3 * d]);
      t(`${p}attn.c_proj.weight`, [d, d]);
      t(`${p}attn.c_proj.bias`, [d]);
      t(`${p}ln_2.weight`, [d]);
      t(`${p}ln_2.bias`, [d]);
      t(`${p}mlp.c_fc.weight`, [d, inter]);
      t(`${p}mlp.c_fc.bias`, [inter]);
      t(`${p}mlp.c_proj.weight`, [inter, d]);
      t(`${p}mlp.c_proj.bias`, [d]);
    }
    t('transformer.ln_f.weight', [d]);
    t('transformer.ln_f.bias', [d]);
    return out;
  }
  const d = n('hidden_size');
  const heads = n('num_attention_heads');
  const kv = (c.num_key_value_heads as number) ?? heads;
  const hd = (c.head_dim as number) ?? d / heads;
  const inter = n('intermediate_size');
  t('model.embed_tokens.weight', [n('vocab_size'), d]);
  for (let i = 0; i < n('num_hidden_layers'); i++) {
    const p = `model.layers.${i}.`;
    t(`${p}input_layernorm.weight`, [d]);
    if (family === 'phi3') {
      t(`${p}self_attn.qkv_proj.weight`, [(heads + 2 * kv) * hd, d]);
    } else {
      t(`${p}self_attn.q_proj.weight`, [heads * hd, d]);
      if (family === 'qwen2') t(`${p}self_attn.q_proj.bias`, [heads * hd]);
      t(`${p}self_attn.k_proj.weight`, [kv * hd, d]);
      if (family === 'qwen2') t(`${p}self_attn.k_proj.bias`, [kv * hd]);
      t(`${p}self_attn.v_proj.weight`, [kv * hd, d]);
      if (family === 'qwen2') t(`${p}self_attn.v_proj.bias`, [kv * hd]);
    }
    t(`${p}self_attn.o_proj.weight`, [d, heads * hd]);
    t(`${p}post_attention_layernorm.weight`, [d]);
    if (family === 'phi3') {
      t(`${p}mlp.gate_up_proj.weight`, [2 * inter, d]);
    } else {
      t(`${p}mlp.gate_proj.weight`, [inter, d]);
      t(`${p}mlp.up_proj.weight`, [inter, d]);
    }
    t(`${p}mlp.down_proj.weight`, [d, inter]);
  }
  t('model.norm.weight', [d]);
  if (!c.tie_word_embeddings) t('lm_head.weight', [n('vocab_size'), d]);
  return out;
}

/** Seeded values for one checkpoint tensor: norms near 1, biases small, matrices ~ U(±1/√k). */
export function tensorValues(name: string, shape: number[], seed: number): Float32Array {
  const count = shape.reduce((a, b) => a * b, 1);
  const r = rng(seed);
  const out = new Float32Array(count);
  const isNorm = /norm|ln_/.test(name);
  const isBias = name.endsWith('.bias');
  const isEmbedding = /embed_tokens|wte|wpe/.test(name);
  // GPT-2's Conv1D stores [in, out]: the fan-in is the first dimension
  const fanIn = shape.length === 2 ? (/\.c_(attn|proj|fc)\./.test(name) ? shape[0] : shape[1]) : 1;
  const scale = isNorm ? 0.2 : isBias ? 0.1 : isEmbedding ? 1 : 1.5 / Math.sqrt(fanIn);
  const offset = isNorm && !isBias ? 1 : 0;
  for (let i = 0; i < count; i++) out[i] = offset + (r() * 2 - 1) * scale;
  return out;
}

const shardName = (s: number, shards: number): string =>
  `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;

/** Splits a list into `shards` runs of about equal bytes. */
function shardLists<T extends { bytes: number }>(list: T[], shards: number): T[][] {
  const total = list.reduce((s, t) => s + t.bytes, 0);
  const out: T[][] = Array.from({ length: shards }, () => []);
  let acc = 0;
  for (const t of list) {
    const s = Math.min(shards - 1, Math.floor((acc / total) * shards));
    out[s].push(t);
    acc += t.bytes;
  }
  return out.filter((l) => l.length > 0);
}

function indexJson(weightMap: Record<string, string>, totalSize: number): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2));
}

/** A whole tiny model as files (config.json, weights, tokenizer) in memory. */
export function tinyModelFiles(family: TinyFamily, options: { dtype?: Dtype; shards?: number; longrope?: boolean; seed?: number; config?: Record<string, unknown> } = {}): Record<string, Uint8Array> {
  const config = options.config ?? tinyConfig(family, options);
  const dtype = options.dtype ?? 'F32';
  let seed = options.seed ?? 1000 + TINY_FAMILIES.indexOf(family) * 100;
  const list: TensorToWrite[] = checkpointTensors(family, config).map(({ name, shape }) => ({ name, dtype, shape, data: encodeFloats(tensorValues(name, shape, seed++), dtype) }));
  const files: Record<string, Uint8Array> = { 'config.json': new TextEncoder().encode(JSON.stringify({ ...config, torch_dtype: dtype === 'F32' ? 'float32' : dtype === 'F16' ? 'float16' : 'bfloat16' }, null, 2)), ...embeddedTokenizerFiles() };
  return { ...files, ...weightFiles(list, options.shards ?? 1) };
}

/** model.safetensors, or shards and an index, holding `list`. */
export function weightFiles(list: TensorToWrite[], shards: number): Record<string, Uint8Array> {
  if (shards <= 1) return { 'model.safetensors': writeSafetensors(list, { format: 'pt' }) };
  const parts = shardLists(list.map((t) => ({ ...t, bytes: t.data.byteLength })), shards);
  const files: Record<string, Uint8Array> = {};
  const weightMap: Record<string, string> = {};
  parts.forEach((part, s) => {
    const name = shardName(s, parts.length);
    files[name] = writeSafetensors(part.map(({ name: n, dtype, shape, data }) => ({ name: n, dtype, shape, data })), { format: 'pt' });
    for (const t of part) weightMap[t.name] = name;
  });
  files['model.safetensors.index.json'] = indexJson(weightMap, list.reduce((s, t) => s + t.data.byteLength, 0));
  return files;
}

/** An embedded model's files, its model.safetensors re-cut into `shards` shards (bytes of every tensor unchanged). */
export function embeddedModelFiles(id: string, shards = 1): Record<string, Uint8Array> {
  const dir = embeddedDir(id);
  const read = (f: string) => new Uint8Array(readFileSync(join(dir, f)));
  const files: Record<string, Uint8Array> = { 'config.json': read('config.json'), 'tokenizer.json': read('tokenizer.json'), 'tokenizer_config.json': read('tokenizer_config.json') };
  const weights = read('model.safetensors');
  if (shards <= 1) return { ...files, 'model.safetensors': weights };
  const header = parseHeader(weights, 'model.safetensors', weights.length);
  const list: TensorToWrite[] = [...header.tensors.values()].map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, data: weights.subarray(e.begin, e.end) }));
  return { ...files, ...weightFiles(list, shards) };
}

/** Writes files into a folder. */
export function writeFiles(dir: string, files: Record<string, Uint8Array | string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
}

/**
 * Writes a random-weight model of `config` into `dir` tensor by tensor (never
 * the whole model in memory): shards of about `shardBytes`, an index, config.json
 * and the embedded tokenizer. Returns the bytes of weights written.
 */
export function writeModelDir(dir: string, family: TinyFamily, config: Record<string, unknown>, options: { dtype?: Dtype; shardBytes?: number; seed?: number } = {}): number {
  mkdirSync(dir, { recursive: true });
  const dtype = options.dtype ?? 'F16';
  const tensors = checkpointTensors(family, config).map((t) => ({ ...t, bytes: t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype] }));
  const total = tensors.reduce((s, t) => s + t.bytes, 0);
  const shards = Math.max(1, Math.ceil(total / (options.shardBytes ?? 2 ** 30)));
  const parts = shardLists(tensors, shards);
  const weightMap: Record<string, string> = {};
  let seed = options.seed ?? 1;
  const order = new Map(tensors.map((t, i) => [t.name, i]));
  parts.forEach((part, s) => {
    const fileName = parts.length === 1 ? 'model.safetensors' : shardName(s, parts.length);
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let offset = 0;
    for (const t of part) {
      header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes] };
      offset += t.bytes;
      weightMap[t.name] = fileName;
    }
    let json = new TextEncoder().encode(JSON.stringify(header));
    const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
    padded.set(json);
    json = padded;
    const fd = openSync(join(dir, fileName), 'w');
    try {
      const length = new Uint8Array(8);
      new DataView(length.buffer).setUint32(0, json.length, true);
      writeSync(fd, length);
      writeSync(fd, json);
      for (const t of part) writeSync(fd, encodeFloats(tensorValues(t.name, t.shape, seed + order.get(t.name)!), dtype));
    } finally {
      closeSync(fd);
    }
  });
  seed += tensors.length;
  if (parts.length > 1) writeFileSync(join(dir, 'model.safetensors.index.json'), indexJson(weightMap, total));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  for (const [name, data] of Object.entries(embeddedTokenizerFiles())) writeFileSync(join(dir, name), data);
  return total;
}
