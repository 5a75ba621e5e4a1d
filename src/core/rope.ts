/**
 * RoPE inverse frequencies for a decoder config, with the scaling variants
 * Hugging Face configs name in `rope_scaling`. Computed in float32 steps as
 * transformers does, so tables built from them match PyTorch's.
 */
import type { DecoderConfig } from './decoder';

/**
 * `positions`: the longest sequence the table serves; longrope takes its long
 * factors beyond originalMaxPositions (as transformers does for the sequence
 * length it sees), its short ones otherwise.
 */
export function ropeInverseFrequencies(config: Pick<DecoderConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>, positions = 0): Float32Array {
  const half = config.headDim / 2;
  const inv = new Float32Array(half);
  const s = config.ropeScaling;
  if (s?.type === 'longrope') {
    const factors = positions > s.originalMaxPositions ? s.longFactor : s.shortFactor;
    // 1 / (factor · θ^(2i/d)), each step in float32 as transformers computes it
    for (let i = 0; i < half; i++) inv[i] = 1 / Math.fround(Math.fround(factors[i]) * Math.fround(config.ropeTheta ** Math.fround((2 * i) / config.headDim)));
    return inv;
  }
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.fround(config.ropeTheta ** Math.fround((2 * i) / config.headDim));
  if (!s) return inv;
  if (s.type === 'linear') return inv.map((f) => f / s.factor);
  // llama3: long wavelengths slowed by `factor`, short ones kept, a smooth blend between.
  const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositions / s.highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / s.factor;
    const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

/** The factor cos and sin are multiplied by (longrope's attention scaling; 1 for the other variants). */
export function ropeAttentionFactor(config: Pick<DecoderConfig, 'ropeScaling'>): number {
  return config.ropeScaling?.type === 'longrope' ? config.ropeScaling.attentionFactor : 1;
}

/** The RoPE table of a config for `positions` positions: scaled frequencies, scaled cos/sin. */
export function ropeTableFor(config: Pick<DecoderConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>, positions: number): Float32Array {
  return ropeTable(positions, config.headDim, config.ropeTheta, ropeInverseFrequencies(config, positions), ropeAttentionFactor(config));
}

/** The RoPE cos/sin table [positions, headDim/2, 2] for the standard inverse frequencies (or `invFreq`), times `scale`. */
export function ropeTable(positions: number, headDim: number, theta: number, invFreq?: ArrayLike<number>, scale = 1): Float32Array {
  const half = headDim / 2;
  const table = new Float32Array(positions * half * 2);
  for (let i = 0; i < half; i++) {
    // As Hugging Face computes it: inv_freq in float32, angle = pos · inv_freq in float32.
    const f = invFreq ? invFreq[i] : Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / headDim)));
    for (let pos = 0; pos < positions; pos++) {
      const angle = Math.fround(pos * f);
      table[(pos * half + i) * 2] = scale === 1 ? Math.cos(angle) : Math.fround(Math.cos(angle)) * scale;
      table[(pos * half + i) * 2 + 1] = scale === 1 ? Math.sin(angle) : Math.fround(Math.sin(angle)) * scale;
    }
  }
  return table;
}
