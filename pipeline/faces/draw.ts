/**
 * Drawing detections onto a photo for people to look at: boxes, scores and keypoints as an SVG
 * overlay composited by sharp over the EXIF-oriented photo, written atomically as JPEG or PNG.
 */
import path from 'node:path';
import sharp from 'sharp';
import { FaceoptError, writeFailed } from '../errors.js';
import { writeFileAtomic } from '../fsutil.js';
import type { DetectedFace, RgbImage } from './types.js';

const KP_COLOURS = ['#00ff00', '#00ff00', '#ffff00', '#ff00ff', '#ff00ff'];

/** The SVG overlay (same size as the photo) that draws the faces. */
export function facesSvg(width: number, height: number, faces: readonly DetectedFace[]): string {
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 300));
  const font = Math.max(12, Math.round(Math.min(width, height) / 40));
  const parts = faces.map((f) => {
    const [x1, y1, x2, y2] = f.box;
    const kps = (f.kps ?? []).map(([x, y], i) =>
      `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${stroke + 1}" fill="${KP_COLOURS[i % KP_COLOURS.length]}"/>`).join('');
    return `<rect x="${x1.toFixed(1)}" y="${y1.toFixed(1)}" width="${(x2 - x1).toFixed(1)}" height="${(y2 - y1).toFixed(1)}" fill="none" stroke="#ff3030" stroke-width="${stroke}"/>` +
      `<text x="${x1.toFixed(1)}" y="${Math.max(font, y1 - stroke).toFixed(1)}" font-family="sans-serif" font-size="${font}" fill="#ff3030">${f.score.toFixed(2)}</text>${kps}`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/**
 * Write `img` with the faces drawn on it to `out` (.png for PNG, anything else JPEG quality 90).
 * Coordinates are those of the decoded (EXIF-oriented) image, as the detector returns them.
 */
export async function drawFaces(img: RgbImage, faces: readonly DetectedFace[], out: string): Promise<void> {
  let bytes: Buffer;
  try {
    const base = sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), { raw: { width: img.width, height: img.height, channels: 3 } })
      .composite([{ input: Buffer.from(facesSvg(img.width, img.height, faces)), top: 0, left: 0 }]);
    bytes = path.extname(out).toLowerCase() === '.png' ? await base.png().toBuffer() : await base.jpeg({ quality: 90 }).toBuffer();
  } catch (e) {
    throw writeFailed(out, e);
  }
  await writeFileAtomic(out, bytes);
}
