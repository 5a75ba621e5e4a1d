/**
 * A quantized KV cache inside the executor, on small random-weight models of
 * both families: each cached position is quantized on its own, so decoding
 * token by token (rows appended at their offsets) must give the NLLs of the
 * whole window run at once; the cost against the float64 forward with f32
 * keys and values is small at 8 bits; the ledger's 'kv' bytes are the format's.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { dawnDevice } from '../helpers/dawn';
import { randomF32, rng } from '../helpers/random';
import { canonicalTensors, type DecoderConfig } from '../../src/core/decoder';
import { decoderForwardRef, nllRef } from '../../src/core/reference';
import { kvBytesPerPosition, kvWordsPerRow, type KvCacheSpec } from '../../src/core/quant/kv';
import { MemoryLedger } from '../../src/gpu/ledger';
import { F32Linear } from '../../src/gpu/linear';
import { DecoderExecutor } from '../../src/gpu/model';

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
  for (const { name, shape } of canonicalTensors(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const scale = shape.length === 2 && !name.startsWith('embed') ? 1.5 / Math.sqrt(shape[1]) : name.endsWith('.bias') ? 0.1 : 0.5;
    t.set(name, randomF32(n, s++, scale).map((v) => (name.endsWith('norm.weight') ? 1 + 0.4 * v : v)));
  }
  return t;
}

let device: GPUDevice;
beforeAll(async () => {
  ({ device } = await dawnDevice());
});

const ROWS = 12;
const MAX_ROWS = 24;

for (const config of [llama, gpt2]) {
  describe(`${config.family}: quantized KV cache in the executor`, () => {
    for (const kv of [{ bits: 8, groupSize: 16 }, { bits: 4, groupSize: 8 }] as KvCacheSpec[]) {
      it(`int${kv.bits} g${kv.groupSize}: decode steps give the whole window's NLLs; the cost is the quantization's; the ledger holds the format's bytes`, async () => {
        const weights = randomModel(config, 7);
        const ledger = new MemoryLedger(device);
        const exec = await DecoderExecutor.load(device, ledger, config, async (n) => weights.get(n) ?? null, {
          maxRows: MAX_ROWS,
          kvCache: kv,
          linear: (name, w, n, k, bias) => new F32Linear(ledger, w, n, k, { bias: bias ?? undefined, label: name }),
        });
        const r = rng(3);
        const ids = Int32Array.from({ length: ROWS + 1 }, () => Math.floor(r() * config.vocabSize));
        const input = ids.slice(0, ROWS);
        const targets = ids.slice(1);
        const whole = await exec.forward(input, targets, 0);
        const steps = new Float32Array(ROWS);
        for (let i = 0; i < ROWS; i++) steps[i] = (await exec.forward(input.slice(i, i + 1), targets.slice(i, i + 1), i)).nll[0];
        for (let i = 0; i < ROWS; i++) expect(Math.abs(steps[i] - whole.nll[i]), `position ${i}`).toBeLessThan(2e-4);
        // against f32 keys and values (float64 reference forward)
        const ref = decoderForwardRef(config, (n) => weights.get(n) ?? null, input);
        const want = nllRef(ref.logits, ROWS, config.vocabSize, targets).nll;
        let worst = 0;
        for (let i = 0; i < ROWS; i++) worst = Math.max(worst, Math.abs(whole.nll[i] - want[i]));
        expect(worst).toBeLessThan(kv.bits === 8 ? 0.05 : 0.5); // random weights with wide activations: a sanity bound
        expect(worst).toBeGreaterThan(0); // the cache really is quantized
        const kvDim = config.numKvHeads * config.headDim;
        expect(ledger.snapshot().current.kv).toBe(config.numLayers * 2 * (MAX_ROWS * kvWordsPerRow(kvDim, kv.bits) * 4 + MAX_ROWS * (kvDim / kv.groupSize) * 4));
        expect(exec.kvBytesPerToken()).toBe(config.numLayers * kvBytesPerPosition(kvDim, kv));
        exec.destroy();
        expect(ledger.snapshot().currentTotal).toBe(0);
      });
    }
  });
}
