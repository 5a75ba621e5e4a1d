import { describe, expect, it } from 'vitest';
import { geluErfRef } from '../../src/core/reference';

describe('the CPU reference GELU (erf form)', () => {
  it('matches tabulated erf values to 1e-12', () => {
    const erf = (x: number) => geluErfRef(x * Math.SQRT2) / (0.5 * x * Math.SQRT2) - 1;
    for (const [x, want] of [[1, 0.8427007929497149], [3, 0.9999779095030014], [-2.7, -0.9998656672600594], [2.4, 0.999311486103355], [0.1, 0.1124629160182849]]) {
      expect(Math.abs(erf(x) - want)).toBeLessThan(1e-12);
    }
  });
});
