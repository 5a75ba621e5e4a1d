/**
 * Atom-style W4A4 with outlier channels (Zhao et al. 2024): the CPU reference.
 *
 * Input channels are reordered by calibration activation magnitude so that
 * the `outliers` largest come first (`perm[j]` = the original channel at
 * position j). In that order each row — of the weights W[N, K] and,
 * dynamically, of the activations x[M, K] — is quantized in two parts:
 *
 *   outliers  positions 0 … O−1:  int8, one symmetric scale per row   (scale = max|·|·f32(1/127), codes −127 … 127)
 *   the rest  positions O … K−1:  int4, groups of G, a symmetric scale per (row, group)
 *                                 (scale = max|·|·f32(1/7), codes −7 … 7; a product, not a quotient,
 *                                 so every adapter rounds it the same)
 *
 *   y[m, n] = xs[m, 0]·ws[n, 0]·Σ_{j<O} qx·qw  +  Σ_g xs[m, 1+g]·ws[n, 1+g]·Σ_{j∈g} qx·qw   (+ bias[n])
 *
 * each inner Σ an exact int32 sum. Layout of one row (weights and activations
 * alike): `codes` holds O/4 words of int8 (byte j mod 4 of word ⌊j/4⌋) then
 * (K−O)/8 words of int4 (nibble j mod 8, two's complement); `scales` holds
 * 1 + (K−O)/G f32 (the outlier scale first). O is a multiple of 4, K − O a
 * multiple of G, G a multiple of 8.
 */
import { roundHalfEven } from './rtn';

export interface AtomRows {
  rows: number;
  k: number;
  outliers: number;
  groupSize: number;
  /** [rows × wordsPerRow] */
  codes: Uint32Array;
  /** [rows × (1 + groups)] */
  scales: Float32Array;
}

const f = Math.fround;

export function atomWordsPerRow(k: number, outliers: number): number {
  return outliers / 4 + (k - outliers) / 8;
}

export function atomGroups(k: number, outliers: number, groupSize: number): number {
  return (k - outliers) / groupSize;
}

/** Throws unless the shape fits the layout; says what to choose. */
export function checkAtomShape(k: number, outliers: number, groupSize: number, what = 'W'): void {
  if (!Number.isInteger(groupSize) || groupSize < 8 || groupSize % 8 !== 0) throw new Error(`${what}: Atom's group size ${groupSize} must be a multiple of 8`);
  if (!Number.isInteger(outliers) || outliers < 0 || outliers % 4 !== 0 || outliers >= k) {
    throw new Error(`${what}: ${outliers} outlier channels of K=${k}: choose a multiple of 4 below K`);
  }
  if ((k - outliers) % groupSize !== 0) {
    throw new Error(`${what}: K − outliers = ${k} − ${outliers} = ${k - outliers} is not a multiple of the group size ${groupSize}: choose outliers so that it is (e.g. ${k % groupSize === 0 ? groupSize : k % groupSize})`);
  }
}

/**
 * The order of the input channels: the `outliers` of largest magnitude first
 * (largest first), then the others in their original order.
 */
export function outlierOrder(magnitude: ArrayLike<number>, outliers: number): Uint32Array {
  const k = magnitude.length;
  const byMagnitude = Array.from({ length: k }, (_, j) => j).sort((a, b) => magnitude[b] - magnitude[a] || a - b);
  const top = byMagnitude.slice(0, outliers);
  const chosen = new Set(top);
  const rest = Array.from({ length: k }, (_, j) => j).filter((j) => !chosen.has(j));
  return Uint32Array.from([...top, ...rest]);
}

