/**
 * Fuzzing config.json reading (src/core/config.ts and the families) with
 * seeded mutations of real configs (the embedded models' and transformers'
 * own key sets): text-level byte mutations and structural ones (wrong types,
 * huge and negative numbers, missing keys, values nested thousands deep).
 * Each input goes through what the loader does before any weight is read:
 * parse, pick the family, read the config, list the canonical tensors. It is
 * refused with a message naming config.json, or accepted with sizes the rest
 * of the lab can plan with (no tensor list of 10¹² entries, no overflow).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseJsonObject } from '../../src/core/config';
import { canonicalTensors } from '../../src/core/decoder';
import { readModelConfig } from '../../src/core/families';
import { gpt2ConfigJson, llamaConfigJson } from './support/configs';
import { fuzz, jsonText, mutateJson, mutateText, random, randomJson } from './support/fuzz';

const embedded = ['qlab-llama-6m', 'qlab-gpt2-6m'].map((id) => JSON.parse(readFileSync(`public/models/${id}/config.json`, 'utf8')) as object);
const seeds: object[] = [llamaConfigJson, gpt2ConfigJson, ...embedded, { ...llamaConfigJson, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }];

function readConfig(text: string) {
  const { config } = readModelConfig(parseJsonObject(text, 'config.json'), 'config.json');
  const tensors = canonicalTensors(config);
  // sizes the memory plan can add up exactly
  let elements = 0;
  for (const t of tensors) elements += t.shape.reduce((a, b) => a * b, 1);
  expect(Number.isSafeInteger(elements * 4)).toBe(true);
  expect(tensors.length).toBeLessThan(100_000);
  expect(config.normEps).toBeGreaterThan(0);
  expect(config.numHeads % config.numKvHeads).toBe(0);
  return config;
}

export const CONFIG_FUZZ = { text: 4000, json: 4000, random: 1000 };

describe('fuzzing config.json', () => {
  it(`config.json: ${CONFIG_FUZZ.text} byte-mutated files, < 10 s`, { timeout: 10_000 }, async () => {
    const r = random(21);
    const stats = await fuzz(CONFIG_FUZZ.text, (i) => mutateText(JSON.stringify(seeds[i % seeds.length], null, 2), r), readConfig);
    expect(stats.accepted).toBeGreaterThan(0);
    expect(stats.refused).toBeGreaterThan(0);
  });

  it(`config.json: ${CONFIG_FUZZ.json} structurally mutated configs, < 10 s`, { timeout: 10_000 }, async () => {
    const r = random(22);
    const stats = await fuzz(CONFIG_FUZZ.json, (i) => jsonText(mutateJson(seeds[i % seeds.length], r)), readConfig);
    expect(stats.refused).toBeGreaterThan(CONFIG_FUZZ.json / 10);
  });

  it(`config.json: ${CONFIG_FUZZ.random} random JSON values, < 5 s`, { timeout: 5_000 }, async () => {
    const r = random(23);
    await fuzz(CONFIG_FUZZ.random, (i) => jsonText(i % 3 ? randomJson(r) : { model_type: r.pick(['llama', 'gpt2']), ...(randomJson(r) as object) }), readConfig);
  });

  it('refuses sizes no GPU could hold before listing tensors (10¹² layers would never finish)', () => {
    for (const [key, value] of [['num_hidden_layers', 1e12], ['hidden_size', 2 ** 40], ['vocab_size', 2 ** 50], ['intermediate_size', 1e15]] as const) {
      const t = performance.now();
      expect(() => readConfig(JSON.stringify({ ...llamaConfigJson, [key]: value }))).toThrow(new RegExp(`config\\.json: "${key}" is .*; .*at most`));
      expect(performance.now() - t).toBeLessThan(100);
    }
  });
});
