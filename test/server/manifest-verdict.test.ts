/**
 * serve decides on the promoted report as it is now, not on the verdict the manifest copied when it was
 * promoted: a report regenerated as failing since then is refused (FACEOPT_ERR_VARIANT_FAILED_GATES), and
 * one regenerated as passing is served.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { sha256 } from '../../pipeline/fsutil.js';
import type { Report } from '../../pipeline/report/types.js';
import { resolveServerConfig } from '../../server/config.js';
import { selectModels } from '../../server/models.js';
import { faceopt } from '../helpers/cli.js';
import { describeShared, shared } from '../helpers/shared.js';
import { exampleRecognizerReport } from '../report/example.js';

const DET = shared('models', 'scrfd_500m_bnkps.onnx');

describeShared('the promoted verdict is read from the report at start-up', () => {
  let tmp: string;
  beforeAll(async () => { tmp = await mkdtemp(path.join(os.tmpdir(), 'faceopt-manifest-verdict-')); });
  afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

  const writeReport = async (dir: string, model: string, report: Report) => {
    const r: Report = { ...report, variant: { ...report.variant, path: model, sha256: sha256('rec'), sizeBytes: 3 } };
    await writeFile(path.join(dir, 'report.json'), JSON.stringify(r, null, 2));
  };

  it('a report that failed after promotion is refused; passing again, it is served', async () => {
    const dir = path.join(tmp, 'reports', 'rec');
    const model = path.join(tmp, 'models', 'rec.onnx');
    await mkdir(dir, { recursive: true });
    await mkdir(path.dirname(model), { recursive: true });
    await writeFile(model, 'rec');
    await writeReport(dir, model, exampleRecognizerReport());
    const manifest = path.join(tmp, 'manifest.json');
    const p = faceopt(['promote', dir, '--manifest', manifest]);
    expect(p.code, p.stderr).toBe(0);
    const config = resolveServerConfig({ detector: DET, manifest });

    await writeReport(dir, model, exampleRecognizerReport({ damage: 0.05 })); // regenerated: fails its gates now
    const e = await selectModels(config).then(() => null, (err: unknown) => err);
    expect(isFaceoptError(e, 'FACEOPT_ERR_VARIANT_FAILED_GATES'), String(e)).toBe(true);
    expect((await selectModels({ ...config, allowFailed: true })).recognizer.verdict?.pass).toBe(false);

    await writeReport(dir, model, exampleRecognizerReport());
    expect((await selectModels(config)).recognizer.verdict?.pass).toBe(true);
  });
});
