import { describe, expect, it } from 'vitest';
import type { MethodSpec, Result, RunMetrics } from '../../src/core/experiment';
import { CSV_COLUMNS, frontierPoints, frontierSvg, resultsCsv, seriesName } from '../../src/ui/plot';

function result(id: string, method: MethodSpec, ppl: number, bitsPerWeight: number, weightBytes: number, decode = 50): Result {
  const metrics: RunMetrics = {
    perplexity: ppl, perplexitySe: ppl / 50, meanNll: Math.log(ppl), meanNllSe: 0.01, meanNllSeByWindow: 0.01, nllSum: 100,
    bitsPerWeight, weightBytes, peakBytes: weightBytes * 1.5, peakByCategory: {}, quantizedParams: 5e6, totalParams: 6e6,
    prefillTokensPerSecond: 1234.5, decodeTokensPerSecond: decode, prefillGpuTokensPerSecond: null, decodeGpuTokensPerSecond: null,
  };
  return {
    id, spec: { model: { kind: 'embedded', id: 'qlab-llama-6m' }, method, eval: { protocol: 'gptq', windowLength: 128, windows: 1 } },
    status: 'done', createdAt: '2026-01-01T00:00:00Z',
    device: { vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader "Vulkan" <cpu>', features: [] },
    protocol: { protocol: 'gptq', windowLength: 128, windowsTotal: 3460, windows: 1, scoredTokens: 127, textTokens: 300000 },
    metrics, timing: { load: 1.5, evaluate: 2 }, kernels: [], windowNll: [1], methodReport: {},
  };
}

const rtn = (bits: 2 | 3 | 4 | 8, groupSize: number | 'row' = 128): MethodSpec => ({ id: 'rtn', bits, groupSize, symmetric: false });
const results: Result[] = [
  result('f32', { id: 'none' }, 20, 32, 24e6),
  result('w8', rtn(8), 20.1, 8.3, 9e6),
  result('w4', rtn(4), 22, 4.31, 6e6),
  result('w4row', rtn(4, 'row'), 25, 4.05, 6.1e6), // dominated by w4 on weight MB
  result('w2', rtn(2), 300, 2.3, 4.5e6),
];

/** The translate(x,y) of each point group, by data-id. */
function pointPositions(svg: string): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const m of svg.matchAll(/<g class="point[^"]*" data-id="([^"]+)"[^>]*transform="translate\(([-\d.]+),([-\d.]+)\)"/g)) out.set(m[1], [Number(m[2]), Number(m[3])]);
  return out;
}

