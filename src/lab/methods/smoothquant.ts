/**
 * SmoothQuant W8A8 (Xiao et al. 2023) behind the method interface.
 *
 * Statistics: max |x| per input channel of every linear's input, from the
 * float model on the calibration text (./act-stats.ts). Smoothing factors
 * s = max|X|^α / max|W|^(1−α) (src/core/quant/smoothquant.ts) per input site,
 * folded so the float model is unchanged:
 *   q/k/v input    ÷ s into the attention norm's weight (and bias), × s into q/k/v columns
 *   gate/up input  ÷ s into the MLP norm, × s into gate/up (GPT-2: up) columns
 *   o input        ÷ s into the rows of v, × s into o's columns; o's input channel h·d reads
 *                  v's channel g·d of its key/value group g, so a grouped-query model gets one
 *                  factor per v channel, from the maxima over the query heads sharing it
 *   down input     ÷ s into the rows of up (SwiGLU: silu(gate)·up is linear in up);
 *                  not smoothed in a GELU MLP (gelu(up) is not linear in up)
 * Then every block linear becomes int8 per output channel with dynamic
 * per-token int8 activations (W8A8Linear); the head and embeddings stay f32.
 */
import { blockLinears, linearShape, type DecoderConfig } from '../../core/decoder';
import type { SmoothQuantMethodSpec } from '../../core/experiment';
import { quantizeInt8Rows, scaleColumns, smoothingFactors, weightChannelMax } from '../../core/quant/smoothquant';
import type { TensorReader } from '../../gpu/model';
import { W8A8Linear } from '../../gpu/w8a8-linear';
import { collectActivationStats } from './act-stats';
import type { QuantMethod } from './method';

/**
 * The float model with SmoothQuant's smoothing folded in (see the header):
 * the reader returns every tensor as the smoothed model has it. `maxAbs`
 * gives max |x| per input channel of a site ("layers.3.attn-in"). The float
 * function of the model is unchanged (tests/unit/smoothquant.test.ts).
 */
