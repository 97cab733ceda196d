/**
 * The face pipeline's public surface: decode a photo, detect faces with SCRFD, align them onto the
 * ArcFace template and embed them — each step usable alone, or all together through FaceAnalyzer.
 */
export { FaceAnalyzer, type AnalyzerOptions, type AnalyzerDescription, type ImageInput } from './analyzer.js';
export { ScrfdDetector, DEFAULT_DET_SIZE, DEFAULT_NMS_THRESHOLD, DEFAULT_SCORE_THRESHOLD, type DetectOptions, type DetectorLoadOptions } from './scrfd.js';
export { ArcFaceRecognizer, cosineSimilarity, l2normalize, type Embeddings, type RecognizerLoadOptions } from './arcface.js';
export { alignFace, arcfaceTemplate, estimateSimilarity, warpAffine, applyAffine, invertAffine, ARCFACE_DST, type Affine, type AlignedFace } from './align.js';
export { decodeImage, DEFAULT_MAX_PIXELS, SUPPORTED_FORMATS, type DecodeOptions, type DecodedImage } from './decode.js';
export { detectProfile, detectorProfile, recognizerProfile, guessRole, type ModelProfile, type DetectorProfile, type RecognizerProfile, type ProfileOverrides, type Role } from './profile.js';
export { readGraphSummary, summarizeModel, type GraphSummary } from './graph-summary.js';
export { embedCentralFaces, type CentralFacesOptions, type CentralFacesResult, type StageTimes } from './batch.js';
export { nms, pickFaces, filterMinSize, nearestToCentre, iou } from './select.js';
export { letterbox, letterboxGeometry, resizeBilinear, writeBlob, type LetterboxGeometry } from './preprocess.js';
export { drawFaces, facesSvg } from './draw.js';
export { resolveModelArg, modelFromArgOrEnv, DETECTOR_ENV, RECOGNIZER_ENV } from './models.js';
export type { Box, DetectedFace, EmbeddedFace, Point, RgbImage } from './types.js';