function paretoVertices(svg: string): [number, number][] {
  const d = /<path class="pareto"[^>]* d="([^"]*)"/.exec(svg)?.[1] ?? '';
  return [...d.matchAll(/[ML]([-\d.]+),([-\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

/** Balanced tags, checked with a stack over every open/close tag. */
function expectWellFormed(svg: string): void {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    if (m[3]) continue;
    if (m[1]) expect(stack.pop()).toBe(m[2]);
    else stack.push(m[2]);
  }
  expect(stack).toEqual([]);
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  // no raw ampersands or angle brackets inside text
  expect(svg.replace(/&(amp|lt|gt|quot|#39);/g, '')).not.toMatch(/&/);
}

describe('frontierSvg', () => {
  const options = { x: 'weightMB' as const, y: 'perplexity' as const, width: 760, height: 420 };

  it('draws one point per finite result, and the frontier through exactly the Pareto points', () => {
    const svg = frontierSvg(results, options);
    expectWellFormed(svg);
    const points = pointPositions(svg);
    expect([...points.keys()].sort()).toEqual(['f32', 'w2', 'w4', 'w4row', 'w8']);
    const vertices = paretoVertices(svg);
    expect(vertices).toEqual(['w2', 'w4', 'w8', 'f32'].map((id) => points.get(id)));
    expect(/data-ids="([^"]*)"/.exec(svg)?.[1]).toBe('w2 w4 w8 f32');
    expect(svg.match(/data-frontier="true"/g)).toHaveLength(4);
  });

  it('uses a log y axis: equal ratios are equal distances', () => {
    const ratio = [result('a', rtn(4), 10, 4, 1e6), result('b', rtn(3), 100, 3, 2e6), result('c', rtn(2), 1000, 2, 3e6)];
    const p = pointPositions(frontierSvg(ratio, options));
    const [ya, yb, yc] = ['a', 'b', 'c'].map((id) => p.get(id)![1]);
    expect(Math.abs(ya - yb - (yb - yc))).toBeLessThan(0.05);
    expect(ya).toBeGreaterThan(yb);
  });

  it('labels the axes with the metric and the protocol, and has one series per method family', () => {
    const svg = frontierSvg(results, options);
    expect(svg).toContain('Weight memory (MB');
    expect(svg).toContain('>Perplexity (log scale)</tspan>');
    expect(svg).toContain('>WikiText-2 · gptq · seqlen 128 · 1 of 3,460 windows</tspan>');
    const series = [...svg.matchAll(/<g class="series" data-series="([^"]+)"/g)].map((m) => m[1]);
    expect(series).toEqual(['f32 baseline', 'RTN g128', 'RTN row']);
    expect(svg).toMatch(/>W4<\/text>/);
    expect(svg).toMatch(/>f32<\/text>/);
  });

  it('puts the full result summary in each point title, escaped', () => {
    const svg = frontierSvg(results, options);
    const title = /data-id="w4"[^>]*><title>([^<]*)<\/title>/.exec(svg)?.[1] ?? '';
    expect(title).toContain('qlab-llama-6m · RTN W4 g128');
    expect(title).toContain('Perplexity 22.00 ± 0.44');
    expect(title).toContain('4.31 bits/weight');
    expect(title).toContain('SwiftShader &quot;Vulkan&quot; &lt;cpu&gt;');
    expect(title).toContain('on the Pareto frontier');
  });

  it('leaves out results without finite coordinates and says so', () => {
    const failed: Result = { ...result('failed', rtn(3), 1, 1, 1), status: 'failed', metrics: null, error: 'device lost' };
    const inf = result('inf', rtn(2), Infinity, 2.3, 4e6);
    const stalled = result('stalled', rtn(3), 40, 3.3, 5e6, 0); // decode 0 tok/s → latency ∞
    const svg = frontierSvg([...results, failed, inf, stalled], { ...options, x: 'decodeLatencyMs' });
    expectWellFormed(svg);
    expect(pointPositions(svg).size).toBe(5);
    expect(svg).toContain('Not plotted: 3 results');
    expect(frontierPoints([failed, inf], 'weightMB').excluded.map((e) => e.id)).toEqual(['failed', 'inf']);
  });

  it('highlights the pinned result and draws it last in its series', () => {
    const svg = frontierSvg(results, { ...options, pinnedId: 'w8' });
    expect(svg.match(/class="point pinned"/g)).toHaveLength(1);
    expect(svg).toMatch(/class="point pinned" data-id="w8"/);
  });

  it('draws an empty plot and a single point without failing', () => {
    const empty = frontierSvg([], options);
    expectWellFormed(empty);
    expect(empty).toContain('No finished results to plot yet');
    const one = frontierSvg([results[0]], { ...options, x: 'bitsPerWeight' });
    expectWellFormed(one);
    expect(paretoVertices(one)).toHaveLength(1);
    for (const m of one.matchAll(/translate\(([-\d.]+),([-\d.]+)\)/g)) expect(Number.isFinite(Number(m[1])) && Number.isFinite(Number(m[2]))).toBe(true);
  });

  it('names method families', () => {
    expect(seriesName({ id: 'none' })).toBe('f32 baseline');
    expect(seriesName({ id: 'rtn', bits: 4, groupSize: 'row', symmetric: true, quantizeHead: true })).toBe('RTN row sym +head');
  });
});

describe('resultsCsv', () => {
  it('has the table columns and one row per result, numbers without separators', () => {
    const csv = resultsCsv(results.slice(0, 3));
    const lines = csv.trimEnd().split('\n');
    expect(lines[0]).toBe(CSV_COLUMNS.join(','));
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe('qlab-llama-6m,RTN W4 g128,gptq,128,"1 of 3,460 windows",22.00,0.44,4.31,6.00,9.00,1235,,50.0,,3.5,"SwiftShader ""Vulkan"" <cpu>",w4');
  });
});