export async function smoothingPlan(c: DecoderConfig, read: TensorReader, maxAbs: (site: string) => Float32Array, alpha: number): Promise<{ read: TensorReader; smoothing: string[] }> {
  /** factor per input column of a linear (× s), per row of a linear or norm vector (÷ s) */
  const columns = new Map<string, Float32Array>();
  const divide = new Map<string, Float32Array>();
  const mulInto = (map: Map<string, Float32Array>, name: string, s: Float32Array) => {
    const old = map.get(name);
    map.set(name, old ? old.map((v, j) => v * s[j]) : s);
  };
  const swiglu = c.mlp === 'swiglu';
  const hd = c.headDim;
  const group = c.numHeads / c.numKvHeads;
  for (let i = 0; i < c.numLayers; i++) {
    const p = `layers.${i}`;
    const weight = async (l: string) => {
      const w = await read(`${p}.${l}.weight`);
      if (!w) throw new Error(`the model has no tensor "${p}.${l}.weight"`);
      return w;
    };
    // q/k/v and gate/up: through the norm before them
    for (const [s, norm, linears] of [
      ['attn-in', 'attn_norm', ['attn.q', 'attn.k', 'attn.v']],
      ['mlp-in', 'mlp_norm', swiglu ? ['mlp.gate', 'mlp.up'] : ['mlp.up']],
    ] as const) {
      const wmax = new Float32Array(c.hiddenSize);
      for (const l of linears) weightChannelMax(await weight(l), ...linearShape(c, l), wmax);
      const f = smoothingFactors(maxAbs(`${p}.${s}`), wmax, alpha);
      for (const l of linears) mulInto(columns, `${p}.${l}`, f);
      mulInto(divide, `${p}.${norm}`, f);
    }
    // o: through the rows of v, one factor per v channel (shared by the query heads of its group)
    {
      const act = maxAbs(`${p}.o-in`);
      const wo = weightChannelMax(await weight('attn.o'), ...linearShape(c, 'attn.o'));
      const kvDim = c.numKvHeads * hd;
      const actKv = new Float32Array(kvDim);
      const wKv = new Float32Array(kvDim);
      for (let h = 0; h < c.numHeads; h++) {
        const g = Math.floor(h / group);
        for (let d = 0; d < hd; d++) {
          actKv[g * hd + d] = Math.max(actKv[g * hd + d], act[h * hd + d]);
          wKv[g * hd + d] = Math.max(wKv[g * hd + d], wo[h * hd + d]);
        }
      }
      const fKv = smoothingFactors(actKv, wKv, alpha);
      const fO = new Float32Array(c.numHeads * hd).map((_, j) => fKv[Math.floor(Math.floor(j / hd) / group) * hd + (j % hd)]);
      mulInto(columns, `${p}.attn.o`, fO);
      mulInto(divide, `${p}.attn.v`, fKv);
    }
    // down: through the rows of up, where the MLP is linear in up
    if (swiglu) {
      const f = smoothingFactors(maxAbs(`${p}.down-in`), weightChannelMax(await weight('mlp.down'), ...linearShape(c, 'mlp.down')), alpha);
      mulInto(columns, `${p}.mlp.down`, f);
      mulInto(divide, `${p}.mlp.up`, f);
    }
  }
  const smoothing = [
    'q/k/v via attn_norm',
    'gate/up via mlp_norm',
    `o via the rows of v${group > 1 ? ` (one factor per v channel, shared by its ${group} query heads)` : ''}`,
    swiglu ? 'down via the rows of up' : 'down: not smoothed (GELU between up and down)',
  ];
  const smoothedRead: TensorReader = async (name) => {
    const t = await read(name);
    if (!t) return t;
    const m = /^(.*)\.(weight|bias)$/.exec(name);
    if (!m) return t;
    const [, base, kind] = m;
    const col = kind === 'weight' ? columns.get(base) : undefined;
    const div = divide.get(base);
    if (!col && !div) return t;
    const out = t.slice();
    if (div) {
      // a norm's vector, or a linear's rows (weight) / entries (bias)
      const width = out.length / div.length;
      for (let r = 0; r < div.length; r++) for (let j = 0; j < width; j++) out[r * width + j] = Math.fround(out[r * width + j] / div[r]);
    }
    if (col) scaleColumns(out, out.length / col.length, col.length, col);
    return out;
  };
  return { read: smoothedRead, smoothing };
}

export const smoothquant: QuantMethod<SmoothQuantMethodSpec> = {
  id: 'smoothquant',
  label: 'SmoothQuant W8A8',
  async prepare(input) {
    const { config: c, params, read, signal } = input;
    const alpha = params.alpha ?? 0.5;
    const stats = await collectActivationStats(input, params.calibration);
    const t0 = performance.now();
    const plan = await smoothingPlan(c, read, (site) => {
      const s = stats.sites.get(site);
      if (!s) throw new Error(`no calibration statistics for ${site}`);
      return s.maxAbs;
    }, alpha);
    const block = new Set(blockLinears(c));
    const smoothSeconds = (performance.now() - t0) / 1000;
    return {
      read: plan.read,
      activationBits: 8,
      quantize: () => null,
      layer(ledger, name, weight, n, k, bias) {
        signal?.throwIfAborted();
        const short = name.replace(/^layers\.\d+\./, '');
        if (!block.has(short) || k % 4 !== 0) return null;
        const layer = new W8A8Linear(ledger, quantizeInt8Rows(weight, n, k), { bias, label: name });
        return { layer, packedBytes: layer.packedBytes };
      },
      report: {
        alpha,
        smoothing: plan.smoothing,
        weights: 'int8 per output channel, symmetric',
        activations: 'int8 per token, symmetric, dynamic',
        calibrationTokens: stats.tokens,
        calibration: stats.calibration,
        seconds: { calibrate: stats.seconds, smooth: smoothSeconds },
      },
    };
  },
};
