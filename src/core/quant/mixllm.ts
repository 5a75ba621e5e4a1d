/**
 * Global mixed precision between output features (MixLLM, Zheng et al. 2024):
 * the CPU side — salience, the global ranking, and the mixed packed layout.
 *
 * Salience. MixLLM scores an output feature by the loss increase its
 * quantization causes, estimated with gradients. Here a documented
 * second-order proxy stands in for it: the calibration-activation-weighted
 * quantization error of the output row, i.e. the expected squared error that
 * quantizing row i adds to output feature i,
 *
 *   E[(x·(w_i − ŵ_i))²] ≈ Σ_j E[x_j²] · (w_ij − ŵ_ij)²       (the diagonal of E[xᵀx])
 *
 * and the salience of promoting row i from low to high bits is that error at
 * the low width minus the error at the high width. Every output row of every
 * linear is ranked on this one scale across the whole model; the top
 * `highFraction` of all rows get the high width.
 *
 * Layout. A mixed linear W[N, K] keeps its rows in two packed blocks of the
 * shared format (src/core/quant/format.ts) — the high-bit rows and the
 * low-bit rows, each in their original order — plus the output position of
 * every packed row (`rows`: the high block's first, then the low block's, a
 * u32 each). Bytes = both blocks' packedBytes + 4·N.
 */
import { dequantize, packedBytes, type PackedLinear, type QuantScheme } from './format';
import { quantizeRtn } from './rtn';

export interface MixedPacked {
  n: number;
  k: number;
  /** the high-bit rows [rows.length … ], null when there are none */
  high: PackedLinear | null;
  low: PackedLinear | null;
  /** output position of each packed row: high rows first, then low rows */
  rows: Uint32Array;
  /** rows in the high block */
  highCount: number;
}

/** Copies rows `which` of W[n, k] into a new [which.length, k] matrix. */
export function takeRows(w: ArrayLike<number>, k: number, which: ArrayLike<number>): Float32Array {
  const out = new Float32Array(which.length * k);
  for (let r = 0; r < which.length; r++) for (let j = 0; j < k; j++) out[r * k + j] = w[which[r] * k + j];
  return out;
}

/** Σ_j meanSq_j · (w_ij − ŵ_ij)² for every row i of W[n, k], float64. */
export function weightedRowError(w: ArrayLike<number>, wq: ArrayLike<number>, n: number, k: number, meanSq: ArrayLike<number> | null): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < k; j++) {
      const d = w[i * k + j] - wq[i * k + j];
      s += (meanSq ? meanSq[j] : 1) * d * d;
    }
    out[i] = s;
  }
  return out;
}

/**
 * The salience of every output row: the activation-weighted error of the row
 * at `low` minus that at `high` (RTN at both widths); meanSq = E[x_j²] of the
 * layer's input (null: unweighted).
 */
export function rowSalience(w: Float32Array, n: number, k: number, meanSq: ArrayLike<number> | null, low: QuantScheme, high: QuantScheme): Float64Array {
  const lo = weightedRowError(w, dequantize(quantizeRtn(w, n, k, low)), n, k, meanSq);
  const hi = weightedRowError(w, dequantize(quantizeRtn(w, n, k, high)), n, k, meanSq);
  return lo.map((v, i) => v - hi[i]);
}

/**
 * Ranks the rows of every layer together and marks the top `fraction` of all
 * of them (rounded to the nearest row; ties broken by layer order, then row).
 * Returns layer → one flag per row (1 = high bits).
 */
export function selectHighRows(salience: Map<string, Float64Array>, fraction: number): Map<string, Uint8Array> {
  if (!(fraction >= 0 && fraction <= 1)) throw new Error(`the fraction of high-precision rows is ${fraction}: choose a value from 0 to 1 (0.1 in MixLLM)`);
  const all: { layer: string; row: number; s: number; order: number }[] = [];
  let order = 0;
  for (const [layer, s] of salience) s.forEach((v, row) => all.push({ layer, row, s: v, order: order++ }));
  all.sort((a, b) => b.s - a.s || a.order - b.order);
  const count = Math.round(fraction * all.length);
  const out = new Map<string, Uint8Array>();
  for (const [layer, s] of salience) out.set(layer, new Uint8Array(s.length));
  for (let i = 0; i < count; i++) out.get(all[i].layer)![all[i].row] = 1;
  return out;
}

/** The packed row order of a mixed layer: the flagged (high) rows, then the others, each in their original order. */
export function splitRows(high: Uint8Array): { rows: Uint32Array; highCount: number } {
  const hi: number[] = [];
  const lo: number[] = [];
  high.forEach((f, i) => (f ? hi : lo).push(i));
  return { rows: Uint32Array.from([...hi, ...lo]), highCount: hi.length };
}

/** Splits W[n, k] by `high` (one flag per row) and quantizes each part with `quantize` at its scheme. */
export function packMixed(
  w: Float32Array,
  n: number,
  k: number,
  high: Uint8Array,
  schemes: { high: QuantScheme; low: QuantScheme },
  quantize: (w: Float32Array, n: number, k: number, scheme: QuantScheme, rows: Uint32Array) => PackedLinear = (m, r, c, s) => quantizeRtn(m, r, c, s),
): MixedPacked {
  if (high.length !== n) throw new Error(`packMixed: ${high.length} row flags for ${n} rows`);
  const { rows, highCount } = splitRows(high);
  const part = (idx: Uint32Array, scheme: QuantScheme) => (idx.length ? quantize(takeRows(w, k, idx), idx.length, k, scheme, idx) : null);
  return { n, k, high: part(rows.subarray(0, highCount), schemes.high), low: part(rows.subarray(highCount), schemes.low), rows, highCount };
}

/** Exact bytes of a mixed layer: both packed blocks and the u32 row index. */
export function mixedBytes(m: MixedPacked): number {
  return (m.high ? packedBytes(m.high) : 0) + (m.low ? packedBytes(m.low) : 0) + 4 * m.n;
}

/** The f32 weights W[n, k] a mixed layer stands for (rows back in place). */
export function dequantizeMixed(m: MixedPacked): Float32Array {
  const out = new Float32Array(m.n * m.k);
  const put = (p: PackedLinear | null, offset: number) => {
    if (!p) return;
    const w = dequantize(p);
    for (let r = 0; r < p.n; r++) out.set(w.subarray(r * m.k, (r + 1) * m.k), m.rows[offset + r] * m.k);
  };
  put(m.high, 0);
  put(m.low, m.highCount);
  return out;
}
