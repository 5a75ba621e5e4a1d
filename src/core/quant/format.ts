/**
 * The packed format of a quantized linear layer — defined here, once.
 *
 * Every quantization method (RTN, AWQ, GPTQ, HQQ, ...) produces a
 * `PackedLinear`; the WGSL kernels (shaders/qmatmul.wgsl) read exactly this
 * layout, and the CPU functions here (`dequantize`, `packCodes`,
 * `unpackCodes`) are the reference the kernels are tested against.
 *
 * Weights W[N out, K in], row-major, y = x · Ŵᵀ. Per row, K is cut into groups
 * of `groupSize` consecutive inputs; each (row, group) has a scale and, for
 * asymmetric schemes, an integer zero point:
 *
 *   ŵ[n, k] = (q[n, k] − zero[n, g]) · scale[n, g]      g = ⌊k / groupSize⌋
 *
 * computed in float32 (one rounding, of the product). Codes q are unsigned
 * b-bit integers 0 … 2^b − 1. Symmetric schemes store no zero points: their
 * zero point is implicitly 2^(b−1) (GPTQ's convention), so one kernel reads
 * both kinds.
 *
 * Codes, packed along K into u32 words — one rule for every bit width:
 *   each row is a little-endian bitstream of u32 words; code k of a row
 *   occupies bits [k·b, k·b + b) of it, i.e. word ⌊k·b / 32⌋ at bit offset
 *   (k·b) mod 32, low bits first.
 * For b = 2, 4, 8 a word holds 16, 8, 4 whole codes. For b = 3, 32 codes fill
 * exactly 3 words (codes 10 and 21 of each 32 straddle a word boundary), so
 * 3-bit codes cost exactly 3 bits — not the 3.2 of "10 codes per word with 2
 * spare bits" — and a block of 32 codes is always exactly b words, which the
 * kernels decode with shifts known at compile time.
 *
 * Shape rules and why:
 * - groupSize is a multiple of 32 (or 'row', which resolves to K): then every
 *   group starts on a word boundary for every bit width (32 codes = b words),
 *   so a group never shares a word with its neighbour.
 * - K is a multiple of groupSize (and so of 32): no partial groups.
 * - Each row is padded to a whole number of 16-byte lines (4 words) so the
 *   GEMV kernel can read codes as vec4<u32>. When K is a multiple of 128 — every
 *   common LLM shape — there is no padding at all; otherwise the padding words
 *   (zeros) are counted in `packedBytes` and `bitsPerWeight`.
 *
 * Scales are float32 [N × groups] (row-major, group fastest); zero points are
 * u8 [N × groups] (asymmetric only). Bytes stored = codes + scales + zeros,
 * exactly what `packedBytes` counts, e.g. W4 g128 asym at K % 128 = 0:
 * 4 + 32/128 + 8/128 = 4.3125 bits per weight.
 */

export type QuantBits = 2 | 3 | 4 | 8;

export interface QuantScheme {
  bits: QuantBits;
  /** inputs per (row, group) scale: a multiple of 32, or 'row' for one group per row */
  groupSize: number | 'row';
  /** symmetric: implicit zero point 2^(bits−1), none stored */
  symmetric: boolean;
}

export interface PackedLinear {
  /** output features (rows of W) */
  n: number;
  /** input features (columns of W) */
  k: number;
  bits: QuantBits;
  /** resolved group size (K for 'row') */
  groupSize: number;
  symmetric: boolean;
  /** u32 words per row in `codes`, a multiple of 4 (rows padded to 16 bytes) */
  wordsPerRow: number;
  /** [n × wordsPerRow] packed codes */
  codes: Uint32Array;
  /** [n × groups] float32 scales */
  scales: Float32Array;
  /** [n × groups] integer zero points 0 … 2^bits − 1; null for symmetric schemes */
  zeros: Uint8Array | null;
}

export const QUANT_BITS: readonly QuantBits[] = [2, 3, 4, 8];

/** Codes in one block that always starts on a word boundary: 32 codes = `bits` words. */
export const CODE_BLOCK = 32;

/** Largest code value 2^bits − 1. */
export function maxCode(bits: QuantBits): number {
  return (1 << bits) - 1;
}

