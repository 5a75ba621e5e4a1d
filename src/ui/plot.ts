/**
 * The frontier plot as a pure function: results → an SVG string. No DOM, so
 * the page ({@html}), the downloads and the CLI (`frontier.svg`) all draw the
 * same picture. Also the results' CSV, with the results table's columns.
 */
import { extent } from 'd3-array';
import { scaleLinear, scaleLog, scaleOrdinal } from 'd3-scale';
import { schemeTableau10 } from 'd3-scale-chromatic';
import { line } from 'd3-shape';
import { methodName, totalMemoryBytes, type ExperimentSpec, type MethodSpec, type Result, type RunMetrics } from '../core/experiment';
import { kvName } from '../core/quant/kv';
import { formatCount } from '../core/format';
import type { SourcedResult } from '../core/results-import';
import { groupBySeries, paretoFrontier, type ExcludedPoint, type ParetoPoint } from '../core/pareto';
import { modelLabel, resultRow } from './evaluate';

export type FrontierX = 'weightMB' | 'totalMB' | 'bitsPerWeight' | 'decodeLatencyMs';
export type FrontierY = 'perplexity' | 'klDivergence';

export interface FrontierOptions {
  x: FrontierX;
  y: FrontierY;
  width: number;
  height: number;
  /** the result drawn highlighted */
  pinnedId?: string | null;
}

export const X_AXES: Record<FrontierX, { label: string; short: string; value: (m: RunMetrics) => number; format: (v: number) => string }> = {
  weightMB: { label: 'Weight memory (MB, all weights as evaluated)', short: 'weight MB', value: (m) => m.weightBytes / 1e6, format: (v) => `${v.toFixed(2)} MB` },
  totalMB: {
    label: "Total memory (MB): weights + KV cache at the run's window length",
    short: 'weights + KV MB',
    // results from before the KV cache was recorded have no such number: left out (NaN), not drawn at weights alone
    value: (m) => (m.kvBytesPerToken === undefined ? Number.NaN : totalMemoryBytes(m) / 1e6),
    format: (v) => `${v.toFixed(2)} MB`,
  },
  bitsPerWeight: { label: 'Bits per weight (quantized layers, scales and zero points included)', short: 'bits per weight', value: (m) => m.bitsPerWeight, format: (v) => `${v.toFixed(2)} bits/weight` },
  decodeLatencyMs: { label: 'Decode latency (ms per token, wall clock)', short: 'decode latency', value: (m) => 1000 / m.decodeTokensPerSecond, format: (v) => `${v.toFixed(2)} ms/token` },
};

export const Y_AXES: Record<FrontierY, { label: string; short: string; value: (m: RunMetrics) => number | undefined; missing: string }> = {
  perplexity: { label: 'Perplexity (log scale)', short: 'Perplexity', value: (m) => m.perplexity, missing: 'no perplexity' },
  klDivergence: { label: 'KL to f32, nats (log scale)', short: 'KL divergence to f32', value: (m) => m.klDivergence, missing: 'no KL against f32' },
};

/**
 * The method family a result belongs to: its method without the bit width
 * ("RTN g128", "GPTQ g128 act-order", "MixLLM +10% W8 g128", "f32 baseline"),
 * so that one method's bit widths form one series.
 */
export function seriesName(m: MethodSpec): string {
  if (m.id === 'none') return 'f32 baseline';
  const g = 'groupSize' in m ? (m.groupSize === 'row' ? 'row' : `g${m.groupSize}`) : '';
  const options = (o: { symmetric?: boolean; quantizeHead?: boolean; quantizeEmbeddings?: boolean }) =>
    `${o.symmetric ? ' sym' : ''}${o.quantizeHead ? ' +head' : ''}${o.quantizeEmbeddings ? ' +embed' : ''}`;
  if (m.id === 'rtn' || m.id === 'awq' || m.id === 'hqq') return `${m.id.toUpperCase()} ${g}${options(m)}`;
  if (m.id === 'gptq') return `GPTQ ${g}${m.actOrder ? ' act-order' : ''}${options(m)}`;
  if (m.id === 'mixllm') return `MixLLM +${Math.round(m.highFraction * 1000) / 10}% W${m.highBits} ${g}${m.base === 'gptq' ? ' GPTQ' : ''}${m.symmetric ? ' sym' : ''}`;
  return methodName(m);
}

