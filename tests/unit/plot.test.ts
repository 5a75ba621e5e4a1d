import { describe, expect, it } from 'vitest';
import type { MethodSpec, Result, RunMetrics } from '../../src/core/experiment';
import { CSV_COLUMNS, frontierPoints, frontierSvg, pointLabel, resultsCsv, seriesName, seriesOf } from '../../src/ui/plot';

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
    // one series per method family: the bit widths of AWQ, GPTQ, HQQ and MixLLM's low rows join one series
    for (const id of ['awq', 'gptq', 'hqq'] as const) {
      expect(seriesName({ id, bits: 4, groupSize: 128, symmetric: false })).toBe(seriesName({ id, bits: 3, groupSize: 128, symmetric: false }));
      expect(seriesName({ id, bits: 4, groupSize: 128, symmetric: false })).not.toBe(seriesName({ id, bits: 4, groupSize: 64, symmetric: false }));
    }
    expect(seriesName({ id: 'gptq', bits: 4, groupSize: 128, symmetric: false, actOrder: true })).toBe('GPTQ g128 act-order');
    const mix = { id: 'mixllm', highBits: 8, lowBits: 4, highFraction: 0.1, base: 'gptq', groupSize: 128 } as const;
    expect(seriesName(mix)).toBe('MixLLM +10% W8 g128 GPTQ');
    expect(seriesName({ ...mix, lowBits: 3 })).toBe(seriesName(mix));
    expect(pointLabel({ id: 'awq', bits: 3, groupSize: 128, symmetric: false })).toBe('W3');
    // a quantized KV cache is a series of its own
    const rtn = { id: 'rtn', bits: 4, groupSize: 128, symmetric: false } as const;
    expect(seriesOf({ method: rtn })).toBe('RTN g128');
    expect(seriesOf({ method: rtn, kv: { bits: 8, groupSize: 32 } })).not.toBe(seriesOf({ method: rtn }));
    expect(seriesOf({ method: rtn, kv: { bits: 8, groupSize: 32 } })).not.toBe(seriesOf({ method: rtn, kv: { bits: 4, groupSize: 32 } }));
  });

  it('keeps legend entries apart, the frontier line among them', () => {
    const many = ['awq', 'gptq', 'hqq'].flatMap((id, i) => [4, 3].map((bits, j) => ({ ...results[0], id: `${id}-${bits}`, spec: { ...results[0].spec, method: { id, bits, groupSize: 128, symmetric: false } }, metrics: { ...results[0].metrics!, perplexity: 30 + i + j, weightBytes: 1e6 * (2 + i + j) } }))) as Result[];
    const svg = frontierSvg([...results, ...many], { x: 'weightMB', y: 'perplexity', width: 760, height: 420 });
    const items = [...svg.matchAll(/<g class="legend-item"[^>]*transform="translate\(([-\d.]+),([-\d.]+)\)"><(?:circle|line)[^>]*\/><text[^>]*>([^<]+)<\/text>/g)].map((m) => ({ x: Number(m[1]), y: Number(m[2]), text: m[3] }));
    expect(items.map((i) => i.text)).toContain('Pareto frontier');
    // items on one row are at least as far apart as the longer label needs (6.6 px a character + the marker)
    for (const a of items) for (const b of items) {
      if (a !== b && a.y === b.y && a.x < b.x) expect(b.x - a.x).toBeGreaterThanOrEqual(20 + 6 * a.text.length);
    }
    expect(new Set(items.map((i) => `${i.x},${i.y}`)).size).toBe(items.length);
  });
});

describe('resultsCsv', () => {
  it('has the table columns and one row per result, numbers without separators', () => {
    const csv = resultsCsv(results.slice(0, 3));
    const lines = csv.trimEnd().split('\n');
    expect(lines[0]).toBe(CSV_COLUMNS.join(','));
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe('qlab-llama-6m,RTN W4 g128,gptq,128,"1 of 3,460 windows",22.00,0.44,,,,4.31,6.00,9.00,1235,,50.0,,3.5,"SwiftShader ""Vulkan"" <cpu>",w4');
    expect(lines[0]).not.toContain('source');
  });

  it('has KL, its standard error and top-1 agreement where measured, empty where not', () => {
    const csv = resultsCsv([withKl(results[2], 0.0123456, 0.00042, 0.9731), withKl(results[1], 0.25, 0.01, 1), results[0]]);
    const [head, ...lines] = csv.trimEnd().split('\n').map((l) => l.replace(/"(?:[^"]|"")*"/g, 'quoted').split(','));
    const col = (name: string) => lines.map((l) => l[head.indexOf(name)]);
    expect(head.slice(5, 10)).toEqual(['perplexity', 'perplexity_se', 'kl_divergence', 'kl_se', 'top1_agreement']);
    expect(col('kl_divergence')).toEqual(['0.0123', '0.250', '']);
    expect(col('kl_se')).toEqual(['0.0004', '0.010', '']);
    expect(col('top1_agreement')).toEqual(['97.3', '100.0', '']);
  });

  it('adds a source column where a result was imported', () => {
    const imported = { ...results[2], source: '4090.json' };
    const lines = resultsCsv([results[0], imported]).trimEnd().split('\n');
    expect(lines[0]).toBe([...CSV_COLUMNS, 'source'].join(','));
    expect(lines[1].endsWith(',f32,')).toBe(true);
    expect(lines[2].endsWith(',w4,4090.json')).toBe(true);
  });
});

