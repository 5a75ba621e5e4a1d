/**
 * Tokenization through a maintained library (`@huggingface/tokenizers`, the
 * tokenizer of transformers.js) on a model's `tokenizer.json` and
 * `tokenizer_config.json`, never a hand-written BPE. Takes the files' text, so
 * it runs the same in the page, a worker, tests and the CLI.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { isJsonObject, parseJsonObject, type JsonObject } from './config';

export interface TextTokenizer {
  /** token ids of `text`, with no special tokens added (no BOS, no EOS) */
  encode(text: string): number[];
  decode(ids: number[]): string;
  bosTokenId: number | null;
  eosTokenId: number | null;
  /** one past the largest id the tokenizer can produce (added tokens included) */
  vocabSize: number;
  /** whether the tokenizer, asked to add special tokens, puts BOS first (llama-style) */
  addsBosToken: boolean;
}

function specialToken(config: JsonObject, key: string): string | null {
  const value = config[key];
  if (typeof value === 'string') return value;
  if (isJsonObject(value) && typeof value.content === 'string') return value.content; // AddedToken form
  return null;
}

/**
 * Builds a tokenizer from the text of `tokenizer.json` and, when the model has
 * one, `tokenizer_config.json`. `fallbackIds` (from config.json) supply BOS/EOS
 * when tokenizer_config.json does not name them.
 */
export function loadTokenizer(
  tokenizerJson: string,
  tokenizerConfigJson: string | null = null,
  fallbackIds: { bosTokenId?: number | null; eosTokenId?: number | null } = {},
  fileName = 'tokenizer.json',
): TextTokenizer {
  const json = parseJsonObject(tokenizerJson, fileName);
  if (!isJsonObject(json.model)) {
    throw new Error(`${fileName} has no "model" section: it is not a tokenizer.json of the Hugging Face tokenizers library.`);
  }
  const configName = fileName.replace(/tokenizer\.json$/, 'tokenizer_config.json');
  const config = tokenizerConfigJson === null ? {} : parseJsonObject(tokenizerConfigJson, configName);

  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(json, config);
  } catch (e) {
    throw new Error(`${fileName} could not be loaded by @huggingface/tokenizers: ${(e as Error).message}.`);
  }

  const idOf = (key: string): number | null => {
    const token = specialToken(config, key);
    if (token === null) return null;
    const id = tokenizer.token_to_id(token);
    if (id === undefined) throw new Error(`${configName}: ${key} "${token}" is not a token of ${fileName}.`);
    return id;
  };

  let vocabSize = 0;
  for (const id of tokenizer.get_vocab(true).values()) if (id + 1 > vocabSize) vocabSize = id + 1;
  if (vocabSize === 0) throw new Error(`${fileName} has an empty vocabulary.`);

  const bosTokenId = idOf('bos_token') ?? fallbackIds.bosTokenId ?? null;
  const eosTokenId = idOf('eos_token') ?? fallbackIds.eosTokenId ?? null;
  const probe = tokenizer.encode('a', { add_special_tokens: true }).ids;
  const addsBosToken = bosTokenId !== null && probe.length > 0 && probe[0] === bosTokenId;

  return {
    encode: (text) => tokenizer.encode(text, { add_special_tokens: false }).ids,
    decode: (ids) => tokenizer.decode(ids, { skip_special_tokens: false }),
    bosTokenId,
    eosTokenId,
    vocabSize,
    addsBosToken,
  };
}
