/**
 * GPTQ (Frantar et al., 2023): the plain float64 reference.
 *
 * GPTQ quantizes W[N, K] one input column at a time and, after each column,
 * spreads that column's rounding error over the columns not yet quantized, so
 * that the layer's output error ‖(W − Ŵ)X‖² stays small for the calibration
 * inputs X summarized by H = XᵀX. With U the upper Cholesky factor of H⁻¹
 * (H⁻¹ = UᵀU), quantizing column j of a row w gives
 *
 *   err_j = (w_j − ŵ_j) / U_jj        w_{j+1…} −= err_j · U_{j, j+1…}
 *
 * and GPTQ reports loss = ½ Σ_rows Σ_j err_j².
 *
 * Steps, in the order both this reference and the GPU path (src/gpu/gptq.ts)
 * follow:
 * 1. Dead inputs (H_jj = 0: the input never fires): H_jj = 1, W[:, j] = 0.
 * 2. act-order only: group parameters are fixed now, from the original
 *    weights in original column order ("static groups"), so a group's scale
 *    and zero point never depend on the column order and the packed format
 *    needs no index. Then columns are visited by descending H_jj (ties by
 *    index).
 * 3. Dampening: H += λ I with λ = dampening · mean(diag H).
 * 4. U = upper Cholesky factor of H⁻¹ (here the textbook route: Cholesky of
 *    H, its inverse, Cholesky of H⁻¹; the GPU takes a shorter one).
 * 5. The sweep. Without act-order a group's scale and zero point come from
 *    the group's current weights — every update from the columns before the
 *    group's first column applied — when the sweep reaches that column; with
 *    'row' groups that is the original row. Codes and grids are RTN's
 *    (src/core/quant/rtn.ts): `rtnParams` on the group's minimum and maximum,
 *    `quantizeValue` per weight, ŵ = float32((q − zero) · scale).
 *
 * The GPU path batches the updates ("lazy batches" of `blockSize` columns,
 * the trailing update as one matrix product); in exact arithmetic that is the
 * same computation, so the reference does not batch.
 */
import { dequantize, packCodes, resolveGroupSize, type PackedLinear, type QuantScheme } from './format';
import { quantizeValue, rtnParams } from './rtn';

export interface GptqOptions {
  /** λ as a fraction of mean(diag H); default 0.01 */
  dampening?: number;
  /** columns per lazy batch on the GPU (a multiple of 32, at most 128); default 128. The reference ignores it. */
  blockSize?: number;
  /** visit columns by descending H_jj, with static groups; default false */
  actOrder?: boolean;
}

export interface GptqResult {
  packed: PackedLinear;
  /** ½ Σ over rows and columns of err² = (w − ŵ)² / U_jj², with H⁻¹ = UᵀU: GPTQ's reported loss */
  loss: number;
  /** Ŵ = dequantize(packed), row-major [n, k], for checks */
  dequantized: Float32Array;
  /** order[j] = the original column quantized j-th (identity without act-order) */
  order: Int32Array;
}

export const DEFAULT_DAMPENING = 0.01;
export const DEFAULT_BLOCK_SIZE = 128;

/**
 * Column order of act-order: descending diag(H) (dead inputs counted as 1),
 * ties by index, so the GPU and the reference agree on equal diagonals.
 */
export function actOrderPermutation(diag: ArrayLike<number>): Int32Array {
  const k = diag.length;
  const d = Array.from({ length: k }, (_, j) => (diag[j] === 0 ? 1 : diag[j]));
  const order = Array.from({ length: k }, (_, j) => j);
  order.sort((a, b) => d[b] - d[a] || a - b);
  return Int32Array.from(order);
}

/** λ = dampening · mean(diag H), dead inputs counted as 1 (they are set to 1 before dampening). */
export function dampeningLambda(diag: ArrayLike<number>, dampening: number): number {
  let sum = 0;
  for (let j = 0; j < diag.length; j++) sum += diag[j] === 0 ? 1 : diag[j];
  return (dampening * sum) / diag.length;
}

/**
 * Lower Cholesky factor of a symmetric positive definite k×k matrix (row-major,
 * float64); throws a message naming the column where it is not positive definite.
 */
export function choleskyLower(a: Float64Array, k: number): Float64Array {
  const l = new Float64Array(k * k);
  for (let j = 0; j < k; j++) {
    let d = a[j * k + j];
    for (let p = 0; p < j; p++) d -= l[j * k + p] * l[j * k + p];
    if (!(d > 0)) {
      throw new Error(
        `GPTQ: the dampened Hessian is not positive definite at column ${j} (pivot ${d.toExponential(3)}): ` +
          `raise the dampening or use more calibration tokens.`,
      );
    }
    const ljj = Math.sqrt(d);
    l[j * k + j] = ljj;
    for (let i = j + 1; i < k; i++) {
      let s = a[i * k + j];
      for (let p = 0; p < j; p++) s -= l[i * k + p] * l[j * k + p];
      l[i * k + j] = s / ljj;
    }
  }
  return l;
}

/** Inverse of a lower triangular k×k matrix (row-major), itself lower triangular. */
export function invertLower(l: Float64Array, k: number): Float64Array {
  const x = new Float64Array(k * k);
  for (let c = 0; c < k; c++) {
    x[c * k + c] = 1 / l[c * k + c];
    for (let i = c + 1; i < k; i++) {
      let s = 0;
      for (let p = c; p < i; p++) s += l[i * k + p] * x[p * k + c];
      x[i * k + c] = -s / l[i * k + i];
    }
  }
  return x;
}

/**
 * U, upper triangular with H⁻¹ = UᵀU, for a symmetric positive definite H
 * (already dampened): Cholesky of H, H⁻¹ = L⁻ᵀ L⁻¹, then U = (Cholesky of H⁻¹)ᵀ.
 */
