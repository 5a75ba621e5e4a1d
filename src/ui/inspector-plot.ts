/**
 * The layer inspector's two pictures as pure functions → SVG strings (d3
 * scales, no DOM), like the frontier plot: a heatmap of each block linear's
 * relative output error (layers × projections), and one layer's weight
 * histogram before and after quantization with one group's quantization
 * grid drawn over it.
 */
import { max as d3max, min as d3min } from 'd3-array';
import { scaleBand, scaleLinear, scaleSequentialLog } from 'd3-scale';
import { interpolateYlOrRd } from 'd3-scale-chromatic';
import type { LayerHistogram, LayerInspection } from '../worker/api';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const FONT = 'font-family="system-ui, sans-serif"';

/** "0.8 %", "12 %", "0.03 %": a relative error as a percentage with two significant figures. */
export function formatRelativeError(e: number): string {
  const pct = e * 100;
  if (pct >= 10) return `${pct.toFixed(0)} %`;
  if (pct >= 1) return `${pct.toFixed(1)} %`;
  return `${pct.toPrecision(2)} %`;
}

/** The heatmap: one row per layer, one column per projection, colour = relative error (log scale). */
export function heatmapSvg(inspection: LayerInspection, selected: string | null, width = 560): string {
  const { projections, error } = inspection;
  const margin = { top: 28, right: 12, bottom: 34, left: 64 };
  const cellH = 26;
  const height = margin.top + margin.bottom + cellH * inspection.layers;
  const x = scaleBand<string>().domain(projections).range([margin.left, width - margin.right]).padding(0.06);
  const y = scaleBand<number>().domain(error.map((_, i) => i)).range([margin.top, height - margin.bottom]).padding(0.06);
  const values = error.flat().filter((v): v is number => v !== null && v > 0);
  const lo = d3min(values) ?? 1e-4;
  const hi = d3max(values) ?? 1;
  const color = scaleSequentialLog(interpolateYlOrRd).domain([lo, hi > lo ? hi : lo * 10]);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" ${FONT} font-size="11">`);
  for (const p of projections) parts.push(`<text x="${x(p)! + x.bandwidth() / 2}" y="${margin.top - 8}" text-anchor="middle" fill="currentColor">${esc(p)}</text>`);
  error.forEach((row, layer) => {
    parts.push(`<text x="${margin.left - 8}" y="${y(layer)! + y.bandwidth() / 2 + 4}" text-anchor="end" fill="currentColor">layer ${layer}</text>`);
    row.forEach((e, j) => {
      const p = projections[j];
      const name = `layers.${layer}.${p}`;
      const fill = e === null ? '#eee' : color(Math.max(e, lo));
      const dark = e !== null && Math.log(Math.max(e, lo) / lo) / Math.log(hi / lo || 10) > 0.6;
      parts.push(
        `<g class="heat-cell${selected === name ? ' selected' : ''}" data-name="${name}" data-layer="${layer}" data-proj="${p}" data-error="${e ?? ''}" style="cursor:pointer">` +
          `<rect x="${x(p)}" y="${y(layer)}" width="${x.bandwidth()}" height="${y.bandwidth()}" rx="3" fill="${fill}"${selected === name ? ' stroke="#1d4ed8" stroke-width="2.5"' : ''}><title>${name}: ${e === null ? 'kept in f32' : `relative output error ${formatRelativeError(e)}`}</title></rect>` +
          `<text x="${x(p)! + x.bandwidth() / 2}" y="${y(layer)! + y.bandwidth() / 2 + 4}" text-anchor="middle" fill="${dark ? '#fff' : '#222'}" pointer-events="none">${e === null ? 'f32' : formatRelativeError(e)}</text>` +
          `</g>`,
      );
    });
  });
  parts.push(
    `<text x="${margin.left}" y="${height - 10}" fill="currentColor" opacity="0.75">‖XWᵀ − XŴᵀ‖ / ‖XWᵀ‖ on ${inspection.tokens} tokens · colour: log scale, ${formatRelativeError(lo)} … ${formatRelativeError(hi)}</text>`,
  );
  parts.push('</svg>');
  return parts.join('');
}

/** A layer's weight histogram before (filled) and after (outlined) quantization, with one group's grid as vertical lines. */
export function histogramSvg(h: LayerHistogram, width = 560, height = 280): string {
  const margin = { top: 14, right: 14, bottom: 58, left: 52 };
  const bins = h.before.length;
  const x = scaleLinear().domain([h.min, h.max]).range([margin.left, width - margin.right]);
  const top = Math.max(1, ...h.before, ...h.after);
  // square-root counts, so the tails stay visible beside the peak
  const y = scaleLinear().domain([0, Math.sqrt(top)]).range([height - margin.bottom, margin.top]);
  const binW = (h.max - h.min) / bins;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" ${FONT} font-size="11">`);
  h.before.forEach((c, i) => {
    if (c === 0) return;
    const x0 = x(h.min + i * binW);
    parts.push(`<rect class="bar-before" x="${x0}" y="${y(Math.sqrt(c))}" width="${Math.max(0.5, x(h.min + (i + 1) * binW) - x0 - 0.5)}" height="${y(0) - y(Math.sqrt(c))}" fill="#94a3b8" opacity="0.7"/>`);
  });
  const after = h.after.map((c, i) => `${i === 0 ? 'M' : 'L'}${x(h.min + i * binW)},${y(Math.sqrt(c))}H${x(h.min + (i + 1) * binW)}`).join('');
  parts.push(`<path class="bars-after" d="${after}V${y(0)}H${x(h.min)}Z" fill="none" stroke="#dc2626" stroke-width="1.4"/>`);
  const inRange = h.grid.filter((g) => g >= h.min && g <= h.max);
  for (const g of inRange) parts.push(`<line class="grid-line" x1="${x(g)}" x2="${x(g)}" y1="${margin.top}" y2="${y(0)}" stroke="#1d4ed8" stroke-width="${inRange.length > 32 ? 0.4 : 1}" stroke-dasharray="3 3"/>`);
  // axes
  parts.push(`<line x1="${margin.left}" x2="${width - margin.right}" y1="${y(0)}" y2="${y(0)}" stroke="currentColor" opacity="0.5"/>`);
  for (const t of x.ticks(6)) {
    parts.push(`<text x="${x(t)}" y="${y(0) + 14}" text-anchor="middle" fill="currentColor">${t}</text>`);
  }
  parts.push(`<text x="${margin.left - 6}" y="${margin.top + 8}" text-anchor="end" fill="currentColor">${top.toLocaleString('en-US')}</text>`);
  parts.push(`<text x="${margin.left - 6}" y="${y(0)}" text-anchor="end" fill="currentColor">0</text>`);
  parts.push(`<text x="${margin.left}" y="${height - 18}" fill="currentColor" opacity="0.8">weight value (bar height: √count) · grey: f32 · red: after W${h.bits} quantization</text>`);
  parts.push(
    `<text x="${margin.left}" y="${height - 4}" fill="currentColor" opacity="0.8">blue dashes: the ${h.grid.length} levels of row ${h.gridOf.row}, group ${h.gridOf.group} (its median scale; every group has its own grid)</text>`,
  );
  parts.push('</svg>');
  return parts.join('');
}
