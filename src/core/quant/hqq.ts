/**
 * HQQ (Badri & Shaji, "Half-Quadratic Quantization of Large Machine Learning
 * Models", 2023): calibration-free refinement of each group's zero point by
 * half-quadratic splitting, for the shared packed format.
 *
 * Per (row, group) of W, codes q = clamp(round(w / s + z)), ŵ = (q − z) · s.
 * HQQ minimizes ‖W − ŵ‖_p^p with p < 1 (heavy-tailed errors are cheap, so the
 * grid follows the bulk of the weights) through an extra variable W_e ≈ W − ŵ:
 *
 *   start   s = (max − min) / (2^b − 1), z = −min / s        (float zero point)
 *   repeat  q   = clamp(round(w / s + z), 0, 2^b − 1)
 *           ŵ   = (q − z) · s,      error = mean |w − ŵ|    (stop when it rises)
 *           W_e = shrink_p(w − ŵ, β) = sign · max(|·| − |·|^(p−1) / β, 0)
 *           z   = mean(q − (w − W_e) / s)
 *           β  ← κ β
 * with p = 0.7, β = 10, κ = 1.01, at most 20 iterations (HQQ's defaults); the
 * zero point of the lowest error is kept. Each group stops on its own (HQQ
 * stops the whole tensor at once).
 *
 * Our zero points are u8 integers, so HQQ's float zero is rounded to the
 * nearest code and the scale re-solved for it: alternately the codes (nearest,
 * clamped) and the least-squares scale s = Σ w (q − z) / Σ (q − z)², which
 * never increases the squared error; 4 rounds. Symmetric schemes have a fixed
 * zero point (2^(b−1)): only the scale is refined. Finally, a group whose
 * squared error is above round-to-nearest's keeps RTN's scale and zero point —
 * so HQQ's error is never above RTN's, group by group.
 */
import { maxCode, packCodes, resolveGroupSize, symmetricZero, type PackedLinear, type QuantBits, type QuantScheme } from './format';
import { quantizeValue, roundHalfEven, rtnParams } from './rtn';

export interface HqqOptions {
  /** lp norm (default 0.7) */
  p?: number;
  /** initial β (default 10) and its growth κ (default 1.01) */
  beta?: number;
  kappa?: number;
  /** most half-quadratic iterations (default 20) */
  iterations?: number;
  /** least-squares scale rounds after rounding the zero point (default 4) */
  scaleRounds?: number;
}

export interface HqqGroupResult {
  scale: number;
  zero: number;
  /** half-quadratic iterations run (the last one is the one whose error rose, or the limit) */
  iterations: number;
  /** true when RTN's grid was kept (its squared error was lower) */
  rtn: boolean;
}

export interface HqqTrace {
  /** float zero point after each iteration */
  zeros: number[];
  /** mean |w − ŵ| measured in each iteration */
  errors: number[];
}

const defaults = { p: 0.7, beta: 10, kappa: 1.01, iterations: 20, scaleRounds: 4 };

/** The options with defaults where a value is absent (or given as undefined). */
function withDefaults(options: HqqOptions): typeof defaults {
  const o = { ...defaults };
  for (const key of Object.keys(defaults) as (keyof typeof defaults)[]) {
    const v = options[key];
    if (v !== undefined) o[key] = v;
  }
  return o;
}

/** Squared error Σ (w − (q − z) · s)² of a group on the grid (s, z), codes nearest and clamped, ŵ in float32. */
export function groupSquaredError(w: ArrayLike<number>, scale: number, zero: number, bits: QuantBits): number {
  let e = 0;
  for (let j = 0; j < w.length; j++) {
    const d = w[j] - Math.fround((quantizeValue(w[j], scale, zero, bits) - zero) * scale);
    e += d * d;
  }
  return e;
}

/**
 * HQQ of one group w (float32 values), see the header. `trace` receives the
 * zero point and error of every half-quadratic iteration.
 */
export function hqqGroup(w: Float32Array, bits: QuantBits, symmetric: boolean, options: HqqOptions = {}, trace?: HqqTrace): HqqGroupResult {
  const o = withDefaults(options);
  const maxq = maxCode(bits);
  const g = w.length;
  let lo = Infinity;
  let hi = -Infinity;
  for (let j = 0; j < g; j++) {
    if (w[j] < lo) lo = w[j];
    if (w[j] > hi) hi = w[j];
  }
  const rtn = rtnParams(lo, hi, bits, symmetric);
  let iterations = 0;
  let zero: number;
  let s: number;
  if (symmetric) {
    zero = symmetricZero(bits);
    s = rtn.scale;
  } else {
    s = hi > lo ? (hi - lo) / maxq : rtn.scale;
    let z = -lo / s;
    let best = Infinity;
    let bestZ = z;
    let beta = o.beta;
    for (let it = 0; it < o.iterations; it++) {
      iterations++;
      let err = 0;
      let zSum = 0;
      for (let j = 0; j < g; j++) {
        const q = Math.min(Math.max(roundHalfEven(w[j] / s + z), 0), maxq);
        const r = w[j] - (q - z) * s;
        err += Math.abs(r);
        const a = Math.abs(r);
        const shrunk = a === 0 ? 0 : Math.sign(r) * Math.max(a - Math.pow(a, o.p - 1) / beta, 0);
        zSum += q - (w[j] - shrunk) / s;
      }
      err /= g;
      trace?.zeros.push(zSum / g);
      trace?.errors.push(err);
      if (err < best) {
        best = err;
        bestZ = z;
      } else {
        break;
      }
      z = zSum / g;
      beta *= o.kappa;
    }
    zero = Math.min(Math.max(roundHalfEven(bestZ), 0), maxq);
  }
  // the integer zero point's scale: nearest codes and least squares in turn
  for (let round = 0; round < o.scaleRounds; round++) {
    let num = 0;
    let den = 0;
    for (let j = 0; j < g; j++) {
      const c = Math.min(Math.max(roundHalfEven(w[j] / s) + zero, 0), maxq) - zero;
      num += w[j] * c;
      den += c * c;
    }
    if (den === 0 || !(num / den > 0)) break;
    s = num / den;
  }
  const scale = Math.fround(s);
  if (groupSquaredError(w, scale, zero, bits) > groupSquaredError(w, rtn.scale, rtn.zero, bits)) {
    return { scale: rtn.scale, zero: rtn.zero, iterations, rtn: true };
  }
  return { scale, zero, iterations, rtn: false };
}

