/**
 * The layer inspector on the real embedded model: the capture hook hands each
 * linear the input the float64 forward pass gives it, the relative output
 * errors order the bit widths as they must (W2 > W8 on every layer), the
 * histograms count every weight, the drawn grid holds the group's dequantized
 * values, and the two SVG pictures show what they claim.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalTensors } from '../../src/core/decoder';
import type { RtnMethodSpec } from '../../src/core/experiment';
import { dequantize, groupsPerRow } from '../../src/core/quant/format';
import { quantizeRtn } from '../../src/core/quant/rtn';
import { decoderForwardRef, normRef } from '../../src/core/reference';
import { groupGrid, histogram, inspectLayers, relativeError, type LayerInspection } from '../../src/lab/inspect';
import { loadModel, type LoadedModel } from '../../src/lab/load';
import { rtn } from '../../src/lab/methods/rtn';
import { directorySource } from '../../src/lab/source-node';
import { heatmapSvg, histogramSvg } from '../../src/ui/inspector-plot';

const dir = new URL('../../public/models/qlab-llama-6m/', import.meta.url).pathname;
const ROWS = 12;
let model: LoadedModel;
let ids: number[];
const byBits = new Map<number, LayerInspection>();

const read = (m: LoadedModel) => {
  const names = new Set(m.tensors.map((t) => t.canonical));
  return async (name: string) => (names.has(name) ? m.getTensor(name) : null);
};

beforeAll(async () => {
  model = await loadModel(directorySource(dir));
  const text = 'The quick brown fox jumps over the lazy dog, and the dog does not mind at all.';
  ids = model.tokenizer!.encode(text).slice(0, ROWS);
  const reader = read(model);
  for (const bits of [8, 2] as const) {
    const method: RtnMethodSpec = { id: 'rtn', bits, groupSize: 64, symmetric: false };
    const prepared = await rtn.prepare({ config: model.config, read: reader, params: method });
    byBits.set(bits, await inspectLayers({ model, method, read: reader, prepared, ids, rows: ROWS }));
  }
}, 60_000);

describe('the layer inspector', () => {
  it('captures each linear input of the float64 forward pass', async () => {
    const tensors = new Map<string, Float32Array>();
    for (const t of canonicalTensors(model.config)) tensors.set(t.name, await model.getTensor(t.name));
    const seen = new Map<string, Float64Array>();
    const out = decoderForwardRef(model.config, (n) => tensors.get(n) ?? null, ids, (name, x) => seen.set(name, x));
    const c = model.config;
    expect(seen.size).toBe(c.numLayers * 7);
    // attn.q of block 3 sees the attention norm of the residual stream after block 2
    const expected = normRef(out.hidden[3], ids.length, c.hiddenSize, tensors.get('layers.3.attn_norm.weight')!, null, c.normEps, c.norm);
    expect(Array.from(seen.get('layers.3.attn.q')!)).toEqual(Array.from(expected));
    expect(seen.get('layers.3.mlp.down')!.length).toBe(ids.length * c.intermediateSize);
  });

  it('measures ‖XWᵀ − XŴᵀ‖/‖XWᵀ‖ per layer, larger for fewer bits on every layer', () => {
    const w8 = byBits.get(8)!;
    const w2 = byBits.get(2)!;
    expect(w8.projections).toEqual(['attn.q', 'attn.k', 'attn.v', 'attn.o', 'mlp.gate', 'mlp.up', 'mlp.down']);
    expect(w8.error).toHaveLength(6);
    for (let l = 0; l < 6; l++) {
      for (let j = 0; j < 7; j++) {
        const [a, c] = [w8.error[l][j]!, w2.error[l][j]!];
        expect(a).toBeGreaterThan(0);
        expect(a).toBeLessThan(0.02);
        // 6 bits fewer: the step is 63 / 3 = 21 times coarser, the error many times larger
        expect(c).toBeGreaterThan(5 * a);
        expect(c).toBeLessThan(2);
      }
    }
  });

  it('counts every weight in both histograms and draws a grid that holds the group values', async () => {
    const w2 = byBits.get(2)!;
    expect(w2.histograms).toHaveLength(42);
    const h = w2.histograms.find((x) => x.name === 'layers.1.mlp.up')!;
    expect(h.before.reduce((a, b) => a + b, 0)).toBe(h.n * h.k);
    expect(h.after.reduce((a, b) => a + b, 0)).toBe(h.n * h.k);
    // after 2-bit quantization the weights sit on few values: most bins are empty
    expect(h.after.filter((c) => c > 0).length).toBeLessThan(h.before.filter((c) => c > 0).length);
    expect(h.grid).toHaveLength(4);
    // the grid is exactly the values that group's weights take after quantization
    const w = await model.getTensor('layers.1.mlp.up.weight');
    const packed = quantizeRtn(w, h.n, h.k, { bits: 2, groupSize: 64, symmetric: false });
    const wHat = dequantize(packed);
    const { row, group } = h.gridOf;
    const start = row * h.k + group * packed.groupSize;
    const values = new Set(Array.from(wHat.subarray(start, start + packed.groupSize)));
    for (const v of values) expect(h.grid).toContain(v);
    expect(groupGrid(packed, row, group)).toEqual(h.grid);
    expect(h.gridOf.scale).toBe(packed.scales[row * groupsPerRow(packed) + group]);
    expect(relativeError([3, 4], [3, 4])).toBe(0);
    expect(relativeError([3, 4], [0, 0])).toBe(1);
    expect(histogram([0, 0.5, 1], 0, 1, 2)).toEqual([1, 2]);
  });

  it('draws the heatmap cell by cell and the histogram with its grid lines', () => {
    const w4 = byBits.get(2)!;
    const svg = heatmapSvg(w4, 'layers.2.attn.v');
    expect(svg.match(/class="heat-cell/g)).toHaveLength(42);
    expect(svg.match(/class="heat-cell selected"/g)).toHaveLength(1);
    const cell = svg.match(/data-name="layers\.5\.mlp\.down"[^>]*data-error="([^"]+)"/);
    expect(Number(cell![1])).toBe(w4.error[5][6]);
    const h = w4.histograms[0];
    const hist = histogramSvg(h);
    expect(hist.match(/class="grid-line"/g)).toHaveLength(h.grid.filter((g) => g >= h.min && g <= h.max).length);
    expect(hist.match(/class="bar-before"/g)!.length).toBe(h.before.filter((c) => c > 0).length);
  });
});