/** The implicit zero point of symmetric schemes, 2^(bits−1). */
export function symmetricZero(bits: QuantBits): number {
  return 1 << (bits - 1);
}

/** Short human name of a scheme, e.g. "W4 g128 asym", "W3 row sym". */
export function schemeName(scheme: QuantScheme): string {
  const g = scheme.groupSize === 'row' ? 'row' : `g${scheme.groupSize}`;
  return `W${scheme.bits} ${g} ${scheme.symmetric ? 'sym' : 'asym'}`;
}

/**
 * Checks that W[n, k] fits the format under `scheme` and returns the resolved
 * group size; throws a message saying what to choose instead.
 */
export function resolveGroupSize(n: number, k: number, scheme: QuantScheme, what = 'W'): number {
  if (!QUANT_BITS.includes(scheme.bits)) {
    throw new Error(`${what}: ${scheme.bits}-bit codes are not part of the packed format: choose 2, 3, 4 or 8 bits.`);
  }
  if (!Number.isInteger(n) || !Number.isInteger(k) || n < 1 || k < 1) {
    throw new Error(`${what}: shape [${n}, ${k}] is not a matrix shape: N and K must be positive integers.`);
  }
  if (scheme.groupSize === 'row') {
    if (k % CODE_BLOCK !== 0) {
      throw new Error(
        `${what} [${n}, ${k}]: K=${k} is not a multiple of ${CODE_BLOCK}, which the packed format needs so that ` +
          `rows start on whole u32 words at every bit width: keep this layer unquantized (f32).`,
      );
    }
    return k;
  }
  const g = scheme.groupSize;
  if (!Number.isInteger(g) || g < CODE_BLOCK || g % CODE_BLOCK !== 0) {
    throw new Error(
      `${what}: group size ${g} is not a multiple of ${CODE_BLOCK}: groups must start on a u32 word at every ` +
        `bit width (32 codes fill exactly \`bits\` words): choose 32, 64, 128 or 'row'.`,
    );
  }
  if (k % g !== 0) {
    const fits = [32, 64, 128, 256].filter((c) => k % c === 0);
    const advice = fits.length
      ? `choose group size ${fits.join(', ')} or 'row'`
      : `keep this layer unquantized (f32)`;
    throw new Error(`${what} [${n}, ${k}]: K=${k} is not a multiple of group size ${g}: ${advice}.`);
  }
  return g;
}

/** u32 words per packed row: K·bits/32 rounded up to a multiple of 4 (16-byte rows). */
export function wordsPerRow(k: number, bits: QuantBits): number {
  const words = Math.ceil((k * bits) / 32);
  return Math.ceil(words / 4) * 4;
}

/** Groups per row. */
export function groupsPerRow(packed: Pick<PackedLinear, 'k' | 'groupSize'>): number {
  return packed.k / packed.groupSize;
}

/** Exact bytes the packed layer stores: codes (with row padding) + f32 scales + u8 zero points. */
export function packedBytes(packed: PackedLinear): number {
  const groups = packed.n * groupsPerRow(packed);
  return packed.n * packed.wordsPerRow * 4 + groups * 4 + (packed.symmetric ? 0 : groups);
}

/** Stored bits per weight, everything counted (codes, padding, scales, zero points). */
export function bitsPerWeight(packed: PackedLinear): number {
  return (packedBytes(packed) * 8) / (packed.n * packed.k);
}

/** Bits per weight of a scheme at a shape, without packing anything. */
export function schemeBitsPerWeight(n: number, k: number, scheme: QuantScheme): number {
  const groupSize = resolveGroupSize(n, k, scheme);
  const groups = n * (k / groupSize);
  const bytes = n * wordsPerRow(k, scheme.bits) * 4 + groups * 4 + (scheme.symmetric ? 0 : groups);
  return (bytes * 8) / (n * k);
}

/**
 * Packs codes q[n, k] (one code per byte, row-major, each < 2^bits) into the
 * row bitstreams described above. Returns the words and the row stride.
 */
