/**
 * User-controlled text (model and node names, warnings, split descriptions, gate reasons) never becomes
 * HTML or Markdown structure in report.md: `<`, `>` and `&` are entities, newlines and control characters
 * spaces, `|` escaped in table cells. The terminal summary prints names without control characters (an
 * ANSI escape or a newline in a name cannot repaint or forge lines).
 */
import { describe, expect, it } from 'vitest';
import { renderMarkdown } from '../../pipeline/report/markdown.js';
import { terminalCompare, terminalSummary } from '../../pipeline/report/summary.js';
import type { Report } from '../../pipeline/report/types.js';
import { exampleRecognizerReport } from './example.js';

const EVIL = 'evil<img src=x onerror=alert(1)>|a`b`.onnx';

function hostile(): Report {
  const r = exampleRecognizerReport({ damage: 0.02 });
  r.reference = { ...r.reference, name: EVIL };
  r.variantName = 'int8\n# forged heading';
  r.warnings = ['a warning with <b>bold</b> & \n## injected heading\r\nand \u001b[31mred\u001b[0m'];
  r.gates = { ...r.gates, reasons: [...r.gates.reasons, 'reason <i>x</i>\n- forged item'] };
  r.provenance = { ...r.provenance, floatLayers: [{ layer: '<script>alert(1)</script>', op: 'Conv\n| x | y |', reason: 'a & b' }] };
  r.evaluationData = { ...r.evaluationData, split: { ...r.evaluationData.split, description: 'split <iframe>\n# h1' } };
  return r;
}

describe('report.md escapes user-controlled text', () => {
  const md = renderMarkdown(hostile());
  const lines = md.split('\n');

  it('has no raw tag anywhere', () => {
    expect(md).not.toMatch(/<[a-z/!]/i);
    expect(lines[0]).toBe('# faceopt report: evil&lt;img src=x onerror=alert(1)&gt;|a`b`.onnx · int8 # forged heading (recognizer)');
    expect(md).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(md).toContain('a &amp; b');
  });

  it('newlines in names cannot open headings, list items or table rows', () => {
    const headings = lines.filter((l) => /^#/.test(l));
    expect(headings.filter((l) => /forged|injected|h1/.test(l) && !l.startsWith('# faceopt report:'))).toEqual([]);
    expect(lines.filter((l) => /^- forged/.test(l))).toEqual([]);
    expect(lines.filter((l) => l.startsWith('| x'))).toEqual([]);
    expect(md).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/);
  });

  it('a name cannot open a link or an image (a renderer would fetch its address)', () => {
    const r = exampleRecognizerReport();
    r.reference = { ...r.reference, name: '![x](https://tracker.example/p.png)[click](https://e.example) a\\b' };
    const md = renderMarkdown(r);
    expect(md.split('\n')[0]).toBe('# faceopt report: !\\[x\\](https://tracker.example/p.png)\\[click\\](https://e.example) a\\\\b · int8 (recognizer)');
    expect(md).not.toMatch(/(?<!\\)\]\(/);
  });

  it('table cells still escape |', () => {
    const row = lines.find((l) => l.includes('&lt;script&gt;'))!;
    expect(row).toContain('Conv \\| x \\| y \\|');
  });

  it('an ordinary report reads as before, apart from the entities', () => {
    const plain = renderMarkdown(exampleRecognizerReport());
    expect(plain.split('\n')[0]).toBe('# faceopt report: mobileface_paddle_128d · int8 (recognizer)');
    expect(plain).not.toMatch(/<[a-z/]/i);
  });
});

describe('terminal summary strips control characters from what it prints', () => {
  it('one report', () => {
    const out = terminalSummary(hostile(), '/tmp/rep\u001b[2Jdir');
    expect(out).not.toMatch(/\u001b/);
    expect(out).not.toMatch(/\r/);
    expect(out.split('\n')[0]).toBe(`faceopt report: ${EVIL} · int8 # forged heading (recognizer)`);
    expect(out.split('\n').some((l) => l.startsWith('# forged') || l.startsWith('## injected'))).toBe(false);
    expect(out).toContain('and red');
  });

  it('two reports side by side', () => {
    const out = terminalCompare({ report: hostile(), dir: 'a\u001b[1A' }, { report: exampleRecognizerReport(), dir: 'b' });
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/);
    expect(out.split('\n').some((l) => l.startsWith('# forged'))).toBe(false);
  });
});
