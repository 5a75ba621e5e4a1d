/**
 * AWQ (Lin et al., MLSys 2024) behind the method interface: calibration on
 * the GPU block by block (./calibration.ts), per block a search of the
 * activation-aware scale exponent α for each group of linears sharing an
 * input, the scales folded into what produces that input, a per-(row, group)
 * clipping search, then the shared packed format. The maths and the float64
 * references are in src/core/quant/awq.ts; the GPU searches in src/gpu/awq.ts.
 *
 * Groups, each with its own α (output error of the group's linears on the
 * calibration inputs):
 *   q, k, v   input: attention norm → 1/s folded into its weight (and bias)
 *   o         input: attention output → 1/s folded into v's rows (and bias);
 *             only where heads = kv heads (with grouped-query attention one
 *             v row feeds several heads, as in AWQ's own code this is skipped)
 *   gate, up  input: MLP norm → 1/s into its weight (and bias)
 *   down      input: silu(gate)·up → 1/s into up's rows (and bias); SwiGLU
 *             only: a GELU between up and down does not commute with a scale
 * Clipping is searched for every linear but q and k (as AWQ: their errors are
 * amplified by the attention's softmax). The float model is unchanged by the
 * folding; the quantized one sees X / s and Q(W · diag(s)).
 *
 * Sequential: block i is calibrated on the outputs of blocks 0 … i−1 already
 * quantized. Errors are measured on a strided subsample of `errorTokens` rows
 * (mean |x| uses every calibration token).
 */
import { blockLinears, linearShape, type DecoderConfig } from '../../core/decoder';
import { alphaGrid, awqScales, clipGrid, quantizeScaled } from '../../core/quant/awq';
import type { PackedLinear, QuantScheme } from '../../core/quant/format';
import { quantizeRtn } from '../../core/quant/rtn';
import { AwqSearch } from '../../gpu/awq';
import type { LinearSite } from '../../gpu/model';
import { QuantLinear } from '../../gpu/qlinear';
import { CalibrationRun, defaultCalibration, type CalibrationParams } from './calibration';
import type { MethodInput, PreparedWeights, QuantMethod } from './method';

export interface AwqParams extends QuantScheme {
  quantizeHead?: boolean;
  quantizeEmbeddings?: boolean;
  /** samples × tokens of calibration text; default defaultCalibration(config) */
  calibration?: CalibrationParams;
  /** points of the α grid 0, 1/n, …, (n−1)/n (default 20) */
  alphaPoints?: number;
  /** search clipping ratios (default true) */
  clip?: boolean;
  /** calibration rows the output errors are measured on (default 2048, at most all tokens) */
  errorTokens?: number;
}

interface Group {
  name: string;
  site: LinearSite;
  linears: string[];
}

function groupsOf(c: DecoderConfig): Group[] {
  const swiglu = c.mlp === 'swiglu';
  return [
    { name: 'qkv', site: 'attn-in', linears: ['attn.q', 'attn.k', 'attn.v'] },
    { name: 'o', site: 'o-in', linears: ['attn.o'] },
    { name: swiglu ? 'gate/up' : 'up', site: 'mlp-in', linears: swiglu ? ['mlp.gate', 'mlp.up'] : ['mlp.up'] },
    { name: 'down', site: 'down-in', linears: ['mlp.down'] },
  ];
}

const SITE_OF: Record<string, LinearSite> = {
  'attn.q': 'attn-in', 'attn.k': 'attn-in', 'attn.v': 'attn-in', 'attn.o': 'o-in',
  'mlp.gate': 'mlp-in', 'mlp.up': 'mlp-in', 'mlp.down': 'down-in',
};

export interface AwqBlockReport {
  /** α chosen per group ("qkv", "o", "gate/up", "down"); absent where the group is not scaled */
  alpha: Record<string, number>;
  /** output error at the chosen α relative to α = 0 (plain RTN), per group */
  lossRatio: Record<string, number>;
  /** mean clipping ratio per linear */
  clip: Record<string, number>;
}