/** The series of a result: its method family, and its KV-cache format where the cache is quantized. */
export function seriesOf(spec: Pick<ExperimentSpec, 'method' | 'kv'>): string {
  return spec.kv ? `${seriesName(spec.method)} · ${kvName(spec.kv)}` : seriesName(spec.method);
}

/** What a point is labelled with: what varies inside its series (the bit width). */
export function pointLabel(m: MethodSpec): string {
  if (m.id === 'none') return 'f32';
  if (m.id === 'rtn' || m.id === 'awq' || m.id === 'gptq' || m.id === 'hqq') return `W${m.bits}`;
  if (m.id === 'mixllm') return `W${m.lowBits}`;
  return methodName(m);
}

const evaluationOf = (r: Result): string => `${r.protocol.protocol} · seqlen ${r.protocol.windowLength} · ${r.protocol.windows === r.protocol.windowsTotal ? 'all' : `${formatCount(r.protocol.windows)} of ${formatCount(r.protocol.windowsTotal)}`} windows`;

/**
 * The series key: the family, prefixed with model and evaluation where the
 * results mix them, and with the file it came from for an imported result.
 */
function seriesKeyFor(results: Result[]): (r: Result) => string {
  const models = new Set(results.map((r) => modelLabel(r.spec)));
  const evals = new Set(results.map(evaluationOf));
  return (r) =>
    [(r as SourcedResult).source ?? '', models.size > 1 ? modelLabel(r.spec) : '', evals.size > 1 ? `${r.protocol.protocol}/${r.protocol.windowLength}` : '', seriesOf(r.spec)]
      .filter(Boolean)
      .join(' · ');
}

/** The full summary of a result, one fact per line: the point's tooltip and the plot's info box. */
export function resultSummary(r: Result): string {
  const row = resultRow(r);
  const m = r.metrics;
  const lines = [`${row.model} · ${row.method}`];
  if (!m) return [...lines, `${r.status}${r.error ? `: ${r.error}` : ''}`].join('\n');
  lines.push(
    `Perplexity ${row.perplexity} ± ${row.perplexitySe} (${r.protocol.protocol}, ${row.windows} of ${row.windowLength} tokens)`,
    `${row.bitsPerWeight} bits/weight · ${row.weightMB} MB weights · ${row.peakMB} MB peak`,
    `Prefill ${row.prefill} tok/s${row.prefillGpu ? ` (GPU ${row.prefillGpu})` : ''} · decode ${row.decode} tok/s${row.decodeGpu ? ` (GPU ${row.decodeGpu})` : ''} · ${X_AXES.decodeLatencyMs.format(X_AXES.decodeLatencyMs.value(m))}`,
    `${row.device} · run took ${row.seconds}`,
  );
  if (row.klDivergence !== '–') lines.push(`KL to f32 ${row.klDivergence} ± ${row.klSe} nats${row.top1 !== '–' ? ` · top-1 agreement ${row.top1}%` : ''}`);
  if (row.source) lines.push(`imported from ${row.source}`);
  return lines.join('\n');
}

export interface FrontierPoint extends ParetoPoint {
  result: Result;
}

/**
 * The points to plot for an x and a y metric, the Pareto set among them, and
 * the results left out (no metrics, no value for y, or not positive on the log y axis).
 */
export function frontierPoints(results: Result[], x: FrontierX, y: FrontierY = 'perplexity'): { points: FrontierPoint[]; frontier: FrontierPoint[]; excluded: ExcludedPoint[] } {
  const noMetrics: ExcludedPoint[] = [];
  const candidates: FrontierPoint[] = [];
  for (const r of results) {
    if (!r.metrics) {
      noMetrics.push({ id: r.id, reason: `the run ${r.status === 'done' ? 'has no metrics' : r.status}` });
      continue;
    }
    const yv = Y_AXES[y].value(r.metrics);
    if (yv === undefined) noMetrics.push({ id: r.id, reason: Y_AXES[y].missing });
    else if (yv <= 0) noMetrics.push({ id: r.id, reason: `${Y_AXES[y].short} ${yv} is not on a log scale` });
    else candidates.push({ id: r.id, x: X_AXES[x].value(r.metrics), y: yv, result: r });
  }
  const { frontier, finite, excluded } = paretoFrontier(candidates);
  return { points: finite, frontier, excluded: [...noMetrics, ...excluded] };
}