export function inverseCholeskyUpper(h: Float64Array, k: number): Float64Array {
  const linv = invertLower(choleskyLower(h, k), k);
  const hinv = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j <= i; j++) {
      // (L⁻ᵀ L⁻¹)_ij = Σ_p Linv[p][i] · Linv[p][j], p ≥ max(i, j)
      let s = 0;
      for (let p = i; p < k; p++) s += linv[p * k + i] * linv[p * k + j];
      hinv[i * k + j] = s;
      hinv[j * k + i] = s;
    }
  }
  const c = choleskyLower(hinv, k);
  const u = new Float64Array(k * k);
  for (let i = 0; i < k; i++) for (let j = i; j < k; j++) u[i * k + j] = c[j * k + i];
  return u;
}

/**
 * GPTQ of W[n, k] (row-major) with Hessian H [k, k] (XᵀX summed or averaged:
 * the result does not depend on its scale, the loss scales with it).
 */
export function gptqReference(
  weight: Float64Array | Float32Array,
  n: number,
  k: number,
  hessian: Float64Array,
  scheme: QuantScheme,
  options: GptqOptions = {},
): GptqResult {
  if (weight.length !== n * k) {
    throw new Error(`GPTQ: ${weight.length} weights given for a [${n}, ${k}] matrix (${n * k} expected).`);
  }
  if (hessian.length !== k * k) {
    throw new Error(`GPTQ: the Hessian holds ${hessian.length} values, expected K·K = ${k * k} for K = ${k}.`);
  }
  const groupSize = resolveGroupSize(n, k, scheme, 'GPTQ');
  const { bits, symmetric } = scheme;
  const groups = k / groupSize;
  const actOrder = options.actOrder ?? false;
  const staticGroups = actOrder || groupSize === k;
  const w = Float64Array.from(weight);
  const h = Float64Array.from(hessian);

  // 1. Dead inputs.
  const diag = new Float64Array(k);
  for (let j = 0; j < k; j++) diag[j] = h[j * k + j];
  for (let j = 0; j < k; j++) {
    if (diag[j] !== 0) continue;
    h[j * k + j] = 1;
    for (let r = 0; r < n; r++) w[r * k + j] = 0;
  }

  const scales = new Float32Array(n * groups);
  const zeros = symmetric ? null : new Uint8Array(n * groups);
  const setGroup = (row: number, g: number, values: (j: number) => number, cols: number[]) => {
    let lo = Infinity;
    let hi = -Infinity;
    for (const j of cols) {
      const v = values(j);
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const p = rtnParams(lo, hi, bits, symmetric);
    scales[row * groups + g] = p.scale;
    if (zeros) zeros[row * groups + g] = p.zero;
  };
  const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

  // 2. Static groups from the original weights, then the column order.
  if (staticGroups) {
    for (let r = 0; r < n; r++) {
      for (let g = 0; g < groups; g++) setGroup(r, g, (j) => w[r * k + j], range(g * groupSize, (g + 1) * groupSize));
    }
  }
  const order = actOrder ? actOrderPermutation(diag) : Int32Array.from(range(0, k));

  // Permuted copies: wp[r, j] = w[r, order[j]], hp[i, j] = h[order[i], order[j]].
  const wp = new Float64Array(n * k);
  const hp = new Float64Array(k * k);
  for (let r = 0; r < n; r++) for (let j = 0; j < k; j++) wp[r * k + j] = w[r * k + order[j]];
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) hp[i * k + j] = h[order[i] * k + order[j]];

  // 3. Dampening, 4. U.
  const lambda = dampeningLambda(diag, options.dampening ?? DEFAULT_DAMPENING);
  for (let j = 0; j < k; j++) hp[j * k + j] += lambda;
  const u = inverseCholeskyUpper(hp, k);

  // 5. The sweep.
  const q = new Uint8Array(n * k);
  let loss = 0;
  for (let r = 0; r < n; r++) {
    const row = wp.subarray(r * k, (r + 1) * k);
    for (let j = 0; j < k; j++) {
      const g = Math.floor(order[j] / groupSize);
      if (!staticGroups && j % groupSize === 0) setGroup(r, g, (c) => row[c], range(j, j + groupSize));
      const scale = scales[r * groups + g];
      const zero = zeros ? zeros[r * groups + g] : 1 << (bits - 1);
      const code = quantizeValue(row[j], scale, zero, bits);
      const deq = Math.fround((code - zero) * scale);
      const err = (row[j] - deq) / u[j * k + j];
      loss += err * err;
      q[r * k + order[j]] = code;
      for (let c = j + 1; c < k; c++) row[c] -= err * u[j * k + c];
    }
  }
  const { codes, wordsPerRow } = packCodes(q, n, k, bits);
  const packed: PackedLinear = { n, k, bits, groupSize, symmetric, wordsPerRow, codes, scales, zeros };
  return { packed, loss: loss / 2, dequantized: dequantize(packed), order };
}

/** GPTQ's proxy objective Σ_rows (w − ŵ) H (w − ŵ)ᵀ, in float64, for comparing quantizers. */
export function proxyLoss(
  weight: ArrayLike<number>,
  dequantized: ArrayLike<number>,
  n: number,
  k: number,
  hessian: ArrayLike<number>,
): number {
  let total = 0;
  const d = new Float64Array(k);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < k; j++) d[j] = weight[r * k + j] - dequantized[r * k + j];
    for (let i = 0; i < k; i++) {
      if (d[i] === 0) continue;
      let s = 0;
      for (let j = 0; j < k; j++) s += hessian[i * k + j] * d[j];
      total += d[i] * s;
    }
  }
  return total;
}
