/**
 * report.md: the report blocks as GitHub-flavoured Markdown for a pull-request review, verdict first.
 * Charts live only in report.html; Markdown keeps the tables that hold the same numbers.
 */
import { reportBlocks, type Block } from './document.js';
import type { Report } from './types.js';

/**
 * Text as Markdown that stays text: `&`, `<` and `>` become entities (a model named `x<img onerror=...>`
 * must not put a tag into a rendered pull request), `[`, `]` and backslashes are escaped, and line breaks and other control characters become
 * spaces (a name with a newline must not open a heading, a list item or a table row). Every block's text
 * goes through it: most of a report is generated, but names, paths, warnings and reasons come from the
 * user's files.
 */
export function escapeMarkdownText(s: string): string {
  return s
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ')
    // a backslash stays one; brackets cannot open a link or an image (`![x](https://...)` in a model's
    // file name would make a renderer fetch that address)
    .replace(/\\/g, '\\\\').replace(/[[\]]/g, '\\$&')
    .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const cell = (s: string): string => escapeMarkdownText(s).replace(/\|/g, '\\|');
const text = escapeMarkdownText;

function block(b: Block): string | null {
  switch (b.kind) {
    case 'title': return `# ${text(b.text)}`;
    case 'verdict': return `**${text(b.text)}**`;
    case 'heading': return `## ${text(b.text)}`;
    case 'paragraph': return text(b.text);
    case 'list': return b.items.map((i) => `- ${text(i)}`).join('\n');
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
