/**
 * The whole decoder executor against the float64 CPU forward pass, on small
 * random-weight models of both families (no PyTorch needed): hidden states
 * after every block, per-position NLL, argmax, and KV-cache decode steps that
 * must reproduce the full-window NLLs.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { dawnDevice } from '../helpers/dawn';
import { maxRelError, randomF32, rng } from '../helpers/random';
import type { DecoderConfig } from '../../src/core/decoder';
import { blockLinears, linearShape } from '../../src/core/decoder';
import { decoderForwardRef, nllRef } from '../../src/core/reference';
import { MemoryLedger } from '../../src/gpu/ledger';
import { F32Linear } from '../../src/gpu/linear';
import { DecoderExecutor } from '../../src/gpu/model';
import { QuantLinear } from '../../src/gpu/qlinear';
import { dequantize, quantizeRtn } from '../../src/core/quant/rtn';

const base = { ropeScaling: null, bosTokenId: 0, eosTokenId: 0, ropeTheta: 10000, normEps: 1e-5 };
const llama: DecoderConfig = {
  ...base, family: 'llama', vocabSize: 97, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16,
  intermediateSize: 96, maxPositions: 64, norm: 'rmsnorm', positions: 'rope', mlp: 'swiglu', activation: 'silu',
  attnBias: false, attnOutBias: false, mlpBias: false, tiedEmbeddings: false,
};
const gpt2: DecoderConfig = {
  ...base, family: 'gpt2', vocabSize: 101, hiddenSize: 48, numLayers: 2, numHeads: 3, numKvHeads: 3, headDim: 16,
  intermediateSize: 192, maxPositions: 64, norm: 'layernorm', positions: 'learned', mlp: 'gelu', activation: 'gelu_tanh',
  attnBias: true, attnOutBias: true, mlpBias: true, tiedEmbeddings: true,
};

function randomModel(c: DecoderConfig, seed: number): Map<string, Float32Array> {
  const t = new Map<string, Float32Array>();
  let s = seed;
  const add = (name: string, n: number, scale: number, offset = 0) => t.set(name, randomF32(n, s++, scale).map((v) => v + offset));
  const D = c.hiddenSize;
  add('embed.tokens', c.vocabSize * D, 1);
  if (c.positions === 'learned') add('embed.positions', c.maxPositions * D, 0.3);
  for (let i = 0; i < c.numLayers; i++) {
    for (const norm of ['attn_norm', 'mlp_norm']) {
      add(`layers.${i}.${norm}.weight`, D, 0.2, 1);
      if (c.norm === 'layernorm') add(`layers.${i}.${norm}.bias`, D, 0.1);
    }
    for (const l of blockLinears(c)) {
      const [n, k] = linearShape(c, l);
      add(`layers.${i}.${l}.weight`, n * k, 1.5 / Math.sqrt(k));
      if (c.attnBias || c.mlpBias) add(`layers.${i}.${l}.bias`, n, 0.1);
    }
  }
  add('final_norm.weight', D, 0.2, 1);
  if (c.norm === 'layernorm') add('final_norm.bias', D, 0.1);
  if (!c.tiedEmbeddings) add('head.weight', c.vocabSize * D, 1 / Math.sqrt(D));
  return t;
}

let device: GPUDevice;
beforeAll(async () => {
  ({ device } = await dawnDevice());
});

for (const config of [llama, gpt2]) {
  describe(`executor on a random ${config.family} model`, () => {
    const rows = 37;
    const tensors = randomModel(config, config.vocabSize);
    const r = rng(5);
    const ids = Int32Array.from({ length: rows }, () => Math.floor(r() * config.vocabSize));
    const targets = Int32Array.from({ length: rows }, (_, j) => (j + 1 < rows ? ids[j + 1] : -1));
    const ref = decoderForwardRef(config, (n) => tensors.get(n) ?? null, ids);
    const refNll = nllRef(ref.logits, rows, config.vocabSize, targets);

    async function load(ledger: MemoryLedger): Promise<DecoderExecutor> {
      return DecoderExecutor.load(device, ledger, config, async (n) => tensors.get(n) ?? null, {
        maxRows: 48,
        linear: (name, w, n, k, bias) => new F32Linear(ledger, w, n, k, { bias: bias ?? undefined, label: name }),
        headChunkRows: 16, // exercises the chunked head
      });
    }

    it('matches the CPU forward pass block by block, and frees all it allocated', async () => {
      const ledger = new MemoryLedger(device);
      const model = await load(ledger);
      const hidden = new Map<string, Float32Array>();
      const score = await model.forward(ids, targets, 0, (name, data) => hidden.set(name, data));
      for (let i = 0; i <= config.numLayers; i++) {
        expect(maxRelError(hidden.get(`hidden.${i}`)!, ref.hidden[i]), `hidden.${i}`).toBeLessThan(1e-5);
      }
      expect(maxRelError(hidden.get('final_norm')!, ref.finalNorm)).toBeLessThan(1e-5);
      for (let j = 0; j < rows; j++) expect(Math.abs(score.nll[j] - refNll.nll[j])).toBeLessThan(1e-4 * Math.max(1, refNll.nll[j]));
      expect(Array.from(score.argmax)).toEqual(Array.from(refNll.argmax));
      expect(model.weightBytes()).toBeGreaterThan(0);
      model.destroy();
      expect(ledger.snapshot().currentTotal).toBe(0);
    });

    it('decodes token by token with the KV cache to the same losses', async () => {
      const ledger = new MemoryLedger(device);
      const model = await load(ledger);
      const prefill = 20;
      const first = await model.forward(ids.slice(0, prefill), targets.slice(0, prefill), 0);
      for (let j = 0; j < prefill; j++) expect(Math.abs(first.nll[j] - refNll.nll[j])).toBeLessThan(1e-4 * Math.max(1, refNll.nll[j]));
      for (let pos = prefill; pos < rows - 1; pos++) {
        const step = await model.forward(ids.slice(pos, pos + 1), targets.slice(pos, pos + 1), pos);
        expect(Math.abs(step.nll[0] - refNll.nll[pos]), `position ${pos}`).toBeLessThan(1e-4 * Math.max(1, refNll.nll[pos]));
        expect(step.argmax[0]).toBe(refNll.argmax[pos]);
      }
      model.destroy();
    });
  });
}

describe('executor with a packed embedding table', () => {
  for (const config of [llama, { ...gpt2, hiddenSize: 64, headDim: 16, numHeads: 4, numKvHeads: 4, intermediateSize: 128 }]) {
    it(`${config.family} (${config.tiedEmbeddings ? 'tied: the head shares the packed table' : 'untied'}) matches the CPU forward on the dequantized table`, async () => {
      const tensors = randomModel(config, 77);
      const scheme = { bits: 4 as const, groupSize: 32, symmetric: false };
      const packed = quantizeRtn(tensors.get('embed.tokens')!, config.vocabSize, config.hiddenSize, scheme);
      const dequantized = new Map(tensors).set('embed.tokens', dequantize(packed));
      const rows = 29;
      const r = rng(9);
      const ids = Int32Array.from({ length: rows }, () => Math.floor(r() * config.vocabSize));
      const targets = Int32Array.from({ length: rows }, (_, j) => (j + 1 < rows ? ids[j + 1] : -1));
      const ref = decoderForwardRef(config, (n) => dequantized.get(n) ?? null, ids);
      const refNll = nllRef(ref.logits, rows, config.vocabSize, targets);
      const ledger = new MemoryLedger(device);
      const model = await DecoderExecutor.load(device, ledger, config, async (n) => tensors.get(n) ?? null, {
        maxRows: 32,
        linear: (name, w, n, k, bias) => new F32Linear(ledger, w, n, k, { bias: bias ?? undefined, label: name }),
        quantizeEmbedding: (w, n, k) => quantizeRtn(w, n, k, scheme),
        tiedHead: (table) => new QuantLinear(ledger, table, { label: 'head' }),
      });
      const hidden = new Map<string, Float32Array>();
      const score = await model.forward(ids, targets, 0, (name, data) => hidden.set(name, data));
      expect(maxRelError(hidden.get('hidden.0')!, ref.hidden[0])).toBeLessThan(1e-6);
      for (let j = 0; j < rows; j++) expect(Math.abs(score.nll[j] - refNll.nll[j])).toBeLessThan(1e-4 * Math.max(1, refNll.nll[j]));
      // Only the packed table holds the embedding: no f32 copy of it on the GPU
      // (it would add V·D·4 bytes; the packed table costs ~4.3/32 of that).
      const f32Table = config.vocabSize * config.hiddenSize * 4;
      const allF32 = [...tensors.values()].reduce((sum, t) => sum + t.length * 4, 0);
      expect(model.weightBytes()).toBeLessThan(allF32 - 0.6 * f32Table);
      expect(model.variants().some((v) => v.startsWith('head q4'))).toBe(config.tiedEmbeddings);
      model.destroy();
      expect(ledger.snapshot().currentTotal).toBe(0);
    });
  }
});
