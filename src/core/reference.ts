/**
 * CPU references of the decoder kernels, in float64, written for clarity.
 * Each WGSL kernel family is tested against its function here on random inputs.
 */
import { ropeTableFor } from './rope';

/** y[M, D] = norm(x) · weight (+ bias). */
export function normRef(x: ArrayLike<number>, rows: number, dim: number, weight: ArrayLike<number>, bias: ArrayLike<number> | null, eps: number, kind: 'rmsnorm' | 'layernorm'): Float64Array {
  const y = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    if (kind === 'layernorm') {
      for (let d = 0; d < dim; d++) mean += x[r * dim + d];
      mean /= dim;
    }
    let sq = 0;
    for (let d = 0; d < dim; d++) sq += (x[r * dim + d] - mean) ** 2;
    const inv = 1 / Math.sqrt(sq / dim + eps);
    for (let d = 0; d < dim; d++) {
      y[r * dim + d] = (x[r * dim + d] - mean) * inv * weight[d] + (kind === 'layernorm' && bias ? bias[d] : 0);
    }
  }
  return y;
}

/** RoPE ("rotate half") applied to x[M, heads·headDim] at positions pastLen + m; returns a new array. */
export function ropeRef(x: ArrayLike<number>, rows: number, heads: number, headDim: number, pastLen: number, table: ArrayLike<number>): Float64Array {
  const y = Float64Array.from(x as ArrayLike<number>);
  const half = headDim / 2;
  for (let m = 0; m < rows; m++) {
    for (let h = 0; h < heads; h++) {
      const base = (m * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const c = table[((pastLen + m) * half + i) * 2];
        const s = table[((pastLen + m) * half + i) * 2 + 1];
        const a = x[base + i];
        const b = x[base + i + half];
        y[base + i] = a * c - b * s;
        y[base + i + half] = b * c + a * s;
      }
    }
  }
  return y;
}

/** Causal GQA attention: q[M, H·hd] at positions pastLen + m; k, v [pastLen + M, Hkv·hd]. */
export function attentionRef(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, rows: number, heads: number, kvHeads: number, headDim: number, pastLen: number): Float64Array {
  const out = new Float64Array(rows * heads * headDim);
  const group = heads / kvHeads;
  const kvStride = kvHeads * headDim;
  const scale = 1 / Math.sqrt(headDim);
  for (let m = 0; m < rows; m++) {
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / group);
      const keys = pastLen + m + 1;
      const scores = new Float64Array(keys);
      let max = -Infinity;
      for (let j = 0; j < keys; j++) {
        let s = 0;
        for (let d = 0; d < headDim; d++) s += q[(m * heads + h) * headDim + d] * k[j * kvStride + g * headDim + d];
        scores[j] = s * scale;
        max = Math.max(max, scores[j]);
      }
      let sum = 0;
      for (let j = 0; j < keys; j++) sum += (scores[j] = Math.exp(scores[j] - max));
      for (let d = 0; d < headDim; d++) {
        let acc = 0;
        for (let j = 0; j < keys; j++) acc += scores[j] * v[j * kvStride + g * headDim + d];
        out[(m * heads + h) * headDim + d] = acc / sum;
      }
    }
  }
  return out;
}

export const siluRef = (z: number): number => z / (1 + Math.exp(-z));
export const geluTanhRef = (z: number): number => 0.5 * z * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (z + 0.044715 * z ** 3)));

/** Per-row negative log-likelihood of `target` under softmax(logits[r]); 0 where target < 0. */
export function nllRef(logits: ArrayLike<number>, rows: number, vocab: number, targets: ArrayLike<number>): { nll: Float64Array; argmax: Int32Array } {
  const nll = new Float64Array(rows);
  const argmax = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < vocab; c++) {
      if (logits[r * vocab + c] > max) {
        max = logits[r * vocab + c];
        argmax[r] = c;
      }
    }
    let sum = 0;
    for (let c = 0; c < vocab; c++) sum += Math.exp(logits[r * vocab + c] - max);
    nll[r] = targets[r] >= 0 ? max + Math.log(sum) - logits[r * vocab + targets[r]] : 0;
  }
  return { nll, argmax };
}

/**
 * Per-row KL(P ‖ Q) in nats with P = softmax(reference[r]) and Q = softmax(logits[r]),
 * and whether both rows' argmax (lowest index on ties) is the same; both 0 where target < 0.
 */
export function klRef(reference: ArrayLike<number>, logits: ArrayLike<number>, rows: number, vocab: number, targets: ArrayLike<number>): { kl: Float64Array; agree: Int32Array } {
  const kl = new Float64Array(rows);
  const agree = new Int32Array(rows);
  const logSoftmax = (z: ArrayLike<number>, r: number): { logp: Float64Array; argmax: number } => {
    let max = -Infinity;
    let argmax = 0;
    for (let c = 0; c < vocab; c++) {
      if (z[r * vocab + c] > max) {
        max = z[r * vocab + c];
        argmax = c;
      }
    }
    let sum = 0;
    for (let c = 0; c < vocab; c++) sum += Math.exp(z[r * vocab + c] - max);
    const logp = new Float64Array(vocab);
    for (let c = 0; c < vocab; c++) logp[c] = z[r * vocab + c] - max - Math.log(sum);
    return { logp, argmax };
  };
  for (let r = 0; r < rows; r++) {
    if (targets[r] < 0) continue;
    const p = logSoftmax(reference, r);
    const q = logSoftmax(logits, r);
    let d = 0;
    for (let c = 0; c < vocab; c++) d += Math.exp(p.logp[c]) * (p.logp[c] - q.logp[c]);
    kl[r] = d;
    agree[r] = p.argmax === q.argmax ? 1 : 0;
  }
  return { kl, agree };
}