function withKl(r: Result, kl: number, se: number, top1: number): Result {
  return { ...r, metrics: { ...r.metrics!, klDivergence: kl, klStdError: se, top1Agreement: top1 } };
}

describe('frontierSvg with KL on the y axis', () => {
  const options = { x: 'weightMB' as const, y: 'klDivergence' as const, width: 760, height: 420 };
  const kl: Result[] = [
    results[0], // the f32 baseline: no KL against itself
    withKl(results[1], 0.001, 0.0001, 0.99),
    withKl(results[2], 0.01, 0.001, 0.95),
    withKl(results[4], 0.1, 0.01, 0.7),
    results[3], // not compared
  ];

  it('plots KL on a log scale and leaves out results without it, saying so', () => {
    const svg = frontierSvg(kl, options);
    expectWellFormed(svg);
    const p = pointPositions(svg);
    expect([...p.keys()].sort()).toEqual(['w2', 'w4', 'w8']);
    const [y8, y4, y2] = ['w8', 'w4', 'w2'].map((id) => p.get(id)![1]);
    expect(Math.abs(y8 - y4 - (y4 - y2))).toBeLessThan(0.05);
    expect(y8).toBeGreaterThan(y4);
    expect(svg).toContain('>KL to f32, nats (log scale)</tspan>');
    expect(svg).not.toContain('>Perplexity (log scale)');
    expect(svg).toContain('Not plotted: 2 results (no KL against f32; no KL against f32)');
    expect(frontierPoints(kl, 'weightMB', 'klDivergence').excluded.map((e) => e.id)).toEqual(['f32', 'w4row']);
    expect(/data-ids="([^"]*)"/.exec(svg)?.[1]).toBe('w2 w4 w8');
  });

  it('leaves out a KL of zero (no place on a log scale) and draws an empty plot without KL', () => {
    const zero = withKl(results[1], 0, 0, 1);
    expect(frontierPoints([zero], 'weightMB', 'klDivergence').points).toHaveLength(0);
    const none = frontierSvg(results, options);
    expectWellFormed(none);
    expect(pointPositions(none).size).toBe(0);
    expect(none).toContain('Not plotted: 5 results');
    // the perplexity axis is unchanged by KL
    expect(pointPositions(frontierSvg(kl, { ...options, y: 'perplexity' })).size).toBe(5);
  });

  it('shows KL and top-1 agreement in the point title', () => {
    const title = /data-id="w4"[^>]*><title>([^<]*)<\/title>/.exec(frontierSvg(kl, options))?.[1] ?? '';
    expect(title).toContain('KL to f32 0.0100 ± 0.0010 nats · top-1 agreement 95.0%');
  });
});

describe('total memory on the x axis', () => {
  it('adds the KV cache at the run window to the weights, and leaves out results that did not record it', () => {
    const withKv = (r: Result, perToken: number, context: number): Result => ({ ...r, metrics: { ...r.metrics!, kvBytesPerToken: perToken, kvContext: context } });
    const a = withKv(result('a', rtn(4), 30, 4.3, 3e6), 12_288, 512);
    const b = withKv(result('b', rtn(8), 25, 8.3, 6e6), 3_072, 512);
    const old = result('c', rtn(2), 80, 2.3, 2e6);
    const { points, excluded } = frontierPoints([a, b, old], 'totalMB');
    expect(points.map((p) => [p.id, p.x])).toEqual([
      ['b', (6e6 + 3_072 * 512) / 1e6],
      ['a', (3e6 + 12_288 * 512) / 1e6],
    ]);
    expect(excluded.map((e) => e.id)).toEqual(['c']);
    expect(frontierSvg([a, b, old], { x: 'totalMB', y: 'perplexity', width: 600, height: 400 })).toContain('weights + KV cache');
  });
});
