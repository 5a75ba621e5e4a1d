/**
 * Tokenization through a maintained library (`@huggingface/tokenizers`, the
 * tokenizer of transformers.js) on a model's `tokenizer.json` and
 * `tokenizer_config.json`, never a hand-written BPE. Takes the files' text, so
 * it runs the same in the page, a worker, tests and the CLI.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { isJsonObject, parseJsonObject, type JsonObject } from './config';
import { previewJson } from './preview';

/** the largest token id qlab accepts (4,194,304 tokens; Gemma's 262,144 are the most in use) */
export const MAX_TOKEN_ID = (1 << 22) - 1;

const isTokenId = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= MAX_TOKEN_ID;

/**
 * The parts of tokenizer.json the library trusts without checking: token ids
 * (a library sizes tables by the largest id, so one id of 10¹² hangs the page)
 * and the shapes of the vocabulary, merges and added tokens. Refused here with
 * a message that names the entry; what passes is the library's to read.
 */
function checkTokenizerJson(json: JsonObject, fileName: string): void {
  const damaged = 'the file is damaged or not a tokenizer.json of the Hugging Face tokenizers library';
  const model = json.model as JsonObject;
  if (model.type !== undefined && typeof model.type !== 'string') throw new Error(`${fileName}: model.type is ${previewJson(model.type)}, not a name: ${damaged}.`);
  const vocab = model.vocab;
  if (Array.isArray(vocab)) {
    // Unigram: [piece, score] pairs, the id being the position
    if (vocab.length > MAX_TOKEN_ID + 1) throw new Error(`${fileName} has ${vocab.length.toLocaleString('en-US')} tokens, more than the ${(MAX_TOKEN_ID + 1).toLocaleString('en-US')} qlab accepts: ${damaged}.`);
    for (const [i, entry] of vocab.entries()) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'number') {
        throw new Error(`${fileName}: model.vocab[${i}] is ${previewJson(entry)}, not a [piece, score] pair: ${damaged}.`);
      }
    }
  } else if (isJsonObject(vocab)) {
    for (const [token, id] of Object.entries(vocab)) {
      if (!isTokenId(id)) throw new Error(`${fileName}: the id of token ${previewJson(token)} is ${previewJson(id)}, not a whole number from 0 to ${MAX_TOKEN_ID.toLocaleString('en-US')}: ${damaged}.`);
    }
  } else if (vocab !== undefined) {
    throw new Error(`${fileName}: model.vocab is ${previewJson(vocab)}, neither a token → id map nor a list of pieces: ${damaged}.`);
  }
  const merges = model.merges;
  if (merges !== undefined && merges !== null) {
    const pair = (m: unknown) => typeof m === 'string' || (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string');
    if (!Array.isArray(merges)) throw new Error(`${fileName}: model.merges is ${previewJson(merges)}, not a list: ${damaged}.`);
    const bad = merges.findIndex((m) => !pair(m));
    if (bad >= 0) throw new Error(`${fileName}: model.merges[${bad}] is ${previewJson(merges[bad])}, not a merge ("a b" or ["a", "b"]): ${damaged}.`);
  }
  const added = json.added_tokens;
  if (added !== undefined && added !== null) {
    if (!Array.isArray(added)) throw new Error(`${fileName}: added_tokens is ${previewJson(added)}, not a list: ${damaged}.`);
    for (const [i, t] of added.entries()) {
      if (!isJsonObject(t) || !isTokenId(t.id) || typeof t.content !== 'string') {
        throw new Error(`${fileName}: added_tokens[${i}] is ${previewJson(t)}, not a token with an id (0 to ${MAX_TOKEN_ID.toLocaleString('en-US')}) and a content string: ${damaged}.`);
      }
    }
  }
  for (const key of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder'] as const) {
    const part = json[key];
    if (part !== undefined && part !== null && !isJsonObject(part)) throw new Error(`${fileName}: ${key} is ${previewJson(part)}, neither null nor an object: ${damaged}.`);
  }
}

/** The library's own words, wrapped in a sentence that names the file. */
function libraryError(fileName: string, doing: string, e: unknown): Error {
  const detail = e instanceof Error ? e.message : previewJson(e);
  return new Error(
    `${fileName} could not be ${doing} by @huggingface/tokenizers: the file is damaged, or uses a tokenizer feature that library does not support ` +
      `(its words: ${detail.slice(0, 200)}).`,
  );
}

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

  checkTokenizerJson(json, fileName);

  let tokenizer: Tokenizer;
  try {
    // the library iterates added_tokens unconditionally; files without any may leave the key out
    tokenizer = new Tokenizer(json.added_tokens == null ? { ...json, added_tokens: [] } : json, config);
  } catch (e) {
    throw libraryError(fileName, 'loaded', e);
  }

  const idOf = (key: string): number | null => {
    const token = specialToken(config, key);
    if (token === null) return null;
    const id = tokenizer.token_to_id(token);
    if (id === undefined) throw new Error(`${configName}: ${key} ${previewJson(token)} is not a token of ${fileName}.`);
    return id;
  };

  let vocabSize = 0;
  let probe: number[];
  try {
    for (const id of tokenizer.get_vocab(true).values()) if (id + 1 > vocabSize) vocabSize = id + 1;
    // a damaged file can load and still fail on its first text: try one now, while the message can name the file
    probe = tokenizer.encode('a', { add_special_tokens: true }).ids;
    tokenizer.encode(' The 1,000 ünïcödé 日本 🙂\n\n', { add_special_tokens: false });
  } catch (e) {
    throw libraryError(fileName, 'used', e);
  }
  if (vocabSize === 0) throw new Error(`${fileName} has an empty vocabulary.`);

  const bosTokenId = idOf('bos_token') ?? fallbackIds.bosTokenId ?? null;
  const eosTokenId = idOf('eos_token') ?? fallbackIds.eosTokenId ?? null;
  const addsBosToken = bosTokenId !== null && probe.length > 0 && probe[0] === bosTokenId;

  return {
    encode: (text) => {
      const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
      // the library gives no id (undefined) for a piece missing from a damaged vocabulary; an Int32Array would read it as token 0
      const bad = ids.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize);
      if (bad >= 0) {
        throw new Error(
          `${fileName} gives no valid token id (got ${previewJson(ids[bad])}) for piece ${bad + 1} of the text: ` +
            `its vocabulary is incomplete or damaged — download tokenizer.json again.`,
        );
      }
      return ids;
    },
    decode: (ids) => tokenizer.decode(ids, { skip_special_tokens: false }),
    bosTokenId,
    eosTokenId,
    vocabSize,
    addsBosToken,
  };
}