export async function prepareAwq(input: MethodInput<AwqParams>): Promise<PreparedWeights> {
  const { config: c, params, read, signal, onProgress } = input;
  if (!input.device) throw new Error('AWQ runs its calibration on the GPU: the lab has no device to give it');
  const scheme: QuantScheme = { bits: params.bits, groupSize: params.groupSize, symmetric: params.symmetric };
  const calibration = params.calibration ?? defaultCalibration(c);
  const grid = alphaGrid(params.alphaPoints ?? 20);
  const ratios = clipGrid(0.5, 20);
  const seconds: Record<string, number> = { calibrate: 0, collect: 0, 'search α': 0, clip: 0, pack: 0, advance: 0 };
  let t0 = performance.now();
  const lap = (stage: string) => {
    const now = performance.now();
    seconds[stage] += (now - t0) / 1000;
    t0 = now;
  };
  const packed = new Map<string, PackedLinear>();
  const changed = new Map<string, Float32Array>();
  const blocks: AwqBlockReport[] = [];
  const run = await CalibrationRun.open(input.device, c, read, input.calibrationTokens, calibration, signal);
  lap('calibrate');
  const errorTokens = Math.min(params.errorTokens ?? 2048, run.tokens);
  const search = new AwqSearch(run.ledger);
  const names = blockLinears(c);
  const total = c.numLayers;
  try {
    for (let i = 0; i < c.numLayers; i++) {
      const prefix = `layers.${i}`;
      const progress = (item: string) => onProgress?.({ stage: 'quantize', done: i, total, item: `block ${i + 1}/${total}: ${item}` });
      progress('calibrate');
      const captures = await run.collect(i, ['attn-in', 'o-in', 'mlp-in', 'down-in'], errorTokens);
      lap('collect');
      const weights = new Map<string, Float32Array>();
      const biases = new Map<string, Float32Array | null>();
      for (const l of names) {
        const w = await read(`${prefix}.${l}.weight`);
        if (!w) throw new Error(`the model has no tensor "${prefix}.${l}.weight"`);
        weights.set(l, w);
        biases.set(l, await read(`${prefix}.${l}.bias`));
      }
      const gpuWeights = new Map<string, GPUBuffer>();
      const upload = (l: string) => {
        run.ledger.release(gpuWeights.get(l));
        gpuWeights.set(l, run.ledger.upload('scratch', weights.get(l)!, `awq ${prefix}.${l}`));
      };
      names.forEach(upload);
      const report: AwqBlockReport = { alpha: {}, lossRatio: {}, clip: {} };
      // input scale per linear (s of its group; null = 1)
      const inputScale = new Map<string, Float32Array | null>(names.map((l) => [l, null]));
      try {
        for (const group of groupsOf(c)) {
          if (group.name === 'o' && c.numKvHeads !== c.numHeads) continue;
          if (group.name === 'down' && c.mlp !== 'swiglu') continue;
          progress(`search α (${group.name})`);
          const cap = captures.get(group.site)!;
          const losses = await search.scaleLosses(cap.x, cap.rows, cap.k, group.linears.map((l) => ({ w: gpuWeights.get(l)!, n: linearShape(c, l)[0] })), cap.actMean, scheme, grid, signal);
          const best = losses.indexOf(Math.min(...losses));
          report.alpha[group.name] = grid[best];
          report.lossRatio[group.name] = losses[0] > 0 ? losses[best] / losses[0] : 1;
          const s = awqScales(cap.actMean, grid[best]);
          for (const l of group.linears) inputScale.set(l, s);
          // fold 1/s into what produces the input
          if (group.site === 'attn-in' || group.site === 'mlp-in') {
            const norm = `${prefix}.${group.site === 'attn-in' ? 'attn_norm' : 'mlp_norm'}`;
            const w = (changed.get(`${norm}.weight`) ?? (await read(`${norm}.weight`)))!.slice();
            for (let j = 0; j < w.length; j++) w[j] /= s[j];
            changed.set(`${norm}.weight`, w);
            const b = await read(`${norm}.bias`);
            if (b) changed.set(`${norm}.bias`, b.map((v, j) => v / s[j]));
          } else {
            const producer = group.site === 'o-in' ? 'attn.v' : 'mlp.up';
            const [n, k] = linearShape(c, producer);
            const w = weights.get(producer)!.slice();
            for (let r = 0; r < n; r++) for (let j = 0; j < k; j++) w[r * k + j] /= s[r];
            weights.set(producer, w);
            upload(producer);
            const b = biases.get(producer);
            if (b) biases.set(producer, b.map((v, r) => v / s[r]));
          }
          lap('search α');
        }
        for (const l of names) {
          const [n, k] = linearShape(c, l);
          const s = inputScale.get(l) ?? new Float32Array(k).fill(1);
          let clip: Float32Array | null = null;
          if ((params.clip ?? true) && l !== 'attn.q' && l !== 'attn.k') {
            progress(`clip ${l}`);
            const cap = captures.get(SITE_OF[l])!;
            clip = (await search.clipRatios(cap.x, cap.rows, k, gpuWeights.get(l)!, n, s, scheme, ratios, signal)).ratios;
            report.clip[l] = clip.reduce((a, b) => a + b, 0) / clip.length;
            lap('clip');
          }
          const p = quantizeScaled(weights.get(l)!, n, k, scheme, inputScale.get(l) ?? null, clip);
          packed.set(`${prefix}.${l}`, p);
          const bias = biases.get(l) ?? null;
          if (bias) changed.set(`${prefix}.${l}.bias`, bias);
          run.executor.replaceLinear(i, l, new QuantLinear(run.ledger, p, { bias: bias ?? undefined, label: `${prefix}.${l} (awq)` }));
          lap('pack');
        }
        for (const which of ['attn', 'mlp'] as const) {
          const norm = `${prefix}.${which}_norm`;
          const w = changed.get(`${norm}.weight`);
          if (w) run.executor.setNorm(i, which, w, changed.get(`${norm}.bias`) ?? null);
        }
      } finally {
        for (const b of gpuWeights.values()) run.ledger.release(b);
        for (const cap of captures.values()) run.ledger.release(cap.x);
      }
      progress('advance');
      await run.advance(i);
      lap('advance');
      blocks.push(report);
      onProgress?.({ stage: 'quantize', done: i + 1, total, item: `block ${i + 1}/${total} done` });
    }
  } finally {
    run.destroy();
  }
  return {
    read: async (name) => changed.get(name) ?? read(name),
    quantize(name, weight, n, k) {
      signal?.throwIfAborted();
      const p = packed.get(name.replace(/\.weight$/, ''));
      if (p) return p;
      if (name === 'head' && params.quantizeHead) return quantizeRtn(weight, n, k, scheme);
      if (name === 'embed.tokens' && params.quantizeEmbeddings) return quantizeRtn(weight, n, k, scheme);
      return null;
    },
    report: {
      method: 'awq',
      calibration: { samples: calibration.samples, length: calibration.length, tokens: run.tokens, errorTokens },
      alphaGrid: grid,
      clipGrid: ratios,
      blocks,
      seconds,
    },
  };
}

export const awq: QuantMethod<AwqParams> = {
  id: 'awq',
  label: 'AWQ',
  prepare: prepareAwq,
};
