/**
 * AutoAWQ GEMM export: the layout against the format's documented packing
 * (AutoAWQ's WQLinear_GEMM.from_linear packs output column ORDER[i] of each 8
 * into bits [4i, 4i+4) with ORDER = [0, 2, 4, 6, 1, 3, 5, 7]; its
 * dequantize_gemm undoes that with the reverse order [0, 4, 1, 5, 2, 6, 3, 7])
 * on a hand-made 8-output example, and a round trip of the embedded llama
 * through our own reader.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseJsonObject } from '../../src/core/config';
import { familyFor } from '../../src/core/families';
import { dequantize, packCodes, type PackedLinear } from '../../src/core/quant/format';
import { f16BitsToF32, f32ToF16Bits, parseSafetensors } from '../../src/core/safetensors';
import { exportAutoAwq, f16Bytes32, toAwqGemm } from '../../src/export/autoawq';
import { readAutoAwq } from '../../src/export/autoawq-read';
import { collectWeights, modelReader, prepareWeights } from '../../src/export/weights';
import { loadModel, type LoadedModel } from '../../src/lab/load';
import { directorySource } from '../../src/lab/source-node';
import { modelDir } from '../helpers/reference';

const f16 = (v: number) => f16BitsToF32(f32ToF16Bits(v));
/** Byte equality of two typed arrays (fast on millions of elements). */
const sameBytes = (a: ArrayBufferView, b: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** AutoAWQ's dequantize_gemm, written from its description: unpack 8 slots per word, then take slot REVERSE[j] for column j. */
function awqDequantize(qweight: Int32Array, qzeros: Int32Array, scalesF16: Uint16Array, n: number, k: number, groupSize: number): Float32Array {
  const REVERSE = [0, 4, 1, 5, 2, 6, 3, 7];
  const slots = (words: Int32Array, rows: number) => {
    const out = new Uint8Array(rows * n);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < n / 8; c++) {
        const unpacked = Array.from({ length: 8 }, (_, s) => (words[r * (n / 8) + c] >> (4 * s)) & 0xf);
        for (let j = 0; j < 8; j++) out[r * n + c * 8 + j] = unpacked[REVERSE[j]];
      }
    }
    return out;
  };
  const iw = slots(qweight, k); // [K, N]
  const iz = slots(qzeros, k / groupSize); // [K/g, N]
  const w = new Float32Array(n * k); // back to W[N, K]
  for (let j = 0; j < k; j++) {
    const g = Math.floor(j / groupSize);
    for (let row = 0; row < n; row++) w[row * k + j] = (iw[j * n + row] - iz[g * n + row]) * f16BitsToF32(scalesF16[g * n + row]);
  }
  return w;
}

describe('AutoAWQ GEMM layout', () => {
  // 8 outputs × 64 inputs, groups of 32: code (n + k) mod 16, zero point 15 − n − g, scales exact in f16
  const n = 8;
  const k = 64;
  const q = Uint8Array.from({ length: n * k }, (_, i) => (Math.floor(i / k) + (i % k)) % 16);
  const { codes, wordsPerRow } = packCodes(q, n, k, 4);
  const zeros = Uint8Array.from({ length: n * 2 }, (_, i) => 15 - Math.floor(i / 2) - (i % 2));
  const scales = Float32Array.from({ length: n * 2 }, (_, i) => 2 ** -(i % 5) * (1 + (i % 3) / 4));
  const packed: PackedLinear = { n, k, bits: 4, groupSize: 32, symmetric: false, wordsPerRow, codes, scales, zeros };
  const awq = toAwqGemm(packed);

  it('qweight is [K, N/8] with columns 0,2,4,6,1,3,5,7 in the 4-bit slots', () => {
    expect(awq.qweight.length).toBe(k * (n / 8));
    // row k = 0 holds codes n = 0 … 7: slot i gets column ORDER[i] = 0,2,4,6,1,3,5,7
    expect(awq.qweight[0] >>> 0).toBe(0x75316420);
    // row k = 9: codes 9 … 16 mod 16 = 9,10,11,12,13,14,15,0
    expect(awq.qweight[9] >>> 0).toBe(0x0eca_fdb9);
  });

  it('qzeros is [K/g, N/8] packed the same way (negative int32 words included)', () => {
    expect(awq.qzeros.length).toBe(2);
    // group 0: zero points 15 − n = 15,14,…,8 → slots 15,13,11,9,14,12,10,8
    expect(awq.qzeros[0]).toBe(0x8ace9bdf | 0);
    expect(awq.qzeros[0]).toBeLessThan(0);
    expect(awq.qzeros[1] >>> 0).toBe(0x79bd8ace);
  });

  it('f16 conversion of tensors rounds as f32ToF16Bits does, edge cases included', () => {
    const rand = Array.from({ length: 20_000 }, (_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 13) - 6));
    const edge = [0, -0, 65504, 65520, 1e6, -1e6, 6.1e-5, 5.96e-8, 2.98e-8, 1e-9, Infinity, -Infinity, NaN, 1 + 2 ** -11, 1 + 3 * 2 ** -11];
    const values = Float32Array.from([...rand, ...edge]);
    const bytes = new DataView(f16Bytes32(values).buffer);
    for (let i = 0; i < values.length; i++) expect(bytes.getUint16(i * 2, true)).toBe(f32ToF16Bits(values[i]));
  });

  it('scales are f16 [K/g, N], and AutoAWQ\'s own dequantization gives our weights', () => {
    expect(awq.scales.length).toBe(2 * n);
    expect(f16BitsToF32(awq.scales[1 * n + 3])).toBe(scales[3 * 2 + 1]);
    expect(Array.from(awqDequantize(awq.qweight, awq.qzeros, awq.scales, n, k, 32))).toEqual(Array.from(dequantize(packed)));
  });
});

