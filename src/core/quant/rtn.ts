/**
 * Round-to-nearest (RTN) quantization: the CPU reference quantizer.
 *
 * Asymmetric, per (row, group) — bit for bit the PyTorch reference, all in
 * float32 (every operation is rounded with Math.fround; torch.round is
 * round-half-to-even):
 *
 *   xmin = min(min(w), 0)   xmax = max(max(w), 0)
 *   if xmax == xmin: xmin = −1, xmax = +1
 *   scale = (xmax − xmin) / (2^b − 1)
 *   zero  = clamp(round(−xmin / scale), 0, 2^b − 1)
 *   q     = clamp(round(w / scale) + zero, 0, 2^b − 1)
 *   ŵ     = (q − zero) · scale
 *
 * Symmetric — GPTQ's convention (zero = 2^(b−1), the same min/max formula):
 *   amax = max(|xmin|, xmax); xmin = −amax, xmax = amax (then the same
 *   degenerate-range rule), scale = (xmax − xmin) / (2^b − 1), zero = 2^(b−1).
 * GPTQ itself leaves xmin = 0 for a group with no negative weight, which wastes
 * half the codes of such a group; here xmin = −amax always.
 * The codes use 0 … 2^b − 1, so a symmetric group reaches −2^(b−1)·scale but
 * only (2^(b−1) − 1)·scale: the largest positive weight rounds to the top code,
 * clipping at most half a step.
 *
 * Other methods reuse `rtnParams` and `quantizeValue` for their own grids.
 */
import {
  maxCode,
  wordsPerRow as packedWordsPerRow,
  resolveGroupSize,
  symmetricZero,
  type PackedLinear,
  type QuantBits,
  type QuantScheme,
} from './format';

export { dequantize, packCodes, unpackCodes } from './format';

const f = Math.fround;

/** Rounds to the nearest integer, ties to even (torch.round / IEEE roundTiesToEven). */
export function roundHalfEven(v: number): number {
  const fl = Math.floor(v);
  const d = v - fl;
  if (d > 0.5) return fl + 1;
  if (d < 0.5) return fl;
  return fl % 2 === 0 ? fl : fl + 1;
}

export interface GroupParams {
  /** float32 scale */
  scale: number;
  /** integer zero point 0 … 2^bits − 1 */
  zero: number;
}

/**
 * Scale and zero point of one group from its raw minimum and maximum weight
 * (float32 values), following the reference formulas above.
 */
export function rtnParams(minW: number, maxW: number, bits: QuantBits, symmetric: boolean): GroupParams {
  const maxq = maxCode(bits);
  let xmin = Math.min(f(minW), 0);
  let xmax = Math.max(f(maxW), 0);
  if (symmetric) {
    xmax = Math.max(Math.abs(xmin), xmax);
    xmin = -xmax;
  }
  if (xmax === xmin) {
    xmin = -1;
    xmax = 1;
  }
  const scale = f(f(xmax - xmin) / maxq);
  if (symmetric) return { scale, zero: symmetricZero(bits) };
  const zero = Math.min(Math.max(roundHalfEven(f(-xmin / scale)), 0), maxq);
  return { scale, zero };
}

/** The code of one weight: clamp(round(w / scale) + zero, 0, 2^bits − 1). */
export function quantizeValue(w: number, scale: number, zero: number, bits: QuantBits): number {
  const q = roundHalfEven(f(w / scale)) + zero;
  return Math.min(Math.max(q, 0), maxCode(bits));
}

/** Quantizes W[n, k] (row-major float32) with RTN into the packed format. */
export function quantizeRtn(w: Float32Array, n: number, k: number, scheme: QuantScheme): PackedLinear {
  if (w.length !== n * k) {
    throw new Error(`quantizeRtn: ${w.length} weights given for a [${n}, ${k}] matrix (${n * k} expected).`);
  }
  const groupSize = resolveGroupSize(n, k, scheme);
  const { bits, symmetric } = scheme;
  const groups = k / groupSize;
  const scales = new Float32Array(n * groups);
  const zeros = symmetric ? null : new Uint8Array(n * groups);
  // Codes go straight into their words (the layout of packCodes) instead of a
  // byte per code packed afterwards: a model's worth of weights is quantized on load.
  const stride = packedWordsPerRow(k, bits);
  const codes = new Uint32Array(n * stride);
  for (let row = 0; row < n; row++) {
    const base = row * stride;
    for (let g = 0; g < groups; g++) {
      const start = row * k + g * groupSize;
      const end = start + groupSize;
      let lo = Infinity;
      let hi = -Infinity;
      for (let j = start; j < end; j++) {
        const v = w[j];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const { scale, zero } = rtnParams(lo, hi, bits, symmetric);
      scales[row * groups + g] = scale;
      if (zeros) zeros[row * groups + g] = zero;
      let bit = g * groupSize * bits;
      for (let j = start; j < end; j++, bit += bits) {
        const q = quantizeValue(w[j], scale, zero, bits);
        const word = base + (bit >>> 5);
        const off = bit & 31;
        codes[word] |= q << off;
        // a 3-bit code may straddle into the next word
        if (off + bits > 32) codes[word + 1] |= q >>> (32 - off);
      }
    }
  }
  return { n, k, bits, groupSize, symmetric, wordsPerRow: stride, codes, scales, zeros };
}
