/**
 * Atom-style W4A4 with outlier channels (Zhao et al. 2024) behind the method
 * interface. Per input site (q/k/v, o, gate/up, down) the input channels are
 * ordered by calibration activation magnitude (mean x² over the calibration
 * tokens, ./act-stats.ts); the first `outliers` stay int8 — weights and
 * activations — and the rest are int4 in groups of `groupSize`, activations
 * quantized per token on the fly (W4A4Linear). Weights are rounded to nearest
 * (Atom itself uses GPTQ for them). Where K − outliers is not a multiple of
 * the group size, the outlier count is raised to the next count that makes it
 * one; a layer where none fits stays f32 (both in the report).
 */
import { blockLinears } from '../../core/decoder';
import type { AtomMethodSpec } from '../../core/experiment';
import { outlierOrder, quantizeAtomRows } from '../../core/quant/atom';
import { W4A4Linear } from '../../gpu/w4a4-linear';
import { collectActivationStats, siteOf } from './act-stats';
import type { QuantMethod } from './method';

/** The outlier count used for K input channels: the request, raised so that K − outliers is a multiple of the group size; null if none fits. */
export function atomOutliers(k: number, requested: number, groupSize: number): number | null {
  const o = k - groupSize * Math.floor((k - Math.max(0, requested)) / groupSize);
  return o < k && o % 4 === 0 ? o : null;
}

export const atom: QuantMethod<AtomMethodSpec> = {
  id: 'atom',
  label: 'Atom W4A4',
  async prepare(input) {
    const { config: c, params, signal } = input;
    const stats = await collectActivationStats(input, params.calibration);
    const block = new Set(blockLinears(c));
    const outliersUsed: Record<string, number> = {};
    const keptF32: string[] = [];
    const orders = new Map<string, Uint32Array>();
    return {
      read: input.read,
      activationBits: 4,
      quantize: () => null,
      layer(ledger, name, weight, n, k, bias) {
        signal?.throwIfAborted();
        if (!block.has(name.replace(/^layers\.\d+\./, ''))) return null;
        const outliers = atomOutliers(k, params.outliers, params.groupSize);
        if (outliers === null) {
          keptF32.push(name);
          return null;
        }
        const site = siteOf(name);
        let perm = orders.get(site);
        if (!perm) orders.set(site, (perm = outlierOrder(stats.sites.get(site)!.meanSq, outliers)));
        outliersUsed[site] = outliers;
        const layer = new W4A4Linear(ledger, quantizeAtomRows(weight, n, k, perm, outliers, params.groupSize), perm, { bias, label: name });
        return { layer, packedBytes: layer.packedBytes };
      },
      report: {
        outliers: params.outliers,
        groupSize: params.groupSize,
        outliersUsed,
        keptF32,
        order: 'input channels by mean x² over the calibration tokens, largest first',
        weights: `int4 symmetric groups of ${params.groupSize} (round to nearest), outlier channels int8 per row`,
        activations: `int4 symmetric groups of ${params.groupSize} per token, outlier channels int8 per token, dynamic`,
        calibrationTokens: stats.tokens,
        calibration: stats.calibration,
        seconds: { calibrate: stats.seconds },
      },
    };
  },
};
