/**
 * SmoothQuant W8A8 (Xiao et al. 2023): the CPU reference of its pieces.
 *
 * Smoothing. Activation outliers sit in a few input channels; dividing input
 * channel j of the activations by s_j and multiplying column j of every
 * weight that reads them by s_j leaves x·Wᵀ unchanged and moves part of the
 * range from activations to weights:
 *
 *   s_j = max|X_j|^α / max|W_:,j|^(1−α)        (α = migration strength, 0.5 by default)
 *
 * max|W_:,j| is taken over every linear that shares the input (q, k, v; gate,
 * up). The division by s_j is folded into the op before (a norm's weight and
 * bias, or the rows of v / up), so no extra kernel runs.
 *
 * Int8 weights: per output channel, symmetric, codes −127 … 127:
 *   scale_n = max_k |W[n, k]| · f32(1/127) (1 when the row is 0; a product, rounded alike everywhere),  q = clamp(round(W / scale), −127, 127)
 * Int8 activations: the same per token (row of x), computed on the fly
 * (dynamic) on the GPU before each linear.
 * Product: y[m, n] = xScale[m] · wScale[n] · Σ_k qx[m, k] · qw[n, k]   (Σ in int32) (+ bias[n])
 *
 * Codes are packed four to a u32, code k of a row in byte k mod 4 of word
 * ⌊k/4⌋ (two's complement), as WGSL's dot4I8Packed reads them; K is a
 * multiple of 4.
 */
import { roundHalfEven } from './rtn';

export interface Int8Rows {
  rows: number;
  k: number;
  /** [rows × k/4] packed signed bytes */
  codes: Uint32Array;
  /** [rows] f32 scales */
  scales: Float32Array;
}

const f = Math.fround;

/** SmoothQuant's per-input-channel factors from the activation and weight channel maxima. */
export function smoothingFactors(actMax: ArrayLike<number>, weightMax: ArrayLike<number>, alpha: number): Float32Array {
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`SmoothQuant's migration strength α is ${alpha}: choose a value from 0 to 1 (0.5 in the paper)`);
  const s = new Float32Array(actMax.length);
  for (let j = 0; j < s.length; j++) {
    const a = Math.max(actMax[j], 1e-5);
    const w = Math.max(weightMax[j], 1e-5);
    const v = a ** alpha / w ** (1 - alpha);
    s[j] = Number.isFinite(v) && v > 0 ? v : 1;
  }
  return s;
}

/** max_n |W[n, j]| over the input channels of W[n, k], accumulated into `into` (several linears sharing an input). */
export function weightChannelMax(w: ArrayLike<number>, n: number, k: number, into = new Float32Array(k)): Float32Array {
  for (let r = 0; r < n; r++) for (let j = 0; j < k; j++) into[j] = Math.max(into[j], Math.abs(w[r * k + j]));
  return into;
}

/** W[:, j] · s_j in place (the weight side of smoothing). */
export function scaleColumns(w: Float32Array, n: number, k: number, s: ArrayLike<number>): void {
  for (let r = 0; r < n; r++) for (let j = 0; j < k; j++) w[r * k + j] = f(w[r * k + j] * s[j]);
}

/** Per-row symmetric int8 quantization of x [rows, k] (weights per output channel, activations per token). */
export function quantizeInt8Rows(x: ArrayLike<number>, rows: number, k: number): Int8Rows {
  if (k % 4 !== 0) throw new Error(`int8 rows of ${k} values: K must be a multiple of 4 (four codes per u32 word)`);
  const codes = new Uint32Array((rows * k) / 4);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let amax = 0;
    for (let j = 0; j < k; j++) amax = Math.max(amax, Math.abs(x[r * k + j]));
    const scale = amax > 0 ? f(f(amax) * f(1 / 127)) : 1;
    scales[r] = scale;
    for (let j = 0; j < k; j++) {
      const q = Math.min(Math.max(roundHalfEven(f(x[r * k + j] / scale)), -127), 127);
      const w = (r * k + j) >> 2;
      codes[w] = (codes[w] | ((q & 0xff) << ((j & 3) * 8))) >>> 0;
    }
  }
  return { rows, k, codes, scales };
}

/** Code j of row r of packed int8 rows, as a signed integer. */
export function int8At(codes: Uint32Array, k: number, r: number, j: number): number {
  const b = (codes[(r * k + j) >> 2] >>> ((j & 3) * 8)) & 0xff;
  return b >= 128 ? b - 256 : b;
}

/** Σ_k qx[m, k] · qw[n, k] for every (m, n): the int32 accumulators of the int8 × int8 product. */
export function int8DotRef(x: Int8Rows, w: Int8Rows): Int32Array {
  if (x.k !== w.k) throw new Error(`int8 product: x has ${x.k} columns, W has ${w.k}`);
  const k = x.k;
  const acc = new Int32Array(x.rows * w.rows);
  for (let m = 0; m < x.rows; m++) {
    for (let n = 0; n < w.rows; n++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += int8At(x.codes, k, m, j) * int8At(w.codes, k, n, j);
      acc[m * w.rows + n] = s;
    }
  }
  return acc;
}

/** y = xScale[m] · wScale[n] · acc[m, n] (+ bias[n]), float64. */
export function int8RescaleRef(acc: Int32Array, x: Int8Rows, w: Int8Rows, bias: ArrayLike<number> | null): Float64Array {
  const y = new Float64Array(acc.length);
  for (let m = 0; m < x.rows; m++) {
    for (let n = 0; n < w.rows; n++) y[m * w.rows + n] = acc[m * w.rows + n] * x.scales[m] * w.scales[n] + (bias ? bias[n] : 0);
  }
  return y;
}

/** Bytes of an int8 W8A8 weight in this format: codes + one f32 scale per output channel. */
export function int8WeightBytes(n: number, k: number): number {
  return n * k + n * 4;
}
