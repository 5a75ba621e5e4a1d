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
 * rest `lowBits`; each row set is quantized with the base method at the same
 * group size and kept as its own packed block (MixedLinear). The head and
 * embeddings stay f32.
 *
 * Base 'rtn': each row set rounded to nearest. Base 'gptq': the sequential
 * GPTQ pass of ./gptq.ts (calibration block by block, the Hessian of each
 * input as the block now is) with each linear's two row sets quantized by
 * gptqQuantize from the same Hessian — GPTQ's error feedback runs along a
 * row's columns, so rows split into sets lose nothing — and the mixed layer
 * put in place before the next group of linears sees its output.
 */
import { blockLinears, linearShape } from '../../core/decoder';
import type { MixllmMethodSpec } from '../../core/experiment';
import type { PackedLinear, QuantScheme } from '../../core/quant/format';
import { packMixed, rowSalience, selectHighRows, splitRows, takeRows, type MixedPacked } from '../../core/quant/mixllm';
import { HessianAccumulator, gptqQuantize } from '../../gpu/gptq';
import { MixedLinear } from '../../gpu/mixed-linear';
import type { LinearSite } from '../../gpu/model';
import { collectActivationStats, siteOf } from './act-stats';
import { CalibrationRun, defaultCalibration } from './calibration';
import type { MethodInput, QuantMethod } from './method';

/** The groups of linears sharing an input, in the order a block computes them (GPTQ's "true sequential"). */
const SEQUENCE: { site: LinearSite; linears: (swiglu: boolean) => string[] }[] = [
  { site: 'attn-in', linears: () => ['attn.q', 'attn.k', 'attn.v'] },
  { site: 'o-in', linears: () => ['attn.o'] },
  { site: 'mlp-in', linears: (swiglu) => (swiglu ? ['mlp.gate', 'mlp.up'] : ['mlp.up']) },
  { site: 'down-in', linears: () => ['mlp.down'] },
];

/** Every block linear as two row sets quantized by GPTQ, block by block on the calibration text. */
async function gptqMixed(input: MethodInput<MixllmMethodSpec>, chosen: Map<string, Uint8Array>, schemes: { high: QuantScheme; low: QuantScheme }): Promise<{ mixed: Map<string, MixedPacked>; loss: Record<string, number>; tokens: number }> {
  const { config: c, params, read, signal } = input;
  const run = await CalibrationRun.open(input.device!, c, read, input.calibrationTokens, params.calibration ?? defaultCalibration(c), signal);
  const mixed = new Map<string, MixedPacked>();
  const loss: Record<string, number> = {};
  try {
    for (let i = 0; i < c.numLayers; i++) {
      for (const step of SEQUENCE) {
        const linears = step.linears(c.mlp === 'swiglu');
        const k = linearShape(c, linears[0])[1];
        const hessian = new HessianAccumulator(run.ledger, k, `hessian layers.${i} ${step.site}`);
        try {
          await run.pass(i, (site, x, rows, encoder) => {
            if (site === step.site) hessian.add(encoder, x, rows);
          }, false);
          for (const l of linears) {
            const name = `layers.${i}.${l}`;
            const [n] = linearShape(c, l);
            const w = (await read(`${name}.weight`))!;
            let sum = 0;
            const m = await packMixedAsync(w, n, k, chosen.get(name)!, schemes, async (part, rows, scheme) => {
              const r = await gptqQuantize(run.ledger, part, rows, k, hessian, scheme, { signal });
              sum += r.loss;
              return r.packed;
            });
            mixed.set(name, m);
            loss[name] = sum;
            const bias = await read(`${name}.bias`);
            run.executor.replaceLinear(i, l, new MixedLinear(run.ledger, m, { bias: bias ?? undefined, label: `${name} (mixllm gptq)` }));
            input.onProgress?.({ stage: 'quantize', done: mixed.size, total: c.numLayers * blockLinears(c).length, item: `${name} loss ${sum.toPrecision(3)}` });
          }
        } finally {
          hessian.destroy();
        }
      }
      await run.advance(i);
    }
    return { mixed, loss, tokens: run.tokens };
  } finally {
    run.destroy();
  }
}

/** packMixed with an asynchronous quantizer (GPTQ on the GPU). */
async function packMixedAsync(
  w: Float32Array, n: number, k: number, high: Uint8Array, schemes: { high: QuantScheme; low: QuantScheme },
  quantize: (part: Float32Array, rows: number, scheme: QuantScheme) => Promise<PackedLinear>,
): Promise<MixedPacked> {
  const { rows, highCount } = splitRows(high);
  const part = async (idx: Uint32Array, scheme: QuantScheme) => (idx.length ? quantize(takeRows(w, k, idx), idx.length, scheme) : null);
  return { n, k, high: await part(rows.subarray(0, highCount), schemes.high), low: await part(rows.subarray(highCount), schemes.low), rows, highCount };
}

export const mixllm: QuantMethod<MixllmMethodSpec> = {
  id: 'mixllm',
  label: 'MixLLM',
  async prepare(input) {
    const { config: c, params, read, signal } = input;
    if (params.base !== 'rtn' && params.base !== 'gptq') throw new Error(`MixLLM's base quantizer "${params.base}" is not one of rtn, gptq`);
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
    const t1 = performance.now();
    const viaGptq = params.base === 'gptq' ? await gptqMixed(input, chosen, { high, low }) : null;
    const gptqSeconds = (performance.now() - t1) / 1000;
    return {
      read,
      quantize: () => null,
      layer(ledger, name, weight, n, k, bias) {
        signal?.throwIfAborted();
        const flags = chosen.get(name);
        if (!flags) return null;
        const packed = viaGptq ? viaGptq.mixed.get(name)! : packMixed(weight, n, k, flags, { high, low });
        const layer = new MixedLinear(ledger, packed, { bias: bias ?? undefined, label: name });
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
        ...(viaGptq ? { gptqLoss: viaGptq.loss } : {}),
        seconds: { calibrate: stats.seconds, salience: rankSeconds, ...(viaGptq ? { gptq: gptqSeconds } : {}) },
      },
    };
  },
};
