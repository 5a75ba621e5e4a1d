import { describe, expect, it } from 'vitest';
import { checkKvSpec, dequantizeKvRows, f16Bits, f16Round, f16Value, kvBytesPerPosition, kvName, quantizeKvRows } from '../../src/core/quant/kv';
import { randomF32 } from '../helpers/random';

describe('KV-cache quantization format', () => {
  it('rounds to binary16 as pack2x16float does: nearest, ties to even, subnormals, overflow', () => {
    expect(f16Bits(1)).toBe(0x3c00);
    expect(f16Bits(-2)).toBe(0xc000);
    expect(f16Bits(65504)).toBe(0x7bff);
    expect(f16Bits(70000)).toBe(0x7c00);
    expect(f16Bits(2 ** -24)).toBe(1);
    expect(f16Bits(2 ** -26)).toBe(0);
    expect(f16Bits(1 + 2 ** -11)).toBe(0x3c00); // a tie: to even
    expect(f16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // a tie: to even (up)
    expect(f16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    for (const v of randomF32(1000, 5, 100)) {
      const r = f16Round(v);
      expect(Math.abs(r - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 2 ** -25);
      expect(f16Value(f16Bits(r))).toBe(r);
    }
  });

  for (const bits of [8, 4] as const) {
    it(`int${bits}: every value within half a step of its group (plus f16 rounding), bytes per position exact`, () => {
      const rows = 7, kvDim = 96, groupSize = 32;
      const x = randomF32(rows * kvDim, bits, 3);
      for (let i = 0; i < x.length; i += 5) x[i] += 10;
      const q = quantizeKvRows(x, rows, kvDim, { bits, groupSize });
      const d = dequantizeKvRows(q);
      for (let r = 0; r < rows; r++) for (let g = 0; g < kvDim / groupSize; g++) {
        const vals = Array.from(x.subarray(r * kvDim + g * groupSize, r * kvDim + (g + 1) * groupSize));
        const step = (Math.max(...vals) - Math.min(...vals)) / (2 ** bits - 1);
        for (let j = 0; j < groupSize; j++) {
          const i = r * kvDim + g * groupSize + j;
          expect(Math.abs(d[i] - x[i])).toBeLessThanOrEqual(step * 0.5 * 1.01 + Math.abs(x[i]) * 2 ** -10 + 1e-6);
        }
      }
      expect(q.codes.length).toBe((rows * kvDim * bits) / 32);
      expect(kvBytesPerPosition(kvDim, { bits, groupSize })).toBe(2 * ((kvDim * bits) / 8 + (kvDim / groupSize) * 4));
    });
  }

  it('f32 caches take 8 bytes per value pair; names and shape checks say what to choose', () => {
    expect(kvBytesPerPosition(64, null)).toBe(512);
    expect(kvName({ bits: 4, groupSize: 32 })).toBe('KV int4 g32');
    expect(kvName(undefined)).toBe('KV f32');
    expect(() => checkKvSpec({ bits: 8, groupSize: 48 }, 32)).toThrow(/divides the head dimension 32: choose 16, 32/);
    expect(() => checkKvSpec({ bits: 2 as 4, groupSize: 32 }, 32)).toThrow(/choose 8 or 4 bits/);
    expect(() => checkKvSpec({ bits: 4, groupSize: 32 }, 64)).not.toThrow();
  });
});