/** y[M, N] = x[M, K] · W[N, K]ᵀ (+ bias), float64. */
export function linearRef(x: ArrayLike<number>, rows: number, w: ArrayLike<number>, n: number, k: number, bias: ArrayLike<number> | null): Float64Array {
  const y = new Float64Array(rows * n);
  for (let m = 0; m < rows; m++) {
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j] : 0;
      for (let i = 0; i < k; i++) s += x[m * k + i] * w[j * k + i];
      y[m * n + j] = s;
    }
  }
  return y;
}

/**
 * A whole decoder forward pass on the CPU in float64, from canonical tensors
 * (see src/core/decoder.ts). Slow; for small test models only. Returns the
 * residual stream after the embeddings and after each block, the final norm's
 * output and the logits.
 */
export function decoderForwardRef(
  c: import('./decoder').DecoderConfig,
  tensor: (name: string) => Float32Array | null,
  ids: ArrayLike<number>,
  /** called with each block linear's input x[rows, k] (e.g. "layers.2.mlp.up") just before it is applied */
  capture?: (linear: string, input: Float64Array, rows: number) => void,
): { hidden: Float64Array[]; finalNorm: Float64Array; logits: Float64Array } {
  const rows = ids.length;
  const D = c.hiddenSize;
  const need = (name: string) => {
    const t = tensor(name);
    if (!t) throw new Error(`missing tensor ${name}`);
    return t;
  };
  const x = new Float64Array(rows * D);
  const tok = need('embed.tokens');
  const pos = c.positions === 'learned' ? need('embed.positions') : null;
  for (let m = 0; m < rows; m++) for (let d = 0; d < D; d++) x[m * D + d] = tok[ids[m] * D + d] + (pos ? pos[m * D + d] : 0);
  const hidden = [Float64Array.from(x)];
  const table = c.positions === 'rope' ? ropeTableFor(c, rows) : null;
  const lin = (name: string, input: Float64Array, n: number, k: number, bias: boolean) => {
    capture?.(name, input, rows);
    return linearRef(input, rows, need(`${name}.weight`), n, k, bias ? need(`${name}.bias`) : null);
  };
  for (let i = 0; i < c.numLayers; i++) {
    const p = `layers.${i}`;
    const norm = (name: string) => normRef(x, rows, D, need(`${p}.${name}.weight`), c.norm === 'layernorm' ? need(`${p}.${name}.bias`) : null, c.normEps, c.norm);
    let xn = norm('attn_norm');
    const Q = c.numHeads * c.headDim;
    const KV = c.numKvHeads * c.headDim;
    let q = lin(`${p}.attn.q`, xn, Q, D, c.attnBias);
    let k = lin(`${p}.attn.k`, xn, KV, D, c.attnBias);
    const v = lin(`${p}.attn.v`, xn, KV, D, c.attnBias);
    if (table) {
      q = ropeRef(q, rows, c.numHeads, c.headDim, 0, table);
      k = ropeRef(k, rows, c.numKvHeads, c.headDim, 0, table);
    }
    const att = attentionRef(q, k, v, rows, c.numHeads, c.numKvHeads, c.headDim, 0);
    const o = lin(`${p}.attn.o`, att, D, Q, c.attnOutBias);
    for (let j = 0; j < x.length; j++) x[j] += o[j];
    xn = norm('mlp_norm');
    const I = c.intermediateSize;
    let h: Float64Array;
    if (c.mlp === 'swiglu') {
      const g = lin(`${p}.mlp.gate`, xn, I, D, c.mlpBias);
      const u = lin(`${p}.mlp.up`, xn, I, D, c.mlpBias);
      h = g.map((z, j) => siluRef(z) * u[j]);
    } else {
      h = lin(`${p}.mlp.up`, xn, I, D, c.mlpBias).map(c.activation === 'gelu' ? geluErfRef : geluTanhRef);
    }
    const down = lin(`${p}.mlp.down`, h, D, I, c.mlpBias);
    for (let j = 0; j < x.length; j++) x[j] += down[j];
    hidden.push(Float64Array.from(x));
  }
  const finalNorm = normRef(x, rows, D, need('final_norm.weight'), c.norm === 'layernorm' ? need('final_norm.bias') : null, c.normEps, c.norm);
  const head = c.tiedEmbeddings ? tok : need('head.weight');
  const logits = linearRef(finalNorm, rows, head, c.vocabSize, D, null);
  return { hidden, finalNorm, logits };
}

/** Exact GELU, 0.5·z·(1 + erf(z/√2)), with a float64 erf (Abramowitz–Stegun 7.1.26 is not enough here). */
export function geluErfRef(z: number): number {
  return 0.5 * z * (1 + erf(z / Math.SQRT2));
}

/** erf to ~1e-15 by its Taylor series (small |x|) or continued fraction (large |x|). */
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax > 6) return Math.sign(x);
  if (ax < 2.5) {
    let sum = x, term = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc by Lentz's continued fraction
  let f = ax, C = ax, Dd = 0;
  for (let n = 1; n < 300; n++) {
    const an = n / 2;
    Dd = ax + an * Dd;
    Dd = 1 / Dd;
    C = ax + an / C;
    const delta = C * Dd;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}