export interface HqqStats {
  groups: number;
  /** groups that kept RTN's grid */
  rtnGroups: number;
  /** mean half-quadratic iterations per group */
  meanIterations: number;
  /** Σ squared error, HQQ and RTN, over the matrix */
  squaredError: number;
  rtnSquaredError: number;
}

/** HQQ of W [n, k] into the packed format, with what it did. */
export function quantizeHqq(w: Float32Array, n: number, k: number, scheme: QuantScheme, options: HqqOptions = {}): { packed: PackedLinear; stats: HqqStats } {
  if (w.length !== n * k) throw new Error(`quantizeHqq: ${w.length} weights given for a [${n}, ${k}] matrix (${n * k} expected).`);
  const gs = resolveGroupSize(n, k, scheme);
  const groups = k / gs;
  const { bits, symmetric } = scheme;
  const scales = new Float32Array(n * groups);
  const zeros = symmetric ? null : new Uint8Array(n * groups);
  const q = new Uint8Array(n * k);
  const stats: HqqStats = { groups: n * groups, rtnGroups: 0, meanIterations: 0, squaredError: 0, rtnSquaredError: 0 };
  for (let row = 0; row < n; row++) {
    for (let gi = 0; gi < groups; gi++) {
      const start = row * k + gi * gs;
      const group = w.subarray(start, start + gs);
      const r = hqqGroup(group, bits, symmetric, options);
      scales[row * groups + gi] = r.scale;
      if (zeros) zeros[row * groups + gi] = r.zero;
      for (let j = 0; j < gs; j++) q[start + j] = quantizeValue(group[j], r.scale, r.zero, bits);
      stats.rtnGroups += r.rtn ? 1 : 0;
      stats.meanIterations += r.iterations;
      stats.squaredError += groupSquaredError(group, r.scale, r.zero, bits);
      let glo = Infinity;
      let ghi = -Infinity;
      for (const v of group) {
        glo = Math.min(glo, v);
        ghi = Math.max(ghi, v);
      }
      const base = rtnParams(glo, ghi, bits, symmetric);
      stats.rtnSquaredError += groupSquaredError(group, base.scale, base.zero, bits);
    }
  }
  stats.meanIterations /= stats.groups;
  const { codes, wordsPerRow } = packCodes(q, n, k, bits);
  return { packed: { n, k, bits, groupSize: gs, symmetric, wordsPerRow, codes, scales, zeros }, stats };
}

// ------------------------------------------------------------ float64 reference

/**
 * HQQ's half-quadratic iterations for one asymmetric group, written plainly
 * in float64 array operations (no early exits but HQQ's own): the float zero
 * point of every iteration and its error, for comparison iterate by iterate.
 */
export function referenceHqqIterates(w: number[], bits: number, options: HqqOptions = {}): HqqTrace & { bestZero: number } {
  const o = withDefaults(options);
  const maxq = 2 ** bits - 1;
  const even = (x: number) => {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  };
  const min = Math.min(...w);
  const max = Math.max(...w);
  const s = (max - min) / maxq;
  let z = -min / s;
  let beta = o.beta;
  const trace: HqqTrace & { bestZero: number } = { zeros: [], errors: [], bestZero: z };
  let best = Infinity;
  for (let it = 0; it < o.iterations; it++) {
    const q = w.map((v) => Math.min(Math.max(even(v / s + z), 0), maxq));
    const residual = w.map((v, j) => v - (q[j] - z) * s);
    const error = residual.reduce((a, r) => a + Math.abs(r), 0) / w.length;
    const we = residual.map((r) => (r === 0 ? 0 : Math.sign(r) * Math.max(Math.abs(r) - Math.abs(r) ** (o.p - 1) / beta, 0)));
    const next = q.reduce((a, qj, j) => a + (qj - (w[j] - we[j]) / s), 0) / w.length;
    trace.zeros.push(next);
    trace.errors.push(error);
    if (error < best) {
      best = error;
      trace.bestZero = z;
    } else {
      break;
    }
    z = next;
    beta *= o.kappa;
  }
  return trace;
}
