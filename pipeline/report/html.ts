/**
 * report.html: the report blocks as one self-contained page (inline CSS, charts as inline SVG, no script,
 * no external resource; a Content-Security-Policy forbids any fetch), so it opens offline and can be
 * attached to a review as a single file.
 */
import { renderChart } from './charts.js';
import { reportBlocks, type Block } from './document.js';
import { reportTitle } from './summary.js';
import type { Report } from './types.js';

/** Escape text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const NUMERIC = /^[-+]?\d[\d.,]*\s?(%|ms|MiB|pp|x)?$/;

function block(b: Block, report: Report): string {
  switch (b.kind) {
    case 'title': return `<h1>${escapeHtml(b.text)}</h1>`;
    case 'verdict': return `<p class="verdict ${b.pass ? 'pass' : 'fail'}">${escapeHtml(b.text)}</p>`;
    case 'heading': return `<h2>${escapeHtml(b.text)}</h2>`;
    case 'paragraph': return `<p>${escapeHtml(b.text)}</p>`;
    case 'list': return `<ul>${b.items.map((i) => `<li>${escapeHtml(i)}</li>`).join('')}</ul>`;
    case 'table': {
      const head = `<thead><tr>${b.headers.map((x) => `<th>${escapeHtml(x)}</th>`).join('')}</tr></thead>`;
      const rows = b.rows.map((r) => `<tr>${r.map((x) => `<td${NUMERIC.test(x) ? ' class="num"' : ''}>${escapeHtml(x)}</td>`).join('')}</tr>`).join('\n');
      return `<table>${head}<tbody>${rows}</tbody></table>`;
    }
    case 'chart': {
      const svg = renderChart(report, b.chart);
      return svg ? `<figure class="chart" data-chart="${b.chart}"><figcaption>${escapeHtml(b.caption)}</figcaption>${svg}</figure>` : '';
    }
  }
}

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; color: #1d1d1f; max-width: 1100px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 8px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.verdict { font-size: 18px; font-weight: 700; padding: 8px 12px; border-radius: 6px; display: inline-block; }
.verdict.pass { background: #e3f5e6; color: #17602a; } .verdict.fail { background: #fde7e7; color: #9b1c1c; }
table { border-collapse: collapse; margin: 8px 0; } th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure.chart { margin: 12px 0; } figcaption { font-weight: 600; margin-bottom: 4px; }
`;

/** Render a report as one self-contained HTML page (report.html). */
export function renderHtml(report: Report): string {
  const body = reportBlocks(report).map((b) => block(b, report)).filter(Boolean).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(reportTitle(report))}</title>
<style>${CSS}</style>
</head>
<body>
${body}
</body>
</html>
`;
}
