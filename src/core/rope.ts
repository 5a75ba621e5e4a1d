/**
 * RoPE inverse frequencies for a decoder config, with the scaling variants
 * Hugging Face configs name in `rope_scaling`. Computed in float32 steps as
 * transformers does, so tables built from them match PyTorch's.
 */
import type { DecoderConfig } from './decoder';

export function ropeInverseFrequencies(config: Pick<DecoderConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float32Array {
  const half = config.headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.fround(config.ropeTheta ** Math.fround((2 * i) / config.headDim));
  const s = config.ropeScaling;
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

/** The RoPE cos/sin table [positions, headDim/2, 2] for the standard inverse frequencies. */
export function ropeTable(positions: number, headDim: number, theta: number, invFreq?: ArrayLike<number>): Float32Array {
  const half = headDim / 2;
  const table = new Float32Array(positions * half * 2);
  for (let i = 0; i < half; i++) {
    // As Hugging Face computes it: inv_freq in float32, angle = pos · inv_freq in float32.
    const f = invFreq ? invFreq[i] : Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / headDim)));
    for (let pos = 0; pos < positions; pos++) {
      const angle = Math.fround(pos * f);
      table[(pos * half + i) * 2] = Math.cos(angle);
      table[(pos * half + i) * 2 + 1] = Math.sin(angle);
    }
  }
  return table;
}
