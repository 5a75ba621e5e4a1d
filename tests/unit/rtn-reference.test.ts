/**
 * The TypeScript RTN quantizer against the one the PyTorch references used:
 * codes, scales (as float32 bit patterns) and zero points of probe rows must
 * match exactly, and the sums over the whole probe tensor too.
 */
import { describe, expect, it } from 'vitest';
import { dequantize, quantizeRtn, unpackCodes } from '../../src/core/quant/rtn';
import { loadModel } from '../../src/lab/load';
import { directorySource } from '../../src/lab/source-node';
import { EMBEDDED, modelDir, modelReference } from '../helpers/reference';

const hex = (v: number) => `0x${new Uint32Array(new Float32Array([v]).buffer)[0].toString(16).padStart(8, '0')}`;

for (const name of EMBEDDED) {
  describe(`RTN matches PyTorch bit for bit on ${name}`, async () => {
    const ref = modelReference(name);
    const model = await loadModel(directorySource(modelDir(name)), { tokenizer: false });
    // The probe is block 0's first projection: llama q_proj, GPT-2's fused c_attn (= q, k, v rows).
    const parts = model.config.family === 'gpt2' ? ['attn.q', 'attn.k', 'attn.v'] : ['attn.q'];
    const tensors = await Promise.all(parts.map((p) => model.getTensor(`layers.0.${p}.weight`)));
    const k = model.config.hiddenSize;
    const w = new Float32Array(tensors.reduce((s, t) => s + t.length, 0));
    let off = 0;
    for (const t of tensors) { w.set(t, off); off += t.length; }
    const n = w.length / k;

    for (const [cfg, r] of Object.entries(ref.rtn)) {
      it(cfg, () => {
        const packed = quantizeRtn(w, n, k, { bits: r.bits, groupSize: r.group ?? 'row', symmetric: false });
        const codes = unpackCodes(packed);
        const groups = packed.scales.length / n;
        r.probe.rows.forEach((row, i) => {
          expect(Array.from(codes.subarray(row * k, row * k + k))).toEqual(r.probe.codes[i]);
          expect(Array.from(packed.scales.subarray(row * groups, (row + 1) * groups), hex)).toEqual(r.probe.scale_f32_hex[i]);
          expect(Array.from(packed.zeros!.subarray(row * groups, (row + 1) * groups))).toEqual(r.probe.zero[i]);
        });
        expect(codes.reduce((s, c) => s + c, 0)).toBe(r.probe.codes_sum_all_rows);
        const deq = dequantize(packed);
        let sum = 0;
        for (const v of deq) sum += v;
        expect(Math.abs(sum - r.probe.dequant_sum_all_rows_f64)).toBeLessThan(1e-9 * Math.max(1, Math.abs(sum)) + 1e-9);
      });
    }
  });
}
