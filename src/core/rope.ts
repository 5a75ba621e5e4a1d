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
