/**
 * `rope_scaling` (transformers < 5) or `rope_parameters` (≥ 5) of a config.json,
 * read into the RoPE variants the engine implements (src/core/rope.ts). Shared
 * by the RoPE families; a variant the engine does not run is refused by name.
 */
import { ConfigReader, isJsonObject, type JsonObject } from '../config';
import type { RopeScaling } from '../decoder';

export interface RopeScalingContext {
  fileName: string;
  family: string;
  /** the config's head dimension (longrope lists one factor per rotated pair) */
  headDim: number;
  /** max_position_embeddings, for longrope's default attention factor */
  maxPositions: number;
  /** a top-level original_max_position_embeddings (Phi-3 keeps it there) */
  originalMaxPositions: number | null;
}

const SUPPORTED = 'plain, linear, llama3 and longrope';

function factorList(value: unknown, key: string, ctx: RopeScalingContext): number[] {
  const half = ctx.headDim / 2;
  if (!Array.isArray(value) || value.length !== half || !value.every((v) => typeof v === 'number' && Number.isFinite(v) && v > 0)) {
    throw new Error(`${ctx.fileName} (rope scaling): "${key}" must list ${half} positive numbers (one per rotated pair of a ${ctx.headDim}-dimensional head).`);
  }
  return value as number[];
}

export function readRopeScaling(reader: ConfigReader, ctx: RopeScalingContext): RopeScaling | null {
  const raw = reader.object('rope_scaling') ?? reader.object('rope_parameters');
  if (!raw) return null;
  const kind = raw.rope_type ?? raw.type ?? 'default';
  const scaling = new ConfigReader(raw, `${ctx.fileName} (rope scaling)`, ctx.family);
  switch (kind) {
    case 'default':
      return null;
    case 'linear':
      return { type: 'linear', factor: scaling.number('factor') };
    case 'llama3':
      return {
        type: 'llama3',
        factor: scaling.number('factor'),
        lowFreqFactor: scaling.number('low_freq_factor'),
        highFreqFactor: scaling.number('high_freq_factor'),
        originalMaxPositions: scaling.int('original_max_position_embeddings'),
      };
    case 'longrope':
    case 'su': {
      // "su" is the name Phi-3's first 128k configs used for the same scheme
      const originalMaxPositions = ctx.originalMaxPositions ?? scaling.int('original_max_position_embeddings');
      const factor = ctx.maxPositions / originalMaxPositions;
      const attentionFactor = scaling.has('attention_factor')
        ? scaling.number('attention_factor')
        : factor <= 1
          ? 1
          : Math.sqrt(1 + Math.log(factor) / Math.log(originalMaxPositions));
      return {
        type: 'longrope',
        shortFactor: factorList(raw.short_factor, 'short_factor', ctx),
        longFactor: factorList(raw.long_factor, 'long_factor', ctx),
        originalMaxPositions,
        attentionFactor,
      };
    }
    default:
      throw new Error(
        `${ctx.fileName}: RoPE scaling "${String(kind)}" is not supported yet — qlab runs ${SUPPORTED} RoPE. ` +
          `A checkpoint whose config.json sets rope_scaling to null runs with plain RoPE (full accuracy up to its original context).`,
      );
  }
}

/** rope_theta, at the top level or inside rope_parameters (transformers ≥ 5). */
export function readRopeTheta(reader: ConfigReader, fallback: number): number {
  const parameters = reader.object('rope_parameters');
  if (parameters && isJsonObject(parameters) && parameters.rope_theta !== undefined) {
    return new ConfigReader(parameters as JsonObject, `${reader.fileName} (rope_parameters)`, reader.family).number('rope_theta');
  }
  return reader.number('rope_theta', { default: fallback });
}
