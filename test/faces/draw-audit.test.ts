/**
 * Drawing detections: the SVG overlay's geometry (box size, label kept inside the photo, minimum stroke
 * and font) and the output format chosen from the extension, whatever its case.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { drawFaces, facesSvg } from '../../pipeline/faces/draw.js';
import type { DetectedFace } from '../../pipeline/faces/types.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'faceopt-draw-audit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const face: DetectedFace = { box: [10, 4, 50, 70], score: 0.876, kps: [[20, 30], [40, 30], [30, 40], [22, 55], [38, 55]] };

describe('facesSvg', () => {
  it('box from its corners, label at the top edge kept inside the photo, minimum stroke 2 and font 12', () => {
    const svg = facesSvg(100, 100, [face]);
    expect(svg).toContain('<rect x="10.0" y="4.0" width="40.0" height="66.0" fill="none" stroke="#ff3030" stroke-width="2"/>');
    expect(svg).toContain('<text x="10.0" y="12.0" font-family="sans-serif" font-size="12" fill="#ff3030">0.88</text>');
    expect(svg.match(/<circle /g)).toHaveLength(5);
    expect(svg).toContain('<circle cx="30.0" cy="40.0" r="3" fill="#ffff00"/>');
  });

  it('a face far from the top is labelled just above its box; stroke and font grow with the photo', () => {
    const svg = facesSvg(1200, 900, [{ box: [100, 300, 400, 700], score: 0.5, kps: null }]);
    expect(svg).toContain('stroke-width="3"');
    expect(svg).toContain('<text x="100.0" y="297.0" font-family="sans-serif" font-size="23"');
    expect(svg).not.toContain('<circle');
  });
});

describe('drawFaces', () => {
  const img = { width: 64, height: 48, data: new Uint8Array(64 * 48 * 3).fill(120) };
  it.each([
    ['out.png', 'png'],
    ['OUT.PNG', 'png'],
    ['out.jpg', 'jpeg'],
    ['out.webp', 'jpeg'],
  ])('%s is written as %s', async (name, format) => {
    const out = path.join(dir, name);
    await drawFaces(img, [face], out);
    const b = readFileSync(out);
    expect(format === 'png' ? b.subarray(0, 4).toString('latin1') === '\x89PNG' : b[0] === 0xff && b[1] === 0xd8).toBe(true);
  });
});
