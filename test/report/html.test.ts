import { describe, expect, it } from 'vitest';
import { REFERENCE_COLOR, VARIANT_COLOR, renderChart } from '../../pipeline/report/charts.js';
import { renderHtml } from '../../pipeline/report/html.js';
import { exampleDetectorReport, exampleRecognizerReport } from './example.js';

const count = (s: string, re: RegExp): number => (s.match(re) ?? []).length;
const fill = (c: string): RegExp => new RegExp(`<path[^>]*fill="${c}"`, 'g');

describe('report.html (static checks; the browser test renders it)', () => {
  const r = exampleRecognizerReport();
  const html = renderHtml(r);

  it('is self-contained: no script, no external resource, a CSP that forbids fetches', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:|\/\/)/i);
    expect(html).not.toMatch(/@import|url\(\s*['"]?https?:/i);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
  });

  it('embeds the four charts as inline SVG, in reading order, with unique element ids', () => {
    const charts = [...html.matchAll(/<figure class="chart" data-chart="([^"]+)">/g)].map((m) => m[1]);
    expect(charts).toEqual(['cosine-histogram', 'roc', 'latency', 'sensitivity']);
    expect(count(html, /<svg /g)).toBe(4);
    const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
    expect(ids.length).toBeGreaterThan(0);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => id!.startsWith('fo-'))).toBe(true);
  });

  it('is deterministic: the same report renders to the same bytes', () => {
    expect(renderHtml(r)).toBe(html);
  });

  it('each chart carries its data marks', () => {
    const hist = renderChart(r, 'cosine-histogram')!;
    expect(count(hist, fill(VARIANT_COLOR))).toBe(r.recognizer!.cosine.histogram.counts.filter((n) => n > 0).length);
    const roc = renderChart(r, 'roc')!;
    for (const c of [REFERENCE_COLOR, VARIANT_COLOR]) {
      const line = roc.match(new RegExp(`<g clip-path="url\\(#[^)]+\\)">\\s*<path d="(M[^"]+)"[^>]*stroke="${c}"`));
      expect(line, `ROC line ${c}`).not.toBeNull();
      expect(count(line![1]!, /L/g)).toBeGreaterThanOrEqual(3);
    }
    const lat = renderChart(r, 'latency')!;
    expect(count(lat, fill(REFERENCE_COLOR))).toBe(3); // 2 bars + legend swatch
    expect(count(lat, fill(VARIANT_COLOR))).toBe(3);
    expect(count(renderChart(r, 'sensitivity')!, fill(VARIANT_COLOR))).toBe(20);
  });

  it('escapes text from the report', () => {
    const x = { ...r, warnings: ['<img src=x onerror=alert(1)> & "quotes"'] };
    const h = renderHtml(x);
    expect(h).toContain('<li>&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quotes&quot;</li>');
    expect(h).not.toContain('<img');
  });

  it('charts without data are left out (detector report: latency only)', () => {
    const d = exampleDetectorReport();
    const h = renderHtml(d);
    expect([...h.matchAll(/data-chart="([^"]+)"/g)].map((m) => m[1])).toEqual(['latency']);
    expect(renderChart(d, 'roc')).toBeNull();
    expect(h).toContain('class="verdict fail"');
  });
});
