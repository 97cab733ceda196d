/**
 * Plain data types shared by the face pipeline: decoded images, detections and embedded faces. All are
 * plain objects (typed arrays aside) so they cross worker and HTTP boundaries without adapters.
 */

/** An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC): data.length === width * height * 3. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** A point in image pixels. */
export type Point = readonly [number, number];

/** A box in image pixels: [x1, y1, x2, y2]. */
export type Box = readonly [number, number, number, number];

/** One face found by the detector, in the coordinates of the original image. */
export interface DetectedFace {
  readonly box: Box;
  readonly score: number;
  /** Five keypoints (left eye, right eye, nose, left mouth corner, right mouth corner), or null for detectors without keypoints. */
  readonly kps: readonly Point[] | null;
}

/** A detected face with its recognizer embedding. */
export interface EmbeddedFace extends DetectedFace {
  /** L2-normalised embedding (unit length). */
  readonly embedding: Float32Array;
  /** L2 norm of the raw recognizer output, a rough quality signal. */
  readonly norm: number;
}

/** Build an RgbImage, checking that the buffer size matches the dimensions. */
export function rgbImage(width: number, height: number, data: Uint8Array = new Uint8Array(width * height * 3)): RgbImage {
  if (data.length !== width * height * 3) {
    throw new RangeError(`RGB buffer of ${data.length} bytes does not match ${width}x${height}x3`);
  }
  return { width, height, data };
}
