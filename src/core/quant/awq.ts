/**
 * AWQ (Lin et al., "AWQ: Activation-aware Weight Quantization", MLSys 2024):
 * the pure parts — scales from activation statistics, the scaled and clipped
 * round-to-nearest that the packed format stores, and plain float64
 * references of both searches (what the GPU search in src/gpu/awq.ts is
 * tested against).
 *
 * For linears sharing an input X [T, K] (q/k/v after the attention norm, …):
 *   s_x[k] = mean_t |X[t, k]|,   s(α) = s_x^α / √(max s_x^α · min s_x^α)
 * (clamped below at 1e-4 before normalizing, as the reference implementation).
 * The layer is rewritten as (X / s) · (W · diag(s))ᵀ — unchanged in float —
 * and W · diag(s) is quantized. The search picks α on a grid minimizing the
 * output error summed over the group's linears:
 *   L(α) = Σ_linears ‖X · (Q(W · diag(s)) / s − W)ᵀ‖²_F
 * 1/s is folded into what produces X: the norm's weight (and bias), or the rows
 * (and bias) of the linear before (v before o, up before down).
 *
 * Clipping: per (row, group) of a scaled weight, the range [lo, hi] is shrunk
 * to [r·lo, r·hi] before the round-to-nearest grid is set up; r on a grid
 * (1, 0.95, …, 0.55) minimizing that (row, group)'s own output error
 * Σ_t (Σ_{k∈group} X[t, k] · ΔW[n, k])².
 */
import { maxCode, packCodes, resolveGroupSize, type PackedLinear, type QuantScheme } from './format';
import { quantizeValue, rtnParams } from './rtn';

const f = Math.fround;

/** α grid of the scale search: 0, 1/n, …, (n−1)/n (α = 0 is plain RTN). */
export function alphaGrid(points = 20): number[] {
  return Array.from({ length: points }, (_, i) => i / points);
}

/** Clipping ratios: 1, 1 − 1/20, … down to 1 − maxShrink (exclusive), as AWQ's search. */
export function clipGrid(maxShrink = 0.5, steps = 20): number[] {
  return Array.from({ length: Math.round(maxShrink * steps) }, (_, i) => 1 - i / steps);
}

/** Per-input-channel scales s = s_x^α, clamped at 1e-4 and normalized by √(max · min), in float32. */
export function awqScales(actMean: ArrayLike<number>, alpha: number): Float32Array {
  const s = new Float32Array(actMean.length);
  let max = 0;
  let min = Infinity;
  for (let i = 0; i < s.length; i++) {
    const v = Math.max(Math.pow(Math.max(actMean[i], 1e-4), alpha), 1e-4);
    s[i] = v;
    if (s[i] > max) max = s[i];
    if (s[i] < min) min = s[i];
  }
  const norm = Math.sqrt(max * min);
  for (let i = 0; i < s.length; i++) s[i] = f(s[i] / norm);
  return s;
}

/** Group parameters of the scaled values v[0 … g) with the range shrunk by `ratio` (float32, as the GPU kernel). */
function clippedParams(v: Float32Array, ratio: number, scheme: QuantScheme): { scale: number; zero: number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (let j = 0; j < v.length; j++) {
    if (v[j] < lo) lo = v[j];
    if (v[j] > hi) hi = v[j];
  }
  return rtnParams(f(ratio * lo), f(ratio * hi), scheme.bits, scheme.symmetric);
}

/**
 * ΔW = Q(W · diag(s); ratio) / s − W for W [n, k] in float32 — the CPU twin of
 * awq.wgsl `fakeQuantDelta` (one ratio for every (row, group)).
 */
export function fakeQuantDelta(w: Float32Array, n: number, k: number, s: Float32Array, scheme: QuantScheme, ratio = 1): Float32Array {
  const g = resolveGroupSize(n, k, scheme);
  const out = new Float32Array(n * k);
  const v = new Float32Array(g);
  for (let row = 0; row < n; row++) {
    for (let c0 = 0; c0 < k; c0 += g) {
      const start = row * k + c0;
      for (let j = 0; j < g; j++) v[j] = w[start + j] * s[c0 + j];
      const { scale, zero } = clippedParams(v, ratio, scheme);
      for (let j = 0; j < g; j++) {
        const q = quantizeValue(v[j], scale, zero, scheme.bits);
        out[start + j] = f(f(f((q - zero) * scale) / s[c0 + j]) - w[start + j]);
      }
    }
  }
  return out;
}

/**
 * The packed form of W · diag(s) (s null: W itself), each (row, group) with its
 * clipping ratio (null: 1 everywhere). With s = null and ratios = null this is
 * quantizeRtn bit for bit.
 */
export function quantizeScaled(w: Float32Array, n: number, k: number, scheme: QuantScheme, s: Float32Array | null, ratios: Float32Array | null): PackedLinear {
  const g = resolveGroupSize(n, k, scheme);
  const groups = k / g;
  const scales = new Float32Array(n * groups);
  const zeros = scheme.symmetric ? null : new Uint8Array(n * groups);
  const q = new Uint8Array(n * k);
  const v = new Float32Array(g);
  for (let row = 0; row < n; row++) {
    for (let gi = 0; gi < groups; gi++) {
      const start = row * k + gi * g;
      for (let j = 0; j < g; j++) v[j] = s ? w[start + j] * s[gi * g + j] : w[start + j];
      const p = clippedParams(v, ratios ? ratios[row * groups + gi] : 1, scheme);
      scales[row * groups + gi] = p.scale;
      if (zeros) zeros[row * groups + gi] = p.zero;
      for (let j = 0; j < g; j++) q[start + j] = quantizeValue(v[j], p.scale, p.zero, scheme.bits);
    }
  }
  const { codes, wordsPerRow } = packCodes(q, n, k, scheme.bits);
  return { n, k, bits: scheme.bits, groupSize: g, symmetric: scheme.symmetric, wordsPerRow, codes, scales, zeros };
}

