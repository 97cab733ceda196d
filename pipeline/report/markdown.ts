/**
 * report.md: the report blocks as GitHub-flavoured Markdown for a pull-request review, verdict first.
 * Charts live only in report.html; Markdown keeps the tables that hold the same numbers.
 */
import { reportBlocks, type Block } from './document.js';
import type { Report } from './types.js';

const cell = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

function block(b: Block): string | null {
  switch (b.kind) {
    case 'title': return `# ${b.text}`;
    case 'verdict': return `**${b.text}**`;
    case 'heading': return `## ${b.text}`;
    case 'paragraph': return b.text;
    case 'list': return b.items.map((i) => `- ${i}`).join('\n');
    case 'table': {
      const lines = [`| ${b.headers.map(cell).join(' | ')} |`, `|${b.headers.map(() => '---').join('|')}|`];
      for (const row of b.rows) lines.push(`| ${row.map(cell).join(' | ')} |`);
      return lines.join('\n');
    }
    case 'chart': return null;
  }
}

/** Render a report as Markdown (report.md). */
export function renderMarkdown(report: Report): string {
  return `${reportBlocks(report).map(block).filter((s): s is string => s !== null).join('\n\n')}\n`;
}