/** Quantizes rows x[rows, k] (original channel order) in the order `perm` into the two-part layout above. */
export function quantizeAtomRows(x: ArrayLike<number>, rows: number, k: number, perm: ArrayLike<number>, outliers: number, groupSize: number): AtomRows {
  checkAtomShape(k, outliers, groupSize);
  const wpr = atomWordsPerRow(k, outliers);
  const groups = atomGroups(k, outliers, groupSize);
  const codes = new Uint32Array(rows * wpr);
  const scales = new Float32Array(rows * (1 + groups));
  const part = (r: number, start: number, count: number, qmax: number): number => {
    let amax = 0;
    for (let j = start; j < start + count; j++) amax = Math.max(amax, Math.abs(x[r * k + perm[j]]));
    return amax > 0 ? f(f(amax) * f(1 / qmax)) : 1;
  };
  for (let r = 0; r < rows; r++) {
    const base = r * wpr;
    const sHi = part(r, 0, outliers, 127);
    scales[r * (1 + groups)] = sHi;
    for (let j = 0; j < outliers; j++) {
      const q = Math.min(Math.max(roundHalfEven(f(x[r * k + perm[j]] / sHi)), -127), 127);
      codes[base + (j >> 2)] = (codes[base + (j >> 2)] | ((q & 0xff) << ((j & 3) * 8))) >>> 0;
    }
    for (let g = 0; g < groups; g++) {
      const start = outliers + g * groupSize;
      const s = part(r, start, groupSize, 7);
      scales[r * (1 + groups) + 1 + g] = s;
      for (let j = start; j < start + groupSize; j++) {
        const q = Math.min(Math.max(roundHalfEven(f(x[r * k + perm[j]] / s)), -7), 7);
        const i = j - outliers;
        const w = base + outliers / 4 + (i >> 3);
        codes[w] = (codes[w] | ((q & 0xf) << ((i & 7) * 4))) >>> 0;
      }
    }
  }
  return { rows, k, outliers, groupSize, codes, scales };
}

/** Code at position j (permuted order) of row r, as a signed integer. */
export function atomCodeAt(a: AtomRows, r: number, j: number): number {
  const base = r * atomWordsPerRow(a.k, a.outliers);
  if (j < a.outliers) {
    const b = (a.codes[base + (j >> 2)] >>> ((j & 3) * 8)) & 0xff;
    return b >= 128 ? b - 256 : b;
  }
  const i = j - a.outliers;
  const v = (a.codes[base + a.outliers / 4 + (i >> 3)] >>> ((i & 7) * 4)) & 0xf;
  return v >= 8 ? v - 16 : v;
}

/** The f32 values the rows stand for, in the permuted order [rows, k]. */
export function dequantizeAtomRows(a: AtomRows): Float64Array {
  const groups = atomGroups(a.k, a.outliers, a.groupSize);
  const out = new Float64Array(a.rows * a.k);
  for (let r = 0; r < a.rows; r++) {
    for (let j = 0; j < a.k; j++) {
      const s = j < a.outliers ? a.scales[r * (1 + groups)] : a.scales[r * (1 + groups) + 1 + Math.floor((j - a.outliers) / a.groupSize)];
      out[r * a.k + j] = atomCodeAt(a, r, j) * s;
    }
  }
  return out;
}

/** The W4A4 product of quantized activations and weights (same perm, shape), float64 from exact integer part sums. */
export function atomMatmulRef(x: AtomRows, w: AtomRows, bias: ArrayLike<number> | null): Float64Array {
  const groups = atomGroups(w.k, w.outliers, w.groupSize);
  const y = new Float64Array(x.rows * w.rows);
  for (let m = 0; m < x.rows; m++) {
    for (let n = 0; n < w.rows; n++) {
      let hi = 0;
      for (let j = 0; j < w.outliers; j++) hi += atomCodeAt(x, m, j) * atomCodeAt(w, n, j);
      let sum = hi * x.scales[m * (1 + groups)] * w.scales[n * (1 + groups)];
      for (let g = 0; g < groups; g++) {
        let acc = 0;
        const start = w.outliers + g * w.groupSize;
        for (let j = start; j < start + w.groupSize; j++) acc += atomCodeAt(x, m, j) * atomCodeAt(w, n, j);
        sum += acc * x.scales[m * (1 + groups) + 1 + g] * w.scales[n * (1 + groups) + 1 + g];
      }
      y[m * w.rows + n] = sum + (bias ? bias[n] : 0);
    }
  }
  return y;
}

/** Bytes of an Atom weight: int8 and int4 codes, f32 scales, and the channel order (u32 per input channel). */
export function atomWeightBytes(n: number, k: number, outliers: number, groupSize: number): number {
  return n * atomWordsPerRow(k, outliers) * 4 + n * (1 + atomGroups(k, outliers, groupSize)) * 4 + k * 4;
}