export function packCodes(q: Uint8Array, n: number, k: number, bits: QuantBits): { codes: Uint32Array; wordsPerRow: number } {
  if (q.length !== n * k) {
    throw new Error(`packCodes: ${q.length} codes given for a [${n}, ${k}] matrix (${n * k} expected).`);
  }
  const stride = wordsPerRow(k, bits);
  const codes = new Uint32Array(n * stride);
  const limit = 1 << bits;
  for (let row = 0; row < n; row++) {
    const base = row * stride;
    const src = row * k;
    for (let j = 0; j < k; j++) {
      const c = q[src + j];
      if (c >= limit) {
        throw new Error(`packCodes: code ${c} at [${row}, ${j}] does not fit in ${bits} bits.`);
      }
      const bit = j * bits;
      const word = base + (bit >>> 5);
      const off = bit & 31;
      codes[word] |= c << off;
      // A 3-bit code may straddle into the next word.
      if (off + bits > 32) codes[word + 1] |= c >>> (32 - off);
    }
  }
  return { codes, wordsPerRow: stride };
}

/** Unpacks a layer's codes into one byte per weight, row-major [n, k]. */
export function unpackCodes(packed: Pick<PackedLinear, 'n' | 'k' | 'bits' | 'codes' | 'wordsPerRow'>): Uint8Array {
  const { n, k, bits, codes, wordsPerRow: stride } = packed;
  const q = new Uint8Array(n * k);
  const mask = (1 << bits) - 1;
  for (let row = 0; row < n; row++) {
    const base = row * stride;
    for (let j = 0; j < k; j++) {
      const bit = j * bits;
      const word = base + (bit >>> 5);
      const off = bit & 31;
      let v = codes[word] >>> off;
      if (off + bits > 32) v |= codes[word + 1] << (32 - off);
      q[row * k + j] = v & mask;
    }
  }
  return q;
}

/** The zero point of (row, group) as the kernels see it (implicit 2^(b−1) when symmetric). */
export function zeroPoint(packed: PackedLinear, row: number, group: number): number {
  return packed.zeros ? packed.zeros[row * groupsPerRow(packed) + group] : symmetricZero(packed.bits);
}

/** The f32 weights the packed layer stands for: ŵ = fround((q − zero) · scale), row-major [n, k]. */
export function dequantize(packed: PackedLinear): Float32Array {
  const { n, k, groupSize } = packed;
  const q = unpackCodes(packed);
  const groups = groupsPerRow(packed);
  const w = new Float32Array(n * k);
  for (let row = 0; row < n; row++) {
    for (let g = 0; g < groups; g++) {
      const scale = packed.scales[row * groups + g];
      const zero = zeroPoint(packed, row, g);
      const start = row * k + g * groupSize;
      // (q − zero) is an exact small integer; the Float32Array store rounds the product once.
      for (let j = start; j < start + groupSize; j++) w[j] = (q[j] - zero) * scale;
    }
  }
  return w;
}

/** Throws unless the arrays of `packed` have the sizes its header says. */
export function validatePacked(packed: PackedLinear, what = 'packed linear'): void {
  const groupSize = resolveGroupSize(packed.n, packed.k, {
    bits: packed.bits,
    groupSize: packed.groupSize,
    symmetric: packed.symmetric,
  }, what);
  const groups = packed.n * (packed.k / groupSize);
  const stride = wordsPerRow(packed.k, packed.bits);
  const problems: string[] = [];
  if (packed.wordsPerRow !== stride) problems.push(`wordsPerRow is ${packed.wordsPerRow}, expected ${stride}`);
  if (packed.codes.length !== packed.n * stride) problems.push(`codes hold ${packed.codes.length} words, expected ${packed.n * stride}`);
  if (packed.scales.length !== groups) problems.push(`scales hold ${packed.scales.length}, expected ${groups}`);
  if (packed.symmetric && packed.zeros) problems.push('a symmetric scheme stores no zero points');
  if (!packed.symmetric && (!packed.zeros || packed.zeros.length !== groups)) {
    problems.push(`zero points hold ${packed.zeros?.length ?? 0}, expected ${groups}`);
  }
  if (problems.length) {
    throw new Error(`${what} [${packed.n}, ${packed.k}] W${packed.bits} g${packed.groupSize}: ${problems.join('; ')}.`);
  }
}