/** Mean |x| per column of X [rows, k]. */
export function activationMean(x: ArrayLike<number>, rows: number, k: number): Float64Array {
  const m = new Float64Array(k);
  for (let r = 0; r < rows; r++) for (let c = 0; c < k; c++) m[c] += Math.abs(x[r * k + c]);
  for (let c = 0; c < k; c++) m[c] /= rows;
  return m;
}

// ------------------------------------------------------------ float64 references

/** Q(v) of one group in float64 with the range shrunk by `ratio` (round half to even, clamped codes). */
function referenceGroup(v: Float64Array, ratio: number, scheme: QuantScheme): Float64Array {
  const maxq = maxCode(scheme.bits);
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  let xmin = Math.min(ratio * lo, 0);
  let xmax = Math.max(ratio * hi, 0);
  if (scheme.symmetric) {
    xmax = Math.max(-xmin, xmax);
    xmin = -xmax;
  }
  if (xmax === xmin) {
    xmin = -1;
    xmax = 1;
  }
  const scale = (xmax - xmin) / maxq;
  const even = (x: number) => {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  };
  const zero = scheme.symmetric ? 2 ** (scheme.bits - 1) : Math.min(Math.max(even(-xmin / scale), 0), maxq);
  return v.map((x) => (Math.min(Math.max(even(x / scale) + zero, 0), maxq) - zero) * scale);
}

/** ΔW = Q(W · diag(s); ratio) / s − W in float64. */
export function referenceDelta(w: ArrayLike<number>, n: number, k: number, s: ArrayLike<number>, scheme: QuantScheme, ratio = 1): Float64Array {
  const g = resolveGroupSize(n, k, scheme);
  const out = new Float64Array(n * k);
  for (let row = 0; row < n; row++) {
    for (let c0 = 0; c0 < k; c0 += g) {
      const v = new Float64Array(g);
      for (let j = 0; j < g; j++) v[j] = w[row * k + c0 + j] * s[c0 + j];
      const qv = referenceGroup(v, ratio, scheme);
      for (let j = 0; j < g; j++) out[row * k + c0 + j] = qv[j] / s[c0 + j] - w[row * k + c0 + j];
    }
  }
  return out;
}

/** ‖X · Δᵀ‖²_F in float64 (X [rows, k], Δ [n, k]). */
export function referenceOutputError(x: ArrayLike<number>, rows: number, k: number, delta: ArrayLike<number>, n: number): number {
  let err = 0;
  for (let t = 0; t < rows; t++) {
    for (let o = 0; o < n; o++) {
      let dot = 0;
      for (let c = 0; c < k; c++) dot += x[t * k + c] * delta[o * k + c];
      err += dot * dot;
    }
  }
  return err;
}

export interface ScaleSearch {
  /** L(α) per grid point */
  losses: number[];
  /** index of the smallest loss (the first on ties) */
  best: number;
  alpha: number;
}

/** The scale search in float64 (scales from `actMean`, computed in float32 as the method does). */
export function referenceScaleSearch(x: ArrayLike<number>, rows: number, k: number, linears: { w: ArrayLike<number>; n: number }[], actMean: ArrayLike<number>, scheme: QuantScheme, grid = alphaGrid()): ScaleSearch {
  const losses = grid.map((alpha) => {
    const s = awqScales(actMean, alpha);
    return linears.reduce((sum, l) => sum + referenceOutputError(x, rows, k, referenceDelta(l.w, l.n, k, s, scheme), l.n), 0);
  });
  const best = losses.indexOf(Math.min(...losses));
  return { losses, best, alpha: grid[best] };
}

/** Per (row, group) output error Σ_t (Σ_{j∈group} X[t, j] · Δ[n, j])² in float64, [n × groups]. */
export function referenceGroupErrors(x: ArrayLike<number>, rows: number, k: number, delta: ArrayLike<number>, n: number, groupSize: number): Float64Array {
  const groups = k / groupSize;
  const err = new Float64Array(n * groups);
  for (let o = 0; o < n; o++) {
    for (let g = 0; g < groups; g++) {
      let e = 0;
      for (let t = 0; t < rows; t++) {
        let dot = 0;
        for (let j = g * groupSize; j < (g + 1) * groupSize; j++) dot += x[t * k + j] * delta[o * k + j];
        e += dot * dot;
      }
      err[o * groups + g] = e;
    }
  }
  return err;
}

/** Picks per (row, group) the ratio with the smallest error; errors[i] holds grid[i]'s [n × groups] errors. */
export function pickRatios(errors: ArrayLike<number>[], grid: number[]): Float32Array {
  const count = errors[0].length;
  const ratios = new Float32Array(count);
  for (let j = 0; j < count; j++) {
    let best = 0;
    for (let i = 1; i < grid.length; i++) if (errors[i][j] < errors[best][j]) best = i;
    ratios[j] = grid[best];
  }
  return ratios;
}

/** The clipping search in float64: per (row, group) the ratio of `grid` with the smallest group output error. */
export function referenceClipSearch(x: ArrayLike<number>, rows: number, k: number, w: ArrayLike<number>, n: number, s: ArrayLike<number>, scheme: QuantScheme, grid = clipGrid()): Float32Array {
  const g = resolveGroupSize(n, k, scheme);
  return pickRatios(grid.map((r) => referenceGroupErrors(x, rows, k, referenceDelta(w, n, k, s, scheme, r), n, g)), grid);
}
