/**
 * The registry of architecture families, keyed by config.json's `model_type`.
 * Adding a family = one mapping file next to this one + one line below.
 */
import { isJsonObject, type JsonObject } from '../config';
import type { DecoderConfig } from '../decoder';
import type { Family } from './family';
import { gpt2 } from './gpt2';
import { llama } from './llama';
import { phi3 } from './phi3';
import { qwen2 } from './qwen2';

export type { Family, TensorPlan, TensorSource, TensorTable, Resolution } from './family';
export { resolveTensors, applyPlan, expectedSourceShape } from './family';

export const FAMILIES: readonly Family[] = [llama, qwen2, phi3, gpt2];

export function supportedModelTypes(): string[] {
  return FAMILIES.map((f) => f.modelType);
}

export function familyFor(modelType: string): Family {
  const family = FAMILIES.find((f) => f.modelType === modelType);
  if (!family) throw new Error(`not supported yet: ${modelType} (supported: ${supportedModelTypes().join(', ')}) — config.json's model_type names an architecture qlab has no mapping for.`);
  return family;
}

/** Picks the family from `model_type` and reads the config through it. */
export function readModelConfig(json: JsonObject | unknown, fileName = 'config.json'): { family: Family; config: DecoderConfig } {
  if (!isJsonObject(json)) throw new Error(`${fileName} is not a JSON object: it is not a Hugging Face model config.`);
  const modelType = json.model_type;
  if (typeof modelType !== 'string') {
    throw new Error(
      `${fileName} has no "model_type": qlab needs it to know the architecture (it runs: ${supportedModelTypes().join(', ')}).`,
    );
  }
  const family = familyFor(modelType);
  return { family, config: family.fromConfig(json, fileName) };
}
