/**
 * Reading a Hugging Face `config.json`: typed field readers whose errors name
 * the file, the key and what was expected, and the consistency checks every
 * `DecoderConfig` must pass whatever family produced it.
 *
 * The families (`src/core/families/`) use these readers in their
 * `fromConfig`; the registry there picks the family by `model_type`.
 */
import type { DecoderConfig } from './decoder';
import { previewJson } from './preview';

export type JsonObject = Record<string, unknown>;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** JSON.parse for a file that must hold one object; errors name the file. */
export function parseJsonObject(text: string, fileName: string): JsonObject {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    const start = text.trimStart().slice(0, 1);
    const hint = start === '<' ? ' (it looks like an HTML page: the address may be wrong or need a login)' : '';
    throw new Error(`${fileName} is not valid JSON${hint}: ${(e as Error).message}.`);
  }
  if (!isJsonObject(json)) throw new Error(`${fileName} holds JSON but not an object: it is not a Hugging Face ${fileName}.`);
  return json;
}

interface IntOptions {
  /** used when the key is absent or null; without it the key is required */
  default?: number;
  /** smallest accepted value (1 unless given) */
  min?: number;
}

interface NumberOptions {
  default?: number;
  /** accept 0 and negatives too (positive unless false) */
  positive?: boolean;
}

/** Typed reads of one config.json; every error names the file, the key and the family. */
export class ConfigReader {
  constructor(
    readonly json: JsonObject,
    readonly fileName: string,
    /** the family reading it, for messages ("a llama config needs ...") */
    readonly family: string,
  ) {}

  private present(key: string): boolean {
    return this.json[key] !== undefined && this.json[key] !== null;
  }

  private missing(key: string, what: string): Error {
    return new Error(`${this.fileName}: "${key}" is missing; a ${this.family} config needs it (${what}).`);
  }

  private wrong(key: string, what: string): Error {
    return new Error(`${this.fileName}: "${key}" is ${previewJson(this.json[key])}; expected ${what}.`);
  }

  has(key: string): boolean {
    return this.present(key);
  }

  int(key: string, options: IntOptions = {}): number {
    const min = options.min ?? 1;
    const what = min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer ≥ ${min}`;
    if (!this.present(key)) {
      if (options.default !== undefined) return options.default;
      throw this.missing(key, what);
    }
    const value = this.json[key];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw this.wrong(key, what);
    return value;
  }

  number(key: string, options: NumberOptions = {}): number {
    const positive = options.positive ?? true;
    const what = positive ? 'a positive number' : 'a number';
    if (!this.present(key)) {
      if (options.default !== undefined) return options.default;
      throw this.missing(key, what);
    }
    const value = this.json[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || (positive && value <= 0)) throw this.wrong(key, what);
    return value;
  }

  bool(key: string, fallback: boolean): boolean {
    if (!this.present(key)) return fallback;
    const value = this.json[key];
    if (typeof value !== 'boolean') throw this.wrong(key, 'true or false');
    return value;
  }

  string(key: string, fallback?: string): string {
    if (!this.present(key)) {
      if (fallback !== undefined) return fallback;
      throw this.missing(key, 'a string');
    }
    const value = this.json[key];
    if (typeof value !== 'string') throw this.wrong(key, 'a string');
    return value;
  }

  /** An object-valued key, or null when absent. */
  object(key: string): JsonObject | null {
    if (!this.present(key)) return null;
    const value = this.json[key];
    if (!isJsonObject(value)) throw this.wrong(key, 'an object');
    return value;
  }

  /**
   * A token id (`bos_token_id`, `eos_token_id`): an integer, or a list whose
   * first entry is taken (Llama 3 lists several end-of-sequence ids); null when absent.
   */
  tokenId(key: string): number | null {
    if (!this.present(key)) return null;
    const value = this.json[key];
    const first = Array.isArray(value) ? value[0] : value;
    if (first === undefined) return null;
    if (typeof first !== 'number' || !Number.isSafeInteger(first) || first < 0) throw this.wrong(key, 'a token id (a non-negative integer or a list of them)');
    return first;
  }
}

/**
 * The largest sizes qlab accepts, far above any released model (Llama 3.1
 * 405B: 126 layers, hidden 16,384, intermediate 53,248, vocabulary 128,256;
 * Gemma: vocabulary 262,144) and far below what would make listing the
 * tensors or adding up their bytes hang or overflow: a damaged or hostile
 * config.json is refused here, before anything is planned or allocated.
 */
export const CONFIG_LIMITS: Partial<Record<keyof DecoderConfig, number>> = {
  vocabSize: 1 << 22,
  hiddenSize: 1 << 17,
  numLayers: 1024,
  numHeads: 4096,
  numKvHeads: 4096,
  headDim: 4096,
  intermediateSize: 1 << 20,
  maxPositions: 1 << 24,
};

/**
 * Consistency of a DecoderConfig whatever its family; errors speak of the
 * config.json keys through `keys` (canonical field → the family's key name).
 */
export function checkDecoderConfig(config: DecoderConfig, fileName: string, keys: Partial<Record<keyof DecoderConfig, string>> = {}): void {
  const key = (field: keyof DecoderConfig): string => `"${keys[field] ?? field}"`;
  const positiveInts: (keyof DecoderConfig)[] = ['vocabSize', 'hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'intermediateSize', 'maxPositions'];
  for (const field of positiveInts) {
    const value = config[field];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new Error(`${fileName}: ${key(field)} is ${previewJson(value)}; expected a positive integer.`);
    }
    const limit = CONFIG_LIMITS[field];
    if (limit !== undefined && value > limit) {
      throw new Error(
        `${fileName}: ${key(field)} is ${value.toLocaleString('en-US')}; qlab accepts at most ${limit.toLocaleString('en-US')} ` +
          `(no released model comes near): the file is damaged or not a model config.`,
      );
    }
  }
  if (config.numHeads % config.numKvHeads !== 0) {
    throw new Error(
      `${fileName}: ${key('numHeads')} (${config.numHeads}) is not a multiple of ${key('numKvHeads')} (${config.numKvHeads}); ` +
        `grouped-query attention needs every key/value head shared by the same number of query heads.`,
    );
  }
  if (config.positions === 'rope' && config.headDim % 2 !== 0) {
    throw new Error(`${fileName}: the head dimension is ${config.headDim}; RoPE rotates pairs of dimensions, so it must be even.`);
  }
  if (!(config.normEps > 0)) throw new Error(`${fileName}: ${key('normEps')} is ${config.normEps}; expected a positive number.`);
  for (const field of ['bosTokenId', 'eosTokenId'] as const) {
    const id = config[field];
    if (id !== null && id >= config.vocabSize) {
      throw new Error(`${fileName}: ${key(field)} is ${id}, outside the vocabulary of ${config.vocabSize} tokens.`);
    }
  }
}