const escapeXml = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const round = (v: number): number => Math.round(v * 100) / 100;

/** A domain with room around its points; a single value gets a window of its own. */
function padded([lo, hi]: [number, number], log: boolean): [number, number] {
  if (log) {
    const k = lo === hi ? 1.25 : Math.pow(hi / lo, 0.08);
    return [lo / k, hi * k];
  }
  const pad = lo === hi ? Math.max(Math.abs(lo) * 0.1, 1) : (hi - lo) * 0.08;
  return [Math.max(0, lo - pad), hi + pad];
}

const INK = '#1c1d1f';
const MUTED = '#61656b';
const GRID = '#e6e6e1';
const FRONTIER = '#d1495b';
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif";

/**
 * Perplexity (log scale) against a cost, one series per method family,
 * the Pareto frontier drawn through the non-dominated results.
 */
export function frontierSvg(results: Result[], options: FrontierOptions): string {
  const { width, height, pinnedId } = options;
  const xAxis = X_AXES[options.x];
  const yAxis = Y_AXES[options.y];
  const { points, frontier, excluded } = frontierPoints(results, options.x, options.y);
  const onFrontier = new Set(frontier.map((p) => p.id));
  const keyOf = seriesKeyFor(points.map((p) => p.result));
  // series in the order results came in, so a series keeps its colour as results are added
  const order = new Map(results.map((r, i) => [r.id, i]));
  const series = groupBySeries([...points].sort((a, b) => order.get(a.id)! - order.get(b.id)!), (p) => keyOf(p.result));
  const color = scaleOrdinal<string, string>(schemeTableau10).domain([...series.keys()]);

  const evals = [...new Set(points.map((p) => evaluationOf(p.result)))];
  const yProtocol = `WikiText-2 · ${evals.length === 1 ? evals[0] : 'mixed protocols'}`;
  const yLabel = `${yAxis.label} (${yProtocol})`;

  // legend: the series, then the frontier's line, in columns as wide as the longest label
  // (about 6.6 px a character at 12 px), at most four to a row
  const legendItems = [...series.keys()].map((key) => ({ key, text: key, frontier: false }));
  if (frontier.length) legendItems.push({ key: '', text: 'Pareto frontier', frontier: true });
  const marginX = { left: 78, right: 28 };
  const legendSpan = Math.max(10, width - marginX.left - marginX.right);
  const columnWidth = Math.max(120, 28 + 6.6 * Math.max(0, ...legendItems.map((i) => i.text.length)));
  const legendColumns = Math.max(1, Math.min(4, Math.floor(legendSpan / columnWidth)));
  const legendRows = Math.max(1, Math.ceil(legendItems.length / legendColumns));
  const margin = { ...marginX, top: 16 + legendRows * 18, bottom: 50 + (excluded.length ? 16 : 0) };
  const plotW = Math.max(10, width - margin.left - margin.right);
  const plotH = Math.max(10, height - margin.top - margin.bottom);

  const xLog = options.x === 'bitsPerWeight';
  const xExtent = (extent(points, (p) => p.x) as [number, number] | [undefined, undefined]);
  const yExtent = (extent(points, (p) => p.y) as [number, number] | [undefined, undefined]);
  const xDomain = xExtent[0] === undefined ? ([1, 10] as [number, number]) : padded(xExtent as [number, number], xLog);
  const yDomain = yExtent[0] === undefined ? (options.y === 'perplexity' ? ([1, 100] as [number, number]) : ([0.001, 1] as [number, number])) : padded(yExtent as [number, number], true);
  const x = xLog ? scaleLog().base(2).domain(xDomain).range([0, plotW]) : scaleLinear().domain(xDomain).range([0, plotW]).nice();
  const y = scaleLog().domain(yDomain).range([plotH, 0]);

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" class="frontier-plot" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${escapeXml(FONT)}" font-size="12" role="img" aria-label="${escapeXml(`${yLabel} against ${xAxis.short}`)}">`);
  out.push(`<title>${escapeXml(`Perplexity against ${xAxis.short}: ${points.length} result${points.length === 1 ? '' : 's'}, ${frontier.length} on the Pareto frontier`)}</title>`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);

  out.push('<g class="legend">');
  legendItems.forEach((item, i) => {
    const lx = round(margin.left + (i % legendColumns) * (legendSpan / legendColumns));
    const ly = 14 + Math.floor(i / legendColumns) * 18;
    out.push(
      item.frontier
        ? `<g class="legend-item" transform="translate(${lx},${ly})"><line x1="-6" x2="14" stroke="${FRONTIER}" stroke-width="2.5" stroke-dasharray="6 3"/><text x="20" dy="0.32em" fill="${INK}">Pareto frontier</text></g>`
        : `<g class="legend-item" data-series="${escapeXml(item.key)}" transform="translate(${lx},${ly})"><circle r="5" fill="${color(item.key)}"/><text x="10" dy="0.32em" fill="${INK}">${escapeXml(item.text)}</text></g>`,
    );
  });
  out.push('</g>');

  out.push(`<g class="plot-area" transform="translate(${margin.left},${margin.top})">`);
  // y axis: grid lines, ticks, label
  const yTicks = y.ticks(6);
  const yTickValues = yTicks.length > 8 ? yTicks.filter((_, i) => i % Math.ceil(yTicks.length / 8) === 0) : yTicks;
  const yFormat = y.tickFormat(Infinity, '~r');
  out.push('<g class="axis y-axis">');
  for (const t of yTickValues) {
    const ty = round(y(t));
    out.push(`<g class="tick" transform="translate(0,${ty})"><line x2="${round(plotW)}" stroke="${GRID}"/><line x1="-5" stroke="${MUTED}"/><text x="-8" dy="0.32em" text-anchor="end" fill="${MUTED}">${escapeXml(yFormat(t))}</text></g>`);
  }
  out.push(`<line y2="${round(plotH)}" stroke="${MUTED}"/>`);
  // two lines: the metric, then how it was measured
  out.push(
    `<text class="axis-label" transform="translate(${-margin.left + 14},${round(plotH / 2)}) rotate(-90)" text-anchor="middle" fill="${INK}">` +
      `<tspan x="0">${escapeXml(yAxis.label)}</tspan><tspan x="0" dy="1.25em" font-size="10.5" fill="${MUTED}">${escapeXml(yProtocol)}</tspan></text>`,
  );
  out.push('</g>');

  // x axis
  const xTickValues = xLog ? x.ticks(6).filter((t, i, all) => all.length <= 8 || Number.isInteger(Math.log2(t))) : x.ticks(Math.max(2, Math.floor(plotW / 90)));
  const xFormat = xLog ? (v: number) => String(round(v)) : x.tickFormat(Math.max(2, Math.floor(plotW / 90)));
  out.push(`<g class="axis x-axis" transform="translate(0,${round(plotH)})">`);
  out.push(`<line x2="${round(plotW)}" stroke="${MUTED}"/>`);
  for (const t of xTickValues) {
    out.push(`<g class="tick" transform="translate(${round(x(t))},0)"><line y2="5" stroke="${MUTED}"/><text y="18" text-anchor="middle" fill="${MUTED}">${escapeXml(xFormat(t))}</text></g>`);
  }
  out.push(`<text class="axis-label" x="${round(plotW / 2)}" y="40" text-anchor="middle" fill="${INK}">${escapeXml(xAxis.label)}</text>`);
  out.push('</g>');

  // the Pareto frontier, under the points
  if (frontier.length) {
    const path = line<FrontierPoint>().x((p) => round(x(p.x))).y((p) => round(y(p.y)))(frontier) ?? '';
    out.push(`<path class="pareto" data-ids="${escapeXml(frontier.map((p) => p.id).join(' '))}" d="${path}" fill="none" stroke="${FRONTIER}" stroke-width="2.5" stroke-dasharray="6 3" stroke-linejoin="round" opacity="0.9"/>`);
  }

  // points, one group per series; pinned last so it draws on top
  for (const [key, group] of series) {
    out.push(`<g class="series" data-series="${escapeXml(key)}">`);
    for (const p of [...group].sort((a, b) => Number(a.id === pinnedId) - Number(b.id === pinnedId))) {
      const pinned = p.id === pinnedId;
      const front = onFrontier.has(p.id);
      out.push(
        `<g class="point${pinned ? ' pinned' : ''}" data-id="${escapeXml(p.id)}" data-frontier="${front}" transform="translate(${round(x(p.x))},${round(y(p.y))})" cursor="pointer">` +
          `<title>${escapeXml(`${resultSummary(p.result)}\n${xAxis.format(p.x)}${front ? ' · on the Pareto frontier' : ''}`)}</title>` +
          (pinned ? `<circle r="11" fill="none" stroke="${INK}" stroke-width="2"/>` : '') +
          `<circle r="${front ? 6 : 5}" fill="${color(key)}" stroke="${front ? FRONTIER : '#ffffff'}" stroke-width="${front ? 2 : 1.5}"/>` +
          `<text x="9" y="-8" fill="${INK}" font-size="11"${pinned ? ' font-weight="700"' : ''}>${escapeXml(pointLabel(p.result.spec.method))}</text>` +
          `</g>`,
      );
    }
    out.push('</g>');
  }
  if (points.length === 0) out.push(`<text x="${round(plotW / 2)}" y="${round(plotH / 2)}" text-anchor="middle" fill="${MUTED}">No finished results to plot yet</text>`);
  out.push('</g>');

  if (excluded.length) {
    out.push(`<text class="excluded" x="${margin.left}" y="${height - 8}" fill="${MUTED}" font-size="11">${escapeXml(`Not plotted: ${excluded.length} result${excluded.length === 1 ? '' : 's'} (${excluded.map((e) => e.reason).join('; ')})`)}</text>`);
  }
  out.push('</svg>');
  return out.join('\n');
}

// ------------------------------------------------------------------ CSV

/**
 * The results table's columns, in its order. kl_divergence and kl_se are in
 * nats, top1_agreement in percent (as the table shows them), empty where not measured.
 */
export const CSV_COLUMNS = ['model', 'method', 'protocol', 'window_length', 'windows', 'perplexity', 'perplexity_se', 'kl_divergence', 'kl_se', 'top1_agreement', 'bits_per_weight', 'weight_mb', 'peak_mb', 'prefill_tok_s', 'prefill_gpu_tok_s', 'decode_tok_s', 'decode_gpu_tok_s', 'seconds', 'device', 'id'] as const;

const csvCell = (v: string): string => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
/** Table numbers without thousands separators; "–" (not measured) as empty. */
const csvNumber = (v: string | null): string => (v === null || v === '–' ? '' : v.replace(/,/g, ''));

/**
 * The results as CSV, one row per result with the values the table shows;
 * a last `source` column (the file an imported result came from) where any result has one.
 */
export function resultsCsv(results: Result[]): string {
  const withSource = results.some((r) => (r as SourcedResult).source);
  const rows = results.map((r) => {
    const row = resultRow(r);
    return [
      row.model, row.method, row.protocol, String(row.windowLength), row.windows,
      csvNumber(row.perplexity), csvNumber(row.perplexitySe), csvNumber(row.klDivergence), csvNumber(row.klSe), csvNumber(row.top1), csvNumber(row.bitsPerWeight), csvNumber(row.weightMB), csvNumber(row.peakMB),
      csvNumber(row.prefill), csvNumber(row.prefillGpu), csvNumber(row.decode), csvNumber(row.decodeGpu),
      Object.values(r.timing).reduce((sum, t) => sum + t, 0).toFixed(1), row.device, row.id,
      ...(withSource ? [row.source ?? ''] : []),
    ].map(csvCell).join(',');
  });
  return [[...CSV_COLUMNS, ...(withSource ? ['source'] : [])].join(','), ...rows].join('\n') + '\n';
}
