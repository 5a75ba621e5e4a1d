/**
 * GPTQ (Frantar et al., ICLR 2023) behind the method interface: calibration
 * on the GPU block by block (./calibration.ts); in each block the groups of
 * linears that share an input are quantized in order — q/k/v, o, gate/up,
 * down ("true sequential") — each from the Hessian H = Σ xᵀx of its input as
 * the block now is (the groups before it already quantized), accumulated on
 * the GPU one sample at a time; then the block's output moves on to the next.
 * The algorithm itself (dampening, Cholesky, blocked column sweep with error
 * feedback, act-order with static groups) is src/gpu/gptq.ts.
 */
import { blockLinears, linearShape } from '../../core/decoder';
import type { PackedLinear, QuantScheme } from '../../core/quant/format';
import { quantizeRtn } from '../../core/quant/rtn';
import { HessianAccumulator, gptqQuantize } from '../../gpu/gptq';
import type { LinearSite } from '../../gpu/model';
import { QuantLinear } from '../../gpu/qlinear';
import { CalibrationRun, defaultCalibration, type CalibrationParams } from './calibration';
import type { MethodInput, PreparedWeights, QuantMethod } from './method';

export interface GptqParams extends QuantScheme {
  quantizeHead?: boolean;
  quantizeEmbeddings?: boolean;
  calibration?: CalibrationParams;
  /** columns by decreasing Hessian diagonal, static groups (default false) */
  actOrder?: boolean;
  /** λ as a fraction of mean diag H (default 0.01) */
  dampening?: number;
  /** lazy-batch columns (default 128) */
  blockSize?: number;
}

const SEQUENCE: { site: LinearSite; linears: (swiglu: boolean) => string[] }[] = [
  { site: 'attn-in', linears: () => ['attn.q', 'attn.k', 'attn.v'] },
  { site: 'o-in', linears: () => ['attn.o'] },
  { site: 'mlp-in', linears: (swiglu) => (swiglu ? ['mlp.gate', 'mlp.up'] : ['mlp.up']) },
  { site: 'down-in', linears: () => ['mlp.down'] },
];

export async function prepareGptq(input: MethodInput<GptqParams>): Promise<PreparedWeights> {
  const { config: c, params, read, signal, onProgress } = input;
  if (!input.device) throw new Error('GPTQ runs on the GPU: the lab has no device to give it');
  const scheme: QuantScheme = { bits: params.bits, groupSize: params.groupSize, symmetric: params.symmetric };
  const calibration = params.calibration ?? defaultCalibration(c);
  const seconds: Record<string, number> = { calibrate: 0, hessian: 0, quantize: 0, advance: 0 };
  let t0 = performance.now();
  const lap = (stage: string) => {
    const now = performance.now();
    seconds[stage] = (seconds[stage] ?? 0) + (now - t0) / 1000;
    t0 = now;
  };
  const packed = new Map<string, PackedLinear>();
  /** GPTQ's loss per linear, "layers.3.attn.q" → ½ Σ err² (per token) */
  const losses: Record<string, number> = {};
  const run = await CalibrationRun.open(input.device, c, read, input.calibrationTokens, calibration, signal);
  lap('calibrate');
  const total = c.numLayers * blockLinears(c).length;
  let done = 0;
  try {
    for (let i = 0; i < c.numLayers; i++) {
      for (const step of SEQUENCE) {
        const linears = step.linears(c.mlp === 'swiglu');
        const k = linearShape(c, linears[0])[1];
        onProgress?.({ stage: 'quantize', done, total, item: `block ${i + 1}/${c.numLayers}: Hessian of ${linears.join(', ')}` });
        const hessian = new HessianAccumulator(run.ledger, k, `hessian layers.${i} ${step.site}`);
        try {
          await run.pass(i, (site, x, rows, encoder) => {
            if (site === step.site) hessian.add(encoder, x, rows);
          }, false);
          lap('hessian');
          for (const l of linears) {
            const name = `layers.${i}.${l}`;
            onProgress?.({ stage: 'quantize', done, total, item: `block ${i + 1}/${c.numLayers}: ${l}` });
            const [n] = linearShape(c, l);
            const w = await read(`${name}.weight`);
            if (!w) throw new Error(`the model has no tensor "${name}.weight"`);
            const result = await gptqQuantize(run.ledger, w, n, k, hessian, scheme, { dampening: params.dampening, blockSize: params.blockSize, actOrder: params.actOrder, signal });
            for (const [stage, t] of Object.entries(result.seconds)) seconds[`gptq ${stage}`] = (seconds[`gptq ${stage}`] ?? 0) + t;
            packed.set(name, result.packed);
            losses[name] = result.loss;
            const bias = await read(`${name}.bias`);
            run.executor.replaceLinear(i, l, new QuantLinear(run.ledger, result.packed, { bias: bias ?? undefined, label: `${name} (gptq)` }));
            lap('quantize');
            onProgress?.({ stage: 'quantize', done: ++done, total, item: `block ${i + 1}/${c.numLayers}: ${l} loss ${result.loss.toPrecision(3)}` });
          }
        } finally {
          hessian.destroy();
        }
      }
      await run.advance(i);
      lap('advance');
    }
  } finally {
    run.destroy();
  }
  return {
    read,
    quantize(name, weight, n, k) {
      signal?.throwIfAborted();
      const p = packed.get(name);
      if (p) return p;
      if (name === 'head' && params.quantizeHead) return quantizeRtn(weight, n, k, scheme);
      if (name === 'embed.tokens' && params.quantizeEmbeddings) return quantizeRtn(weight, n, k, scheme);
      return null;
    },
    report: {
      method: 'gptq',
      calibration: { samples: calibration.samples, length: calibration.length, tokens: run.tokens },
      dampening: params.dampening ?? 0.01,
      actOrder: params.actOrder ?? false,
      loss: losses,
      seconds,
    },
  };
}

export const gptq: QuantMethod<GptqParams> = {
  id: 'gptq',
  label: 'GPTQ',
  prepare: prepareGptq,
};
