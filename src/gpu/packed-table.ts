/**
 * A packed weight matrix on the GPU, as its three buffers. QuantLinear
 * multiplies with one; the packed embedding gather reads rows of one.
 */
import { groupsPerRow, packedBytes, type PackedLinear, type QuantBits } from '../core/quant/format';
import type { MemoryLedger } from './ledger';

export interface PackedBuffers {
  n: number;
  k: number;
  bits: QuantBits;
  groupSize: number;
  symmetric: boolean;
  wordsPerRow: number;
  groups: number;
  codes: GPUBuffer;
  scales: GPUBuffer;
  /** u8 zero points, four per u32; null for symmetric schemes */
  zeros: GPUBuffer | null;
  /** GPU bytes of the three buffers */
  bytes: number;
  /** bytes of the packed format itself, what bits per weight counts (format.ts packedBytes) */
  packedBytes: number;
}

export function uploadPacked(ledger: MemoryLedger, packed: PackedLinear, label: string): PackedBuffers {
  const codes = ledger.upload('weights', packed.codes, `${label}.codes`);
  const scales = ledger.upload('weights', packed.scales, `${label}.scales`);
  const zeros = packed.zeros ? ledger.upload('weights', packed.zeros, `${label}.zeros`) : null;
  return {
    n: packed.n,
    k: packed.k,
    bits: packed.bits,
    groupSize: packed.groupSize,
    symmetric: packed.symmetric,
    wordsPerRow: packed.wordsPerRow,
    groups: groupsPerRow(packed),
    codes,
    scales,
    zeros,
    bytes: codes.size + scales.size + (zeros?.size ?? 0),
    packedBytes: packedBytes(packed),
  };
}

export function releasePacked(ledger: MemoryLedger, table: PackedBuffers | null): void {
  if (!table) return;
  ledger.release(table.codes);
  ledger.release(table.scales);
  ledger.release(table.zeros);
}
