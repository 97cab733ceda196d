/**
 * Batched detection: a copy of SCRFD-500M whose batch dimension is made dynamic (in memory, from the
 * shared fixed-640 export: symbolic batch, Reshape copying the batch dim, Resize by scales) must give,
 * for several photos in one run, exactly what the per-photo loop gives.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodeImage } from '../../pipeline/faces/decode.js';
import { ScrfdDetector } from '../../pipeline/faces/scrfd.js';
import type { RgbImage } from '../../pipeline/faces/types.js';
import { describeShared, shared } from '../helpers/shared.js';

const { onnx } = onnxProto;

function int64s(t: onnxProto.onnx.ITensorProto): bigint[] {
  const raw = t.rawData as Uint8Array;
  const copy = Uint8Array.prototype.slice.call(raw);
  return Array.from(new BigInt64Array(copy.buffer));
}

/** Rewrite the fixed-batch SCRFD export so its batch dimension is dynamic. */
function dynamicBatchScrfd(bytes: Uint8Array): Uint8Array {
  const m = onnx.ModelProto.decode(bytes);
  const g = m.graph as onnxProto.onnx.GraphProto;
  const setBatch = (v: onnxProto.onnx.IValueInfoProto) => {
    const d = v.type?.tensorType?.shape?.dim?.[0];
    if (d) { d.dimValue = null; d.dimParam = 'batch'; }
  };
  g.input.forEach(setBatch);
  g.output.forEach(setBatch);
  g.valueInfo = [];
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  for (const n of g.node) {
    const inputs = n.input ?? [];
    if (n.opType === 'Reshape') {
      const t = inits.get(inputs[1]) as onnxProto.onnx.TensorProto;
      const v = int64s(t);
      v[0] = 0n; // 0 = copy the batch dimension of the input
      t.rawData = new Uint8Array(BigInt64Array.from(v).buffer);
    }
    if (n.opType === 'Resize') {
      const name = `${n.name}_scales`;
      g.initializer.push(onnx.TensorProto.create({ name, dataType: 1, dims: [4], rawData: new Uint8Array(Float32Array.from([1, 1, 2, 2]).buffer) }));
      n.input = [inputs[0], inputs[1], name];
    }
  }
  return onnx.ModelProto.encode(m).finish();
}

describeShared('batched SCRFD detection', () => {
  let dir: string;
  let batched: ScrfdDetector;
  let single: ScrfdDetector;
  let photos: RgbImage[];
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceopt-batch-'));
    const file = path.join(dir, 'scrfd_batch.onnx');
    writeFileSync(file, dynamicBatchScrfd(readFileSync(shared('models', 'scrfd_500m_bnkps.onnx'))));
    batched = await ScrfdDetector.load(file, { maxBatch: 3 });
    single = await ScrfdDetector.load(shared('models', 'scrfd_500m_bnkps.onnx'));
    photos = await Promise.all(['t1.jpg', '2007_007763.jpg', '2008_001009.jpg', 'dogs.jpg'].map((f) => decodeImage(shared('faces', 'groups', f))));
  });
  afterAll(async () => {
    await batched?.release();
    await single?.release();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('profiles the rewritten graph as batchable and the original as not', () => {
    expect(batched.profile.batch).toBeNull();
    expect(batched.batchable).toBe(true);
    expect(single.profile.batch).toBe(1);
    expect(single.batchable).toBe(false);
  });

  it('4 photos in batches of 3 give the same faces as one by one', async () => {
    const together = await batched.detectBatch(photos);
    const alone = await single.detectBatch(photos);
    expect(together.map((f) => f.length)).toEqual(alone.map((f) => f.length));
    expect(alone[0]).toHaveLength(6);
    together.forEach((faces, i) => faces.forEach((f, j) => {
      expect(Math.abs(f.score - alone[i][j].score)).toBeLessThan(1e-4);
      f.box.forEach((v, k) => expect(Math.abs(v - alone[i][j].box[k])).toBeLessThan(0.02));
    }));
  });
});
