/**
 * Our packed linear layer (src/core/quant/format.ts) in the layout of ONNX
 * Runtime's contrib operator `com.microsoft.MatMulNBits` (docs/ContribOperators.md
 * of onnxruntime):
 *
 *   Y[M, N] = A[M, K] · dequant(B)ᵀ,  dequant(B)[n, k] = (q[n, k] − zero[n, b]) · scale[n, b],
 *   b = ⌊k / block_size⌋
 *
 *   B            uint8 [N, k_blocks, block_size · bits / 8]: the codes of each
 *                block, bit-packed along K, low bits first (for 4 bits: code 2j
 *                in the low nibble of byte j, code 2j+1 in the high nibble)
 *   scales       float [N, k_blocks]
 *   zero_points  uint8 [N, ⌈k_blocks · bits / 8⌉], packed the same way as B
 *                (absent: the implicit zero point 2^(bits−1))
 *
 * Our rows are little-endian bitstreams of u32 words with code k at bits
 * [k·b, k·b + b), so for b = 2, 4, 8 the first K·b/8 bytes of a row ARE that
 * row of B, whatever the block size: no code is moved. Our symmetric schemes
 * store no zero points and use 2^(b−1), which is MatMulNBits' default.
 *
 * block_size must be a power of two ≥ 16; ours is a multiple of 32 (or a whole
 * row). A group of g inputs is written as g / block_size blocks that repeat its
 * scale and zero point, with block_size the largest power of two (≤ 128) that
 * divides g — exact, and it lets rows of K = 768 (not a power of two) export.
 */
import { groupsPerRow, type PackedLinear } from '../core/quant/format';

export interface MatMulNBitsWeights {
  n: number;
  k: number;
  bits: 2 | 4 | 8;
  blockSize: number;
  blocksPerRow: number;
  /** [n, blocksPerRow, blockSize · bits / 8] */
  b: Uint8Array;
  /** [n, blocksPerRow] */
  scales: Float32Array;
  /** [n, ⌈blocksPerRow · bits / 8⌉]; null for symmetric layers (default zero point) */
  zeroPoints: Uint8Array | null;
}

/** Largest block size MatMulNBits gets from us (ONNX Runtime's fast kernels cover 16 … 128 for every bit width). */
export const MAX_BLOCK_SIZE = 128;

/** The MatMulNBits block size for a group size: the largest power of two ≤ 128 that divides it. */
export function blockSizeFor(groupSize: number): number {
  let block = MAX_BLOCK_SIZE;
  while (block > 16 && groupSize % block !== 0) block /= 2;
  if (groupSize % block !== 0) throw new Error(`group size ${groupSize} has no power-of-two divisor ≥ 16, which MatMulNBits needs as its block size.`);
  return block;
}

/** Converts a packed layer; 3-bit layers are refused (MatMulNBits kernels pack 2, 4 and 8 bits). */
export function toMatMulNBits(packed: PackedLinear, what = 'layer'): MatMulNBitsWeights {
  const { n, k, bits, groupSize } = packed;
  if (bits !== 2 && bits !== 4 && bits !== 8) {
    throw new Error(`${what}: ${bits}-bit codes cannot be exported to ONNX: ONNX Runtime's MatMulNBits kernels take 2, 4 or 8 bits — choose one of those.`);
  }
  const blockSize = blockSizeFor(groupSize);
  const repeat = groupSize / blockSize;
  const groups = groupsPerRow(packed);
  const blocksPerRow = groups * repeat;
  const rowBytes = (k * bits) / 8;
  const b = new Uint8Array(n * rowBytes);
  for (let row = 0; row < n; row++) {
    const base = row * packed.wordsPerRow;
    const out = row * rowBytes;
    for (let i = 0; i < rowBytes; i++) b[out + i] = (packed.codes[base + (i >>> 2)] >>> ((i & 3) * 8)) & 0xff;
  }
  const scales = new Float32Array(n * blocksPerRow);
  for (let row = 0; row < n; row++) {
    for (let g = 0; g < groups; g++) scales.fill(packed.scales[row * groups + g], row * blocksPerRow + g * repeat, row * blocksPerRow + (g + 1) * repeat);
  }
  let zeroPoints: Uint8Array | null = null;
  if (packed.zeros) {
    const zeroBytes = Math.ceil((blocksPerRow * bits) / 8);
    zeroPoints = new Uint8Array(n * zeroBytes);
    const perByte = 8 / bits;
    for (let row = 0; row < n; row++) {
      for (let blk = 0; blk < blocksPerRow; blk++) {
        const z = packed.zeros[row * groups + Math.floor(blk / repeat)];
        zeroPoints[row * zeroBytes + Math.floor(blk / perByte)] |= z << ((blk % perByte) * bits);
      }
    }
  }
  return { n, k, bits, blockSize, blocksPerRow, b, scales, zeroPoints };
}

/**
 * The f32 weights [n, k] that MatMulNBits computes with, read from its own
 * layout as the operator's documentation describes it — the reference the
 * conversion is tested against.
 */
export function dequantizeMatMulNBits(w: MatMulNBitsWeights): Float32Array {
  const { n, k, bits, blockSize, blocksPerRow } = w;
  const out = new Float32Array(n * k);
  const rowBytes = (k * bits) / 8;
  const zeroBytes = Math.ceil((blocksPerRow * bits) / 8);
  const perByte = 8 / bits;
  const mask = (1 << bits) - 1;
  for (let row = 0; row < n; row++) {
    for (let j = 0; j < k; j++) {
      const q = (w.b[row * rowBytes + Math.floor(j / perByte)] >> ((j % perByte) * bits)) & mask;
      const blk = Math.floor(j / blockSize);
      const zero = w.zeroPoints ? (w.zeroPoints[row * zeroBytes + Math.floor(blk / perByte)] >> ((blk % perByte) * bits)) & mask : 1 << (bits - 1);
      out[row * k + j] = (q - zero) * w.scales[row * blocksPerRow + blk];
    }
  }
  return out;
}
