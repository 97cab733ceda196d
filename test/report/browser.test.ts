/**
 * report.html opened in headless Chromium (Debian's `chromium` package, driven by playwright-core): no
 * console errors, no network requests, every chart rendered as a non-empty SVG with its data marks, and a
 * full-page screenshot saved to test-artifacts/report.png. Skipped with a printed reason when
 * /usr/bin/chromium is absent (CI installs it: `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium`).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext } from 'playwright-core';
import { REFERENCE_COLOR, VARIANT_COLOR } from '../../pipeline/report/charts.js';
import { writeReport } from '../../pipeline/report/io.js';
import { exampleRecognizerReport } from './example.js';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
if (!HAS_CHROMIUM) {
  console.warn(`[faceopt tests] skipping the report.html browser test: ${CHROMIUM} not found (install it as root with \`apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium\`)`);
}

interface ChartMarks {
  chart: string;
  width: number;
  height: number;
  /** Data marks with a visible size: bars, or the length of each ROC line. */
  bars: number;
  lines: number[];
}

describe.skipIf(!HAS_CHROMIUM)('report.html in headless Chromium', () => {
  let tmp: string;
  let context: BrowserContext;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'faceopt-html-'));
    context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1200, height: 900 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await context?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it('renders every chart with data marks, without console errors or network requests', async () => {
    const report = exampleRecognizerReport();
    const { html } = await writeReport(path.join(tmp, 'report'), report);
    const page = await context.newPage();
    const errors: string[] = [];
    const external: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('request', (r) => { if (!/^(file|data):/.test(r.url())) external.push(r.url()); });
    await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });

    const marks: ChartMarks[] = await page.evaluate(([ref, variant]) => {
      const size = (e: Element): DOMRect => e.getBoundingClientRect();
      return [...document.querySelectorAll('figure.chart')].map((fig) => {
        const svg = fig.querySelector('svg');
        const chart = fig.getAttribute('data-chart') ?? '';
        if (!svg) return { chart, width: 0, height: 0, bars: 0, lines: [] };
        const visible = (sel: string): number => [...svg.querySelectorAll(sel)].filter((p) => size(p).width > 0 && size(p).height > 0).length;
        const lines = [ref, variant].map((c) => {
          const p = svg.querySelector(`g[clip-path] path[stroke="${c}"]`) as SVGPathElement | null;
          return p ? p.getTotalLength() : 0;
        });
        return { chart, width: size(svg).width, height: size(svg).height, bars: visible(`path[fill="${variant}"]`), lines };
      });
    }, [REFERENCE_COLOR, VARIANT_COLOR] as const);

    expect(errors).toEqual([]);
    expect(external).toEqual([]);
    expect(marks.map((m) => m.chart)).toEqual(['cosine-histogram', 'roc', 'latency', 'sensitivity']);
    for (const m of marks) {
      expect(m.width, m.chart).toBeGreaterThan(300);
      expect(m.height, m.chart).toBeGreaterThan(150);
    }
    const by = new Map(marks.map((m) => [m.chart, m]));
    expect(by.get('cosine-histogram')!.bars).toBe(report.recognizer!.cosine.histogram.counts.filter((n) => n > 0).length);
    for (const length of by.get('roc')!.lines) expect(length).toBeGreaterThan(100);
    expect(by.get('latency')!.bars).toBe(3); // 2 variant bars + legend swatch
    expect(by.get('sensitivity')!.bars).toBe(20);
    expect(await page.locator('.verdict').textContent()).toBe('PASS: all 3 accuracy gates met');

    await mkdir('test-artifacts', { recursive: true });
    const shot = path.join('test-artifacts', 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = await readFile(shot);
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect((await stat(shot)).size).toBeGreaterThan(20_000);
    await page.close();
  });
});
