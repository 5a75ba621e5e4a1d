/**
 * ONNX export, checked in onnxruntime-web (Node, wasm backend, files from
 * node_modules): the embedded llama and gpt2 models quantized with RTN
 * (W4 g128 and W8 row) are exported and evaluated on a WikiText-2 slice with
 * the lab's gptq protocol.
 *
 *  - perplexity through ONNX Runtime vs the PyTorch reference numbers of the
 *    same quantized model (tests/fixtures/reference; the lab's GPU evaluation
 *    matches these, tests/gpu/reference-model.test.ts): first 2 windows of 512,
 *    within 0.5 %
 *  - logits of one short window vs src/core/reference.ts's float64 forward on
 *    the dequantized weights, and the perplexity of 2 windows of 128 from both
 *  - the MatMulNBits layout against the operator's documented packing, on a
 *    layer with odd shapes, for 2, 4 and 8 bits, symmetric and not
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { DecoderConfig } from '../../src/core/decoder';
import { evalWindows } from '../../src/core/protocols';
import { dequantize, type QuantBits } from '../../src/core/quant/format';
import { quantizeRtn } from '../../src/core/quant/rtn';
import { decoderForwardRef } from '../../src/core/reference';
import { perplexity } from '../../src/core/stats';
import { exportOnnx } from '../../src/export/onnx';
import { blockSizeFor, dequantizeMatMulNBits, toMatMulNBits } from '../../src/export/matmul-nbits';
import { createOnnxSession, onnxLogits, onnxPerplexity, windowNllFromLogits } from '../../src/export/onnx-verify';
import { nodeOrt } from '../../src/export/ort-node';
import { collectWeights, dequantizedTensors, modelReader, prepareWeights, type ExportWeights } from '../../src/export/weights';
import { loadModel, type LoadedModel } from '../../src/lab/load';
import { directorySource } from '../../src/lab/source-node';
import { modelDir, modelReference, wikitextText } from '../helpers/reference';
import { rng } from '../helpers/random';

// W4 g128 gets the longer checks; W8 row (blocks of 128 cut from whole rows) a shorter one, to keep the file fast
const schemes = [
  { key: 'w4_g128', bits: 4 as const, groupSize: 128 as const, ptWindows: 2, cpuWindows: 2, cpuLength: 128 },
  { key: 'w8_row', bits: 8 as const, groupSize: 'row' as const, ptWindows: 1, cpuWindows: 1, cpuLength: 64 },
];

describe('MatMulNBits layout', () => {
  it('block sizes are the largest power of two ≤ 128 dividing the group', () => {
    expect([32, 64, 96, 128, 256, 768].map(blockSizeFor)).toEqual([32, 64, 32, 128, 128, 128]);
  });

  for (const bits of [2, 4, 8] as QuantBits[]) {
    for (const symmetric of [false, true]) {
      it(`W${bits} ${symmetric ? 'sym' : 'asym'}: the documented layout dequantizes to our weights, codes untouched`, () => {
        const rand = rng(bits * 7 + (symmetric ? 1 : 0));
        const n = 5;
        const k = 96 * 3; // groups of 96 → blocks of 32, three per group
        const w = Float32Array.from({ length: n * k }, () => rand() * 2 - 1);
        const packed = quantizeRtn(w, n, k, { bits, groupSize: 96, symmetric });
        const m = toMatMulNBits(packed);
        expect(m.blockSize).toBe(32);
        expect(m.blocksPerRow).toBe(9);
        expect(m.b.length).toBe(n * 9 * ((32 * bits) / 8));
        expect(m.zeroPoints === null).toBe(symmetric);
        if (m.zeroPoints) expect(m.zeroPoints.length).toBe(n * Math.ceil((9 * bits) / 8));
        expect(Array.from(dequantizeMatMulNBits(m))).toEqual(Array.from(dequantize(packed)));
      });
    }
  }

  it('refuses 3-bit layers with a message', () => {
    const packed = quantizeRtn(new Float32Array(64).map((_, i) => Math.sin(i)), 2, 32, { bits: 3, groupSize: 32, symmetric: false });
    expect(() => toMatMulNBits(packed, 'layers.0.attn.q')).toThrow(/layers\.0\.attn\.q: 3-bit codes cannot be exported to ONNX/);
  });
});

const models = ['qlab-llama-6m', 'qlab-gpt2-6m'] as const;

describe.each(models)('%s exported to ONNX, run in onnxruntime-web', (name) => {
  let model: LoadedModel;
  let tokens: number[];
  const reference = modelReference(name);

  beforeAll(async () => {
    model = await loadModel(directorySource(modelDir(name)));
    // a prefix of the test text: its first 1,024 tokens are those of the whole text
    tokens = model.tokenizer!.encode(wikitextText().slice(0, 20_000)).slice(0, 1024);
    expect(tokens.slice(0, 512)).toEqual(reference.first_window_ids);
  });

  async function exported(bits: 4 | 8, groupSize: 128 | 'row'): Promise<{ weights: ExportWeights; bytes: Uint8Array }> {
    const prepared = await prepareWeights({ id: 'rtn', bits, groupSize, symmetric: false }, model.config, modelReader(model));
    const weights = await collectWeights(model.config, prepared);
    return { weights, bytes: exportOnnx(weights, { metadata: { method: `rtn w${bits}` } }) };
  }

  for (const s of schemes) {
    it(`RTN ${s.key}: perplexity of ${s.ptWindows} window(s) of 512 matches PyTorch's within 0.5 %; logits and perplexity of ${s.cpuWindows} × ${s.cpuLength} tokens match the CPU reference`, { timeout: 60_000 }, async () => {
      const { weights, bytes } = await exported(s.bits, s.groupSize);
      const c = model.config;

      // windows of 512 (gptq) against the PyTorch numbers of the same quantized model
      const ref = reference.rtn[s.key].gptq;
      const windows = [...evalWindows('gptq', tokens, { windowLength: 512, limit: s.ptWindows, vocabSize: c.vocabSize })];
      const onnx = await onnxPerplexity(bytes, c.vocabSize, windows, s.ptWindows, { ort: nodeOrt });
      const nll = ref.window_nll.slice(0, s.ptWindows).reduce((a, b) => a + b, 0);
      const count = ref.window_count.slice(0, s.ptWindows).reduce((a, b) => a + b, 0);
      expect(onnx.tokens).toBe(511 * s.ptWindows);
      expect(Math.abs(onnx.perplexity / Math.exp(nll / count) - 1)).toBeLessThan(0.005);
      for (let i = 0; i < s.ptWindows; i++) expect(Math.abs(onnx.windowNll[i] / ref.window_nll[i] - 1)).toBeLessThan(0.005);

      // short windows: ONNX Runtime against the float64 CPU forward on the dequantized weights
      const tensors = dequantizedTensors(weights);
      const refConfig: DecoderConfig = { ...c, tiedEmbeddings: false }; // the head is always given as head.weight
      const { ort, session } = await createOnnxSession(bytes, { ort: nodeOrt });
      const short = [...evalWindows('gptq', tokens, { windowLength: s.cpuLength, limit: s.cpuWindows, vocabSize: c.vocabSize })];
      const fromOnnx = [];
      const fromCpu = [];
      for (const w of short) {
        const logits = await onnxLogits(ort, session, w.inputIds);
        const cpu = decoderForwardRef(refConfig, (t) => tensors.get(t) ?? null, w.inputIds).logits;
        let maxDiff = 0;
        let maxAbs = 0;
        for (let i = 0; i < cpu.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(logits[i] - cpu[i]));
          maxAbs = Math.max(maxAbs, Math.abs(cpu[i]));
        }
        // float32 through 6 blocks against float64: a few 1e-4 of the logits' range
        expect(maxDiff).toBeLessThan(2e-3 * maxAbs);
        fromOnnx.push(windowNllFromLogits(logits, c.vocabSize, w.targets));
        fromCpu.push(windowNllFromLogits(Float32Array.from(cpu), c.vocabSize, w.targets));
      }
      await session.release();
      const pOnnx = perplexity(fromOnnx).perplexity;
      const pCpu = perplexity(fromCpu).perplexity;
      expect(Math.abs(pOnnx / pCpu - 1)).toBeLessThan(0.005);
    });
  }
});

describe.each(models)('%s exported with a KV cache', (name) => {
  it('a prefix then the rest with the returned keys/values gives the logits of one full pass', { timeout: 60_000 }, async () => {
    const model = await loadModel(directorySource(modelDir(name)));
    const c = model.config;
    const prepared = await prepareWeights({ id: 'rtn', bits: 4, groupSize: 128, symmetric: false }, c, modelReader(model));
    const weights = await collectWeights(c, prepared);
    const ids = model.tokenizer!.encode(wikitextText().slice(0, 2_000)).slice(0, 48);
    const plain = await createOnnxSession(exportOnnx(weights), { ort: nodeOrt });
    const cached = await createOnnxSession(exportOnnx(weights, { kvCache: true }), { ort: nodeOrt });
    const { ort } = cached;
    const hd = c.headDim;
    const feeds = (part: number[], past: Record<string, import('onnxruntime-web').Tensor> | null) => {
      const f: Record<string, import('onnxruntime-web').Tensor> = { input_ids: new ort.Tensor('int64', BigInt64Array.from(part.map(BigInt)), [1, part.length]) };
      for (let i = 0; i < c.numLayers; i++) {
        for (const kv of ['key', 'value']) {
          f[`past_key_values.${i}.${kv}`] = past ? past[`present.${i}.${kv}`] : new ort.Tensor('float32', new Float32Array(0), [1, c.numKvHeads, 0, hd]);
        }
      }
      return f;
    };
    const full = await onnxLogits(plain.ort, plain.session, ids);
    const all = await cached.session.run(feeds(ids, null));
    const first = await cached.session.run(feeds(ids.slice(0, 32), null));
    expect(first[`present.${c.numLayers - 1}.key`].dims).toEqual([1, c.numKvHeads, 32, hd]);
    const rest = await cached.session.run(feeds(ids.slice(32), first));
    expect(rest[`present.0.value`].dims).toEqual([1, c.numKvHeads, 48, hd]);
    const v = c.vocabSize;
    const allLogits = all.logits.data as Float32Array;
    const restLogits = rest.logits.data as Float32Array;
    let maxAbs = 0;
    let diffAll = 0;
    let diffRest = 0;
    for (let i = 0; i < full.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(full[i]));
      diffAll = Math.max(diffAll, Math.abs(allLogits[i] - full[i]));
    }
    for (let i = 0; i < 16 * v; i++) diffRest = Math.max(diffRest, Math.abs(restLogits[i] - full[32 * v + i]));
    expect(diffAll).toBeLessThan(1e-5 * maxAbs);
    expect(diffRest).toBeLessThan(1e-4 * maxAbs);
    await plain.session.release();
    await cached.session.release();
  });
});
