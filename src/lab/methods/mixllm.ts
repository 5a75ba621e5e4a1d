/**
 * MixLLM-style global mixed precision between output features (Zheng et al.
 * 2024) behind the method interface.
 *
 * Salience: MixLLM estimates each output feature's effect on the loss with
 * gradients; here the documented second-order proxy of
 * src/core/quant/mixllm.ts stands in — the error that quantizing the row adds
 * to its output feature, weighted by the calibration activations' mean x²
 * per input channel (from the float model, ./act-stats.ts), low width minus
 * high width. Every output row of every block linear is ranked on that one
 * scale across the whole model and the top `highFraction` get `highBits`, the
 * rest `lowBits`; each row set is quantized with the base method (RTN) at the
 * same group size and kept as its own packed block (MixedLinear). The head
 * and embeddings stay f32.
 */
import { blockLinears, linearShape } from '../../core/decoder';
import type { MixllmMethodSpec } from '../../core/experiment';
import type { QuantScheme } from '../../core/quant/format';
import { packMixed, rowSalience, selectHighRows } from '../../core/quant/mixllm';
import { MixedLinear } from '../../gpu/mixed-linear';
import { collectActivationStats, siteOf } from './act-stats';
import type { QuantMethod } from './method';

export const mixllm: QuantMethod<MixllmMethodSpec> = {
  id: 'mixllm',
  label: 'MixLLM',
  async prepare(input) {
    const { config: c, params, read, signal } = input;
    if (params.base !== 'rtn') {
      throw new Error(`MixLLM with ${params.base.toUpperCase()} as its base quantizer is not built yet: choose base 'rtn'`);
    }
    const symmetric = params.symmetric ?? false;
    const low: QuantScheme = { bits: params.lowBits, groupSize: params.groupSize, symmetric };
    const high: QuantScheme = { bits: params.highBits, groupSize: params.groupSize, symmetric };
    const stats = await collectActivationStats(input, params.calibration);
    const t0 = performance.now();
    const salience = new Map<string, Float64Array>();
    const names: string[] = [];
    for (let i = 0; i < c.numLayers; i++) {
      for (const l of blockLinears(c)) {
        signal?.throwIfAborted();
        const name = `layers.${i}.${l}`;
        const [n, k] = linearShape(c, l);
        const w = await read(`${name}.weight`);
        if (!w) throw new Error(`the model has no tensor "${name}.weight"`);
        salience.set(name, rowSalience(w, n, k, stats.sites.get(siteOf(name))!.meanSq, low, high));
        names.push(name);
      }
      input.onProgress?.({ stage: 'salience', done: i + 1, total: c.numLayers, item: `layers.${i}` });
    }
    const chosen = selectHighRows(salience, params.highFraction);
    const highRows: Record<string, number> = {};
    for (const [name, flags] of chosen) highRows[name] = flags.reduce((s, v) => s + v, 0);
    const rankSeconds = (performance.now() - t0) / 1000;
    return {
      read,
      quantize: () => null,
      layer(ledger, name, weight, n, k, bias) {
        signal?.throwIfAborted();
        const flags = chosen.get(name);
        if (!flags) return null;
        const layer = new MixedLinear(ledger, packMixed(weight, n, k, flags, { high, low }), { bias: bias ?? undefined, label: name });
        return { layer, packedBytes: layer.packedBytes };
      },
      report: {
        salience: 'Σ_j E[x_j²]·(w_ij − ŵ_ij)², low bits minus high bits (second-order proxy; calibration activations of the float model)',
        highFraction: params.highFraction,
        highBits: params.highBits,
        lowBits: params.lowBits,
        base: params.base,
        highRows,
        calibrationTokens: stats.tokens,
        calibration: stats.calibration,
        seconds: { calibrate: stats.seconds, salience: rankSeconds },
      },
    };
  },
};
