/**
 * Fuzzing tokenizer.json loading (src/core/tokenizer.ts over
 * @huggingface/tokenizers) with seeded mutations of a real byte-level BPE
 * tokenizer.json and its tokenizer_config.json: byte flips and splices,
 * structural mutations (wrong types, missing sections, huge ids, values
 * nested thousands deep), random JSON. A loaded tokenizer must then encode
 * and decode text without a crash; a refused one says which file is wrong.
 */
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../../src/core/tokenizer';
import { fuzz, jsonText, mutateJson, mutateText, random, randomJson } from './support/fuzz';
import { tinyTokenizerFiles } from './support/tiny-models';

const files = tinyTokenizerFiles();
const tokenizerJson = JSON.parse(files['tokenizer.json'] as string) as object;
const configJson = JSON.parse(files['tokenizer_config.json'] as string) as object;
const SAMPLE = ' = Valkyria Chronicles III = \n\n Senjō no Valkyria 3 : 1,000 <s> ünïcödé 日本 🙂';

function load([tokenizer, config]: [string, string | null]) {
  const t = loadTokenizer(tokenizer, config, { bosTokenId: 1, eosTokenId: 2 });
  const ids = t.encode(SAMPLE);
  expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < t.vocabSize)).toBe(true);
  expect(typeof t.decode(ids.slice(0, 20))).toBe('string');
  return t;
}

export const TOKENIZER_FUZZ = { text: 2000, json: 2000, config: 1000, random: 1000 };

describe('fuzzing tokenizer.json loading', () => {
  it(`tokenizer.json: ${TOKENIZER_FUZZ.text} byte-mutated files, < 15 s`, { timeout: 15_000 }, async () => {
    const r = random(31);
    const text = files['tokenizer.json'] as string;
    const stats = await fuzz(TOKENIZER_FUZZ.text, () => [mutateText(text, r), files['tokenizer_config.json'] as string] as [string, string], load);
    expect(stats.accepted + stats.refused).toBe(TOKENIZER_FUZZ.text);
  });

  it(`tokenizer.json: ${TOKENIZER_FUZZ.json} structurally mutated files, < 15 s`, { timeout: 15_000 }, async () => {
    const r = random(32);
    const stats = await fuzz(TOKENIZER_FUZZ.json, () => [jsonText(mutateJson(tokenizerJson, r)), files['tokenizer_config.json'] as string] as [string, string], load);
    expect(stats.refused).toBeGreaterThan(0);
  });

  it(`tokenizer_config.json: ${TOKENIZER_FUZZ.config} mutated files, < 10 s`, { timeout: 10_000 }, async () => {
    const r = random(33);
    await fuzz(TOKENIZER_FUZZ.config, (i) => [files['tokenizer.json'] as string, i % 2 ? jsonText(mutateJson(configJson, r)) : mutateText(files['tokenizer_config.json'] as string, r)] as [string, string], load);
  });

  it(`tokenizer.json: ${TOKENIZER_FUZZ.random} random JSON values, < 5 s`, { timeout: 5_000 }, async () => {
    const r = random(34);
    await fuzz(TOKENIZER_FUZZ.random, (i) => [jsonText(i % 2 ? randomJson(r) : { model: randomJson(r) }), null] as [string, null], load);
  });

  it('refuses a token id of 10¹² at once (the library would size a table by it and hang the page)', () => {
    const json = structuredClone(tokenizerJson) as { model: { vocab: Record<string, number> } };
    json.model.vocab['Ġthe'] = 1e12;
    const t = performance.now();
    expect(() => load([JSON.stringify(json), null])).toThrow(/tokenizer\.json: the id of token "Ġthe" is 1000000000000, not a whole number from 0 to 4,194,303/);
    expect(performance.now() - t).toBeLessThan(200);
  });
});