describe('qlab-llama-6m W4 g128 exported to AutoAWQ and read back', () => {
  let model: LoadedModel;
  const dir = modelDir('qlab-llama-6m');
  const sourceConfig = parseJsonObject(readFileSync(`${dir}/config.json`, 'utf8'), 'config.json');

  beforeAll(async () => {
    model = await loadModel(directorySource(dir), { tokenizer: false });
  });

  async function exported(symmetric: boolean, f16Scales: boolean) {
    const prepared = await prepareWeights({ id: 'rtn', bits: 4, groupSize: 128, symmetric }, model.config, modelReader(model));
    const quantize = prepared.quantize;
    // a method whose scales are already f16 values: the round trip must then be exact
    if (f16Scales) {
      prepared.quantize = (name, w, n, k) => {
        const p = quantize(name, w, n, k);
        return p && { ...p, scales: p.scales.map(f16) };
      };
    }
    const weights = await collectWeights(model.config, prepared);
    return { weights, files: exportAutoAwq(weights, familyFor('llama'), sourceConfig) };
  }

  it('round trip: identical packed layers and f16 float tensors; config carries quantization_config', { timeout: 60_000 }, async () => {
    const { weights, files } = await exported(false, true);
    expect(files.config.quantization_config).toEqual({ quant_method: 'awq', version: 'gemm', bits: 4, group_size: 128, zero_point: true, modules_to_not_convert: null });
    const header = parseSafetensors(files.safetensors, 'model.safetensors').header;
    expect(header.tensors.get('model.layers.0.mlp.down_proj.qweight')).toMatchObject({ dtype: 'I32', shape: [768, 256 / 8] });
    expect(header.tensors.get('model.layers.0.mlp.down_proj.qzeros')).toMatchObject({ dtype: 'I32', shape: [6, 256 / 8] });
    expect(header.tensors.get('model.layers.0.mlp.down_proj.scales')).toMatchObject({ dtype: 'F16', shape: [6, 256] });
    expect(header.tensors.has('model.layers.0.mlp.down_proj.weight')).toBe(false);

    const back = readAutoAwq(files.config, files.safetensors);
    expect(back.groupSize).toBe(128);
    expect(back.packed.size).toBe(6 * 7);
    for (const [i, block] of weights.blocks.entries()) {
      for (const [short, l] of Object.entries(block.linears)) {
        const read = back.packed.get(`layers.${i}.${short}`)!;
        const p = l.packed!;
        expect({ ...read, codes: null, scales: null, zeros: null }).toEqual({ ...p, codes: null, scales: null, zeros: null });
        expect(sameBytes(read.codes, p.codes) && sameBytes(read.scales, p.scales) && sameBytes(read.zeros!, p.zeros!)).toBe(true);
      }
    }
    const norm = weights.blocks[3].mlpNorm.weight;
    expect(Array.from(back.tensors.get('layers.3.mlp_norm.weight')!)).toEqual(Array.from(norm, f16));
    expect(Array.from(back.tensors.get('head.weight')!.subarray(0, 4096))).toEqual(Array.from(weights.head.weight!.subarray(0, 4096), f16));
  });

  it('symmetric layers come back with their zero point 8 stored and the same weights; f32 scales round to f16', { timeout: 60_000 }, async () => {
    const { weights, files } = await exported(true, false);
    const back = readAutoAwq(files.config, files.safetensors);
    const original = weights.blocks[1].linears['mlp.gate'].packed!;
    const read = back.packed.get('layers.1.mlp.gate')!;
    expect(read.zeros!.every((z) => z === 8)).toBe(true);
    expect(read.codes).toEqual(original.codes);
    expect(Array.from(read.scales)).toEqual(Array.from(original.scales, f16));
    const withF16 = { ...original, scales: original.scales.map(f16) };
    expect(Array.from(dequantize(read))).toEqual(Array.from(dequantize(withF16)));
  });

  it('refuses what AutoAWQ cannot hold, saying why', { timeout: 60_000 }, async () => {
    const w8 = await collectWeights(model.config, await prepareWeights({ id: 'rtn', bits: 8, groupSize: 128, symmetric: false }, model.config, modelReader(model)));
    expect(() => exportAutoAwq(w8, familyFor('llama'), sourceConfig)).toThrow(/4-bit weights only/);
    const head = await collectWeights(model.config, await prepareWeights({ id: 'rtn', bits: 4, groupSize: 128, symmetric: false, quantizeHead: true }, model.config, modelReader(model)));
    expect(() => exportAutoAwq(head, familyFor('llama'), sourceConfig)).toThrow(/keeps lm_head in f16/);
    const gpt2 = await loadModel(directorySource(modelDir('qlab-gpt2-6m')), { tokenizer: false });
    const g = await collectWeights(gpt2.config, await prepareWeights({ id: 'rtn', bits: 4, groupSize: 128, symmetric: false }, gpt2.config, modelReader(gpt2)));
    expect(() => exportAutoAwq(g, familyFor('gpt2'), {})).toThrow(/Conv1D|fused/);
  });
});
