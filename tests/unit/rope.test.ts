import { describe, expect, it } from 'vitest';
import { ropeInverseFrequencies } from '../../src/core/rope';

describe('RoPE inverse frequencies', () => {
  const base = { headDim: 64, ropeTheta: 500000 };
  it('plain RoPE: θ^(−2i/d)', () => {
    const f = ropeInverseFrequencies({ ...base, ropeScaling: null });
    expect(f[0]).toBe(1);
    expect(f[31]).toBeCloseTo(500000 ** (-62 / 64), 12);
  });
  it('linear scaling divides every frequency', () => {
    const plain = ropeInverseFrequencies({ ...base, ropeScaling: null });
    const f = ropeInverseFrequencies({ ...base, ropeScaling: { type: 'linear', factor: 4 } });
    f.forEach((v, i) => expect(v).toBeCloseTo(plain[i] / 4, 7));
  });
  it('llama3 scaling keeps high frequencies, slows low ones by the factor, blends between', () => {
    const s = { type: 'llama3' as const, factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 };
    const plain = ropeInverseFrequencies({ ...base, ropeScaling: null });
    const f = ropeInverseFrequencies({ ...base, ropeScaling: s });
    let kept = 0, slowed = 0, blended = 0;
    plain.forEach((p, i) => {
      const wavelen = (2 * Math.PI) / p;
      if (wavelen < 8192 / 4) { expect(f[i]).toBe(p); kept++; }
      else if (wavelen > 8192) { expect(f[i]).toBeCloseTo(p / 32, 7); slowed++; }
      else { expect(f[i]).toBeLessThan(p); expect(f[i]).toBeGreaterThan(p / 32); blended++; }
    });
    expect(kept && slowed && blended).toBeTruthy();
  });
});
