/**
 * HQQ behind the method interface: calibration-free, each linear quantized on
 * its own as the executor loads it (src/core/quant/hqq.ts: half-quadratic
 * zero-point refinement, the zero rounded to the format's u8 and the scale
 * re-solved, never worse than RTN per group). Runs on the CPU of whoever
 * loads the model (the worker in the page): about the cost of 10–20 RTN
 * passes, so a 1B model takes minutes, not hours (bench/calibrated.ts).
 */
import type { QuantScheme } from '../../core/quant/format';
import { quantizeHqq } from '../../core/quant/hqq';
import { quantizeRtn } from '../../core/quant/rtn';
import type { QuantMethod } from './method';

export interface HqqParams extends QuantScheme {
  quantizeHead?: boolean;
  quantizeEmbeddings?: boolean;
  /** most half-quadratic iterations per group (default 20) */
  iterations?: number;
}

export const hqq: QuantMethod<HqqParams> = {
  id: 'hqq',
  label: 'HQQ',
  async prepare({ params, read, onProgress, signal }) {
    const scheme: QuantScheme = { bits: params.bits, groupSize: params.groupSize, symmetric: params.symmetric };
    const layers: Record<string, { meanIterations: number; rtnGroups: number; groups: number; errorVsRtn: number }> = {};
    const seconds = { quantize: 0 };
    let done = 0;
    return {
      read,
      quantize(name, weight, n, k) {
        signal?.throwIfAborted();
        if (name === 'head' && !params.quantizeHead) return null;
        if (name === 'embed.tokens' && !params.quantizeEmbeddings) return null;
        // the embedding table and the head stay RTN, as for AWQ and GPTQ
        if (name === 'head' || name === 'embed.tokens') return quantizeRtn(weight, n, k, scheme);
        const t0 = performance.now();
        const { packed, stats } = quantizeHqq(weight, n, k, scheme, { iterations: params.iterations });
        seconds.quantize += (performance.now() - t0) / 1000;
        layers[name] = {
          meanIterations: stats.meanIterations,
          rtnGroups: stats.rtnGroups,
          groups: stats.groups,
          errorVsRtn: stats.rtnSquaredError > 0 ? stats.squaredError / stats.rtnSquaredError : 1,
        };
        onProgress?.({ stage: 'quantize', done: ++done, total: 0, item: name });
        return packed;
      },
      // filled while the executor loads (quantize is called per layer then)
      report: { method: 'hqq', p: 0.7, beta: 10, kappa: 1.01, iterations: params.iterations ?? 20, layers, seconds },
    };
  },
};
