/**
 * The served models' id (the cache's scope: a cached result is only read back under the same id) changes
 * with either file: a new recognizer behind the same detector must not read the old recognizer's
 * embeddings from the cache (shared Redis included).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { loadModel, saveModel } from '../../pipeline/onnx/model.js';
import { resolveServerConfig } from '../../server/config.js';
import { selectModels } from '../../server/models.js';
import { describeShared, shared } from '../helpers/shared.js';

const DET = shared('models', 'scrfd_500m_bnkps.onnx');
const REC = shared('models', 'mobileface_paddle_128d.onnx');
const DET_DYNAMIC = shared('models', 'scrfd_500m_bnkps_dynamic.onnx');

describeShared('served models id', () => {
  it('differs when only the recognizer file differs, and when only the detector differs; equal for the same files', async () => {
    // the same recognizer graph saved with another doc string: other bytes, other sha256
    const other = path.join(mkdtempSync(path.join(tmpdir(), 'faceopt-ids-')), 'rec-copy.onnx');
    const m = loadModel(REC);
    m.proto.docString = 'another build of the same recognizer';
    await saveModel(m, other);
    const id = async (detector: string, recognizer: string) => (await selectModels(resolveServerConfig({ detector, recognizer, manifest: null }))).id;
    const base = await id(DET, REC);
    expect(await id(DET, REC)).toBe(base);
    expect(await id(DET, other)).not.toBe(base);
    expect(await id(DET_DYNAMIC, REC)).not.toBe(base);
  });
});
