/**
 * The report's charts, drawn by Apache ECharts' server-side renderer (`ssr: true`, SVG renderer) into SVG
 * strings that report.html embeds inline, so the page opens offline with no script. Only the chart types
 * and components used are registered (tree-shaken `echarts/core`). Each function returns null when the
 * report has no data for that chart.
 */
import * as echarts from 'echarts/core';
import { BarChart, LineChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TitleComponent } from 'echarts/components';
import { SVGRenderer } from 'echarts/renderers';
import type { ChartId } from './document.js';
import { mostSensitive } from './document.js';
import { firstBatchLabel } from './summary.js';
import type { Report } from './types.js';

echarts.use([BarChart, LineChart, GridComponent, LegendComponent, TitleComponent, SVGRenderer]);

/** Series colours; tests look for them to find the data marks in the SVG. */
export const REFERENCE_COLOR = '#4c78a8';
export const VARIANT_COLOR = '#f58518';

const FONT = { fontFamily: 'system-ui, sans-serif' };

/**
 * ECharts names SVG ids and CSS classes from process-wide counters (`zr3-c0`, `zr0-cls-12`), so the same
 * report would render differently depending on what ran before. Renumber them per chart, in order of
 * first appearance, under a chart-specific prefix: the output is deterministic and unique in the page.
 */
function renumber(svg: string, prefix: string): string {
  const names = new Map<string, string>();
  const perKind = new Map<string, number>();
  return svg.replace(/\bzr\d+-([a-z]+-?)(\d+)\b/g, (token, kind: string) => {
    let name = names.get(token);
    if (!name) {
      const n = perKind.get(kind) ?? 0;
      perKind.set(kind, n + 1);
      name = `${prefix}-${kind}${n}`;
      names.set(token, name);
    }
    return name;
  });
}

/** Render one ECharts option to an SVG string (no animation, disposed right after). */
function toSvg(id: ChartId, option: Record<string, unknown>, width: number, height: number): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  try {
    chart.setOption({ animation: false, textStyle: FONT, ...option });
    return renumber(chart.renderToSVGString(), `fo-${id}`);
  } finally {
    chart.dispose();
  }
}

function cosineHistogram(r: Report): string | null {
  const c = r.recognizer?.cosine;
  if (!c) return null;
  const e = c.histogram.edges;
  const labels = c.histogram.counts.map((_, i) => (i === 0 ? `< ${e[1]}` : `${e[i]}`));
  return toSvg('cosine-histogram', {
    grid: { left: 60, right: 20, top: 30, bottom: 60 },
    xAxis: { type: 'category', data: labels, name: 'cosine (bin start)', nameLocation: 'middle', nameGap: 40, axisLabel: { rotate: 30 } },
    yAxis: { type: 'value', name: 'faces', minInterval: 1 },
    // empty bins draw nothing ('-'), and a small minimum height keeps a 1-face tail bin visible next to a
    // 500-face bin; the count is printed on every non-empty bar
    series: [{
      name: 'faces', type: 'bar', color: VARIANT_COLOR, barMinHeight: 3,
      data: c.histogram.counts.map((n) => (n === 0 ? '-' : n)),
      label: { show: true, position: 'top' },
    }],
  }, 720, 320);
}

function roc(r: Report): string | null {
  const v = r.recognizer?.verification;
  if (!v || !v.reference.roc.points.length || !v.variant.roc.points.length) return null;
  const seriesOf = (name: string, color: string, pts: { fpr: number; tpr: number }[]): Record<string, unknown> => ({
    name, type: 'line', color, showSymbol: false, lineStyle: { width: 2 },
    data: pts.filter((q) => q.fpr > 0).map((q) => [q.fpr, q.tpr]),
  });
  const shown = [...v.reference.roc.points, ...v.variant.roc.points].filter((q) => q.fpr > 0);
  const minFpr = Math.min(...shown.map((q) => q.fpr));
  const minTpr = Math.min(...shown.map((q) => q.tpr));
  return toSvg('roc', {
    legend: { top: 0 },
    grid: { left: 60, right: 30, top: 40, bottom: 50 },
    xAxis: { type: 'log', name: 'false accept rate', nameLocation: 'middle', nameGap: 30, min: 10 ** Math.floor(Math.log10(minFpr)), max: 1 },
    yAxis: { type: 'value', name: 'true accept rate', min: Math.max(0, Math.floor(minTpr * 10) / 10), max: 1 },
    series: [seriesOf('reference', REFERENCE_COLOR, v.reference.roc.points), seriesOf('variant', VARIANT_COLOR, v.variant.roc.points)],
  }, 720, 400);
}

function sensitivity(r: Report): string | null {
  const top = mostSensitive(r).reverse(); // ECharts draws the first category at the bottom
  if (!top.length) return null;
  return toSvg('sensitivity', {
    grid: { left: 220, right: 40, top: 20, bottom: 40 },
    xAxis: { type: 'value', name: 'metric', nameLocation: 'middle', nameGap: 25 },
    yAxis: { type: 'category', data: top.map((l) => `${l.layer} (${l.op})`), axisLabel: { width: 200, overflow: 'truncate' } },
    series: [{ name: 'sensitivity', type: 'bar', data: top.map((l) => l.metric), color: VARIANT_COLOR }],
  }, 720, Math.max(160, 60 + top.length * 22));
}

function latency(r: Report): string | null {
  const s = r.speed;
  if (!s) return null;
  const cats = [firstBatchLabel(s)];
  const ref = [s.reference.batch1.p50Ms];
  const vari = [s.variant.batch1.p50Ms];
  if (s.reference.batch8 && s.variant.batch8) {
    cats.push('batch 8');
    ref.push(s.reference.batch8.p50Ms);
    vari.push(s.variant.batch8.p50Ms);
  }
  return toSvg('latency', {
    legend: { top: 0 },
    grid: { left: 60, right: 20, top: 40, bottom: 30 },
    xAxis: { type: 'category', data: cats },
    yAxis: { type: 'value', name: 'p50 ms per batch' },
    series: [
      { name: 'reference', type: 'bar', data: ref, color: REFERENCE_COLOR },
      { name: 'variant', type: 'bar', data: vari, color: VARIANT_COLOR },
    ],
  }, 560, 320);
}

const RENDERERS: Record<ChartId, (r: Report) => string | null> = {
  'cosine-histogram': cosineHistogram,
  roc,
  sensitivity,
  latency,
};

/** The SVG of one chart of the report, or null when the report has no data for it. */
export function renderChart(report: Report, chart: ChartId): string | null {
  return RENDERERS[chart](report);
}
