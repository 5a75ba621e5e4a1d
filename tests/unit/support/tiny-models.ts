/**
 * Tiny models in the Hugging Face layout, built in memory: config.json,
 * safetensors with the checkpoint names transformers saves, and a hand-made
 * byte-level BPE tokenizer.json. Values are seeded random (never zeros).
 */
import { randomF32 } from '../../helpers/random';
import { encodeFloats, toFloat32, writeSafetensors, type TensorToWrite } from '../../../src/core/safetensors';
import { bytesToUnicode } from './gpt2-tokenizer-json';

export type Files = Record<string, Uint8Array | string>;

export interface TinyCheckpoint {
  files: Files;
  /** checkpoint name → its values as stored (after the dtype's rounding), f32 */
  values: Map<string, Float32Array>;
  shapes: Map<string, number[]>;
}

type Dtype = 'F32' | 'F16' | 'BF16';

function tensor(name: string, shape: number[], dtype: Dtype, seed: number, out: TinyCheckpoint, list: TensorToWrite[]): void {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = encodeFloats(randomF32(n, seed, 0.5), dtype);
  list.push({ name, dtype, shape, data });
  out.values.set(name, toFloat32(data, dtype));
  out.shapes.set(name, shape);
}

/** llama checkpoint tensors (LlamaForCausalLM names) for a config.json object. */
export function llamaTensors(config: Record<string, unknown>, dtype: Dtype = 'F32', extra: string[] = []): { list: TensorToWrite[]; checkpoint: TinyCheckpoint } {
  const d = config.hidden_size as number;
  const heads = config.num_attention_heads as number;
  const kvHeads = (config.num_key_value_heads as number) ?? heads;
  const headDim = (config.head_dim as number) ?? d / heads;
  const inter = config.intermediate_size as number;
  const vocab = config.vocab_size as number;
  const checkpoint: TinyCheckpoint = { files: {}, values: new Map(), shapes: new Map() };
  const list: TensorToWrite[] = [];
  let seed = 1;
  const t = (name: string, shape: number[]) => tensor(name, shape, dtype, seed++, checkpoint, list);
  t('model.embed_tokens.weight', [vocab, d]);
  for (let i = 0; i < (config.num_hidden_layers as number); i++) {
    const p = `model.layers.${i}.`;
    t(`${p}input_layernorm.weight`, [d]);
    t(`${p}self_attn.q_proj.weight`, [heads * headDim, d]);
    t(`${p}self_attn.k_proj.weight`, [kvHeads * headDim, d]);
    t(`${p}self_attn.v_proj.weight`, [kvHeads * headDim, d]);
    t(`${p}self_attn.o_proj.weight`, [d, heads * headDim]);
    t(`${p}post_attention_layernorm.weight`, [d]);
    t(`${p}mlp.gate_proj.weight`, [inter, d]);
    t(`${p}mlp.up_proj.weight`, [inter, d]);
    t(`${p}mlp.down_proj.weight`, [d, inter]);
    t(`${p}self_attn.rotary_emb.inv_freq`, [headDim / 2]);
  }
  t('model.norm.weight', [d]);
  if (!config.tie_word_embeddings) t('lm_head.weight', [vocab, d]);
  for (const name of extra) t(name, [2]);
  return { list, checkpoint };
}

/** gpt2 checkpoint tensors as the original `gpt2` repo names them (no `transformer.` prefix), with mask buffers. */
export function gpt2Tensors(config: Record<string, unknown>, dtype: Dtype = 'F16', prefix = ''): { list: TensorToWrite[]; checkpoint: TinyCheckpoint } {
  const d = config.n_embd as number;
  const inter = (config.n_inner as number | null) ?? 4 * d;
  const checkpoint: TinyCheckpoint = { files: {}, values: new Map(), shapes: new Map() };
  const list: TensorToWrite[] = [];
  let seed = 100;
  const t = (name: string, shape: number[]) => tensor(prefix + name, shape, dtype, seed++, checkpoint, list);
  t('wte.weight', [config.vocab_size as number, d]);
  t('wpe.weight', [config.n_positions as number, d]);
  for (let i = 0; i < (config.n_layer as number); i++) {
    const p = `h.${i}.`;
    t(`${p}ln_1.weight`, [d]);
    t(`${p}ln_1.bias`, [d]);
    t(`${p}attn.bias`, [1, 1, 4, 4]); // the causal-mask buffer (shrunk)
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
  t('ln_f.weight', [d]);
  t('ln_f.bias', [d]);
  return { list, checkpoint };
}

/** A single-file model: config.json + model.safetensors (+ tokenizer files when given). */
export function singleFileModel(config: object, built: { list: TensorToWrite[]; checkpoint: TinyCheckpoint }, tokenizer?: Files): TinyCheckpoint {
  const files: Files = { 'config.json': JSON.stringify(config), 'model.safetensors': writeSafetensors(built.list, { format: 'pt' }), ...tokenizer };
  return { ...built.checkpoint, files };
}

/** The same tensors in `shards` shards with a model.safetensors.index.json. */
export function shardedModel(config: object, built: { list: TensorToWrite[]; checkpoint: TinyCheckpoint }, shards: number, tokenizer?: Files): TinyCheckpoint {
  const files: Files = { 'config.json': JSON.stringify(config), ...tokenizer };
  const weightMap: Record<string, string> = {};
  const per = Math.ceil(built.list.length / shards);
  for (let s = 0; s < shards; s++) {
    const name = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = built.list.slice(s * per, (s + 1) * per);
    files[name] = writeSafetensors(part);
    for (const t of part) weightMap[t.name] = name;
  }
  files['model.safetensors.index.json'] = JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap });
  return { ...built.checkpoint, files };
}

/**
 * A hand-made byte-level BPE (GPT-2 style) with 5 merges and llama-style
 * special tokens: ids 0–255 are the bytes, 256–260 the merges, 261 <s>, 262 </s>.
 * Its post-processor adds <s> first when special tokens are requested.
 */
export function tinyTokenizerFiles(): Files {
  const byteChar = bytesToUnicode();
  const vocab: Record<string, number> = {};
  byteChar.forEach((c, b) => (vocab[c] = b));
  const merges = ['Ġ t', 'h e', 'Ġt he', 'i n', 'Ġ a'];
  merges.forEach((m, k) => (vocab[m.replace(' ', '')] = 256 + k));
  vocab['<s>'] = 261;
  vocab['</s>'] = 262;
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(261, '<s>'), special(262, '</s>')],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [261], tokens: ['<s>'] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges },
  };
  const config = { add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>', model_max_length: 256, tokenizer_class: 'PreTrainedTokenizerFast' };
  return { 'tokenizer.json': JSON.stringify(tokenizer), 'tokenizer_config.json': JSON.stringify(config) };
}
