import { describe, expect, it } from 'vitest';
import { F32_CPU_BLOCK, cpuGemmWorkgroups, dispatchGrid, gemmWorkgroups, gemvTeamWidth, gemvWorkgroups } from '../../src/gpu/linear';
import { QUANT_CPU_BLOCK, gemvUnitCodes } from '../../src/gpu/qlinear';

describe('linear dispatch sizes', () => {
  it('keeps each grid dimension within the limit', () => {
    expect(dispatchGrid(1000, 65535)).toEqual([1000, 1]);
    expect(dispatchGrid(65536, 65535)).toEqual([32768, 2]);
    const [gx, gy] = dispatchGrid(151936, 65535);
    expect(gx).toBeLessThanOrEqual(65535);
    expect(gx * gy).toBeGreaterThanOrEqual(151936);
    expect(() => dispatchGrid(65535 * 65535 + 1, 65535)).toThrow(/do not fit a 65535×65535 dispatch/);
  });

  it('sizes GEMV teams to about four work items per invocation', () => {
    expect(gemvTeamWidth(1)).toBe(8);
    expect(gemvTeamWidth(4096 / gemvUnitCodes(4))).toBe(32); // 128 vec4 of 4-bit codes
    expect(gemvTeamWidth(4096 / 4)).toBe(256); // f32 row of 1024 vec4
    expect(gemvTeamWidth(10_000)).toBe(256);
    expect(gemvUnitCodes(3)).toBe(128);
    expect(gemvUnitCodes(2)).toBe(64);
    expect(gemvUnitCodes(8)).toBe(16);
  });

  it('counts workgroups for the 151936-row head', () => {
    // 4-bit, K=896: 28 vec4 per row → team of 8, 128 rows per workgroup.
    expect(gemvWorkgroups(151936, gemvTeamWidth(896 / 32))).toBe(1187);
    expect(gemmWorkgroups(512, 151936)).toBe(8 * 2374);
  });

  it('counts CPU-shaped GEMM workgroups: one output block per invocation, 64 per workgroup', () => {
    // f32 blocks of 32 × 16: ⌈512/32⌉ · ⌈768/16⌉ = 16 · 48 = 768 blocks → 12 workgroups.
    expect(cpuGemmWorkgroups(512, 768, F32_CPU_BLOCK)).toBe(12);
    // Partial blocks round up: ⌈37/32⌉ · ⌈67/16⌉ = 2 · 5 = 10 blocks → 1 workgroup.
    expect(cpuGemmWorkgroups(37, 67, F32_CPU_BLOCK)).toBe(1);
    // quantized blocks of 16 × 16: ⌈512/16⌉ · ⌈151936/16⌉ = 32 · 9496 blocks → 4748 workgroups.
    expect(cpuGemmWorkgroups(512, 151936, QUANT_CPU_BLOCK)).toBe(4748);
    expect(cpuGemmWorkgroups(1, 1, QUANT_CPU_BLOCK)).toBe(1);
  });
});
